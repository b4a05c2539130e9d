/* dataplane/proxy/access_log.h — one JSON line per request (off unless --access-log). */
#ifndef REMORA_DATAPLANE_PROXY_ACCESS_LOG_H
#define REMORA_DATAPLANE_PROXY_ACCESS_LOG_H

#include "dataplane/proxy/proxy-t.h"

/* Opens PATH (appending) or "-" for stdout. Returns 0 or -errno. Main thread, at start-up. */
int rm_access_log_open(rm_proxy_t *p, const char *path);

/* Writes the line for a finished exchange (loop thread). No-op when the log is off. */
void rm_access_log_write(const rm_exchange_t *ex, double seconds);

#endif /* REMORA_DATAPLANE_PROXY_ACCESS_LOG_H */
