/* dataplane/proxy/config_source.h — where the sidecar's config comes from, on the main thread.
 *
 * --config FILE: the file is loaded and validated with common/config, compiled into a snapshot
 * and published to the workers; SIGHUP or a change of the file reloads it, and a file that fails
 * validation is rejected with its errors logged while the last good snapshot stays in force.
 * The control-plane source (--control-plane) plugs in here too.
 */
#ifndef REMORA_DATAPLANE_PROXY_CONFIG_SOURCE_H
#define REMORA_DATAPLANE_PROXY_CONFIG_SOURCE_H

#include <stddef.h>

#include "dataplane/proxy/proxy-t.h"

/* Loads the initial config and installs signal and file watchers on the main loop.
 * Returns 0, or -1 (reason logged) when the initial config is invalid. Main thread. */
int rm_proxy_source_init(rm_proxy_t *p, struct ev_loop *main_loop);

/* Starts the drain (SIGTERM and POST /drain): /ready fails, the withdrawal goes to the control
 * plane, workers stop taking new work after the grace period once it was delivered (published as
 * rm_proxy_t.withdraw_delivered), and the process exits when idle or at the deadline (workers
 * signal rm_proxy_t.main_wakeup as they exit). Any thread. */
void rm_proxy_source_begin_drain(rm_proxy_t *p);

/* The config in force as JSON {"version":N,"config":[documents]}; malloc'd, or NULL. */
char *rm_proxy_source_dump_json(rm_proxy_t *p, const rm_snapshot_t *snap, size_t *len);

void rm_proxy_source_free(rm_proxy_t *p);

#endif /* REMORA_DATAPLANE_PROXY_CONFIG_SOURCE_H */
