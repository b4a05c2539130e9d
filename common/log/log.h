/* common/log/log.h — leveled logging to stderr, shared by every Remora program.
 *
 * One line per message: "<time> <program> <level> <message>". Lines are written with a single
 * write(2) so lines from several threads never interleave. Thread-safe; callable from any thread,
 * including the event loop (stderr is expected to be a pipe or file that does not block for long).
 */
#ifndef REMORA_COMMON_LOG_LOG_H
#define REMORA_COMMON_LOG_LOG_H

#include <stdarg.h>

typedef enum rm_log_level {
    RM_LOG_DEBUG = 0,
    RM_LOG_INFO = 1,
    RM_LOG_WARN = 2,
    RM_LOG_ERROR = 3,
    RM_LOG_OFF = 4,
} rm_log_level_t;

/* Sets the program name printed on each line (borrowed: must outlive all logging) and the minimum
 * level. Call once at start-up, before other threads exist. */
void rm_log_init(const char *program, rm_log_level_t min_level);

/* Parses "debug", "info", "warn", "error", "off". Returns 0, or -1 for an unknown name. */
int rm_log_level_parse(const char *name, rm_log_level_t *out);

rm_log_level_t rm_log_level(void);

void rm_log(rm_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rm_logv(rm_log_level_t level, const char *fmt, va_list ap);

#define rm_log_debug(...)                                                                          \
    do {                                                                                           \
        if (rm_log_level() <= RM_LOG_DEBUG)                                                        \
            rm_log(RM_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define rm_log_info(...)  rm_log(RM_LOG_INFO, __VA_ARGS__)
#define rm_log_warn(...)  rm_log(RM_LOG_WARN, __VA_ARGS__)
#define rm_log_error(...) rm_log(RM_LOG_ERROR, __VA_ARGS__)

#endif /* REMORA_COMMON_LOG_LOG_H */
