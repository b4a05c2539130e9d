/* common/config/emit.c — prints a ConfigSet back as documents: multi-document YAML through
 * libyaml's emitter, or a JSON array through jansson. Like the decoder it walks the protobuf-c
 * descriptors, so both printers and the decoder agree on every field name; printing and loading
 * again gives an equal set (common/config/roundtrip_test.c checks it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "common/duration.h"
#include "common/config/internal.h"

static void *field_ptr(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    void *p;
    memcpy(&p, (const char *)m + f->offset, sizeof(p));
    return p;
}

static size_t field_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    size_t n;
    memcpy(&n, (const char *)m + f->quantifier_offset, sizeof(n));
    return n;
}

/* Field order for printing: `kind` first (documents start with it), then proto order. */
static void field_order(const ProtobufCMessageDescriptor *desc, unsigned *order)
{
    unsigned k = 0;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (strcmp(desc->fields[i].name, "kind") == 0)
            order[k++] = i;
    }
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (strcmp(desc->fields[i].name, "kind") != 0)
            order[k++] = i;
    }
}

/* A scalar of a non-message field, as text (value at p is one element of the field's type). */
static const char *scalar_text(const ProtobufCFieldDescriptor *f, const void *p, char *buf,
                               size_t n)
{
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    int64_t i64;
    protobuf_c_boolean b;

    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        memcpy(&u32, p, sizeof(u32));
        snprintf(buf, n, "%" PRIu32, u32);
        return buf;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        memcpy(&u64, p, sizeof(u64));
        snprintf(buf, n, "%" PRIu64, u64);
        return buf;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        memcpy(&i32, p, sizeof(i32));
        snprintf(buf, n, "%" PRId32, i32);
        return buf;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        memcpy(&i64, p, sizeof(i64));
        snprintf(buf, n, "%" PRId64, i64);
        return buf;
    case PROTOBUF_C_TYPE_BOOL:
        memcpy(&b, p, sizeof(b));
        return b ? "true" : "false";
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev;
        memcpy(&i32, p, sizeof(i32));
        ev = protobuf_c_enum_descriptor_get_value(f->descriptor, i32);
        return ev ? ev->name : NULL;
    }
    default:
        return NULL;
    }
}

/* ---- YAML ---- */

typedef struct out_buf {
    char *data;
    size_t len, cap;
    int nomem;
} out_buf_t;

static int write_cb(void *ctx, unsigned char *buffer, size_t size)
{
    out_buf_t *o = ctx;
    if (o->len + size + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        char *p;
        while (cap < o->len + size + 1)
            cap *= 2;
        p = realloc(o->data, cap);
        if (p == NULL) {
            o->nomem = 1;
            return 0;
        }
        o->data = p;
        o->cap = cap;
    }
    memcpy(o->data + o->len, buffer, size);
    o->len += size;
    o->data[o->len] = '\0';
    return 1;
}

static int y_emit(yaml_emitter_t *e, yaml_event_t *ev, int ok)
{
    if (!ok)
        return -1;
    return yaml_emitter_emit(e, ev) ? 0 : -1;
}

/*
 * Strings that YAML would read back as null (our decoder's "absent") must be quoted; any other
 * string may be plain, since string fields take plain scalars as text ("80", "true").
 */
static int y_string(yaml_emitter_t *e, const char *s)
{
    yaml_event_t ev;
    int null_like = *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
                    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
    return y_emit(e, &ev,
                  yaml_scalar_event_initialize(
                      &ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
                      null_like ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE));
}

static int y_plain(yaml_emitter_t *e, const char *s)
{
    yaml_event_t ev;
    return y_emit(e, &ev,
                  yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1,
                                               0, YAML_PLAIN_SCALAR_STYLE));
}

static int y_message(yaml_emitter_t *e, const ProtobufCMessage *m);

/* One value of field f stored at p (a member or an array element). */
static int y_value(yaml_emitter_t *e, const ProtobufCFieldDescriptor *f, const void *p)
{
    char buf[64];
    const char *text;
    void *ptr;

    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
        memcpy(&ptr, p, sizeof(ptr));
        if (ptr == NULL)
            return y_plain(e, "null");
        if (f->type == PROTOBUF_C_TYPE_STRING)
            return y_string(e, ptr);
        if (rm__is_duration(f->descriptor)) {
            const Remora__V1__Duration *d = ptr;
            rm_duration_format(d->has_millis ? d->millis : 0, buf, sizeof(buf));
            return y_plain(e, buf);
        }
        return y_message(e, ptr);
    }
    text = scalar_text(f, p, buf, sizeof(buf));
    return text ? y_plain(e, text) : -1;
}

static int y_field(yaml_emitter_t *e, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    yaml_event_t ev;
    char jn[RM__NAME_BUF];
    size_t n, elem;
    const char *arr;

    if (f->label != PROTOBUF_C_LABEL_REPEATED && !rm__field_is_set(m, f))
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED && field_count(m, f) == 0)
        return 0;
    rm__json_name(f->name, jn, sizeof(jn));
    if (y_plain(e, jn) < 0)
        return -1;
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return y_value(e, f, (const char *)m + f->offset);

    n = field_count(m, f);
    arr = field_ptr(m, f);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && rm__is_map_entry(f->descriptor)) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        if (y_emit(e, &ev,
                   yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                       YAML_ANY_MAPPING_STYLE)) < 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            const ProtobufCMessage *entry;
            memcpy(&entry, arr + i * sizeof(void *), sizeof(void *));
            if (y_value(e, &ed->fields[0], (const char *)entry + ed->fields[0].offset) < 0 ||
                y_value(e, &ed->fields[1], (const char *)entry + ed->fields[1].offset) < 0)
                return -1;
        }
        return y_emit(e, &ev, yaml_mapping_end_event_initialize(&ev));
    }
    elem = rm__field_elem_size(f);
    if (elem == 0)
        return -1;
    if (y_emit(e, &ev,
               yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_SEQUENCE_STYLE)) <
        0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (y_value(e, f, arr + i * elem) < 0)
            return -1;
    }
    return y_emit(e, &ev, yaml_sequence_end_event_initialize(&ev));
}

static int y_message(yaml_emitter_t *e, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    unsigned order[64] = {0};
    yaml_event_t ev;

    if (desc->n_fields > 64)
        return -1;
    field_order(desc, order);
    if (y_emit(e, &ev,
               yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)) <
        0)
        return -1;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (y_field(e, m, &desc->fields[order[i]]) < 0)
            return -1;
    }
    return y_emit(e, &ev, yaml_mapping_end_event_initialize(&ev));
}

char *rm_config_to_yaml(const Remora__V1__ConfigSet *set)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    out_buf_t out = {0};
    int rc, first = 1;

    if (!yaml_emitter_initialize(&e))
        return NULL;
    yaml_emitter_set_output(&e, write_cb, &out);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_emitter_set_indent(&e, 2);
    rc = y_emit(&e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    for (int l = 0; rc == 0 && l < RM__LIST_COUNT; l++) {
        for (size_t i = 0; rc == 0 && i < rm__list_len(set, (rm__list_t)l); i++) {
            rc =
                y_emit(&e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, first));
            if (rc == 0)
                rc = y_message(&e, rm__list_get(set, (rm__list_t)l, i));
            if (rc == 0)
                rc = y_emit(&e, &ev, yaml_document_end_event_initialize(&ev, 1));
            first = 0;
        }
    }
    if (rc == 0)
        rc = y_emit(&e, &ev, yaml_stream_end_event_initialize(&ev));
    if (rc == 0 && !yaml_emitter_flush(&e))
        rc = -1;
    yaml_emitter_delete(&e);
    if (rc < 0 || out.nomem) {
        free(out.data);
        return NULL;
    }
    if (out.data == NULL)
        out.data = calloc(1, 1);
    return out.data;
}

/* ---- JSON ---- */

static json_t *j_message(const ProtobufCMessage *m);

static json_t *j_value(const ProtobufCFieldDescriptor *f, const void *p)
{
    char buf[64];
    void *ptr;

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        memcpy(&ptr, p, sizeof(ptr));
        return ptr ? json_string(ptr) : json_null();
    case PROTOBUF_C_TYPE_MESSAGE:
        memcpy(&ptr, p, sizeof(ptr));
        if (ptr == NULL)
            return json_null();
        if (rm__is_duration(f->descriptor)) {
            const Remora__V1__Duration *d = ptr;
            rm_duration_format(d->has_millis ? d->millis : 0, buf, sizeof(buf));
            return json_string(buf);
        }
        return j_message(ptr);
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean b;
        memcpy(&b, p, sizeof(b));
        return json_boolean(b);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t u;
        memcpy(&u, p, sizeof(u));
        /* jansson integers are signed 64-bit; a larger value cannot be printed exactly. */
        return u <= INT64_MAX ? json_integer((json_int_t)u) : NULL;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const char *t = scalar_text(f, p, buf, sizeof(buf));
        return t ? json_string(t) : NULL;
    }
    default: {
        const char *t = scalar_text(f, p, buf, sizeof(buf));
        return t ? json_integer((json_int_t)strtoll(t, NULL, 10)) : NULL;
    }
    }
}

static json_t *j_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    size_t n, elem;
    const char *arr;
    json_t *out;

    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return j_value(f, (const char *)m + f->offset);
    n = field_count(m, f);
    arr = field_ptr(m, f);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && rm__is_map_entry(f->descriptor)) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        out = json_object();
        for (size_t i = 0; out != NULL && i < n; i++) {
            const ProtobufCMessage *entry;
            char kbuf[64];
            const char *key;
            json_t *val;
            memcpy(&entry, arr + i * sizeof(void *), sizeof(void *));
            if (ed->fields[0].type == PROTOBUF_C_TYPE_STRING)
                key = field_ptr(entry, &ed->fields[0]);
            else
                key = scalar_text(&ed->fields[0], (const char *)entry + ed->fields[0].offset, kbuf,
                                  sizeof(kbuf));
            val = j_value(&ed->fields[1], (const char *)entry + ed->fields[1].offset);
            if (key == NULL || val == NULL || json_object_set_new(out, key, val) < 0) {
                json_decref(val);
                json_decref(out);
                out = NULL;
            }
        }
        return out;
    }
    elem = rm__field_elem_size(f);
    out = elem ? json_array() : NULL;
    for (size_t i = 0; out != NULL && i < n; i++) {
        if (json_array_append_new(out, j_value(f, arr + i * elem)) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

static json_t *j_message(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    unsigned order[64] = {0};
    json_t *obj;

    if (desc->n_fields > 64)
        return NULL;
    field_order(desc, order);
    obj = json_object();
    for (unsigned i = 0; obj != NULL && i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[order[i]];
        char jn[RM__NAME_BUF];
        json_t *val;
        if (f->label == PROTOBUF_C_LABEL_REPEATED ? field_count(m, f) == 0
                                                  : !rm__field_is_set(m, f))
            continue;
        rm__json_name(f->name, jn, sizeof(jn));
        val = j_field(m, f);
        if (val == NULL || json_object_set_new(obj, jn, val) < 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

/*
 * JSON allows DEL, the C1 controls, U+2028/U+2029 and U+FFFE/U+FFFF raw inside strings; YAML
 * (which we read JSON with) refuses some of them and reads NEL, LS and PS as line breaks. jansson
 * prints them raw, so they are re-escaped as \uXXXX here. They can only occur inside strings,
 * where the escape means the same character. Returns the length of the sequence at s to escape
 * (0: none) and its code point.
 */
static size_t needs_escape(const unsigned char *s, unsigned *cp)
{
    if (s[0] == 0x7f) {
        *cp = 0x7f;
        return 1;
    }
    if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
        *cp = s[1];
        return 2;
    }
    if (s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9)) {
        *cp = 0x2000u | (s[2] & 0x3fu);
        return 3;
    }
    if (s[0] == 0xef && s[1] == 0xbf && (s[2] == 0xbe || s[2] == 0xbf)) {
        *cp = 0xffc0u | (s[2] & 0x3fu);
        return 3;
    }
    return 0;
}

static char *escape_for_yaml(char *json)
{
    const unsigned char *s = (const unsigned char *)json;
    size_t extra = 0, o = 0, k;
    unsigned cp;
    char *out;

    for (size_t i = 0; s[i]; i++)
        extra += needs_escape(s + i, &cp) ? 6 : 0;
    if (extra == 0)
        return json;
    out = malloc(strlen(json) + extra + 1);
    if (out == NULL) {
        free(json);
        return NULL;
    }
    for (size_t i = 0; s[i];) {
        if ((k = needs_escape(s + i, &cp)) > 0) {
            o += (size_t)sprintf(out + o, "\\u%04x", cp);
            i += k;
        } else {
            out[o++] = (char)s[i++];
        }
    }
    out[o] = '\0';
    free(json);
    return out;
}

char *rm_config_to_json(const Remora__V1__ConfigSet *set)
{
    json_t *arr = json_array();
    char *out;

    for (int l = 0; arr != NULL && l < RM__LIST_COUNT; l++) {
        for (size_t i = 0; arr != NULL && i < rm__list_len(set, (rm__list_t)l); i++) {
            if (json_array_append_new(arr, j_message(rm__list_get(set, (rm__list_t)l, i))) < 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
    }
    if (arr == NULL)
        return NULL;
    out = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(arr);
    return out ? escape_for_yaml(out) : NULL;
}
