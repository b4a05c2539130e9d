/* common/config/schema.c — the little the decoder and emitters need to know about protobuf-c
 * descriptors: document (camelCase) names, map entries, Duration, element sizes, presence, and
 * which ConfigSet list holds each document kind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/config/internal.h"

void rm__json_name(const char *proto_name, char *buf, size_t n)
{
    size_t o = 0, len = strlen(proto_name);
    int upper = 0;

    /* `base_` exists only because protobuf-c's structs already have a member `base`. */
    while (len > 0 && proto_name[len - 1] == '_')
        len--;
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        char c = proto_name[i];
        if (c == '_') {
            upper = 1;
            continue;
        }
        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        upper = 0;
        buf[o++] = c;
    }
    if (n > 0)
        buf[o] = '\0';
}

const ProtobufCFieldDescriptor *rm__field_by_json_name(const ProtobufCMessageDescriptor *desc,
                                                       const char *name, size_t len)
{
    for (unsigned i = 0; i < desc->n_fields; i++) {
        char jn[RM__NAME_BUF];
        rm__json_name(desc->fields[i].name, jn, sizeof(jn));
        if (strlen(jn) == len && memcmp(jn, name, len) == 0)
            return &desc->fields[i];
    }
    return NULL;
}

int rm__is_map_entry(const ProtobufCMessageDescriptor *desc)
{
    return desc != NULL && desc->n_fields == 2 && strcmp(desc->fields[0].name, "key") == 0 &&
           strcmp(desc->fields[1].name, "value") == 0 &&
           desc->fields[0].label != PROTOBUF_C_LABEL_REPEATED &&
           desc->fields[1].label != PROTOBUF_C_LABEL_REPEATED;
}

int rm__is_duration(const ProtobufCMessageDescriptor *desc)
{
    return desc == &remora__v1__duration__descriptor;
}

size_t rm__field_elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 0; /* float, double, bytes: not used by the config model */
    }
}

int rm__field_is_set(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)msg;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void *const *)(base + f->offset) != NULL;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return 1;
    /* proto3 without presence: set when not zero. */
    switch (rm__field_elem_size(f)) {
    case 4:
        return *(const uint32_t *)(base + f->offset) != 0;
    case 8:
        return *(const uint64_t *)(base + f->offset) != 0;
    default:
        return 0;
    }
}

const char *const rm__kind_names[RM__LIST_COUNT + 1] = {"Service", "Route", "CircuitBreaker", NULL};

const ProtobufCMessageDescriptor *rm__kind_descriptor(rm__list_t list)
{
    switch (list) {
    case RM__LIST_SERVICES:
        return &remora__v1__service__descriptor;
    case RM__LIST_ROUTES:
        return &remora__v1__route__descriptor;
    case RM__LIST_CIRCUIT_BREAKERS:
        return &remora__v1__circuit_breaker__descriptor;
    default:
        return NULL;
    }
}

size_t rm__list_len(const Remora__V1__ConfigSet *set, rm__list_t list)
{
    switch (list) {
    case RM__LIST_SERVICES:
        return set->n_services;
    case RM__LIST_ROUTES:
        return set->n_routes;
    default:
        return set->n_circuit_breakers;
    }
}

ProtobufCMessage *rm__list_get(const Remora__V1__ConfigSet *set, rm__list_t list, size_t i)
{
    switch (list) {
    case RM__LIST_SERVICES:
        return &set->services[i]->base;
    case RM__LIST_ROUTES:
        return &set->routes[i]->base;
    default:
        return &set->circuit_breakers[i]->base;
    }
}

/* Capacity is implied by the count (the next power of two), so the set needs no extra field. */
static int grow(void **items, size_t n)
{
    void *p;
    if (n != 0 && (n & (n - 1)) != 0)
        return 0;
    p = realloc(*items, (n ? n * 2 : 1) * sizeof(void *));
    if (p == NULL)
        return -ENOMEM;
    *items = p;
    return 0;
}

int rm__list_append(Remora__V1__ConfigSet *set, rm__list_t list, ProtobufCMessage *msg)
{
    void *items;
    switch (list) {
    case RM__LIST_SERVICES:
        items = set->services;
        if (grow(&items, set->n_services) < 0)
            return -ENOMEM;
        set->services = items;
        set->services[set->n_services++] = (Remora__V1__Service *)msg;
        return 0;
    case RM__LIST_ROUTES:
        items = set->routes;
        if (grow(&items, set->n_routes) < 0)
            return -ENOMEM;
        set->routes = items;
        set->routes[set->n_routes++] = (Remora__V1__Route *)msg;
        return 0;
    default:
        items = set->circuit_breakers;
        if (grow(&items, set->n_circuit_breakers) < 0)
            return -ENOMEM;
        set->circuit_breakers = items;
        set->circuit_breakers[set->n_circuit_breakers++] = (Remora__V1__CircuitBreaker *)msg;
        return 0;
    }
}
