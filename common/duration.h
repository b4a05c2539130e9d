/* common/duration.h — durations as users write them in config ("250ms", "2s", "1m", "1h"). */
#ifndef REMORA_COMMON_DURATION_H
#define REMORA_COMMON_DURATION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Error codes of rm_duration_parse. Each one has its own code so that callers can tell the user
 * exactly what is wrong (rm_duration_strerror) instead of "invalid duration".
 */
enum {
    RM_DURATION_EEMPTY = -1,     /* "" */
    RM_DURATION_ENEGATIVE = -2,  /* "-1s" */
    RM_DURATION_ENOUNIT = -3,    /* "10" */
    RM_DURATION_EUNIT = -4,      /* "10x", "10us" */
    RM_DURATION_ERANGE = -5,     /* does not fit in uint64 milliseconds */
    RM_DURATION_ESYNTAX = -6,    /* "1.s", "s", "1s ", "+1s" */
    RM_DURATION_EPRECISION = -7, /* "1.5ms", "0.0001s": finer than a millisecond */
};

/*
 * Parses a duration: one or more <number><unit> parts ("1m30s"), where number is decimal digits
 * with an optional fraction ("1.5s") and unit is ms, s, m or h. The total must be a whole number
 * of milliseconds that fits in a uint64_t. No sign, no spaces, nothing after the last unit.
 * Accepts a NUL-terminated string (NULL counts as empty); writes *out_ms only on success.
 * Returns 0 or one of RM_DURATION_E*. Pure function: any thread.
 */
int rm_duration_parse(const char *s, uint64_t *out_ms);

/*
 * Formats ms in the largest unit that holds it exactly: 0 -> "0s", 250 -> "250ms", 1500 ->
 * "1500ms", 2000 -> "2s", 90000 -> "90s", 60000 -> "1m", 3600000 -> "1h". Because the form is a
 * whole number and a unit, rm_duration_parse(rm_duration_format(x)) == x for every x.
 * Writes at most n bytes including the NUL into the caller's buf (24 bytes always suffice:
 * RM_DURATION_BUF). Returns the length of the full string, as snprintf does, or a negative
 * value if buf is NULL with n > 0. Pure function: any thread.
 */
int rm_duration_format(uint64_t ms, char *buf, size_t n);

/* Enough for any rm_duration_format output: 20 digits, "ms", NUL. */
#define RM_DURATION_BUF 24

/*
 * Human text for a code of rm_duration_parse ("missing a unit (use ms, s, m or h)"). Returns a
 * static string, never NULL. Any thread.
 */
const char *rm_duration_strerror(int code);

#endif /* REMORA_COMMON_DURATION_H */
