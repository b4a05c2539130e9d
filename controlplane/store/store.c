/* controlplane/store/store.c — picks a store implementation from its URI and forwards calls to it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/store/store.h"

static void set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, arg);
}

int rm_store_open(const char *uri, rm_store_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (uri == NULL || *uri == '\0') {
        set_err(err, errlen, "%s", "empty store URI (use sqlite:PATH)");
        return -EINVAL;
    }
    if (strncmp(uri, "sqlite:", 7) == 0) {
        const char *path = uri + 7;
        if (*path == '\0') {
            set_err(err, errlen, "%s", "sqlite store needs a path: sqlite:PATH");
            return -EINVAL;
        }
        return rm__store_sqlite_open(path, out, err, errlen);
    }
    if (strcmp(uri, "mem:") == 0 || strcmp(uri, "mem") == 0)
        return rm__store_mem_open(out);
    if (strncmp(uri, "etcd://", 7) == 0)
        return rm__store_etcd_open(uri + 7, out, err, errlen);
    set_err(err, errlen, "unknown store \"%s\" (use sqlite:PATH or etcd://HOST:PORT)", uri);
    return -EINVAL;
}

int rm_store_get(rm_store_t *s, uint64_t version, rm_store_record_t *out)
{
    return s->ops->get(s, version, out);
}

int rm_store_append(rm_store_t *s, uint64_t expect_version, const uint8_t *config, size_t len,
                    const char *summary, uint64_t created_ms, uint64_t *out_version)
{
    return s->ops->append(s, expect_version, config, len, summary, created_ms, out_version);
}

int rm_store_history(rm_store_t *s, uint32_t limit, rm_store_record_t **out, size_t *n)
{
    return s->ops->history(s, limit, out, n);
}

int rm_store_changed(rm_store_t *s)
{
    return s->ops->changed != NULL ? s->ops->changed(s) : 0;
}

int rm_store_is_shared(const rm_store_t *s)
{
    return s->ops->changed != NULL;
}

void rm_store_close(rm_store_t *s)
{
    if (s != NULL)
        s->ops->close(s);
}

const char *rm_store_error(const rm_store_t *s)
{
    return s->error;
}

void rm_store_record_free(rm_store_record_t *r)
{
    if (r == NULL)
        return;
    free(r->summary);
    free(r->config);
    memset(r, 0, sizeof(*r));
}

void rm_store_records_free(rm_store_record_t *r, size_t n)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        rm_store_record_free(&r[i]);
    free(r);
}

void rm__store_fail(rm_store_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, ap);
    va_end(ap);
}

char *rm__store_summary_dup(const char *summary)
{
    if (summary == NULL)
        summary = "";
    size_t len = strlen(summary);
    if (len <= RM_STORE_SUMMARY_MAX)
        return strdup(summary);
    /* Cut on a byte boundary that does not split a UTF-8 sequence, then mark the cut. */
    size_t cut = RM_STORE_SUMMARY_MAX - 3;
    while (cut > 0 && ((unsigned char)summary[cut] & 0xC0) == 0x80)
        cut--;
    char *s = malloc(cut + 4);
    if (s == NULL)
        return NULL;
    memcpy(s, summary, cut);
    memcpy(s + cut, "...", 4);
    return s;
}
