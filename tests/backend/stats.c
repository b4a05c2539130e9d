/* tests/backend/stats.c — the counters behind GET /__backend/stats, rendered as one JSON line. */
#include <inttypes.h>

#include "tests/backend/backend.h"

void rm__stats_json(const rm__stats_t *st, rm__buf_t *out)
{
    int first;

    rm__buf_printf(out, "{\"requests\":%" PRIu64 ",\"by_status\":{", st->requests);
    first = 1;
    for (int s = 0; s < RM__STATUS_SLOTS; s++) {
        if (st->by_status[s] == 0)
            continue;
        rm__buf_printf(out, "%s\"%d\":%" PRIu64, first ? "" : ",", s, st->by_status[s]);
        first = 0;
    }
    rm__buf_puts(out, "},\"by_method\":{");
    first = 1;
    for (int m = 0; m < RM__METHOD_SLOTS; m++) {
        if (st->by_method[m] == 0)
            continue;
        /* Only methods llhttp parsed are ever counted, so the name lookup cannot abort. */
        rm__buf_printf(out, "%s\"%s\":%" PRIu64, first ? "" : ",",
                       llhttp_method_name((llhttp_method_t)m), st->by_method[m]);
        first = 0;
    }
    rm__buf_printf(out,
                   "},\"connections\":%" PRIu64 ",\"active\":%" PRIu64 ",\"faults\":%" PRIu64 "}\n",
                   st->connections, st->active, st->faults);
}
