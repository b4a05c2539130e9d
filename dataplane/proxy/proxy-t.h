/* dataplane/proxy/proxy-t.h — the types of remora-proxy's data path (types only; functions live in
 * the per-concept headers). Read this file first: it is the map of who owns what.
 *
 *   rm_proxy_t        the process: options, the stats registry, the workers
 *   rm_worker_t       one thread with one libev loop; owns its listeners, sessions, upstreams
 *   rm_session_t      one downstream connection (app -> outbound, peer sidecar -> inbound, admin)
 *   rm_exchange_t     one request/response on a session; holds a snapshot reference
 *   rm_upstream_t     runtime state of one endpoint address (pool, load, ejection); per worker,
 *                     survives snapshot swaps
 *   rm_upconn_t       one connection to an upstream; in an exchange or idle in its pool
 *
 * Everything below rm_worker_t belongs to that worker's loop thread and is touched by no other
 * thread. Cross-thread hand-offs (new snapshot, drain) go through ev_async.
 */
#ifndef REMORA_DATAPLANE_PROXY_PROXY_T_H
#define REMORA_DATAPLANE_PROXY_PROXY_T_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/stats/stats.h"
#include "dataplane/buffer/buffer.h"
#include "dataplane/buffer/cache_level.h"
#include "dataplane/codec/h1_client.h"
#include "dataplane/codec/h1_server.h"
#include "dataplane/http1/http1.h"
#include "dataplane/message/message-t.h"
#include "dataplane/policy/limits.h"
#include "dataplane/policy/outlier.h"
#include "dataplane/route/route.h"
#include "dataplane/snapshot/snapshot.h"
#include "dataplane/transport/transport-t.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Intrusive doubly linked list. */
typedef struct rm_list {
    struct rm_list *prev, *next;
} rm_list_t;

typedef enum rm_listener_kind {
    RM_LISTENER_OUTBOUND = 0,
    RM_LISTENER_INBOUND = 1,
    RM_LISTENER_ADMIN = 2,
} rm_listener_kind_t;

typedef struct rm_proxy_options {
    const char *config_path; /* --config; borrowed from argv */
    const char *control_plane;
    const char *service, *version, *pod, *namespace, *pod_ip;
    const char *egress; /* --egress / $REMORA_EGRESS: the services this sidecar calls; NULL: all */
    const char *listen_host; /* address the three listeners bind (--bind; default 0.0.0.0) */
    const char *access_log;
    int outbound_port, inbound_port, admin_port, app_port;
    int workers;
    uint64_t connect_timeout_ms;       /* upstream connect */
    uint64_t request_timeout_ms;       /* default route timeout */
    uint64_t header_timeout_ms;        /* client must send a whole head in this time: 408 */
    uint64_t idle_timeout_ms;          /* downstream keep-alive idle */
    uint64_t upstream_idle_timeout_ms; /* pooled upstream connection idle */
    uint64_t drain_grace_ms;           /* keep accepting after drain starts (propagation) */
    uint64_t drain_deadline_ms;        /* exit at the latest this long after drain starts */
    size_t max_head_bytes;
    size_t max_headers;
    size_t buffer_limit;     /* per direction per connection */
    size_t retry_body_limit; /* request bodies kept for replay */
    int max_connections;     /* downstream connections per worker */
} rm_proxy_options_t;

typedef struct rm_proxy rm_proxy_t;
typedef struct rm_worker rm_worker_t;
typedef struct rm_session rm_session_t;
typedef struct rm_exchange rm_exchange_t;
typedef struct rm_upstream rm_upstream_t;
typedef struct rm_upconn rm_upconn_t;
typedef struct rm_shadow rm_shadow_t;
typedef struct rm_upstream_codec_ops rm_upstream_codec_ops_t;

typedef struct rm_listener {
    ev_io io;
    int fd;
    rm_listener_kind_t kind;
    rm_worker_t *worker; /* borrowed */
} rm_listener_t;

typedef struct rm_upstream {
    uint64_t key;                 /* hash of the address string */
    struct sockaddr_storage addr; /* where to connect */
    socklen_t addrlen;
    char address[64]; /* printable, for logs and stats */
    int active;       /* requests in flight to it from this worker */
    rm_list_t idle;   /* rm_upconn_t.link, most recently used first */
    int idle_count;
    rm_outlier_state_t outlier; /* consecutive errors and ejection (dataplane/policy) */
    uint64_t generation_seen;   /* last snapshot generation that listed it (for GC) */
    bool from_snapshot;         /* an endpoint of a Service, not a raw address */
    struct rm_upstream *hnext;  /* hash chain */
} rm_upstream_t;

/* Who uses an upstream connection, and how it hears what happens on it: the pool does not know
 * whether an exchange or a shadow copy holds a connection, it calls its owner through this table.
 * Every callback may close the connection. */
typedef struct rm_upconn_owner_ops {
    /* The connection is up and readable and/or writable (revents: EV_READ | EV_WRITE). */
    void (*on_io)(void *owner, int revents);
    /* Connecting failed: refused, unreachable, or the connect timeout (-ETIMEDOUT). Nothing was
     * sent. */
    void (*on_connect_failed)(void *owner, int err);
    /* Whether the owner reads now (back-pressure towards its own client). */
    bool (*wants_read)(const void *owner);
    /* n bytes of the owner's request left the connection's buffer outside its callbacks (the
     * optimistic write in rm_upconn_update_events). NULL when the owner does not count them. */
    void (*on_sent)(void *owner, size_t n);
    /* A new connection is about to be opened for the owner (no pooled one was free): NULL to go
     * ahead, or the name of the limit that refuses it (circuit breaking). NULL: always allowed. */
    const char *(*may_connect)(void *owner);
} rm_upconn_owner_ops_t;

typedef struct rm_upconn {
    ev_io io;
    ev_timer timer;                         /* connect timeout, then idle timeout while pooled */
    rm_conn_t conn;                         /* owned: the socket and its transport */
    rm_upstream_t *up;                      /* borrowed: upstreams outlive their connections */
    const rm_upconn_owner_ops_t *owner_ops; /* the owner's callbacks; NULL while pooled */
    const rm_upstream_codec_ops_t *codec;   /* the protocol spoken on it */
    rm_h1_client_t h1;                      /* the HTTP/1 codec's state */
    void *owner;                            /* borrowed: who uses it (an exchange, a shadow) */
    rm_worker_t *worker;
    rm_list_t link;       /* in up->idle while idle */
    ev_tstamp idle_since; /* loop time it went back to the pool */
    rm_buf_t in, out;     /* owned */
    bool connected;
    bool reused;            /* served a previous request */
    bool peek_before_reuse; /* its last response had no body: look for stray bytes first */
    int requests;           /* served on this connection */
} rm_upconn_t;

typedef enum rm_exchange_phase {
    RM_EX_ROUTING = 0, /* head parsed, choosing a destination */
    RM_EX_CONNECTING,  /* waiting for an upstream connection */
    RM_EX_FORWARDING,  /* request going up, response coming down */
    RM_EX_TUNNEL,      /* after an upgrade (101, CONNECT): raw bytes both ways */
    RM_EX_DONE,
} rm_exchange_phase_t;

/* The exchange's side of its downstream: how it reads the request body and writes the response
 * without knowing the protocol (a codec behind a session implements it: HTTP/1 today). The
 * calls that can end the exchange (reply, finished, abort) free it: the caller must not touch
 * the exchange afterwards (rm_exchange_* callers check ex->finished or the session's closing). */
typedef struct rm_downstream rm_downstream_t;
typedef struct rm_downstream_ops {
    /* The request body: the next span of at most `room` decoded bytes, and its consumption
     * (message-t.h's rm_body_event_t). In a tunnel, raw bytes. */
    rm_body_event_t (*body_next)(rm_downstream_t *d, size_t room, rm_span_t *data);
    void (*body_consume)(rm_downstream_t *d);
    /* The response: head (interim ones too), body bytes, the end. close: the connection must not
     * carry another request after this one. 0 or a negative error. */
    int (*write_head)(rm_downstream_t *d, const rm_response_head_t *h, const rm_field_edit_t *edit,
                      bool close);
    int (*write_data)(rm_downstream_t *d, const char *p, size_t n);
    int (*write_end)(rm_downstream_t *d);
    /* Response body bytes write_data may take now (back-pressure). */
    size_t (*write_room)(const rm_downstream_t *d);
    /* A whole response of the proxy's own (errors, overload, drain). */
    void (*reply)(rm_downstream_t *d, int status, const rm_field_t *extra, size_t nextra,
                  const char *body, size_t len, bool close);
    /* Bytes moved: flush what can be written and re-arm the downstream's I/O and timer. */
    void (*update)(rm_downstream_t *d);
    /* The response is queued whole: the exchange is retired; the downstream goes on. */
    void (*finished)(rm_downstream_t *d);
    /* Nothing more can be said (a cut response, a client gone): close the connection. */
    void (*abort)(rm_downstream_t *d);
} rm_downstream_ops_t;

struct rm_downstream {
    const rm_downstream_ops_t *ops;
    rm_session_t *session; /* borrowed: the connection it belongs to */
};

/* The exchange's side of an upstream connection's protocol (a codec: HTTP/1 today). */
struct rm_upstream_codec_ops {
    /* The request: head (with the exchange's field edits), body bytes, its end. */
    int (*write_head)(rm_upconn_t *c, const rm_request_head_t *h, const rm_field_edit_t *edit);
    int (*write_data)(rm_upconn_t *c, const char *p, size_t n);
    int (*write_end)(rm_upconn_t *c);
    size_t (*write_room)(const rm_upconn_t *c);
    /* The response head: 1 with *h filled (valid until head_done), 0 for more bytes, < 0 when
     * malformed. Interim heads come first, each followed by head_done. */
    int (*read_head)(rm_upconn_t *c, rm_response_head_t *h);
    void (*head_done)(rm_upconn_t *c);
    /* The response body, as rm_downstream_ops_t's body_next/body_consume. */
    rm_body_event_t (*body_next)(rm_upconn_t *c, size_t room, rm_span_t *data);
    void (*body_consume)(rm_upconn_t *c);
    /* The response's body ends when the upstream closes (until close, a tunnel). */
    bool (*ends_at_close)(const rm_upconn_t *c);
    /* The connection can carry another request. */
    bool (*reusable)(const rm_upconn_t *c);
    /* From now on raw bytes both ways (a passthrough tunnel from the first byte). */
    void (*tunnel)(rm_upconn_t *c);
};

typedef struct rm_exchange {
    rm_session_t *session;   /* borrowed: the connection the request came on (its facts: worker,
                                listener kind, peer, original destination) */
    rm_downstream_t *down;   /* borrowed: how to read the request and answer it */
    rm_snapshot_t *snap;     /* one reference, held for the whole exchange */
    const rm_service_t *svc; /* borrowed from snap; NULL for passthrough/local */
    rm_route_decision_t decision;
    rm_exchange_phase_t phase;
    ev_tstamp deadline; /* request timeout (route timeout), kept by the session's timer; 0: none */
    rm_list_t link;     /* in worker->dead_exchanges once retired */
    bool finished;      /* retired: freed by the reaper, must not be driven any more */
    bool client_close;  /* the client half-closed after its request */
    int local_status;   /* routing answered locally (404, 503...) with local_reason */
    const char *local_reason;
    uint64_t timeout_ms;    /* the rule's timeout, 0 for the proxy default */
    size_t bytes_sent;      /* request bytes written to the current upstream connection */
    bool raw_tcp;           /* a TCP tunnel from the first byte (transparent, not a mesh service) */
    bool passthrough;       /* no service matched a transparently redirected request: forward it
                               to its original destination unchanged */
    uint64_t tried_keys[8]; /* endpoints tried by earlier attempts (a retry avoids them) */
    int retries;            /* retries taken so far */
    bool retry_reserved;    /* holds circuit-breaker room for a retry in flight */
    bool replay_overflow;   /* the body outgrew the replay buffer: ambiguous failures are final */
    rm_buf_t replay;        /* request body bytes sent so far (decoded), for the next attempt */
    ev_timer try_timer;     /* per-try timeout, or the backoff before the next attempt */
    bool backing_off;       /* try_timer is the backoff */
    bool outlier_recorded;  /* this attempt's outcome went to outlier detection */
    rm_limits_hold_t limits;        /* circuit-breaker places this request holds */
    const rm_service_t *shadow_svc; /* the mirror's target, when mirrored */
    size_t shadow_version;          /* in shadow_svc->versions */
    bool shadow_pending;            /* mirrored, not launched yet */
    size_t ntried;
    /* The drain hand-off (exchange.c, "bounce"): this attempt's endpoint was tried before (no
     * untried one was left), the request may be bounced by a draining server sidecar, how many
     * times it was, and (inbound) whether the caller's sidecar said it may be bounced. */
    bool last_resort;
    bool endpoint_sidecar; /* this attempt's endpoint is a Remora sidecar (snapshot's say) */
    bool bounceable;
    int bounces;
    bool peer_bounceable;
    char service_name[64];
    char endpoint_address[64];

    /* The request, as the exchange keeps it after its head left the connection's buffer. */
    rm_request_head_t req; /* spans and fields in head_inline, or in req_store when larger */
    rm_buf_t req_store;    /* owned; used only for a head that does not fit head_inline */
    bool idempotent;
    bool req_done; /* whole request body forwarded */
    bool upgrade;  /* Upgrade/CONNECT: tunnel after the response head */
    size_t xff_len;
    bool add_request_id; /* the client sent none: x-request-id goes up with ours */
    char request_id[40];
    char route_name[64];
    char version_name[64];

    /* Upstream attempt. */
    rm_upconn_t *conn; /* borrowed from the pool while in use */
    rm_upstream_t *upstream;
    int attempts;

    /* Response. */
    bool resp_head_done;
    int status;
    bool resp_done;
    bool resp_started; /* bytes sent to the client: no local error reply possible */

    ev_tstamp start;

    /* Last, and not zeroed when a recycled exchange is reused (exchange.c): written before read. */
    char xff[512]; /* x-forwarded-for as it goes upstream (xff_len bytes) */
    /* The copy of a typical request head lives here: the exchange is recycled hot, where a
     * buffer block of its own was one more place touched per request. */
    _Alignas(16) char head_inline[1536];
} rm_exchange_t;

/* Between exchanges a connection waits for a request (idle timeout) or for the rest of a head
 * that has begun (header timeout); during one, the exchange's deadline applies. */
enum { RM_WAIT_EXCHANGE = 0, RM_WAIT_IDLE, RM_WAIT_HEAD };

/* A listener's own handler of requests (the admin endpoints): answers the head at once, in the
 * session's output, through the codec's reply. head's spans borrow from the session's input. */
typedef void (*rm_local_handler_t)(rm_session_t *s, const rm_request_head_t *head);

typedef struct rm_session {
    ev_io io;
    ev_timer timer;       /* fires by the deadline of what the connection waits for (deadline.h) */
    ev_tstamp wait_since; /* when the current wait (idle or partial head) began */
    uint8_t waiting;      /* RM_WAIT_*: what the connection waits for between exchanges */
    rm_conn_t conn;       /* owned: the socket and its transport */
    rm_listener_kind_t kind;
    rm_local_handler_t local_handler; /* requests answered by the proxy itself, or NULL */
    rm_worker_t *worker;              /* borrowed */
    rm_list_t link;                   /* in worker->sessions */
    /* SO_ORIGINAL_DST when transparently redirected. Sized for IPv4/IPv6 only, not a
     * sockaddr_storage: every idle keep-alive connection carries a session. */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } orig_dst;
    bool has_orig_dst;
    char peer_ip[48];
    rm_buf_t in, out;  /* owned */
    rm_exchange_t *ex; /* owned: the request in progress */
    /* Owned: the HTTP/1 codec's state while a request is in progress or has begun; NULL on an
     * idle keep-alive connection, which holds no codec state, as it holds no buffer memory
     * (session.c: session_codec). */
    rm_h1_server_t *h1;
    rm_downstream_t down; /* the exchange's view of this connection */
    bool read_eof;
    bool close_after; /* close once `out` drains */
    bool closing;     /* marked for the reaper */
    bool lingering;   /* write side shut; discarding input until EOF or a short timer */
    bool processing;  /* session_process is on the stack: it takes the next request itself */
    int requests;
} rm_session_t;

typedef struct rm_proxy_counters rm_proxy_counters_t;

typedef struct rm_worker {
    rm_proxy_t *proxy; /* borrowed */
    int id;
    pthread_t thread;
    struct ev_loop *loop;
    rm_listener_t listeners[5]; /* outbound, inbound (each on IPv6 too: worker.c), admin */
    int nlisteners;
    ev_async wakeup;   /* new snapshot or drain: re-check shared state */
    ev_prepare reaper; /* frees closed sessions before the loop sleeps */
    ev_timer drain_timer;
    ev_tstamp
        timer_slice; /* the shortest routine timeout: how far ahead deadlines arm (deadline.h) */
    rm_snapshot_t *snap; /* one reference to the current snapshot */
    uint64_t snap_generation;
    rm_list_t sessions;       /* open sessions */
    rm_list_t dead;           /* sessions closed this iteration, freed by the reaper */
    rm_list_t dead_exchanges; /* exchanges retired this iteration, freed by the reaper */
    rm_list_t free_exchanges; /* reaped exchanges kept for reuse (at most RM_EXCHANGE_KEEP) */
    rm_h1_server_t *free_codecs[64]; /* sessions' codec states kept for reuse (session.c) */
    int nfree_codecs;
    rm_cache_level_t free_exchanges_level; /* how many are kept (dataplane/buffer/cache_level.h) */
    ev_timer housekeeping; /* once a second: give back what a burst left in the caches */
    int nsessions;         /* open app and peer connections: bounded by --max-connections */
    int nadmin_sessions;   /* open admin connections: bounded apart (worker.c) */
    ev_timer accept_pause; /* accepting is paused while the process is out of descriptors */
    rm_http1_header_t headers[128];     /* scratch for parsing one head at a time (loop thread) */
    rm_header_view_t header_views[128]; /* the same headers as routing reads them */
    rm_upstream_t **utable;             /* hash of upstream state by key */
    size_t utable_size;
    uint64_t rng;
    bool draining;
    bool listeners_closed;
    bool waiting_withdraw_logged; /* the drain said once that it waits for the control plane */
    int shadows;                  /* shadow copies in flight */
} rm_worker_t;

struct rm_proxy {
    rm_proxy_options_t opt;
    rm_stats_registry_t *stats; /* owned */
    rm_worker_t *workers;       /* owned array of opt.workers */
    atomic_bool draining;
    atomic_bool ready;          /* config loaded */
    atomic_int running_workers; /* the main thread exits when this reaches 0 */
    atomic_bool app_up;         /* the app port answered the last probe */
    atomic_bool app_refused;    /* the app port refused connections for RM_APP_REFUSED_FOR_S */
    /* While draining: the control plane has this pod's withdrawal (always true with a config
     * file). Published by the config source on the main thread; workers keep their listeners
     * until it holds or the drain deadline passes. */
    atomic_bool withdraw_delivered;
    /* The main thread's loop and its wake-up: workers send it when they exit, the drain when it
     * begins (any thread); the config source owns the callback. */
    struct ev_loop *main_loop;
    ev_async main_wakeup;
    atomic_uint_fast64_t config_version;
    ev_tstamp drain_started;
    FILE *access_log;
};

#endif /* REMORA_DATAPLANE_PROXY_PROXY_T_H */
