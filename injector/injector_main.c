/* injector/injector_main.c — remora-injector: the mutating admission webhook's HTTPS server.
 *
 * One thread, one poll(2) loop, non-blocking sockets: every connection is a small state machine
 * (TLS handshake, read request, write response), so a slow or silent client only holds its own
 * slot until its deadline. The certificate and key are re-read when their files change (checked
 * at most every two seconds); connections already open keep the context they started with
 * (SSL objects hold a reference to their SSL_CTX).
 *
 * Slots are shared fairly, because the webhook runs with failurePolicy Ignore: a client that
 * kept the API server from a slot would make pods start without a sidecar. One client address
 * holds at most --max-client-connections (past it, a new connection replaces the address's own
 * longest-idle one, or is refused); when every slot is taken, the address holding the most gives
 * one up to a newcomer holding fewer; a kept-alive connection is closed after a few idle seconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/log/log.h"
#include "common/version.h"
#include "injector/patch.h"

#define MAX_CONNS       512
#define MAX_HEAD        16384
#define MAX_BODY        (1024L * 1024L)
#define RELOAD_CHECK_MS 2000
#define REFUSED_LOG_MS  1000

/* The API server makes short calls and opens a new connection when it has no idle one, so a few
 * seconds of keep-alive save it handshakes without letting idle connections pile up. */
#define DEFAULT_IDLE_TIMEOUT_S 5
/* Above what one API server instance has open at once: client-go keeps up to 25 idle connections
 * per host, and kube-controller-manager creates pods in bursts of up to 30 API calls (its
 * --kube-api-burst default). Its idle ones never count against it: they are replaced. */
#define DEFAULT_CLIENT_CONNS 32

static const char usage[] =
    "usage: remora-injector --cert FILE --key FILE [--listen HOST:PORT] [options]\n"
    "\n"
    "The Remora sidecar injector: a Kubernetes mutating admission webhook (POST /inject,\n"
    "AdmissionReview admission.k8s.io/v1) over HTTPS. GET /healthz and /ready for its probes.\n"
    "\n"
    "  --cert FILE               PEM certificate chain (re-read when the file changes)\n"
    "  --key FILE                PEM private key (re-read when the file changes)\n"
    "  --listen HOST:PORT        address to serve (default 0.0.0.0:8443)\n"
    "  --proxy-image IMAGE       sidecar image (default remora/proxy:" RM_VERSION ")\n"
    "  --init-image IMAGE        init image (default remora/init:" RM_VERSION ")\n"
    "  --control-plane HOST:PORT given to the sidecar (default "
    "remora-control.remora-system.svc:15010)\n"
    "  --sidecar-mode native|classic\n"
    "                            native (default, Kubernetes 1.29+): the proxy is an init "
    "container\n"
    "                            with restartPolicy: Always; classic: a second regular container\n"
    "  --request-timeout SECONDS time for a client's TLS handshake and request (default 10)\n"
    "  --idle-timeout SECONDS    a kept-alive connection is closed after this long idle (default "
    "5)\n"
    "  --max-client-connections N\n"
    "                            connections one client address may hold (default 32, of 512)\n"
    "  --log-level debug|info|warn|error\n"
    "  --help  --version\n";

enum conn_state { ST_HANDSHAKE, ST_READ, ST_WRITE };

typedef struct conn {
    int fd;
    SSL *ssl; /* owned; holds a reference to the SSL_CTX it was made from */
    enum conn_state state;
    short want; /* POLLIN / POLLOUT: what the TLS layer waits for */
    int peeked; /* the first bytes were checked for plain HTTP */
    int close_after_write;
    int continued;     /* a 100 Continue was sent for the request being read */
    unsigned answered; /* responses queued so far */
    int64_t deadline;
    int64_t accepted;       /* when: of a client's connections, the oldest is given up first */
    unsigned char peer[16]; /* the client's address; IPv4 as IPv4-mapped IPv6 */
    char *in;               /* owned; request bytes received, up to in_len */
    size_t in_len, in_cap;
    /* The request being read: bytes of `in` already searched for the head's end, so each TLS
     * record costs only its own bytes; then, once the head of a POST /inject is parsed, what it
     * said while the body arrives (head_len 0: no head yet). */
    size_t scanned;
    size_t head_len;
    size_t body_len;
    int close_req, expect;
    char *out; /* owned; response being written */
    size_t out_len, out_off;
} conn_t;

typedef struct server {
    const char *cert_path, *key_path; /* borrowed from argv */
    SSL_CTX *ctx;                     /* owned reference; the one new connections use */
    struct stat cert_st, key_st;      /* what ctx was loaded from */
    int64_t last_check;
    int listen_fd;
    int timeout_ms;
    int idle_ms;
    int client_max; /* connections one client address may hold */
    conn_t *conns[MAX_CONNS];
    int nconns;
    unsigned refused; /* connections refused since the last log line about it */
    int64_t refused_logged;
    rm_inject_opts_t opts;
} server_t;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_ssl_errors(const char *what)
{
    unsigned long e;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        rm_log_warn("%s: %s", what, buf);
    }
}

/* Loads cert and key into a new context; NULL (with the reason logged) when they do not load or
 * do not match, which is also what a half-replaced pair looks like. */
static SSL_CTX *tls_ctx_load(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        goto fail;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        rm_log_error("cannot load certificate %s", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        rm_log_error("cannot load private key %s", key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        rm_log_error("private key %s does not match certificate %s", key, cert);
        goto fail;
    }
    return ctx;
fail:
    log_ssl_errors("tls");
    SSL_CTX_free(ctx);
    return NULL;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Re-reads the pair when either file changed. A failed load keeps the old context and leaves the
 * recorded stat as it was, so the next check tries again (the second file may still be coming). */
static void tls_maybe_reload(server_t *s, int64_t now)
{
    struct stat cst, kst;
    SSL_CTX *ctx;
    if (now - s->last_check < RELOAD_CHECK_MS)
        return;
    s->last_check = now;
    if (stat(s->cert_path, &cst) < 0 || stat(s->key_path, &kst) < 0)
        return;
    if (same_file(&cst, &s->cert_st) && same_file(&kst, &s->key_st))
        return;
    ctx = tls_ctx_load(s->cert_path, s->key_path);
    if (ctx == NULL) {
        rm_log_warn("certificate files changed but do not load; keeping the previous ones");
        return;
    }
    SSL_CTX_free(s->ctx);
    s->ctx = ctx;
    s->cert_st = cst;
    s->key_st = kst;
    rm_log_info("reloaded certificate %s and key %s", s->cert_path, s->key_path);
}

static int listen_on(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = {0}, *res = NULL, *ai;
    int fd = -1, one = 1, rc;
    size_t hlen;
    if (colon == NULL || colon[1] == '\0')
        return -1;
    hlen = (size_t)(colon - hostport);
    if (hlen >= sizeof(host))
        return -1;
    memcpy(host, hostport, hlen);
    host[hlen] = '\0';
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0) {
        rm_log_error("--listen %s: %s", hostport, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        rm_log_error("--listen %s: %s", hostport, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

static void conn_free(server_t *s, int idx)
{
    conn_t *c = s->conns[idx];
    if (c->ssl != NULL) {
        if (c->state != ST_HANDSHAKE)
            SSL_shutdown(c->ssl); /* best effort close_notify; never waited for */
        SSL_free(c->ssl);
    }
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
    s->conns[idx] = s->conns[--s->nconns];
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}

/* Queues a response; the body is copied. close_after makes the connection end once it is sent. */
static int respond(conn_t *c, int status, const char *ctype, const char *body, size_t blen,
                   int close_after, const char *extra)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, reason_phrase(status), ctype, blen,
                     close_after ? "Connection: close\r\n" : "", extra ? extra : "");
    free(c->out);
    c->out = malloc((size_t)n + blen);
    if (c->out == NULL)
        return -1;
    memcpy(c->out, head, (size_t)n);
    memcpy(c->out + n, body, blen);
    c->out_len = (size_t)n + blen;
    c->out_off = 0;
    c->close_after_write = close_after;
    c->continued = 0;
    c->answered++;
    c->state = ST_WRITE;
    return 0;
}

static int respond_text(conn_t *c, int status, int close_after, const char *extra, const char *msg)
{
    char body[1024];
    int n = snprintf(body, sizeof(body), "remora-injector: %s\n", msg);
    if (n >= (int)sizeof(body))
        n = (int)sizeof(body) - 1;
    return respond(c, status, "text/plain; charset=utf-8", body, (size_t)n, close_after, extra);
}

static const char *memfind(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0)
            return hay + i;
    }
    return NULL;
}

/* The length of the request head in c->in through its blank line, or 0 while it is incomplete.
 * Resumes the search where the last one stopped (less the 3 bytes a "\r\n\r\n" split across
 * reads may have begun with), so a head arriving in many small TLS records costs O(n) in all. */
static size_t head_end(conn_t *c)
{
    size_t limit = c->in_len < MAX_HEAD ? c->in_len : MAX_HEAD;
    size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    const char *end = memfind(c->in + from, limit - from, "\r\n\r\n");
    if (end == NULL) {
        c->scanned = limit;
        return 0;
    }
    return (size_t)(end - c->in) + 4;
}

/* Drops the request just answered from c->in (n bytes), keeping what was pipelined after it. */
static void consume(conn_t *c, size_t n)
{
    c->in_len -= n;
    memmove(c->in, c->in + n, c->in_len);
    c->scanned = 0;
    c->head_len = 0;
}

/* Parses a complete head (head_len bytes). Returns 1 when a response was queued, -1 when the
 * connection should just be closed, 0 for a POST /inject whose body is now awaited (what the
 * head said is kept in c: head_len, body_len, close_req, expect). */
static int parse_head(conn_t *c, size_t head_len)
{
    const char *end = c->in + head_len - 4;
    const char *line_end, *sp1, *sp2, *p;
    size_t target_len;
    long long clen = -1;
    int chunked = 0, close_req = 0, http10 = 0, expect = 0;
    char target[256];

    line_end = memfind(c->in, head_len, "\r\n");
    sp1 = memchr(c->in, ' ', (size_t)(line_end - c->in));
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == c->in || sp2 == sp1 + 1)
        return respond_text(c, 400, 1, NULL, "malformed request line") < 0 ? -1 : 1;
    if ((size_t)(line_end - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return respond_text(c, 400, 1, NULL, "not an HTTP/1.x request") < 0 ? -1 : 1;
    http10 = sp2[8] == '0';
    target_len = (size_t)(sp2 - sp1 - 1);
    if (target_len >= sizeof(target))
        return respond_text(c, 404, 1, NULL, "no such path") < 0 ? -1 : 1;
    memcpy(target, sp1 + 1, target_len);
    target[target_len] = '\0';
    target[strcspn(target, "?")] = '\0'; /* the API server appends ?timeout=10s */

    for (p = line_end + 2; p < end; p = memfind(p, (size_t)(end - p) + 2, "\r\n") + 2) {
        const char *eol = memfind(p, (size_t)(end - p) + 2, "\r\n");
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        const char *v;
        size_t nlen, vlen;
        if (colon == NULL || colon == p)
            return respond_text(c, 400, 1, NULL, "malformed header line") < 0 ? -1 : 1;
        nlen = (size_t)(colon - p);
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
            ;
        vlen = (size_t)(eol - v);
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
            long long n = 0;
            if (vlen == 0 || vlen > 12 || clen >= 0)
                return respond_text(c, 400, 1, NULL, "bad Content-Length") < 0 ? -1 : 1;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return respond_text(c, 400, 1, NULL, "bad Content-Length") < 0 ? -1 : 1;
                n = n * 10 + (v[i] - '0');
            }
            clen = n;
        } else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
            chunked = 1;
        } else if (nlen == 10 && strncasecmp(p, "connection", 10) == 0) {
            close_req = vlen == 5 && strncasecmp(v, "close", 5) == 0;
        } else if (nlen == 6 && strncasecmp(p, "expect", 6) == 0) {
            expect = vlen == 12 && strncasecmp(v, "100-continue", 12) == 0;
        }
    }
    if (http10)
        close_req = 1;

    if (strcmp(target, "/healthz") == 0 || strcmp(target, "/ready") == 0) {
        if (memcmp(c->in, "GET ", 4) != 0)
            return respond_text(c, 405, 1, "Allow: GET\r\n", "use GET") < 0 ? -1 : 1;
        if (clen > 0 || chunked)
            return respond_text(c, 400, 1, NULL, "unexpected request body") < 0 ? -1 : 1;
        consume(c, head_len);
        return respond(c, 200, "text/plain", "ok\n", 3, close_req, NULL) < 0 ? -1 : 1;
    }
    if (strcmp(target, "/inject") != 0)
        return respond_text(c, 404, 1, NULL, "no such path; the webhook serves POST /inject") < 0
                   ? -1
                   : 1;
    if (sp1 - c->in != 4 || memcmp(c->in, "POST", 4) != 0)
        return respond_text(c, 405, 1, "Allow: POST\r\n", "/inject takes POST") < 0 ? -1 : 1;
    if (chunked)
        return respond_text(c, 411, 1, NULL, "send the AdmissionReview with Content-Length") < 0
                   ? -1
                   : 1;
    if (clen < 0)
        return respond_text(c, 411, 1, NULL, "Content-Length required") < 0 ? -1 : 1;
    if (clen > MAX_BODY)
        return respond_text(c, 413, 1, NULL, "AdmissionReview larger than 1 MiB") < 0 ? -1 : 1;
    c->head_len = head_len;
    c->body_len = (size_t)clen;
    c->close_req = close_req;
    c->expect = expect;
    return 0;
}

/* Looks at the buffered bytes; returns 1 when a response was queued, 0 when more bytes are
 * needed, -1 when the connection should just be closed. The head is parsed once, when its end
 * has arrived; while the body arrives, each call only compares lengths. */
static int try_request(server_t *s, conn_t *c)
{
    char err[512];

    if (c->head_len == 0) {
        size_t head_len = head_end(c);
        int rc;
        if (head_len == 0) {
            if (c->in_len >= MAX_HEAD)
                return respond_text(c, 431, 1, NULL, "request head larger than 16 KiB") < 0 ? -1
                                                                                            : 1;
            return 0;
        }
        rc = parse_head(c, head_len);
        if (rc != 0)
            return rc;
    }
    if (c->in_len < c->head_len + c->body_len) {
        if (c->expect && !c->continued && c->in_len == c->head_len) {
            /* An interim response, written like any other; the connection then goes back to
             * reading the body. Once per request, so it cannot extend the deadline twice. */
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            free(c->out);
            c->out = malloc(sizeof(cont) - 1);
            if (c->out == NULL)
                return -1;
            memcpy(c->out, cont, sizeof(cont) - 1);
            c->out_len = sizeof(cont) - 1;
            c->out_off = 0;
            c->close_after_write = 0;
            c->continued = 1;
            c->state = ST_WRITE;
            return 1;
        }
        return 0;
    }

    {
        char *resp = NULL;
        int status =
            rm_inject_review(c->in + c->head_len, c->body_len, &s->opts, &resp, err, sizeof(err));
        int rc, close_req = c->close_req;
        consume(c, c->head_len + c->body_len);
        if (status == 200) {
            rc = respond(c, 200, "application/json", resp, strlen(resp), close_req, NULL);
        } else {
            rm_log_info("rejected AdmissionReview: %s", err);
            rc = respond_text(c, status, close_req, NULL, err);
        }
        free(resp);
        return rc < 0 ? -1 : 1;
    }
}

/* Plain HTTP on the TLS port: the first byte of a TLS ClientHello is 0x16; an HTTP method is
 * upper-case ASCII. Answer in plain text instead of failing a handshake silently. */
static int looks_like_plain_http(const unsigned char *b, ssize_t n)
{
    return n >= 1 && b[0] >= 'A' && b[0] <= 'Z';
}

/* Drives one connection as far as it can go without blocking. Returns -1 when it is to be closed.
 */
static int conn_step(server_t *s, conn_t *c)
{
    for (;;) {
        int rc, e;
        switch (c->state) {
        case ST_HANDSHAKE:
            if (!c->peeked) {
                unsigned char b[8];
                ssize_t n = recv(c->fd, b, sizeof(b), MSG_PEEK);
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    c->want = POLLIN;
                    return 0;
                }
                if (n <= 0)
                    return -1;
                c->peeked = 1;
                if (looks_like_plain_http(b, n)) {
#define PLAIN_BODY "remora-injector: plain HTTP request sent to the HTTPS port\n"
                    static const char msg[] =
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                        "Connection: close\r\nContent-Length: 59\r\n\r\n" PLAIN_BODY;
                    _Static_assert(sizeof(PLAIN_BODY) - 1 == 59, "Content-Length of PLAIN_BODY");
                    char sink[4096];
                    /* Consume what was sent, so closing does not turn into a reset that could
                     * destroy the answer before the client reads it. */
                    while (recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
                        ;
                    (void)!write(c->fd, msg, sizeof(msg) - 1);
                    shutdown(c->fd, SHUT_WR);
                    return -1;
                }
            }
            rc = SSL_accept(c->ssl);
            if (rc == 1) {
                c->state = ST_READ;
                continue;
            }
            e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                return 0;
            }
            if (rm_log_level() <= RM_LOG_DEBUG)
                log_ssl_errors("handshake");
            ERR_clear_error();
            return -1;
        case ST_READ:
            rc = try_request(s, c);
            if (rc < 0)
                return -1;
            if (rc > 0)
                continue;
            if (c->in_cap - c->in_len < 16384) {
                size_t cap = c->in_cap ? c->in_cap * 2 : 32768;
                char *n;
                if (cap > MAX_HEAD + MAX_BODY + 65536)
                    cap = MAX_HEAD + MAX_BODY + 65536;
                if (cap <= c->in_len)
                    return -1; /* cannot happen: a full head or body is answered first */
                n = realloc(c->in, cap);
                if (n == NULL)
                    return -1;
                c->in = n;
                c->in_cap = cap;
            }
            rc = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
            if (rc > 0) {
                /* A new request on a kept-alive connection gets the request timeout, not
                 * what is left of the idle one. */
                if (c->in_len == 0 && c->answered > 0)
                    c->deadline = now_ms() + s->timeout_ms;
                c->in_len += (size_t)rc;
                continue;
            }
            e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                return 0;
            }
            ERR_clear_error();
            return -1; /* closed by the peer or a TLS error */
        case ST_WRITE:
            if (c->out_off == c->out_len) {
                free(c->out);
                c->out = NULL;
                c->out_len = c->out_off = 0;
                if (c->close_after_write)
                    return -1;
                c->state = ST_READ;
                c->deadline = now_ms() + (c->in_len ? s->timeout_ms : s->idle_ms);
                continue;
            }
            rc = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
            if (rc > 0) {
                c->out_off += (size_t)rc;
                continue;
            }
            e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                return 0;
            }
            ERR_clear_error();
            return -1;
        }
    }
}

/* A kept-alive connection waiting for its next request: closing it loses nothing (a client
 * reconnects when it has something to send). */
static int conn_idle(const conn_t *c)
{
    return c->state == ST_READ && c->in_len == 0 && c->answered > 0;
}

/* Which of two connections to give up first: an idle one (the longest idle: its deadline is the
 * earliest), else the older one, which a stalled client has been holding longest. */
static int conn_sooner(const conn_t *a, const conn_t *b)
{
    if (conn_idle(a) != conn_idle(b))
        return conn_idle(a);
    if (conn_idle(a))
        return a->deadline < b->deadline;
    return a->accepted < b->accepted;
}

static void peer_key(const struct sockaddr_storage *ss, unsigned char key[16])
{
    memset(key, 0, 16);
    if (ss->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    } else if (ss->ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    }
}

static void peer_format(const unsigned char key[16], char *buf, size_t n)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(key, mapped, 12) == 0)
        inet_ntop(AF_INET, key + 12, buf, (socklen_t)n);
    else
        inet_ntop(AF_INET6, key, buf, (socklen_t)n);
}

static int cmp_peer(const void *a, const void *b)
{
    return memcmp((*(conn_t *const *)a)->peer, (*(conn_t *const *)b)->peer, 16);
}

/* With every slot taken: the index of the connection to give up for a newcomer whose address
 * holds `mine`, or -1. Taken from an address holding the most, and only if it holds at least two
 * more than the newcomer, so the two cannot take turns; among such addresses, the connection
 * conn_sooner picks. Sorting costs O(n log n), and only when the table is full. */
static int hog_victim(server_t *s, int mine)
{
    static conn_t *sorted[MAX_CONNS];
    conn_t *victim = NULL;
    int most = 0, n = s->nconns, i, j;
    memcpy(sorted, s->conns, (size_t)n * sizeof(conn_t *));
    qsort(sorted, (size_t)n, sizeof(conn_t *), cmp_peer);
    /* Runs of equal addresses: the longest first, then the victim among the longest. */
    for (i = 0; i < n; i = j) {
        for (j = i; j < n && memcmp(sorted[j]->peer, sorted[i]->peer, 16) == 0; j++)
            ;
        if (j - i > most)
            most = j - i;
    }
    if (most < mine + 2)
        return -1;
    for (i = 0; i < n; i = j) {
        for (j = i; j < n && memcmp(sorted[j]->peer, sorted[i]->peer, 16) == 0; j++)
            ;
        for (int k = i; j - i == most && k < j; k++) {
            if (victim == NULL || conn_sooner(sorted[k], victim))
                victim = sorted[k];
        }
    }
    for (i = 0; i < n; i++) {
        if (s->conns[i] == victim)
            return i;
    }
    return -1;
}

/* Makes a slot for a new connection from `peer`, or says why there is none. */
static const char *make_room(server_t *s, const unsigned char peer[16])
{
    int mine = 0, own = -1, victim;
    for (int i = 0; i < s->nconns; i++) {
        if (memcmp(s->conns[i]->peer, peer, 16) != 0)
            continue;
        mine++;
        if (conn_idle(s->conns[i]) && (own < 0 || conn_sooner(s->conns[i], s->conns[own])))
            own = i;
    }
    if (mine >= s->client_max) {
        /* An address crowds out only itself: its idle connection makes way, a busy one not. */
        if (own < 0)
            return "the address holds --max-client-connections, none of them idle";
        rm_log_debug("closing an idle connection for a new one from the same address");
        conn_free(s, own);
        return NULL;
    }
    if (s->nconns < MAX_CONNS)
        return NULL;
    victim = hog_victim(s, mine);
    if (victim < 0)
        return "every connection slot is taken by addresses holding no more than it";
    rm_log_debug("every slot taken: closing one of the connections of the address holding most");
    conn_free(s, victim);
    return NULL;
}

/* One warning a second at most, however many are refused: a flood must not flood the log too. */
static void note_refused(server_t *s, const unsigned char peer[16], const char *why, int64_t now)
{
    char addr[INET6_ADDRSTRLEN];
    s->refused++;
    if (s->refused_logged != 0 && now - s->refused_logged < REFUSED_LOG_MS)
        return;
    peer_format(peer, addr, sizeof(addr));
    rm_log_warn("refused a connection from %s: %s (%u refused since the last such line)", addr, why,
                s->refused);
    s->refused = 0;
    s->refused_logged = now;
}

static void accept_all(server_t *s, int64_t now)
{
    for (;;) {
        struct sockaddr_storage ss = {0};
        socklen_t sl = sizeof(ss);
        unsigned char peer[16];
        const char *why;
        int one = 1;
        int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        conn_t *c;
        if (fd < 0)
            return;
        tls_maybe_reload(s, now);
        /* Every response goes out in whole writes, so Nagle's algorithm only delays: with TLS 1.3
         * the session tickets written after the handshake stay unacknowledged (the client delays
         * its ACK while it waits), and the response would wait ~40 ms for that ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        peer_key(&ss, peer);
        why = make_room(s, peer);
        if (why != NULL) {
            note_refused(s, peer, why, now);
            close(fd);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL || (c->ssl = SSL_new(s->ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1) {
            if (c)
                SSL_free(c->ssl);
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->state = ST_HANDSHAKE;
        c->want = POLLIN;
        c->deadline = now + s->timeout_ms;
        c->accepted = now;
        memcpy(c->peer, peer, sizeof(c->peer));
        s->conns[s->nconns++] = c;
    }
}

static int serve(server_t *s)
{
    static struct pollfd pfd[MAX_CONNS + 1];
    while (!stopping) {
        int64_t now = now_ms(), next = now + RELOAD_CHECK_MS;
        int n, i, timeout;
        pfd[0].fd = s->listen_fd;
        pfd[0].events = POLLIN;
        for (i = 0; i < s->nconns; i++) {
            pfd[i + 1].fd = s->conns[i]->fd;
            pfd[i + 1].events = s->conns[i]->want;
            pfd[i + 1].revents = 0;
            if (s->conns[i]->deadline < next)
                next = s->conns[i]->deadline;
        }
        timeout = next > now ? (int)(next - now) : 0;
        n = poll(pfd, (nfds_t)s->nconns + 1, timeout);
        if (n < 0 && errno != EINTR) {
            rm_log_error("poll: %s", strerror(errno));
            return -1;
        }
        now = now_ms();
        tls_maybe_reload(s, now);
        /* Walk backwards: conn_free moves the last connection into the freed slot. */
        for (i = s->nconns - 1; n > 0 && i >= 0; i--) {
            conn_t *c = s->conns[i];
            if (pfd[i + 1].revents == 0)
                continue;
            if (conn_step(s, c) < 0)
                conn_free(s, i);
        }
        for (i = s->nconns - 1; i >= 0; i--) {
            if (s->conns[i]->deadline <= now) {
                rm_log_debug("connection timed out in state %d", s->conns[i]->state);
                conn_free(s, i);
            }
        }
        if (n > 0 && (pfd[0].revents & POLLIN))
            accept_all(s, now);
    }
    while (s->nconns > 0)
        conn_free(s, s->nconns - 1);
    return 0;
}

enum {
    OPT_CERT = 256,
    OPT_KEY,
    OPT_LISTEN,
    OPT_PROXY_IMAGE,
    OPT_INIT_IMAGE,
    OPT_CONTROL_PLANE,
    OPT_MODE,
    OPT_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_CLIENT_CONNS,
    OPT_LOG_LEVEL,
    OPT_HELP,
    OPT_VERSION,
};

static int bad_flag(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "remora-injector: %s%s%s: %s (see --help)\n", flag, value ? " " : "",
            value ? value : "", why);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"proxy-image", required_argument, NULL, OPT_PROXY_IMAGE},
        {"init-image", required_argument, NULL, OPT_INIT_IMAGE},
        {"control-plane", required_argument, NULL, OPT_CONTROL_PLANE},
        {"sidecar-mode", required_argument, NULL, OPT_MODE},
        {"request-timeout", required_argument, NULL, OPT_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"max-client-connections", required_argument, NULL, OPT_CLIENT_CONNS},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    static server_t server; /* static: flag errors return early with nothing to free */
    server_t *s = &server;
    const char *listen_addr = "0.0.0.0:8443";
    rm_log_level_t level = RM_LOG_INFO;
    struct sigaction sa = {0};
    int opt, rc = 1;

    rm_inject_opts_default(&s->opts);
    s->timeout_ms = 10000;
    s->idle_ms = DEFAULT_IDLE_TIMEOUT_S * 1000;
    s->client_max = DEFAULT_CLIENT_CONNS;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_CERT:
            s->cert_path = optarg;
            break;
        case OPT_KEY:
            s->key_path = optarg;
            break;
        case OPT_LISTEN:
            listen_addr = optarg;
            break;
        case OPT_PROXY_IMAGE:
            s->opts.proxy_image = optarg;
            break;
        case OPT_INIT_IMAGE:
            s->opts.init_image = optarg;
            break;
        case OPT_CONTROL_PLANE:
            s->opts.control_plane = optarg;
            break;
        case OPT_MODE:
            if (strcmp(optarg, "native") == 0)
                s->opts.mode = RM_INJECT_MODE_NATIVE;
            else if (strcmp(optarg, "classic") == 0)
                s->opts.mode = RM_INJECT_MODE_CLASSIC;
            else
                return bad_flag("--sidecar-mode", optarg, "expected native or classic");
            break;
        case OPT_TIMEOUT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 300)
                return bad_flag("--request-timeout", optarg, "expected seconds, 1-300");
            s->timeout_ms = (int)v * 1000;
            break;
        }
        case OPT_IDLE_TIMEOUT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 300)
                return bad_flag("--idle-timeout", optarg, "expected seconds, 1-300");
            s->idle_ms = (int)v * 1000;
            break;
        }
        case OPT_CLIENT_CONNS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > MAX_CONNS)
                return bad_flag("--max-client-connections", optarg, "expected 1-512");
            s->client_max = (int)v;
            break;
        }
        case OPT_LOG_LEVEL:
            if (rm_log_level_parse(optarg, &level) < 0)
                return bad_flag("--log-level", optarg, "expected debug, info, warn or error");
            break;
        case OPT_HELP:
            fputs(usage, stdout);
            return 0;
        case OPT_VERSION:
            printf("remora-injector %s\n", RM_VERSION);
            return 0;
        default:
            return bad_flag(argv[optind - 1], NULL, "unknown flag or missing value");
        }
    }
    if (optind < argc)
        return bad_flag(argv[optind], NULL, "unexpected argument");
    if (s->cert_path == NULL || s->key_path == NULL)
        return bad_flag("--cert/--key", NULL, "both are required");
    rm_log_init("remora-injector", level);

    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: poll returns EINTR and the loop ends */
    sigaction(SIGINT, &sa, NULL);

    if (stat(s->cert_path, &s->cert_st) < 0 || stat(s->key_path, &s->key_st) < 0) {
        fprintf(stderr, "remora-injector: cannot read --cert %s or --key %s: %s\n", s->cert_path,
                s->key_path, strerror(errno));
        goto out;
    }
    s->ctx = tls_ctx_load(s->cert_path, s->key_path);
    if (s->ctx == NULL)
        goto out;
    s->last_check = now_ms();
    s->listen_fd = listen_on(listen_addr);
    if (s->listen_fd < 0) {
        fprintf(stderr, "remora-injector: cannot listen on %s\n", listen_addr);
        goto out_ctx;
    }
    rm_log_info("serving POST /inject on %s (sidecar mode %s; %d connections, %d per client "
                "address, %d s idle)",
                listen_addr, s->opts.mode == RM_INJECT_MODE_NATIVE ? "native" : "classic",
                MAX_CONNS, s->client_max, s->idle_ms / 1000);
    rc = serve(s) < 0 ? 1 : 0;
    close(s->listen_fd);
out_ctx:
    SSL_CTX_free(s->ctx);
out:
    return rc;
}
