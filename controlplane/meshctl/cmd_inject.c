/* controlplane/meshctl/cmd_inject.c — `meshctl inject -f MANIFEST`: the webhook's injection,
 * applied offline to every Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and CronJob
 * of a multi-document manifest (the same code: //injector:patch). Other documents pass through
 * unchanged. Output: the documents as JSON (valid YAML), `---` between them, for kubectl apply.
 *
 * YAML scalars are typed by YAML 1.2's core schema: plain true/false, null/~, integers and
 * floats become JSON values; everything else, and every quoted scalar, is a string.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "controlplane/meshctl/meshctl.h"
#include "injector/patch.h"

#define MAX_MANIFEST (16u * 1024u * 1024u)
#define MAX_DEPTH    64

static json_t *scalar_json(const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(v, len);
    if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0)
        return json_true();
    if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0)
        return json_false();
    if (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0)
        return json_null();
    char *end;
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (*end == '\0' && errno == 0 && (v[0] == '-' || v[0] == '+' || (v[0] >= '0' && v[0] <= '9')))
        return json_integer(i);
    double d = strtod(v, &end);
    if (*end == '\0' && (v[0] == '-' || v[0] == '.' || (v[0] >= '0' && v[0] <= '9')))
        return json_real(d);
    return json_stringn(v, len);
}

/* The YAML node tree of one document as JSON. Returns NULL (with err) on aliases' cycles,
 * nesting past MAX_DEPTH, or non-string keys. */
static json_t *node_json(yaml_document_t *doc, yaml_node_t *n, int depth, char *err, size_t errlen)
{
    if (n == NULL || depth > MAX_DEPTH) {
        snprintf(err, errlen, "nesting deeper than %d", MAX_DEPTH);
        return NULL;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return scalar_json(n);
    case YAML_SEQUENCE_NODE: {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            json_t *v = node_json(doc, yaml_document_get_node(doc, *it), depth + 1, err, errlen);
            if (v == NULL) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    case YAML_MAPPING_NODE: {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (k == NULL || k->type != YAML_SCALAR_NODE) {
                snprintf(err, errlen, "line %zu: mapping keys must be strings",
                         k ? k->start_mark.line + 1 : 0);
                json_decref(o);
                return NULL;
            }
            json_t *v =
                node_json(doc, yaml_document_get_node(doc, p->value), depth + 1, err, errlen);
            if (v == NULL) {
                json_decref(o);
                return NULL;
            }
            json_object_setn_new(o, (const char *)k->data.scalar.value, k->data.scalar.length, v);
        }
        return o;
    }
    default:
        snprintf(err, errlen, "unsupported YAML node");
        return NULL;
    }
}

int rm__cmd_inject(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv)
{
    static const rm__opt_spec_t spec[] = {
        {"filename", 'f', 1}, {"sidecar-mode", 0, 1}, {"control-plane", 0, 1}, {NULL, 0, 0}};
    rm__args_t a;
    int rc = rm__args_parse(cli, cmd, spec, argc, argv, 0, &a);
    if (rc != 0)
        return rc == RM__ARGS_HELP ? RM__EXIT_OK : rc;
    const char *path = rm__arg(&a, 0);
    if (path == NULL) {
        fputs("meshctl inject: -f MANIFEST is required ('-' reads stdin)\n"
              "  see 'meshctl inject -h'\n",
              stderr);
        return RM__EXIT_REJECTED;
    }
    rm_inject_opts_t opts;
    rm_inject_opts_default(&opts);
    const char *mode = rm__arg(&a, 1);
    if (mode != NULL) {
        if (strcmp(mode, "native") == 0) {
            opts.mode = RM_INJECT_MODE_NATIVE;
        } else if (strcmp(mode, "classic") == 0) {
            opts.mode = RM_INJECT_MODE_CLASSIC;
        } else {
            fprintf(stderr, "meshctl inject: --sidecar-mode %s: must be native or classic\n", mode);
            return RM__EXIT_REJECTED;
        }
    }
    if (rm__arg(&a, 2) != NULL)
        opts.control_plane = rm__arg(&a, 2);

    size_t len = 0;
    char *src = rm__read_all("inject", path, MAX_MANIFEST, &len);
    if (src == NULL)
        return RM__EXIT_REJECTED;
    const char *fname = strcmp(path, "-") == 0 ? "<stdin>" : path;
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)src, len);
    json_t *out = json_array();
    int status = RM__EXIT_OK, ndoc = 0;
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            fprintf(stderr, "meshctl inject: %s:%zu:%zu: %s\n", fname, parser.problem_mark.line + 1,
                    parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "invalid YAML");
            status = RM__EXIT_REJECTED;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root == NULL) { /* end of the stream */
            yaml_document_delete(&doc);
            break;
        }
        ndoc++;
        char err[512] = "";
        json_t *obj = node_json(&doc, root, 0, err, sizeof(err));
        size_t line = root->start_mark.line + 1;
        yaml_document_delete(&doc);
        if (obj == NULL) {
            fprintf(stderr, "meshctl inject: %s: document %d: %s\n", fname, ndoc, err);
            status = RM__EXIT_REJECTED;
            break;
        }
        const char *reason = NULL;
        int r = json_is_object(obj) ? rm_inject_object(obj, &opts, &reason, err, sizeof(err)) : 0;
        if (r < 0) {
            fprintf(stderr, "meshctl inject: %s:%zu: document %d: %s\n", fname, line, ndoc, err);
            json_decref(obj);
            status = RM__EXIT_REJECTED;
            break;
        }
        if (r == 0 && reason != NULL) {
            const char *kind = json_string_value(json_object_get(obj, "kind"));
            fprintf(stderr, "meshctl inject: document %d (%s) left unchanged: %s\n", ndoc,
                    kind ? kind : "?", reason);
        }
        json_array_append_new(out, obj);
    }
    yaml_parser_delete(&parser);
    free(src);
    if (status == RM__EXIT_OK) {
        /* Nothing is printed unless every document was handled: never half a manifest. */
        for (size_t i = 0; i < json_array_size(out); i++) {
            char *s = json_dumps(json_array_get(out, i), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            if (s != NULL)
                printf("%s%s\n", i ? "---\n" : "", s);
            free(s);
        }
    }
    json_decref(out);
    return status;
}
