/* dataplane/proxy/deadline.h — timeouts that move on every request without touching libev's heap.
 *
 * A keep-alive connection changes deadline several times per request (idle → request timeout →
 * idle; a pooled upstream connection: idle → busy → idle). Stopping and restarting an ev_timer for
 * each change costs two heap operations, about 1% of a proxied request. Instead the owner keeps
 * the deadline in its own state and the timer only promises to fire *no later* than it: moving a
 * deadline later costs nothing (the timer fires early, the callback sees the deadline has not
 * passed and re-arms for the rest), and only a deadline earlier than the armed expiry re-arms.
 *
 * The timer is never armed more than `slice` seconds ahead, with slice the shortest timeout the
 * owner starts in its ordinary course: then every new deadline is at or after the armed expiry,
 * and the common path never re-arms. The price is one early wake-up per connection per slice.
 */
#ifndef REMORA_DATAPLANE_PROXY_DEADLINE_H
#define REMORA_DATAPLANE_PROXY_DEADLINE_H

#include <ev.h>

/* Makes `t` (a one-shot timer) fire no later than `due` (loop time, ev_now), and no sooner than
 * needed to honour it. due == 0 means no deadline: an armed timer is left to fire and find none. */
static inline void rm_deadline_arm(struct ev_loop *loop, ev_timer *t, ev_tstamp due,
                                   ev_tstamp slice)
{
    if (due == 0)
        return;
    ev_tstamp after = due - ev_now(loop);
    if (ev_is_active(t)) {
        if (ev_timer_remaining(loop, t) <= after)
            return; /* fires first; its callback re-arms for the rest */
        ev_timer_stop(loop, t);
    }
    if (after > slice)
        after = slice;
    ev_timer_set(t, after > 0 ? after : 0, 0);
    ev_timer_start(loop, t);
}

/* Whether a deadline (0: none) has passed at loop time `now`. */
static inline int rm_deadline_passed(ev_tstamp due, ev_tstamp now)
{
    return due != 0 && due <= now;
}

#endif /* REMORA_DATAPLANE_PROXY_DEADLINE_H */
