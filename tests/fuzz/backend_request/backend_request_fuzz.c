/* tests/fuzz/backend_request/backend_request_fuzz.c — libFuzzer driver for the test backend's
 * request path: bytes are parsed as pipelined requests (split where the first byte says), each
 * complete request is planned and answered into a buffer, and the small parsers get the bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/backend/backend.h"

/* Answers one parsed request the way the connection would, keeping only a bounded body. */
static void answer(rm__server_t *srv, const rm__req_t *req, int closing)
{
    rm__plan_t plan;
    rm__buf_t out;
    rm__body_t body;

    rm__plan_make(srv, req, &plan);
    rm__buf_init(&out);
    rm__body_init(&body);
    if (rm__response_start(srv, req, &plan, closing, &out, &body) == 0) {
        /* A body may be up to 1 TiB: produce a few slices, which covers every code path. */
        for (int i = 0; i < 3 && !body.done; i++) {
            out.len = 0;
            if (rm__body_fill(&body, &out, RM__OUT_SLICE) < 0)
                abort();
            if (body.produced > body.cut)
                abort();
        }
    }
    rm__body_free(&body);
    rm__buf_free(&out);
}

static void small_parsers(const uint8_t *data, size_t size)
{
    char s[64];
    size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
    char h[64], p[8];
    uint64_t u;
    uint32_t bp;
    rm__fault_t f;
    rm__buf_t b;

    memcpy(s, data, n);
    s[n] = '\0';
    if (rm__duration_parse(s, n, &u) == 0 && u > RM__DELAY_US_MAX)
        abort();
    if (rm__percent_parse(s, &bp) == 0 && bp > 10000)
        abort();
    if (rm__u64_parse(s, n, 599, &u) == 0 && u > 599)
        abort();
    rm__hostport_split(s, h, sizeof(h), p, sizeof(p));
    rm__fault_parse(s, n, &f);
    rm__buf_init(&b);
    rm__buf_json_string(&b, (const char *)data, size);
    rm__buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rm__server_t srv;
    llhttp_t parser;
    rm__req_t req;
    size_t split, off = 0;
    const char *in;
    int guard = 0;

    if (size == 0)
        return 0;
    small_parsers(data, size);
    memset(&srv, 0, sizeof(srv));
    srv.cfg.service = "svc";
    srv.cfg.version = "v1";
    srv.cfg.instance = "fuzz";
    srv.cfg.status = 200;
    srv.cfg.fail_status = 503;
    srv.cfg.fail_rate_bp = 1000;
    srv.draining = data[0] & 1;
    split = data[0] % 17;
    in = (const char *)data + 1;
    size--;

    rm__req_init(&req);
    llhttp_init(&parser, HTTP_REQUEST, rm__req_settings());
    parser.data = &req;
    /* Feed in pieces of `split` bytes (0 = all at once) to cross every callback boundary. */
    while (off < size && guard++ < 100000) {
        size_t n = split ? (size - off < split ? size - off : split) : size - off;
        llhttp_errno_t e = llhttp_execute(&parser, in + off, n);

        if (e == HPE_OK) {
            off += n;
            continue;
        }
        if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
            const char *pos = llhttp_get_error_pos(&parser);

            if (pos < in + off || pos > in + off + n)
                abort();
            off = (size_t)(pos - in);
            if (e == HPE_PAUSED)
                llhttp_resume(&parser);
            if (req.no_read) {
                rm__plan_t plan;

                rm__plan_make(&srv, &req, &plan);
                break;
            }
            if (req.complete) {
                answer(&srv, &req, !req.keep_alive);
                if (!req.keep_alive || req.upgrade)
                    break;
                req.started = 0;
                req.complete = 0;
                continue;
            }
        }
        /* A parse error: the 400/431 answer, then the connection would close. */
        {
            rm__plan_t plan;
            rm__buf_t out;
            rm__body_t body;

            rm__plan_error(&srv, &plan, req.err_status ? req.err_status : 400, "bad request");
            rm__buf_init(&out);
            rm__body_init(&body);
            rm__response_start(&srv, &req, &plan, 1, &out, &body);
            rm__body_free(&body);
            rm__buf_free(&out);
        }
        break;
    }
    rm__req_free(&req);
    return 0;
}
