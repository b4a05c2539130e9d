/* tests/backend/handler.c — decides each response (flags, control headers, faults, admin paths)
 * and produces its bytes: the head at once, the body in slices. */
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "tests/backend/backend.h"

#include "dataplane/http1/http1.h"

static int path_is(const rm__req_t *req, const char *want)
{
    size_t n;
    const char *p = rm__req_path(req, &n);

    return n == strlen(want) && memcmp(p, want, n) == 0;
}

void rm__plan_make(rm__server_t *srv, const rm__req_t *req, rm__plan_t *plan)
{
    const rm__config_t *cfg = &srv->cfg;
    rm__stats_t *st = &srv->stats;

    memset(plan, 0, sizeof(*plan));
    plan->close = !req->keep_alive || req->upgrade;
    if (req->admin) {
        /* Admin answers are not counted, so tests can read the counters without moving them. */
        plan->status = 200;
        if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
            plan->kind = RM__KIND_ERROR;
            plan->status = 405;
            plan->error = "method not allowed (use GET)";
        } else if (path_is(req, "/__backend/stats")) {
            plan->kind = RM__KIND_STATS;
        } else if (path_is(req, "/__backend/ready")) {
            plan->kind = RM__KIND_READY;
            plan->status = srv->draining ? 503 : 200;
        } else {
            plan->kind = RM__KIND_ERROR;
            plan->status = 404;
            plan->error = "no such admin path (try /__backend/stats or /__backend/ready)";
        }
        return;
    }
    st->requests++;
    if (req->method >= 0 && req->method < RM__METHOD_SLOTS)
        st->by_method[req->method]++;
    plan->counted = 1;
    /* Every counted request takes a place in the fail-rate sequence, whatever else it asks for,
     * so the share of failures over a run is exact. */
    st->fail_seq++;
    if (req->ctl.error != NULL) {
        plan->kind = RM__KIND_ERROR;
        plan->status = 400;
        plan->error = req->ctl.error;
        return;
    }
    plan->kind = RM__KIND_APP;
    plan->delay_us = req->ctl.has_delay ? req->ctl.delay_us : cfg->delay_us;
    plan->fault = req->ctl.fault;
    if (plan->fault != RM__FAULT_NONE)
        st->faults++;
    if (req->ctl.status != 0)
        plan->status = req->ctl.status;
    else if (rm__fail_select(st->fail_seq, cfg->fail_rate_bp))
        plan->status = cfg->fail_status;
    else
        plan->status = cfg->status;
}

void rm__plan_error(rm__server_t *srv, rm__plan_t *plan, int status, const char *error)
{
    memset(plan, 0, sizeof(*plan));
    srv->stats.requests++;
    plan->kind = RM__KIND_ERROR;
    plan->counted = 1;
    plan->status = status;
    plan->error = error;
    plan->close = 1;
}

/* The identity line: who answered and what it saw. */
static void identity_json(const rm__server_t *srv, const rm__req_t *req, rm__buf_t *b)
{
    const rm__config_t *cfg = &srv->cfg;
    const char *method = llhttp_method_name((llhttp_method_t)req->method);
    const char *host;
    size_t hlen;

    host = rm__req_header(req, "host", &hlen);
    if (host == NULL) {
        host = "";
        hlen = 0;
    }
    rm__buf_puts(b, "{\"service\":");
    rm__buf_json_string(b, cfg->service, strlen(cfg->service));
    rm__buf_puts(b, ",\"version\":");
    rm__buf_json_string(b, cfg->version, strlen(cfg->version));
    rm__buf_puts(b, ",\"instance\":");
    rm__buf_json_string(b, cfg->instance, strlen(cfg->instance));
    rm__buf_puts(b, ",\"method\":");
    rm__buf_json_string(b, method, strlen(method));
    rm__buf_puts(b, ",\"path\":");
    rm__buf_json_string(b, req->store.data ? req->store.data : "", req->url_len);
    rm__buf_printf(b, ",\"body_bytes\":%" PRIu64 ",\"host\":", req->body_bytes);
    rm__buf_json_string(b, host, hlen);
    if (req->ctl.echo_headers && req->store.data != NULL) {
        /* Names lowercased; repeated headers are joined with ", " in arrival order (RFC 9110
         * 5.3), so the object never has duplicate keys. */
        int first = 1;

        rm__buf_puts(b, ",\"headers\":{");
        for (uint32_t i = 0; i < req->nhdrs; i++) {
            const rm__hdr_t *h = &req->hdrs[i];
            const char *name = req->store.data + h->name_off;
            char lower[256];
            size_t nl = h->name_len < sizeof(lower) ? h->name_len : sizeof(lower) - 1;
            int seen = 0;
            rm__buf_t joined;

            for (uint32_t j = 0; j < i && !seen; j++)
                seen = req->hdrs[j].name_len == h->name_len &&
                       strncasecmp(req->store.data + req->hdrs[j].name_off, name, h->name_len) == 0;
            if (seen)
                continue;
            for (size_t k = 0; k < nl; k++) {
                char c = name[k];

                lower[k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
            }
            rm__buf_init(&joined);
            for (uint32_t j = i; j < req->nhdrs; j++) {
                const rm__hdr_t *o = &req->hdrs[j];

                if (o->name_len != h->name_len ||
                    strncasecmp(req->store.data + o->name_off, name, h->name_len) != 0)
                    continue;
                if (j != i)
                    rm__buf_append(&joined, ", ", 2);
                rm__buf_append(&joined, req->store.data + o->value_off, o->value_len);
            }
            if (joined.oom)
                b->oom = 1;
            if (!first)
                rm__buf_puts(b, ",");
            rm__buf_json_string(b, lower, nl);
            rm__buf_puts(b, ":");
            rm__buf_json_string(b, joined.data ? joined.data : "", joined.len);
            rm__buf_free(&joined);
            first = 0;
        }
        rm__buf_puts(b, "}");
    }
    rm__buf_puts(b, "}\n");
}

/* Echoes a request header into the response head when the request has it. */
static void echo_header(const rm__req_t *req, const char *name, rm__buf_t *out)
{
    size_t n;
    const char *v = rm__req_header(req, name, &n);

    if (v == NULL)
        return;
    /* llhttp refuses CR and LF inside values, so the echo cannot split the response. */
    rm__buf_printf(out, "%s: %.*s\r\n", name, (int)n, v);
}

void rm__body_init(rm__body_t *body)
{
    memset(body, 0, sizeof(*body));
    rm__buf_init(&body->line);
}

void rm__body_free(rm__body_t *body)
{
    rm__buf_free(&body->line);
    memset(body, 0, sizeof(*body));
}

int rm__response_start(rm__server_t *srv, const rm__req_t *req, const rm__plan_t *plan, int closing,
                       rm__buf_t *out, rm__body_t *body)
{
    const rm__config_t *cfg = &srv->cfg;
    int status = plan->status;
    int http10 = req->http_major == 1 && req->http_minor == 0;
    int no_body, chunked;
    uint64_t total;

    /* Keep the line's allocation: most connections answer many small requests. */
    body->line.len = 0;
    body->line.oom = 0;
    body->produced = 0;
    body->done = 0;
    body->chunked = 0;
    switch (plan->kind) {
    case RM__KIND_APP:
        identity_json(srv, req, &body->line);
        break;
    case RM__KIND_STATS:
        rm__stats_json(&srv->stats, &body->line);
        break;
    case RM__KIND_READY:
        rm__buf_printf(&body->line, "{\"ready\":%s,\"draining\":%s}\n",
                       srv->draining ? "false" : "true", srv->draining ? "true" : "false");
        break;
    case RM__KIND_ERROR:
        rm__buf_puts(&body->line, "{\"error\":");
        rm__buf_json_string(&body->line, plan->error, strlen(plan->error));
        rm__buf_puts(&body->line, "}\n");
        break;
    }
    if (body->line.oom)
        return -1;
    total = body->line.len;
    if (plan->kind == RM__KIND_APP) {
        if (req->ctl.has_body_bytes)
            total = req->ctl.body_bytes;
        else if (cfg->has_body_bytes)
            total = cfg->body_bytes;
    }
    /* HEAD, 204 and 304 never carry a body; 205 carries an empty one (RFC 9110 15.3.6). */
    no_body = req->method == HTTP_HEAD || status == 204 || status == 304;
    if (status == 205)
        total = 0;
    chunked = plan->kind == RM__KIND_APP && (req->ctl.chunked || cfg->chunked) && !http10;

    rm__buf_printf(out, "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n", status,
                   rm_http1_reason_phrase(status));
    if (status != 204 && status != 304) {
        if (chunked)
            rm__buf_puts(out, "transfer-encoding: chunked\r\n");
        else
            rm__buf_printf(out, "content-length: %" PRIu64 "\r\n", total);
    }
    rm__buf_printf(out,
                   "x-backend-service: %s\r\nx-backend-version: %s\r\nx-backend-instance: %s\r\n",
                   cfg->service, cfg->version, cfg->instance);
    echo_header(req, "x-request-id", out);
    echo_header(req, "x-remora-attempt", out);
    if (closing)
        rm__buf_puts(out, "connection: close\r\n");
    else if (http10)
        rm__buf_puts(out, "connection: keep-alive\r\n");
    rm__buf_puts(out, "\r\n");
    if (out->oom)
        return -1;

    body->total = no_body ? 0 : total;
    body->chunked = chunked && !no_body;
    body->cut = body->total;
    if (plan->fault == RM__FAULT_CLOSE_AFTER_HEADERS)
        body->cut = 0;
    else if (plan->fault == RM__FAULT_RESET_MID_BODY)
        body->cut = body->total / 2;
    body->done = no_body;
    if (plan->counted && status >= 0 && status < RM__STATUS_SLOTS)
        srv->stats.by_status[status]++;
    return 0;
}

/*
 * Copies body bytes [from, from + n) into dst. The body is the JSON line padded with spaces
 * before its newline up to total (still one valid JSON value), or 'x' filler when total is
 * shorter than the line.
 */
static void body_bytes(const rm__body_t *body, uint64_t from, size_t n, char *dst)
{
    const rm__buf_t *line = &body->line;
    uint64_t json_len, pad_end;

    if (body->total < line->len || line->len == 0) {
        memset(dst, 'x', n);
        return;
    }
    json_len = line->len - 1; /* without the newline */
    pad_end = body->total - 1;
    while (n > 0) {
        size_t k;

        if (from < json_len) {
            k = (size_t)(json_len - from < n ? json_len - from : n);
            memcpy(dst, line->data + from, k);
        } else if (from < pad_end) {
            k = (size_t)(pad_end - from < n ? pad_end - from : n);
            memset(dst, ' ', k);
        } else {
            k = 1;
            *dst = '\n';
        }
        dst += k;
        from += k;
        n -= k;
    }
}

int rm__body_fill(rm__body_t *body, rm__buf_t *out, size_t max)
{
    size_t added = 0;

    while (!body->done && added < max) {
        uint64_t left = body->cut - body->produced;
        size_t piece;

        if (left == 0) {
            /* A cut body stops dead: no last chunk, the connection is about to go. */
            if (body->chunked && body->cut == body->total && rm__buf_puts(out, "0\r\n\r\n") < 0)
                return -1;
            body->done = 1;
            break;
        }
        piece = max - added;
        if (piece > 16384)
            piece = 16384;
        if (left < piece)
            piece = (size_t)left;
        if (body->chunked && rm__buf_printf(out, "%zx\r\n", piece) < 0)
            return -1;
        if (rm__buf_reserve(out, piece + 2) < 0)
            return -1;
        body_bytes(body, body->produced, piece, out->data + out->len);
        out->len += piece;
        if (body->chunked)
            rm__buf_append(out, "\r\n", 2);
        body->produced += piece;
        added += piece;
    }
    return out->oom ? -1 : 0;
}
