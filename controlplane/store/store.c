/* controlplane/store/store.c — picks a store implementation from its URI and forwards calls to it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/store/store-int.h"

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

int rm_store_prune(rm_store_t *s, uint64_t keep_from, uint64_t *pruned)
{
    if (pruned != NULL)
        *pruned = 0;
    return s->ops->prune != NULL ? s->ops->prune(s, keep_from, pruned) : 0;
}

int rm_store_oldest(rm_store_t *s, uint64_t *out)
{
    *out = 0;
    if (s->ops->oldest != NULL)
        return s->ops->oldest(s, out);
    rm_store_record_t r;
    int rc = s->ops->get(s, 0, &r);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    rm_store_record_free(&r);
    *out = 1;
    return 0;
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

/* ---- endpoint registrations ---- */

/* A store without registration ops (a test double) keeps none: writes succeed, lists are empty. */
int rm_store_ep_put(rm_store_t *s, const rm_store_endpoint_t *e)
{
    return s->ops->ep_put != NULL ? s->ops->ep_put(s, e) : 0;
}

int rm_store_ep_remove(rm_store_t *s, const rm_store_endpoint_t *e)
{
    return s->ops->ep_remove != NULL ? s->ops->ep_remove(s, e) : 0;
}

int rm_store_ep_list(rm_store_t *s, rm_store_endpoint_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return s->ops->ep_list != NULL ? s->ops->ep_list(s, out, n) : 0;
}

int rm_store_ep_batch(rm_store_t *s, int end)
{
    return s->ops->ep_batch != NULL ? s->ops->ep_batch(s, end) : 0;
}

int rm_store_ep_changed(rm_store_t *s)
{
    return s->ops->ep_changed != NULL ? s->ops->ep_changed(s) : 0;
}

int rm_store_ep_keepalive(rm_store_t *s, uint64_t now_ms)
{
    return s->ops->ep_keepalive != NULL ? s->ops->ep_keepalive(s, now_ms) : 0;
}

static const char *nz(const char *s)
{
    return s != NULL ? s : "";
}

void rm_store_endpoint_key(const rm_store_endpoint_t *e, char *out, size_t n)
{
    if (*nz(e->pod))
        snprintf(out, n, "%s/%s", nz(e->namespace_), e->pod);
    else
        snprintf(out, n, "%s/@%s", nz(e->namespace_), nz(e->address));
}

void rm_store_endpoint_free(rm_store_endpoint_t *e)
{
    if (e == NULL)
        return;
    free(e->pod);
    free(e->namespace_);
    free(e->service);
    free(e->version);
    free(e->address);
    free(e->owner);
    memset(e, 0, sizeof(*e));
}

void rm_store_endpoints_free(rm_store_endpoint_t *e, size_t n)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        rm_store_endpoint_free(&e[i]);
    free(e);
}

#define EP_MAGIC  "RME1\n"
#define EP_FIELDS 7

char *rm__store_ep_encode(const rm_store_endpoint_t *e)
{
    char *out = NULL;
    if (asprintf(&out, EP_MAGIC "%s\n%s\n%s\n%s\n%s\n%d\n%s\n", nz(e->pod), nz(e->namespace_),
                 nz(e->service), nz(e->version), nz(e->address), e->draining ? 1 : 0,
                 nz(e->owner)) < 0)
        return NULL;
    return out;
}

int rm__store_ep_decode(const uint8_t *val, size_t len, rm_store_endpoint_t *out)
{
    char *f[EP_FIELDS] = {0};
    size_t mlen = sizeof(EP_MAGIC) - 1, k = 0;
    memset(out, 0, sizeof(*out));
    if (len < mlen || memcmp(val, EP_MAGIC, mlen) != 0)
        return -EINVAL;
    size_t start = mlen;
    for (size_t i = mlen; i < len; i++) {
        unsigned char c = val[i];
        if (c == '\n') {
            if (k == EP_FIELDS)
                goto bad;
            f[k] = strndup((const char *)val + start, i - start);
            if (f[k] == NULL)
                goto nomem;
            k++;
            start = i + 1;
        } else if (c <= 0x20 || c >= 0x7f) {
            goto bad;
        }
    }
    if (k != EP_FIELDS || start != len || *f[2] == '\0' || *f[4] == '\0' ||
        (strcmp(f[5], "0") != 0 && strcmp(f[5], "1") != 0))
        goto bad;
    out->pod = f[0];
    out->namespace_ = f[1];
    out->service = f[2];
    out->version = f[3];
    out->address = f[4];
    out->draining = f[5][0] == '1';
    free(f[5]);
    out->owner = f[6];
    return 0;
bad:
    for (size_t i = 0; i < k; i++)
        free(f[i]);
    return -EINVAL;
nomem:
    for (size_t i = 0; i < k; i++)
        free(f[i]);
    return -ENOMEM;
}
