/* dataplane/proxy/list.h — the intrusive doubly linked list used for sessions and pools. */
#ifndef REMORA_DATAPLANE_PROXY_LIST_H
#define REMORA_DATAPLANE_PROXY_LIST_H

#include "dataplane/proxy/proxy-t.h"

static inline void rm_list_init(rm_list_t *l)
{
    l->prev = l->next = l;
}

static inline bool rm_list_empty(const rm_list_t *l)
{
    return l->next == l;
}

static inline void rm_list_push_front(rm_list_t *head, rm_list_t *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

static inline void rm_list_push_back(rm_list_t *head, rm_list_t *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Unlinks n and leaves it self-linked, so a second remove is harmless.
 * (clang's analyzer cannot follow "free the element, then read head->next again" through an
 * intrusive list and reports a use after free in the callers' drain loops: a false positive.) */
static inline void rm_list_remove(rm_list_t *n)
{
    // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#endif /* REMORA_DATAPLANE_PROXY_LIST_H */
