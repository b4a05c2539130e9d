/* dataplane/proxy/session.h — one downstream connection: reads request heads, hands each request
 * to an exchange (or the admin handler), writes responses back, keeps the connection alive
 * between requests, and enforces the header and idle timeouts. */
#ifndef REMORA_DATAPLANE_PROXY_SESSION_H
#define REMORA_DATAPLANE_PROXY_SESSION_H

#include "dataplane/proxy/proxy-t.h"

/* Takes ownership of fd (accepted, non-blocking). Returns NULL (fd left open) when out of memory.
 */
rm_session_t *rm_session_new(rm_worker_t *w, int fd, rm_listener_kind_t kind,
                             rm_local_handler_t local_handler, const struct sockaddr_storage *peer,
                             socklen_t plen);

/* Marks a session for the reaper: stops its watchers and closes its socket now, frees it before
 * the loop next sleeps (so callers further up the stack never touch freed memory). */
void rm_session_close(rm_session_t *s);

/* Stops watchers, closes the socket and ends any exchange; memory stays until rm_session_free. */
void rm_session_shutdown(rm_session_t *s);
void rm_session_free(rm_session_t *s);

/* Frees the codec states a worker keeps for reuse (worker exit, on its thread). */
void rm_session_free_codecs(rm_worker_t *w);

/* Recomputes the I/O events the session waits for, from its state. */
void rm_session_update_events(rm_session_t *s);

/* Sets the session's timer by what it waits for now (an exchange, a head, the next request). */
void rm_session_arm_timer(rm_session_t *s);

/* The exchange finished (response fully queued in s->out): start the next request or close. */
void rm_session_exchange_done(rm_session_t *s);

/* Queues a complete local response (status, extra fields, body). Closes after it when
 * close_after, when the client does not keep alive, or when an inbound session drains. Used for
 * refused heads and the local handler (admin). */
void rm_session_reply(rm_session_t *s, int status, const rm_field_t *extra, size_t nextra,
                      const char *content_type, const char *body, size_t body_len,
                      bool close_after);

#endif /* REMORA_DATAPLANE_PROXY_SESSION_H */
