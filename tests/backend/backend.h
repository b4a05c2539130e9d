/* tests/backend/backend.h — internal types and cross-file functions of remora-test-backend. */
#ifndef REMORA_TESTS_BACKEND_BACKEND_H
#define REMORA_TESTS_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "llhttp.h"

#define RM__BACKEND_NAME "remora-test-backend"

/* Request line plus header names and values, as the SPEC's limit for the backend. */
#define RM__HEADER_BYTES_MAX ((size_t)64 * 1024)
/* Bounds the header index; 64 KiB of one-byte headers would otherwise be 16k entries. */
#define RM__HEADER_COUNT_MAX 1024
/* Socket read buffer per connection. Bodies stream through it and are only counted. */
#define RM__INBUF_SIZE ((size_t)16 * 1024)
/* Output is produced in slices of at most this much, so huge bodies never sit in memory. */
#define RM__OUT_SLICE  ((size_t)64 * 1024)
#define RM__LISTEN_MAX 16
/* llhttp 8.1 numbers its methods 0..45; room to spare for a newer header. */
#define RM__METHOD_SLOTS 64
#define RM__STATUS_SLOTS 600
/* Largest --body-bytes / x-backend-body-bytes (1 TiB): big enough for any benchmark. */
#define RM__BODY_BYTES_MAX (1ULL << 40)
/* Largest delay accepted anywhere: one day, in microseconds. */
#define RM__DELAY_US_MAX (86400ULL * 1000000ULL)
/* How long a closing connection keeps reading (and discarding) after its last response. */
#define RM__LINGER_SECONDS 2.0
/* How long reset-mid-body waits for the half body to leave the send queue before the RST. */
#define RM__ABORT_WAIT_SECONDS 1.0

/* ---- buf.c: growable byte buffer with a sticky out-of-memory flag ---- */

/*
 * A byte buffer. Appends never abort: on allocation failure they return -1 and set oom, and later
 * appends are no-ops, so a caller can build a whole message and check once at the end.
 */
typedef struct rm__buf {
    char *data; /* owns */
    size_t len;
    size_t cap;
    int oom;
} rm__buf_t;

void rm__buf_init(rm__buf_t *b);
void rm__buf_free(rm__buf_t *b);
/* Makes room for extra more bytes; returns 0 or -1 (and sets oom). */
int rm__buf_reserve(rm__buf_t *b, size_t extra);
int rm__buf_append(rm__buf_t *b, const void *p, size_t n);
int rm__buf_puts(rm__buf_t *b, const char *s);
int rm__buf_printf(rm__buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Appends s[0..n) as a JSON string with its quotes. Quotes, backslashes and control bytes are
 * escaped; bytes that are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
 */
int rm__buf_json_string(rm__buf_t *b, const char *s, size_t n);

/* ---- util.c: small parsers shared by flags and control headers ---- */

/*
 * Parses a duration "250ms", "2s", "1.5s", "1m", "100us", "1h" (or a bare "0") from s[0..n) into
 * microseconds, at most RM__DELAY_US_MAX. Returns 0, or -1 for bad syntax or range.
 * Not common/duration.h's rm_duration_parse: that one stops at milliseconds (no "us"), and test
 * delays need microseconds.
 */
int rm__duration_parse(const char *s, size_t n, uint64_t *out_us);
/* Parses a decimal unsigned integer in s[0..n) no larger than max. Returns 0 or -1. */
int rm__u64_parse(const char *s, size_t n, uint64_t max, uint64_t *out);
/* Parses a percentage "10", "2.5", "0.01" (0..100, two decimals at most) into basis points. */
int rm__percent_parse(const char *s, uint32_t *out_bp);
/*
 * Splits "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces) into NUL-terminated host and port.
 * Returns 0 or -1 when the form is wrong or a part does not fit.
 */
int rm__hostport_split(const char *s, char *host, size_t hostcap, char *port, size_t portcap);
/*
 * Whether request number seq (1-based) of a run is one of the failures when a share of bp basis
 * points fails: exactly floor(seq * bp / 10000) of the first seq requests do, spread evenly, so
 * 10% fails every 10th request.
 */
int rm__fail_select(uint64_t seq, uint32_t bp);

/* ---- request.c: one parsed request, filled by llhttp callbacks ---- */

typedef enum rm__fault {
    RM__FAULT_NONE = 0,
    RM__FAULT_RESET,               /* RST after reading the request, no response */
    RM__FAULT_CLOSE,               /* clean close without a response */
    RM__FAULT_CLOSE_AFTER_HEADERS, /* headers with Content-Length, then close */
    RM__FAULT_RESET_MID_BODY,      /* half the body, then RST */
    RM__FAULT_HANG,                /* never answer, keep the connection */
    RM__FAULT_MALFORMED,           /* an invalid status line */
    RM__FAULT_NO_READ,             /* stop reading at the end of the headers, never answer */
} rm__fault_t;

typedef struct rm__hdr {
    uint32_t name_off, name_len;   /* into rm__req_t.store */
    uint32_t value_off, value_len; /* into rm__req_t.store */
} rm__hdr_t;

/* Control headers (x-backend-*), parsed once the headers are complete. */
typedef struct rm__ctl {
    int has_delay;
    uint64_t delay_us;
    int status; /* 0 = none */
    int has_body_bytes;
    uint64_t body_bytes;
    rm__fault_t fault;
    int echo_headers;
    int chunked;
    const char *error; /* static text of the first bad control header, or NULL */
} rm__ctl_t;

/*
 * One request on a connection, reused for the next one. The parser's data pointer points here.
 * Nothing in it points into the socket buffer: spans are copied into store as they arrive.
 */
typedef struct rm__req {
    rm__buf_t store; /* owns: the URL, then header names and values back to back */
    rm__hdr_t *hdrs; /* owns: nhdrs entries */
    uint32_t nhdrs, hdrs_cap;
    uint32_t url_len; /* the URL is store.data[0..url_len) */
    size_t header_bytes;
    uint64_t body_bytes;
    int started;      /* on_message_begin seen, response not finished */
    int in_field;     /* inside a header name */
    int headers_done; /* later header callbacks are trailers, ignored */
    int complete;     /* on_message_complete seen (parser paused after it) */
    int no_read;      /* parser paused at the end of the headers for the no-read fault */
    int admin;        /* the path is under /__backend/ */
    int method;       /* llhttp_method_t */
    int http_major, http_minor;
    int keep_alive;
    int upgrade;
    int expect_continue;
    int err_status; /* 431 when a limit was hit inside a callback, else 0 */
    rm__ctl_t ctl;
} rm__req_t;

/* Callbacks for llhttp_init; each expects parser->data to be an rm__req_t. Any thread. */
const llhttp_settings_t *rm__req_settings(void);
void rm__req_init(rm__req_t *r);
void rm__req_free(rm__req_t *r);
/* Forgets the last request but keeps its allocations (small ones) for the next. */
void rm__req_reset(rm__req_t *r);
/* First header named name (case-insensitive); *len gets the value's length. NULL if absent. */
const char *rm__req_header(const rm__req_t *r, const char *name, size_t *len);
/* The path part of the URL (before '?'), with its length. */
const char *rm__req_path(const rm__req_t *r, size_t *len);

/* ---- stats.c: counters ---- */

typedef struct rm__stats {
    uint64_t requests; /* every counted request, answered or not */
    uint64_t by_status[RM__STATUS_SLOTS];
    uint64_t by_method[RM__METHOD_SLOTS];
    uint64_t connections; /* accepted since start */
    uint64_t active;      /* open now */
    uint64_t faults;      /* requests that asked for a fault */
    uint64_t fail_seq;    /* requests subject to --fail-rate so far */
} rm__stats_t;

/* Appends the /__backend/stats JSON line (with its newline) to out. */
void rm__stats_json(const rm__stats_t *st, rm__buf_t *out);

/* ---- handler.c: what to do with a request, and the response bytes ---- */

typedef struct rm__config {
    const char *listen[RM__LISTEN_MAX]; /* borrowed from argv */
    int nlisten;
    const char *service;  /* borrowed */
    const char *version;  /* borrowed */
    const char *instance; /* borrowed (argv or main's buffer) */
    uint64_t delay_us;
    int status;
    uint32_t fail_rate_bp;
    int fail_status;
    int has_body_bytes;
    uint64_t body_bytes;
    unsigned drain_seconds;
    unsigned close_after;
    int chunked;
    int quiet;
} rm__config_t;

typedef enum rm__kind {
    RM__KIND_APP = 0, /* the identity response */
    RM__KIND_STATS,
    RM__KIND_READY,
    RM__KIND_ERROR, /* {"error": ...} with plan.error */
} rm__kind_t;

typedef struct rm__plan {
    rm__kind_t kind;
    int counted; /* counts toward by_status when its response starts */
    int status;
    uint64_t delay_us;
    rm__fault_t fault;
    int close;         /* the request itself demands close (error, HTTP/1.0, upgrade) */
    const char *error; /* static text for RM__KIND_ERROR */
} rm__plan_t;

/* The body of one response, produced slice by slice into the output buffer. */
typedef struct rm__body {
    rm__buf_t line; /* owns: the JSON line the body is made from */
    uint64_t total; /* body length announced */
    uint64_t cut;   /* produce only this many bytes (< total for the body faults) */
    uint64_t produced;
    int chunked;
    int done;
} rm__body_t;

/* Shared state of one server. The event loop thread owns all of it. */
typedef struct rm__server {
    struct ev_loop *loop; /* borrowed */
    rm__config_t cfg;
    rm__stats_t stats;
    int draining;
    int nlisten;
    int listen_fd[RM__LISTEN_MAX];
    ev_io listen_io[RM__LISTEN_MAX];
    ev_timer accept_pause;
    ev_timer drain_timer;
    ev_signal sig_term, sig_int;
    ev_prepare reaper;
    struct rm__conn *conns; /* owns: every open connection */
    struct rm__conn *reap;  /* owns: closed connections waiting to be freed */
} rm__server_t;

/*
 * Decides the response to a complete request (or one paused for no-read) and counts it. Requests
 * under /__backend/ are not counted. Any input is accepted; the plan borrows nothing. Loop thread.
 */
void rm__plan_make(rm__server_t *srv, const rm__req_t *req, rm__plan_t *plan);
/* A plan for a request the parser rejected (status 400 or 431), counted; the connection closes. */
void rm__plan_error(rm__server_t *srv, rm__plan_t *plan, int status, const char *error);
/*
 * Appends the status line and headers of plan's response to out and sets up body (which it resets
 * first; the caller owns both). closing adds "connection: close". Counts by_status. Returns 0 or
 * -1 when memory ran out. Loop thread.
 */
int rm__response_start(rm__server_t *srv, const rm__req_t *req, const rm__plan_t *plan, int closing,
                       rm__buf_t *out, rm__body_t *body);
/*
 * Appends up to about max bytes of body (chunk framing included) to out; sets body->done after the
 * last byte (and the last chunk when the body is not cut). Returns 0 or -1 on out of memory.
 */
int rm__body_fill(rm__body_t *body, rm__buf_t *out, size_t max);
void rm__body_init(rm__body_t *body);
void rm__body_free(rm__body_t *body);
/* Parses an x-backend-fault value; -1 when unknown. */
int rm__fault_parse(const char *s, size_t n, rm__fault_t *out);

/* ---- conn.c / server.c ---- */

typedef enum rm__conn_state {
    RM__CONN_READ = 0, /* parsing; idle or inside a request */
    RM__CONN_DELAY,    /* request complete, waiting for its delay */
    RM__CONN_WRITE,    /* writing a response */
    RM__CONN_HANG,     /* hang fault: never answer, close when the peer does */
    RM__CONN_NOREAD,   /* no-read fault: nothing happens any more */
    RM__CONN_LINGER,   /* write side shut; discarding input until EOF or timeout */
    RM__CONN_ABORT,    /* reset-mid-body: waiting for the send queue to empty, then RST */
    RM__CONN_CLOSED,
} rm__conn_state_t;

typedef enum rm__after {
    RM__AFTER_KEEP = 0, /* next request */
    RM__AFTER_CLOSE,    /* FIN, then linger */
    RM__AFTER_RESET,    /* RST once the bytes are out */
} rm__after_t;

typedef struct rm__conn {
    ev_io rio, wio;
    ev_timer timer; /* delay, linger and abort deadlines (one at a time) */
    int fd;
    rm__server_t *srv; /* borrowed */
    rm__conn_state_t state;
    llhttp_t parser;
    rm__req_t req;
    rm__plan_t plan;
    char *in; /* owns: RM__INBUF_SIZE bytes; unparsed input is in[in_off..in_len) */
    size_t in_off, in_len;
    rm__buf_t out; /* owns: bytes to send are out.data[out_off..out.len) */
    size_t out_off;
    rm__body_t body;
    rm__after_t after;
    unsigned responses;
    int peer_eof;
    int continue_sent;
    ev_tstamp abort_deadline;
    struct rm__conn *next, *prev; /* links in srv->conns, or next in srv->reap */
} rm__conn_t;

/* Takes ownership of an accepted non-blocking socket; closes it on failure. Loop thread. */
void rm__conn_accept(rm__server_t *srv, int fd);
/* Closes now (FIN, or RST if unread input) and queues the memory for the reaper. Loop thread. */
void rm__conn_close(rm__conn_t *c);
/* Whether the connection has a request in progress (partial input, delay, response, fault). */
int rm__conn_busy(const rm__conn_t *c);
/* Frees a connection already closed. Loop thread. */
void rm__conn_free(rm__conn_t *c);

/*
 * Binds every --listen address, installs the signal and reaper watchers on loop. Returns 0, or -1
 * after printing one line naming the address that failed. srv->cfg must be filled. Main thread.
 */
int rm__server_start(rm__server_t *srv, struct ev_loop *loop);
/* Closes the listeners and starts the drain (SIGTERM does this). Loop thread. */
void rm__server_drain(rm__server_t *srv);
/* Closes every connection and frees them; after ev_run returns. Main thread. */
void rm__server_stop(rm__server_t *srv);

#endif /* REMORA_TESTS_BACKEND_BACKEND_H */
