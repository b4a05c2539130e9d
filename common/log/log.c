/* common/log/log.c — leveled logging to stderr (see log.h). */
#include "common/log/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "remora";
static rm_log_level_t log_min_level = RM_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void rm_log_init(const char *program, rm_log_level_t min_level)
{
    log_program = program;
    log_min_level = min_level;
}

int rm_log_level_parse(const char *name, rm_log_level_t *out)
{
    for (int i = RM_LOG_DEBUG; i <= RM_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (rm_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

rm_log_level_t rm_log_level(void)
{
    return log_min_level;
}

void rm_logv(rm_log_level_t level, const char *fmt, va_list ap)
{
    if (level < log_min_level || level >= RM_LOG_OFF)
        return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), log_program, level_names[level]);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: keep the line whole and terminated */
    line[len++] = '\n';
    /* One write per line: concurrent writers never interleave within a line. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void rm_log(rm_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rm_logv(level, fmt, ap);
    va_end(ap);
}
