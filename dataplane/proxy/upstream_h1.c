/* dataplane/proxy/upstream_h1.c — HTTP/1 on an upstream connection: the exchange's upstream codec
 * ops (proxy-t.h) over the codec's client side (dataplane/codec/h1_client.h). */
#include "dataplane/codec/h1_client.h"
#include "dataplane/proxy/upstream.h"

/* Stop moving bytes into the connection's output holding this much. */
#define UPSTREAM_HIGH_WATER ((size_t)64 * 1024)

static int h1_write_head(rm_upconn_t *c, const rm_request_head_t *h, const rm_field_edit_t *edit)
{
    return rm_h1_client_write_head(&c->h1, h, edit);
}

static int h1_write_data(rm_upconn_t *c, const char *p, size_t n)
{
    return rm_h1_client_write_data(&c->h1, p, n);
}

static int h1_write_end(rm_upconn_t *c)
{
    return rm_h1_client_write_end(&c->h1);
}

static size_t h1_write_room(const rm_upconn_t *c)
{
    return rm_h1_client_write_room(&c->h1, UPSTREAM_HIGH_WATER);
}

static int h1_read_head(rm_upconn_t *c, rm_response_head_t *h)
{
    return rm_h1_client_read_head(&c->h1, h);
}

static void h1_head_done(rm_upconn_t *c)
{
    rm_h1_client_head_done(&c->h1);
}

static rm_body_event_t h1_body_next(rm_upconn_t *c, size_t room, rm_span_t *data)
{
    return rm_h1_client_body_next(&c->h1, room, data);
}

static void h1_body_consume(rm_upconn_t *c)
{
    rm_h1_client_body_consume(&c->h1);
}

static bool h1_ends_at_close(const rm_upconn_t *c)
{
    return rm_h1_client_ends_at_close(&c->h1);
}

static bool h1_reusable(const rm_upconn_t *c)
{
    return rm_h1_client_reusable(&c->h1);
}

static void h1_tunnel(rm_upconn_t *c)
{
    rm_h1_client_tunnel(&c->h1);
}

const rm_upstream_codec_ops_t rm_upstream_codec_h1 = {
    .write_head = h1_write_head,
    .write_data = h1_write_data,
    .write_end = h1_write_end,
    .write_room = h1_write_room,
    .read_head = h1_read_head,
    .head_done = h1_head_done,
    .body_next = h1_body_next,
    .body_consume = h1_body_consume,
    .ends_at_close = h1_ends_at_close,
    .reusable = h1_reusable,
    .tunnel = h1_tunnel,
};
