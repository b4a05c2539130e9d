/* tests/backend/server.c — listeners, accepting, signals, the drain and the connection reaper. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/backend/backend.h"

#define SRV_OF(ptr, field) ((rm__server_t *)(void *)((char *)(ptr)-offsetof(rm__server_t, field)))

/* At most this many accepts per wakeup, so a connection storm cannot starve the others. */
#define ACCEPT_BATCH 64

static void listeners_set(rm__server_t *srv, int on)
{
    for (int i = 0; i < srv->nlisten; i++) {
        if (srv->listen_fd[i] < 0)
            continue;
        if (on)
            ev_io_start(srv->loop, &srv->listen_io[i]);
        else
            ev_io_stop(srv->loop, &srv->listen_io[i]);
    }
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    rm__server_t *srv = w->data;

    (void)revents;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            rm__conn_accept(srv, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors (the ulimit is the connection cap): the pending connections
             * stay in the backlog; retry shortly instead of spinning on a readable listener. */
            listeners_set(srv, 0);
            ev_timer_set(&srv->accept_pause, 0.1, 0.);
            ev_timer_start(loop, &srv->accept_pause);
        }
        return;
    }
}

static void on_accept_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    rm__server_t *srv = SRV_OF(w, accept_pause);

    (void)loop;
    (void)revents;
    if (!srv->draining)
        listeners_set(srv, 1);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    rm__server_t *srv = w->data;

    (void)revents;
    if (srv->draining) {
        ev_break(loop, EVBREAK_ALL); /* a second signal: stop waiting */
        return;
    }
    rm__server_drain(srv);
}

static void on_drain_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs before the loop sleeps: frees closed connections, and ends a drain once all are idle. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    rm__server_t *srv = SRV_OF(w, reaper);

    (void)revents;
    while (srv->reap) {
        rm__conn_t *c = srv->reap;

        srv->reap = c->next;
        rm__conn_free(c);
    }
    if (!srv->draining)
        return;
    for (rm__conn_t *c = srv->conns; c; c = c->next) {
        if (rm__conn_busy(c))
            return;
    }
    ev_break(loop, EVBREAK_ALL);
}

void rm__server_drain(rm__server_t *srv)
{
    if (srv->draining)
        return;
    srv->draining = 1;
    fprintf(stderr, "draining\n");
    /* Closing the sockets (not just stopping the watchers) makes new connects fail at once. */
    for (int i = 0; i < srv->nlisten; i++) {
        if (srv->listen_fd[i] < 0)
            continue;
        ev_io_stop(srv->loop, &srv->listen_io[i]);
        close(srv->listen_fd[i]);
        srv->listen_fd[i] = -1;
    }
    ev_timer_stop(srv->loop, &srv->accept_pause);
    ev_timer_set(&srv->drain_timer, (double)srv->cfg.drain_seconds, 0.);
    ev_timer_start(srv->loop, &srv->drain_timer);
}

static void print_listening(const rm__server_t *srv, int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        fprintf(stderr, "%s: listening on %s:%d", RM__BACKEND_NAME, host, port);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        fprintf(stderr, "%s: listening on [%s]:%d", RM__BACKEND_NAME, host, port);
    }
    fprintf(stderr, " service=%s version=%s instance=%s\n", srv->cfg.service, srv->cfg.version,
            srv->cfg.instance);
}

/* Binds one HOST:PORT; returns the listening socket or -1 with errno set. */
static int listen_one(const char *addr)
{
    char host[256], port[8];
    struct addrinfo hints, *res = NULL, *rp;
    int fd = -1, err = EINVAL, one = 1, rc;

    if (rm__hostport_split(addr, host, sizeof(host), port, sizeof(port)) < 0)
        goto out;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    /* ":PORT" means every IPv4 interface; "[::]:PORT" names IPv6 explicitly. */
    hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        err = rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
        goto out;
    }
    for (rp = res; rp; rp = rp->ai_next) {
        fd = socket(rp->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (rp->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, rp->ai_addr, rp->ai_addrlen) == 0 && listen(fd, 4096) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
out:
    if (res)
        freeaddrinfo(res);
    if (fd < 0)
        errno = err;
    return fd;
}

int rm__server_start(rm__server_t *srv, struct ev_loop *loop)
{
    srv->loop = loop;
    srv->nlisten = 0;
    for (int i = 0; i < srv->cfg.nlisten; i++) {
        int fd = listen_one(srv->cfg.listen[i]);

        if (fd < 0) {
            fprintf(stderr, "%s: cannot listen on %s: %s\n", RM__BACKEND_NAME, srv->cfg.listen[i],
                    strerror(errno));
            goto fail;
        }
        srv->listen_fd[srv->nlisten] = fd;
        ev_io_init(&srv->listen_io[srv->nlisten], on_accept, fd, EV_READ);
        srv->listen_io[srv->nlisten].data = srv;
        srv->nlisten++;
        if (!srv->cfg.quiet)
            print_listening(srv, fd);
    }
    ev_timer_init(&srv->accept_pause, on_accept_resume, 0.1, 0.);
    ev_timer_init(&srv->drain_timer, on_drain_deadline, 0., 0.);
    ev_signal_init(&srv->sig_term, on_signal, SIGTERM);
    srv->sig_term.data = srv;
    ev_signal_init(&srv->sig_int, on_signal, SIGINT);
    srv->sig_int.data = srv;
    ev_signal_start(loop, &srv->sig_term);
    ev_signal_start(loop, &srv->sig_int);
    ev_prepare_init(&srv->reaper, on_prepare);
    ev_prepare_start(loop, &srv->reaper);
    listeners_set(srv, 1);
    return 0;

fail:
    for (int i = 0; i < srv->nlisten; i++)
        close(srv->listen_fd[i]);
    srv->nlisten = 0;
    return -1;
}

void rm__server_stop(rm__server_t *srv)
{
    struct ev_loop *loop = srv->loop;

    while (srv->conns)
        rm__conn_close(srv->conns);
    while (srv->reap) {
        rm__conn_t *c = srv->reap;

        srv->reap = c->next;
        rm__conn_free(c);
    }
    for (int i = 0; i < srv->nlisten; i++) {
        if (srv->listen_fd[i] < 0)
            continue;
        ev_io_stop(loop, &srv->listen_io[i]);
        close(srv->listen_fd[i]);
        srv->listen_fd[i] = -1;
    }
    ev_timer_stop(loop, &srv->accept_pause);
    ev_timer_stop(loop, &srv->drain_timer);
    ev_signal_stop(loop, &srv->sig_term);
    ev_signal_stop(loop, &srv->sig_int);
    ev_prepare_stop(loop, &srv->reaper);
}
