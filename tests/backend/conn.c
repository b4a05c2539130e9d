/* tests/backend/conn.c — one client connection: read, parse, delay, answer, fault, close. */
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/backend/backend.h"

#define CONN_OF(ptr, field) ((rm__conn_t *)(void *)((char *)(ptr)-offsetof(rm__conn_t, field)))

static void process(rm__conn_t *c);

/*
 * Reads only while there is room and something will use the bytes: pipelined requests wait in
 * the kernel once the buffer is full, which is the backpressure a slow response needs.
 */
static void update_read(rm__conn_t *c)
{
    struct ev_loop *loop = c->srv->loop;
    int want = 0;

    switch (c->state) {
    case RM__CONN_READ:
    case RM__CONN_DELAY:
    case RM__CONN_WRITE:
    case RM__CONN_HANG:
        want = !c->peer_eof && (c->in_len < RM__INBUF_SIZE || c->in_off > 0);
        break;
    case RM__CONN_LINGER:
        want = !c->peer_eof;
        break;
    default:
        want = 0;
    }
    if (want && !ev_is_active(&c->rio))
        ev_io_start(loop, &c->rio);
    else if (!want && ev_is_active(&c->rio))
        ev_io_stop(loop, &c->rio);
}

void rm__conn_close(rm__conn_t *c)
{
    rm__server_t *srv = c->srv;

    if (c->state == RM__CONN_CLOSED)
        return;
    ev_io_stop(srv->loop, &c->rio);
    ev_io_stop(srv->loop, &c->wio);
    ev_timer_stop(srv->loop, &c->timer);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = RM__CONN_CLOSED;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->stats.active--;
    /* Freed by the reaper before the loop sleeps, so no caller up the stack sees freed memory. */
    c->prev = NULL;
    c->next = srv->reap;
    srv->reap = c;
}

/* RST: SO_LINGER with a zero timeout makes close() abort the connection. */
static void conn_abort(rm__conn_t *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    rm__conn_close(c);
}

/*
 * Closes cleanly: FIN after everything sent, then keeps reading (and dropping) what the client
 * still sends, because closing with unread input would RST and could destroy the response in
 * the client's receive buffer.
 */
static void start_linger(rm__conn_t *c)
{
    if (c->peer_eof) {
        rm__conn_close(c);
        return;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = RM__CONN_LINGER;
    c->in_off = c->in_len = 0;
    ev_timer_stop(c->srv->loop, &c->timer);
    ev_timer_set(&c->timer, RM__LINGER_SECONDS, 0.);
    ev_timer_start(c->srv->loop, &c->timer);
    update_read(c);
}

/* reset-mid-body: an RST discards unsent bytes, so wait until the half body has left. */
static void check_abort(rm__conn_t *c)
{
    int pending = 0;

    if (ioctl(c->fd, SIOCOUTQ, &pending) < 0 || pending == 0 ||
        ev_now(c->srv->loop) >= c->abort_deadline) {
        conn_abort(c);
        return;
    }
    ev_timer_set(&c->timer, 0.002, 0.);
    ev_timer_start(c->srv->loop, &c->timer);
}

static void start_abort(rm__conn_t *c)
{
    c->state = RM__CONN_ABORT;
    c->abort_deadline = ev_now(c->srv->loop) + RM__ABORT_WAIT_SECONDS;
    update_read(c);
    check_abort(c);
}

static void response_done(rm__conn_t *c)
{
    c->responses++;
    /* A big response's buffers go back now rather than staying with an idle connection. */
    if (c->out.cap > 16384)
        rm__buf_free(&c->out);
    if (c->body.line.cap > 16384)
        rm__buf_free(&c->body.line);
    c->out.len = c->out_off = 0;
    switch (c->after) {
    case RM__AFTER_KEEP:
        c->state = RM__CONN_READ;
        c->req.started = 0;
        c->req.complete = 0;
        c->continue_sent = 0;
        return; /* the caller goes on with the next buffered request */
    case RM__AFTER_CLOSE:
        start_linger(c);
        return;
    case RM__AFTER_RESET:
        start_abort(c);
        return;
    }
}

/* Sends what is queued, producing body slices as the buffer empties. */
static void flush(rm__conn_t *c)
{
    struct ev_loop *loop = c->srv->loop;

    for (;;) {
        ssize_t n;

        if (c->out_off == c->out.len) {
            c->out.len = c->out_off = 0;
            if (c->state == RM__CONN_WRITE && !c->body.done) {
                if (rm__body_fill(&c->body, &c->out, RM__OUT_SLICE) < 0) {
                    conn_abort(c);
                    return;
                }
                continue;
            }
            break;
        }
        n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!ev_is_active(&c->wio))
                    ev_io_start(loop, &c->wio);
                return;
            }
            rm__conn_close(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    if (ev_is_active(&c->wio))
        ev_io_stop(loop, &c->wio);
    if (c->state == RM__CONN_WRITE)
        response_done(c);
}

/* Runs the plan once any delay is over. */
static void execute(rm__conn_t *c)
{
    rm__server_t *srv = c->srv;
    int closing;

    switch (c->plan.fault) {
    case RM__FAULT_RESET:
        conn_abort(c);
        return;
    case RM__FAULT_CLOSE:
        start_linger(c);
        return;
    case RM__FAULT_HANG:
        c->state = RM__CONN_HANG;
        update_read(c);
        return;
    case RM__FAULT_MALFORMED:
        rm__buf_puts(&c->out, "HTTP/1.1 abc Malformed\r\ncontent-length: 0\r\n\r\n");
        if (c->out.oom) {
            conn_abort(c);
            return;
        }
        c->body.done = 1;
        c->after = RM__AFTER_CLOSE;
        break;
    default:
        closing = c->plan.close || srv->draining ||
                  (srv->cfg.close_after > 0 && c->responses + 1 >= srv->cfg.close_after);
        if (rm__response_start(srv, &c->req, &c->plan, closing, &c->out, &c->body) < 0) {
            conn_abort(c);
            return;
        }
        if (c->plan.fault == RM__FAULT_RESET_MID_BODY)
            c->after = RM__AFTER_RESET;
        else if (closing || c->plan.fault == RM__FAULT_CLOSE_AFTER_HEADERS)
            c->after = RM__AFTER_CLOSE;
        else
            c->after = RM__AFTER_KEEP;
    }
    c->state = RM__CONN_WRITE;
    flush(c);
}

static void dispatch(rm__conn_t *c)
{
    struct ev_loop *loop = c->srv->loop;

    rm__plan_make(c->srv, &c->req, &c->plan);
    if (c->plan.delay_us > 0) {
        c->state = RM__CONN_DELAY;
        /* Measure from now, not from the loop's cached time, so the delay is never short. */
        ev_now_update(loop);
        ev_timer_set(&c->timer, (double)c->plan.delay_us / 1e6, 0.);
        ev_timer_start(loop, &c->timer);
        update_read(c);
        return;
    }
    execute(c);
}

static void bad_request(rm__conn_t *c, llhttp_errno_t e)
{
    int status = c->req.err_status ? c->req.err_status : 400;
    const char *why = llhttp_get_error_reason(&c->parser);

    /* The reason is a static string inside llhttp or ours; the parser lives as long as c. */
    if (why == NULL || why[0] == '\0')
        why = llhttp_errno_name(e);
    rm__plan_error(c->srv, &c->plan, status, why);
    if (rm__response_start(c->srv, &c->req, &c->plan, 1, &c->out, &c->body) < 0) {
        conn_abort(c);
        return;
    }
    c->after = RM__AFTER_CLOSE;
    c->state = RM__CONN_WRITE;
    flush(c);
}

/* Answers "Expect: 100-continue" once the headers are in and the body is still to come. */
static void maybe_continue(rm__conn_t *c)
{
    if (!c->req.headers_done || c->req.complete || !c->req.expect_continue || c->continue_sent)
        return;
    c->continue_sent = 1;
    rm__buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    if (c->out.oom) {
        conn_abort(c);
        return;
    }
    flush(c);
}

/* Parses buffered input, one request at a time, while the connection is free to answer. */
static void process(rm__conn_t *c)
{
    while (c->state == RM__CONN_READ && c->in_off < c->in_len) {
        const char *start = c->in + c->in_off;
        llhttp_errno_t e = llhttp_execute(&c->parser, start, c->in_len - c->in_off);

        if (e == HPE_OK) {
            c->in_off = c->in_len = 0;
            maybe_continue(c);
            break;
        }
        if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
            c->in_off = (size_t)(llhttp_get_error_pos(&c->parser) - c->in);
            if (e == HPE_PAUSED)
                llhttp_resume(&c->parser);
            if (c->req.no_read) {
                /* no-read: count it, then never touch the socket again. */
                rm__plan_make(c->srv, &c->req, &c->plan);
                c->state = RM__CONN_NOREAD;
                break;
            }
            if (c->req.complete) {
                /* An upgrade is answered as a plain request, then the connection closes. */
                dispatch(c);
                continue;
            }
        }
        bad_request(c, e);
        return;
    }
    if (c->state == RM__CONN_READ) {
        if (c->in_off == c->in_len)
            c->in_off = c->in_len = 0;
        if (c->peer_eof) {
            rm__conn_close(c);
            return;
        }
    }
    update_read(c);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    rm__conn_t *c = CONN_OF(w, rio);
    ssize_t n;

    (void)loop;
    (void)revents;
    if (c->state == RM__CONN_LINGER) {
        char junk[4096];

        for (int i = 0; i < 16; i++) {
            n = recv(c->fd, junk, sizeof(junk), 0);
            if (n > 0)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
            rm__conn_close(c);
            return;
        }
        return;
    }
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_len == RM__INBUF_SIZE) {
        update_read(c);
        return;
    }
    n = recv(c->fd, c->in + c->in_len, RM__INBUF_SIZE - c->in_len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        rm__conn_close(c);
        return;
    }
    if (n == 0) {
        c->peer_eof = 1;
        /* A delayed or half-sent response still goes out to a half-closed client. */
        if (c->state == RM__CONN_READ || c->state == RM__CONN_HANG) {
            rm__conn_close(c);
            return;
        }
        update_read(c);
        return;
    }
    c->in_len += (size_t)n;
    if (c->state == RM__CONN_READ)
        process(c);
    else
        update_read(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    rm__conn_t *c = CONN_OF(w, wio);

    (void)loop;
    (void)revents;
    flush(c);
    if (c->state == RM__CONN_READ)
        process(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    rm__conn_t *c = CONN_OF(w, timer);

    (void)loop;
    (void)revents;
    switch (c->state) {
    case RM__CONN_DELAY:
        execute(c);
        if (c->state == RM__CONN_READ)
            process(c);
        break;
    case RM__CONN_LINGER:
        rm__conn_close(c);
        break;
    case RM__CONN_ABORT:
        check_abort(c);
        break;
    default:
        break;
    }
}

int rm__conn_busy(const rm__conn_t *c)
{
    return c->state != RM__CONN_READ || c->req.started || c->out_off < c->out.len;
}

void rm__conn_accept(rm__server_t *srv, int fd)
{
    rm__conn_t *c;
    int one = 1;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    c->in = malloc(RM__INBUF_SIZE);
    if (c->in == NULL)
        goto fail_conn;
    c->fd = fd;
    c->srv = srv;
    c->state = RM__CONN_READ;
    rm__req_init(&c->req);
    rm__buf_init(&c->out);
    rm__body_init(&c->body);
    c->body.done = 1;
    llhttp_init(&c->parser, HTTP_REQUEST, rm__req_settings());
    c->parser.data = &c->req; /* after llhttp_init, which clears the struct */
    /* Responses go out in one write; Nagle would only add latency to the next one. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_timer_init(&c->timer, on_timer, 0., 0.);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->stats.connections++;
    srv->stats.active++;
    ev_io_start(srv->loop, &c->rio);
    return;

fail_conn:
    free(c);
fail:
    close(fd);
}

void rm__conn_free(rm__conn_t *c)
{
    rm__req_free(&c->req);
    rm__buf_free(&c->out);
    rm__body_free(&c->body);
    free(c->in);
    free(c);
}
