/* injector/patch.c — builds the sidecar-injection JSONPatch and answers AdmissionReviews.
 *
 * Only "add" operations are emitted, so nothing a user wrote is ever replaced or removed. The
 * pod is marked with remora.io/status, and a pod that carries it (or a container named like ours)
 * is left alone, which makes the webhook safe under reinvocationPolicy: IfNeeded.
 *
 * App probes: the proxy intercepts every inbound TCP port, so a kubelet probe to the app would
 * land on the proxy's inbound listener, which routes by the mesh's config and would fail the
 * probe while the proxy is not ready. Rather than rewriting probes through the admin port (which
 * the proxy cannot serve), the ports of every httpGet/tcpSocket/grpc probe of the app containers
 * are added to remora-init's --exclude-inbound-ports, so the kubelet reaches the app directly.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/cidr.h"
#include "common/version.h"
#include "injector/patch.h"

#define MAX_PORTS 64
#define MAX_CIDRS 64

void rm_inject_opts_default(rm_inject_opts_t *o)
{
    o->proxy_image = "remora/proxy:" RM_VERSION;
    o->init_image = "remora/init:" RM_VERSION;
    o->control_plane = "remora-control.remora-system.svc:15010";
    o->mode = RM_INJECT_MODE_NATIVE;
    o->proxy_uid = 1337;
    o->outbound_port = 15001;
    o->inbound_port = 15006;
    o->admin_port = 15000;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A sorted, duplicate-free list of ports. */
typedef struct port_set {
    int n;
    int port[MAX_PORTS];
} port_set_t;

static int port_set_add(port_set_t *s, int port)
{
    int i;
    for (i = 0; i < s->n; i++) {
        if (s->port[i] == port)
            return 0;
    }
    if (s->n == MAX_PORTS)
        return -1;
    for (i = s->n; i > 0 && s->port[i - 1] > port; i--)
        s->port[i] = s->port[i - 1];
    s->port[i] = port;
    s->n++;
    return 0;
}

static void port_set_format(const port_set_t *s, char *out, size_t outlen)
{
    size_t off = 0;
    out[0] = '\0';
    for (int i = 0; i < s->n && off < outlen; i++)
        off += (size_t)snprintf(out + off, outlen - off, "%s%d", i ? "," : "", s->port[i]);
}

/* Splits a comma-separated annotation value; calls fn on each trimmed, non-empty item. */
static int split_list(const char *value, int (*fn)(const char *item, void *arg), void *arg)
{
    char item[64];
    const char *p = value;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && isspace((unsigned char)*p)) {
            p++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        if (n >= sizeof(item))
            return -1;
        if (n > 0) {
            memcpy(item, p, n);
            item[n] = '\0';
            if (fn(item, arg) < 0)
                return -1;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

static int parse_port(const char *s)
{
    char *end;
    long v;
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > 65535)
        return -1;
    return (int)v;
}

static int add_port_item(const char *item, void *arg)
{
    int port = parse_port(item);
    if (port < 0)
        return -1;
    return port_set_add(arg, port);
}

typedef struct cidr_list {
    int n;
    char text[MAX_CIDRS][RM_CIDR_BUF]; /* normalized: "10.0.0.0/8", "fd00::/8" */
} cidr_list_t;

/* IPv4 and IPv6, the same strings remora-init accepts (common/cidr.h); it sorts them into
 * iptables and ip6tables. */
static int add_cidr_item(const char *item, void *arg)
{
    cidr_list_t *l = arg;
    if (l->n == MAX_CIDRS || rm_cidr_parse(item, l->text[l->n], sizeof(l->text[0])) < 0)
        return -1;
    l->n++;
    return 0;
}

/* A Kubernetes resource quantity, the common forms: 100m, 0.5, 128Mi, 1G, 2e3. */
static int valid_quantity(const char *s)
{
    static const char *const suffixes[] = {"",  "m",  "k",  "M",  "G",  "T",  "P",
                                           "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    const char *p = s;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
    }
    if (digits == 0 || digits > 18)
        return 0;
    if ((*p == 'e' || *p == 'E') && isdigit((unsigned char)p[1])) {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
        return *p == '\0';
    }
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(p, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

/* JSON pointer token escaping (RFC 6901): "~" -> "~0", "/" -> "~1". */
static void pointer_join(char *out, size_t outlen, const char *base, const char *token)
{
    size_t off = (size_t)snprintf(out, outlen, "%s/", base);
    for (const char *p = token; *p && off + 3 < outlen; p++) {
        if (*p == '~' || *p == '/') {
            out[off++] = '~';
            out[off++] = *p == '~' ? '0' : '1';
        } else {
            out[off++] = *p;
        }
    }
    out[off < outlen ? off : outlen - 1] = '\0';
}

static int patch_add(json_t *patch, const char *path, json_t *value /* stolen */)
{
    json_t *op;
    if (value == NULL)
        return -1;
    op = json_pack("{s:s, s:s, s:o}", "op", "add", "path", path, "value", value);
    if (op == NULL)
        return -1;
    return json_array_append_new(patch, op);
}

static const char *annotation(const json_t *annotations, const char *key)
{
    const json_t *v = json_object_get(annotations, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int has_container_named(const json_t *list, const char *name)
{
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c)
    {
        const json_t *n = json_object_get(c, "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return 1;
    }
    return 0;
}

/* The port a probe handler names: a number, or a named port of the same container. */
static int probe_port(const json_t *container, const json_t *port)
{
    size_t i;
    const json_t *p;
    if (json_is_integer(port)) {
        json_int_t v = json_integer_value(port);
        return v >= 1 && v <= 65535 ? (int)v : -1;
    }
    if (!json_is_string(port))
        return -1;
    json_array_foreach(json_object_get(container, "ports"), i, p)
    {
        const json_t *name = json_object_get(p, "name");
        const json_t *num = json_object_get(p, "containerPort");
        if (json_is_string(name) && strcmp(json_string_value(name), json_string_value(port)) == 0 &&
            json_is_integer(num) && json_integer_value(num) >= 1 &&
            json_integer_value(num) <= 65535)
            return (int)json_integer_value(num);
    }
    return parse_port(json_string_value(port));
}

static int collect_probe_ports(const json_t *containers, port_set_t *set)
{
    static const char *const probes[] = {"readinessProbe", "livenessProbe", "startupProbe"};
    static const char *const handlers[] = {"httpGet", "tcpSocket", "grpc"};
    size_t i;
    const json_t *c;
    json_array_foreach(containers, i, c)
    {
        for (size_t p = 0; p < 3; p++) {
            const json_t *probe = json_object_get(c, probes[p]);
            for (size_t h = 0; h < 3; h++) {
                const json_t *handler = json_object_get(probe, handlers[h]);
                int port = probe_port(c, json_object_get(handler, "port"));
                if (port > 0 && port_set_add(set, port) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

/* The first TCP containerPort of the first app container: where inbound traffic is delivered. */
static int app_port(const json_t *containers)
{
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(json_array_get(containers, 0), "ports"), i, p)
    {
        const json_t *proto = json_object_get(p, "protocol");
        const json_t *num = json_object_get(p, "containerPort");
        if (proto && (!json_is_string(proto) || strcmp(json_string_value(proto), "TCP") != 0))
            continue;
        if (json_is_integer(num) && json_integer_value(num) >= 1 &&
            json_integer_value(num) <= 65535)
            return (int)json_integer_value(num);
    }
    return 0;
}

/* One egress item: a DNS label, optionally ".namespace" (another DNS label). */
static int egress_item_ok(const char *p, size_t n)
{
    size_t label = 0, dots = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '.') {
            if (label == 0 || p[i - 1] == '-' || ++dots > 1)
                return 0;
            label = 0;
        } else if (islower(ch) || isdigit(ch) || (ch == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0 && p[n - 1] != '-';
}

/* remora.io/egress, checked here so a typo denies the admission instead of leaving a proxy
 * that the control plane refuses; written back without blanks. Returns 0 or -1. */
static int normalize_egress(const char *v, char *out, size_t outlen)
{
    size_t off = 0;
    const char *p = v;
    out[0] = '\0';
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *q = p;
        while (n > 0 && isspace((unsigned char)*q)) {
            q++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)q[n - 1]))
            n--;
        if (n > 0) {
            if (!egress_item_ok(q, n) || off + n + 2 > outlen)
                return -1;
            if (off > 0)
                out[off++] = ',';
            memcpy(out + off, q, n);
            off += n;
            out[off] = '\0';
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return off > 0 ? 0 : -1;
}

static json_t *env_field(const char *name, const char *field)
{
    return json_pack("{s:s, s:{s:{s:s}}}", "name", name, "valueFrom", "fieldRef", "fieldPath",
                     field);
}

static json_t *env_value(const char *name, const char *value)
{
    return json_pack("{s:s, s:s}", "name", name, "value", value);
}

static json_t *http_probe(const char *path, int port, int period, int failures)
{
    return json_pack("{s:{s:s, s:i}, s:i, s:i, s:i}", "httpGet", "path", path, "port", port,
                     "periodSeconds", period, "failureThreshold", failures, "timeoutSeconds", 1);
}

static json_t *proxy_container(const rm_inject_opts_t *o, const char *service, const char *version,
                               int app, long drain, const char *cpu, const char *memory,
                               const char *egress)
{
    char num[4][16];
    json_t *c, *env;
    snprintf(num[0], sizeof(num[0]), "%d", o->outbound_port);
    snprintf(num[1], sizeof(num[1]), "%d", o->inbound_port);
    snprintf(num[2], sizeof(num[2]), "%d", o->admin_port);
    snprintf(num[3], sizeof(num[3]), "%ld", drain);
    /* Identity goes in the environment, which remora-proxy reads; the pod's name, namespace and
     * IP are only known once the pod is scheduled, hence the downward API. */
    env = json_pack("[o, o, o, o, o, o, o]", env_field("POD_NAME", "metadata.name"),
                    env_field("POD_NAMESPACE", "metadata.namespace"),
                    env_field("POD_IP", "status.podIP"), env_value("REMORA_SERVICE", service),
                    env_value("REMORA_VERSION", version), env_value("REMORA_DRAIN_SECONDS", num[3]),
                    env_value("REMORA_CONTROL_PLANE", o->control_plane));
    if (env == NULL)
        return NULL;
    if (app > 0) {
        char p[16];
        snprintf(p, sizeof(p), "%d", app);
        if (json_array_append_new(env, env_value("REMORA_APP_PORT", p)) < 0)
            goto fail_env;
    }
    /* Only when the pod asked: no variable means "every service", the proxy's default. */
    if (egress != NULL && *egress != '\0' &&
        json_array_append_new(env, env_value("REMORA_EGRESS", egress)) < 0)
        goto fail_env;
    c = json_pack("{s:s, s:s, s:[s], s:[s,s,s,s,s,s,s,s,s,s], s:o,"
                  " s:[{s:s, s:i, s:s}], s:o, s:o, s:o,"
                  " s:{s:{s:s, s:s}},"
                  " s:{s:i, s:i, s:b, s:b, s:b, s:b, s:{s:[s]}}}",
                  "name", RM_INJECT_PROXY_NAME, "image", o->proxy_image, "command", "remora-proxy",
                  "args", "--control-plane", o->control_plane, "--outbound-port", num[0],
                  "--inbound-port", num[1], "--admin-port", num[2], "--drain-seconds", num[3],
                  "env", env, "ports", "name", "remora-admin", "containerPort", o->admin_port,
                  "protocol", "TCP", "readinessProbe", http_probe("/ready", o->admin_port, 2, 3),
                  /* /healthz, not /ready: /ready waits for the app, which (for a native sidecar)
                   * only starts once this startup probe has passed. */
                  "startupProbe", http_probe("/healthz", o->admin_port, 1, 60), "livenessProbe",
                  http_probe("/healthz", o->admin_port, 10, 3), "resources", "requests", "cpu", cpu,
                  "memory", memory, "securityContext", "runAsUser", o->proxy_uid, "runAsGroup",
                  o->proxy_uid, "runAsNonRoot", 1, "allowPrivilegeEscalation", 0,
                  "readOnlyRootFilesystem", 1, "privileged", 0, "capabilities", "drop", "ALL");
    if (c == NULL)
        return NULL; /* json_pack released env ("o" steals even on failure) */
    if (o->mode == RM_INJECT_MODE_NATIVE &&
        json_object_set_new(c, "restartPolicy", json_string("Always")) < 0) {
        json_decref(c);
        return NULL;
    }
    return c;
fail_env:
    json_decref(env);
    return NULL;
}

static json_t *init_container(const rm_inject_opts_t *o, const port_set_t *in_ports,
                              const port_set_t *out_ports, const cidr_list_t *cidrs)
{
    char buf[MAX_PORTS * 6 + 1 > MAX_CIDRS * RM_CIDR_BUF ? MAX_PORTS * 6 + 1
                                                         : MAX_CIDRS * RM_CIDR_BUF];
    char num[4][16];
    json_t *c, *args;
    snprintf(num[0], sizeof(num[0]), "%d", o->proxy_uid);
    snprintf(num[1], sizeof(num[1]), "%d", o->outbound_port);
    snprintf(num[2], sizeof(num[2]), "%d", o->inbound_port);
    snprintf(num[3], sizeof(num[3]), "%d", o->admin_port);
    args = json_pack("[s,s,s,s,s,s,s,s]", "--proxy-uid", num[0], "--outbound-port", num[1],
                     "--inbound-port", num[2], "--admin-port", num[3]);
    if (args == NULL)
        return NULL;
    if (in_ports->n > 0) {
        port_set_format(in_ports, buf, sizeof(buf));
        if (json_array_append_new(args, json_string("--exclude-inbound-ports")) < 0 ||
            json_array_append_new(args, json_string(buf)) < 0)
            goto fail;
    }
    if (out_ports->n > 0) {
        port_set_format(out_ports, buf, sizeof(buf));
        if (json_array_append_new(args, json_string("--exclude-outbound-ports")) < 0 ||
            json_array_append_new(args, json_string(buf)) < 0)
            goto fail;
    }
    if (cidrs->n > 0) {
        size_t off = 0;
        buf[0] = '\0';
        for (int i = 0; i < cidrs->n; i++)
            off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? "," : "",
                                    cidrs->text[i]);
        if (json_array_append_new(args, json_string("--exclude-outbound-cidrs")) < 0 ||
            json_array_append_new(args, json_string(buf)) < 0)
            goto fail;
    }
    c = json_pack("{s:s, s:s, s:[s], s:o, s:{s:{s:s, s:s}},"
                  " s:{s:i, s:i, s:b, s:b, s:b, s:{s:[s,s], s:[s]}}}",
                  "name", RM_INJECT_INIT_NAME, "image", o->init_image, "command", "remora-init",
                  "args", args, "resources", "requests", "cpu", "10m", "memory", "16Mi",
                  /* root with NET_ADMIN/NET_RAW only for iptables; nothing else is granted. */
                  "securityContext", "runAsUser", 0, "runAsGroup", 0, "runAsNonRoot", 0,
                  "allowPrivilegeEscalation", 0, "privileged", 0, "capabilities", "add",
                  "NET_ADMIN", "NET_RAW", "drop", "ALL");
    return c;
fail:
    json_decref(args);
    return NULL;
}

int rm_inject_pod_patch(const json_t *metadata, const json_t *spec, const char *meta_path,
                        const char *spec_path, const rm_inject_opts_t *o, json_t **patch_out,
                        const char **reason, char *err, size_t errlen)
{
    const json_t *annotations, *labels, *containers, *inits;
    const char *v, *service = "", *version = "", *cpu = "100m", *memory = "64Mi";
    port_set_t in_ports = {0}, out_ports = {0};
    cidr_list_t cidrs = {0};
    long drain = 30;
    char path[512], egress[4096] = "";
    json_t *patch = NULL, *proxy = NULL, *init = NULL;

    *patch_out = NULL;
    *reason = NULL;
    if (metadata != NULL && !json_is_object(metadata)) {
        seterr(err, errlen, "metadata is not an object");
        return RM_INJECT_EBADPOD;
    }
    if (!json_is_object(spec)) {
        seterr(err, errlen, "pod spec is missing or not an object");
        return RM_INJECT_EBADPOD;
    }
    containers = json_object_get(spec, "containers");
    inits = json_object_get(spec, "initContainers");
    if (!json_is_array(containers) || json_array_size(containers) == 0) {
        seterr(err, errlen, "pod spec has no containers");
        return RM_INJECT_EBADPOD;
    }
    if (inits != NULL && !json_is_array(inits)) {
        seterr(err, errlen, "pod spec's initContainers is not an array");
        return RM_INJECT_EBADPOD;
    }
    annotations = json_object_get(metadata, "annotations");
    labels = json_object_get(metadata, "labels");
    if (annotations != NULL && !json_is_object(annotations)) {
        seterr(err, errlen, "metadata.annotations is not an object");
        return RM_INJECT_EBADPOD;
    }

    v = annotation(annotations, RM_INJECT_ANN_INJECT);
    if (v != NULL && (strcmp(v, "false") == 0 || strcmp(v, "disabled") == 0)) {
        *reason = "opted out with remora.io/inject";
        return 0;
    }
    if (annotation(annotations, RM_INJECT_ANN_STATUS) != NULL ||
        has_container_named(containers, RM_INJECT_PROXY_NAME) ||
        has_container_named(inits, RM_INJECT_PROXY_NAME) ||
        has_container_named(inits, RM_INJECT_INIT_NAME)) {
        *reason = "already injected";
        return 0;
    }
    if (json_is_true(json_object_get(spec, "hostNetwork"))) {
        /* iptables rules would land in the node's network namespace. */
        *reason = "host network pod";
        return 0;
    }

    if ((v = annotation(annotations, RM_INJECT_ANN_EXCL_IN_PORTS)) &&
        split_list(v, add_port_item, &in_ports) < 0) {
        seterr(err, errlen, "annotation %s: \"%s\" is not a comma-separated list of ports 1-65535",
               RM_INJECT_ANN_EXCL_IN_PORTS, v);
        return RM_INJECT_EDENY;
    }
    if ((v = annotation(annotations, RM_INJECT_ANN_EXCL_OUT_PORTS)) &&
        split_list(v, add_port_item, &out_ports) < 0) {
        seterr(err, errlen, "annotation %s: \"%s\" is not a comma-separated list of ports 1-65535",
               RM_INJECT_ANN_EXCL_OUT_PORTS, v);
        return RM_INJECT_EDENY;
    }
    if ((v = annotation(annotations, RM_INJECT_ANN_EXCL_OUT_CIDRS)) &&
        split_list(v, add_cidr_item, &cidrs) < 0) {
        seterr(err, errlen,
               "annotation %s: \"%s\" is not a comma-separated list of IPv4 or IPv6 CIDRs "
               "(10.0.0.0/8, fd00::/8)",
               RM_INJECT_ANN_EXCL_OUT_CIDRS, v);
        return RM_INJECT_EDENY;
    }
    if ((v = annotation(annotations, RM_INJECT_ANN_PROXY_CPU))) {
        if (!valid_quantity(v)) {
            seterr(err, errlen, "annotation %s: \"%s\" is not a CPU quantity (100m, 0.5, 2)",
                   RM_INJECT_ANN_PROXY_CPU, v);
            return RM_INJECT_EDENY;
        }
        cpu = v;
    }
    if ((v = annotation(annotations, RM_INJECT_ANN_PROXY_MEMORY))) {
        if (!valid_quantity(v)) {
            seterr(err, errlen, "annotation %s: \"%s\" is not a memory quantity (64Mi, 1Gi)",
                   RM_INJECT_ANN_PROXY_MEMORY, v);
            return RM_INJECT_EDENY;
        }
        memory = v;
    }
    {
        const json_t *grace = json_object_get(spec, "terminationGracePeriodSeconds");
        if (json_is_integer(grace) && json_integer_value(grace) >= 0 &&
            json_integer_value(grace) <= 86400)
            drain = (long)json_integer_value(grace);
    }
    if ((v = annotation(annotations, RM_INJECT_ANN_DRAIN_SECONDS))) {
        int d = isdigit((unsigned char)v[0]) && strlen(v) <= 5 ? atoi(v) : -1;
        for (const char *p = v; d >= 0 && *p; p++) {
            if (!isdigit((unsigned char)*p))
                d = -1;
        }
        if (d < 0 || d > 86400) {
            seterr(err, errlen, "annotation %s: \"%s\" is not a number of seconds (0-86400)",
                   RM_INJECT_ANN_DRAIN_SECONDS, v);
            return RM_INJECT_EDENY;
        }
        drain = d;
    }
    if ((v = annotation(annotations, RM_INJECT_ANN_EGRESS))) {
        if (normalize_egress(v, egress, sizeof(egress)) < 0) {
            seterr(err, errlen,
                   "annotation %s: \"%s\" is not a comma-separated list of service names "
                   "(name or name.namespace: lower-case letters, digits, '-')",
                   RM_INJECT_ANN_EGRESS, v);
            return RM_INJECT_EDENY;
        }
    }
    if (collect_probe_ports(containers, &in_ports) < 0) {
        seterr(err, errlen, "more than %d inbound ports to exclude", MAX_PORTS);
        return RM_INJECT_EDENY;
    }
    if ((v = annotation(labels, "app")))
        service = v;
    if ((v = annotation(labels, "version")))
        version = v;

    patch = json_array();
    proxy = proxy_container(o, service, version, app_port(containers), drain, cpu, memory, egress);
    init = init_container(o, &in_ports, &out_ports, &cidrs);
    if (patch == NULL || proxy == NULL || init == NULL)
        goto nomem;

    /* Mark the pod first, so the patch is recognisably ours. */
    if (metadata == NULL) {
        if (patch_add(patch, meta_path,
                      json_pack("{s:{s:s}}", "annotations", RM_INJECT_ANN_STATUS, "injected")) < 0)
            goto nomem;
    } else if (annotations == NULL) {
        snprintf(path, sizeof(path), "%s/annotations", meta_path);
        if (patch_add(patch, path, json_pack("{s:s}", RM_INJECT_ANN_STATUS, "injected")) < 0)
            goto nomem;
    } else {
        char base[512];
        snprintf(base, sizeof(base), "%s/annotations", meta_path);
        pointer_join(path, sizeof(path), base, RM_INJECT_ANN_STATUS);
        if (patch_add(patch, path, json_string("injected")) < 0)
            goto nomem;
    }

    if (o->mode == RM_INJECT_MODE_NATIVE) {
        /* remora-init first, then the proxy, then the user's init containers: those then run with
         * the mesh already in place. */
        if (inits == NULL) {
            snprintf(path, sizeof(path), "%s/initContainers", spec_path);
            if (patch_add(patch, path, json_pack("[o, o]", init, proxy)) < 0)
                goto nomem_taken;
        } else {
            snprintf(path, sizeof(path), "%s/initContainers/0", spec_path);
            if (patch_add(patch, path, init) < 0)
                goto nomem_proxy;
            snprintf(path, sizeof(path), "%s/initContainers/1", spec_path);
            if (patch_add(patch, path, proxy) < 0)
                goto nomem_taken;
        }
    } else {
        /* Classic: redirect last, so the user's init containers (which run before any proxy
         * exists) keep a working network. */
        if (inits == NULL) {
            snprintf(path, sizeof(path), "%s/initContainers", spec_path);
            if (patch_add(patch, path, json_pack("[o]", init)) < 0)
                goto nomem_proxy;
        } else {
            snprintf(path, sizeof(path), "%s/initContainers/-", spec_path);
            if (patch_add(patch, path, init) < 0)
                goto nomem_proxy;
        }
        snprintf(path, sizeof(path), "%s/containers/-", spec_path);
        if (patch_add(patch, path, proxy) < 0)
            goto nomem_taken;
    }
    *patch_out = patch;
    return 1;

nomem:
    json_decref(init);
nomem_proxy:
    json_decref(proxy);
nomem_taken:
    json_decref(patch);
    seterr(err, errlen, "out of memory");
    return RM_INJECT_ENOMEM;
}

/* Resolves one RFC 6901 token in place (~1 -> /, ~0 -> ~); returns -1 on a bad escape. */
static int unescape_token(char *t)
{
    char *w = t;
    for (char *r = t; *r; r++) {
        if (*r == '~') {
            if (r[1] == '0')
                *w++ = '~';
            else if (r[1] == '1')
                *w++ = '/';
            else
                return -1;
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return 0;
}

static int array_index(const char *t, size_t size, size_t *out)
{
    char *end;
    unsigned long v;
    if (!isdigit((unsigned char)t[0]) || (t[0] == '0' && t[1] != '\0'))
        return -1;
    errno = 0;
    v = strtoul(t, &end, 10);
    if (errno || *end || v > size)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int apply_add(json_t *doc, const char *path, const json_t *value, char *err, size_t errlen)
{
    char *copy, *tok, *next;
    json_t *cur = doc, *v;
    int rc = -1;
    if (path[0] != '/') {
        seterr(err, errlen, "path \"%s\" does not start with /", path);
        return -1;
    }
    copy = strdup(path + 1);
    if (copy == NULL)
        return -1;
    tok = copy;
    for (;;) {
        next = strchr(tok, '/');
        if (next)
            *next = '\0';
        if (unescape_token(tok) < 0) {
            seterr(err, errlen, "path \"%s\": bad ~ escape", path);
            goto out;
        }
        if (next == NULL)
            break;
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            size_t i;
            cur = array_index(tok, json_array_size(cur), &i) == 0 ? json_array_get(cur, i) : NULL;
        } else {
            cur = NULL;
        }
        if (cur == NULL) {
            seterr(err, errlen, "path \"%s\": \"%s\" does not exist", path, tok);
            goto out;
        }
        tok = next + 1;
    }
    v = json_deep_copy(value);
    if (v == NULL)
        goto out;
    if (json_is_object(cur)) {
        rc = json_object_set_new(cur, tok, v);
    } else if (json_is_array(cur)) {
        size_t i;
        if (strcmp(tok, "-") == 0) {
            rc = json_array_append_new(cur, v);
        } else if (array_index(tok, json_array_size(cur), &i) == 0) {
            rc = json_array_insert_new(cur, i, v);
        } else {
            json_decref(v);
            seterr(err, errlen, "path \"%s\": index \"%s\" is out of range", path, tok);
        }
    } else {
        json_decref(v);
        seterr(err, errlen, "path \"%s\": parent is not a container", path);
    }
out:
    free(copy);
    return rc < 0 ? -1 : 0;
}

int rm_inject_patch_apply(json_t *doc, const json_t *patch, char *err, size_t errlen)
{
    size_t i;
    const json_t *op;
    if (!json_is_array(patch)) {
        seterr(err, errlen, "patch is not an array");
        return -1;
    }
    json_array_foreach(patch, i, op)
    {
        const char *kind = json_string_value(json_object_get(op, "op"));
        const char *path = json_string_value(json_object_get(op, "path"));
        const json_t *value = json_object_get(op, "value");
        if (kind == NULL || strcmp(kind, "add") != 0 || path == NULL || value == NULL) {
            seterr(err, errlen, "operation %zu is not {op: add, path, value}", i);
            return -1;
        }
        if (apply_add(doc, path, value, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int rm_inject_object(json_t *obj, const rm_inject_opts_t *o, const char **reason, char *err,
                     size_t errlen)
{
    static const char *const templated[] = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet",
                                            "Job"};
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *base = NULL;
    json_t *holder = obj, *patch = NULL;
    char meta_path[64], spec_path[64];
    int rc;

    *reason = NULL;
    if (kind == NULL) {
        seterr(err, errlen, "object has no kind");
        return RM_INJECT_EBADPOD;
    }
    if (strcmp(kind, "Pod") == 0) {
        base = "";
    } else if (strcmp(kind, "CronJob") == 0) {
        base = "/spec/jobTemplate/spec/template";
        holder = json_object_get(
            json_object_get(json_object_get(json_object_get(obj, "spec"), "jobTemplate"), "spec"),
            "template");
    } else {
        for (size_t i = 0; i < sizeof(templated) / sizeof(templated[0]); i++) {
            if (strcmp(kind, templated[i]) == 0) {
                base = "/spec/template";
                holder = json_object_get(json_object_get(obj, "spec"), "template");
            }
        }
    }
    if (base == NULL) {
        *reason = "not a workload kind";
        return 0;
    }
    if (!json_is_object(holder)) {
        seterr(err, errlen, "%s has no pod template at %s", kind, base);
        return RM_INJECT_EBADPOD;
    }
    snprintf(meta_path, sizeof(meta_path), "%s/metadata", base);
    snprintf(spec_path, sizeof(spec_path), "%s/spec", base);
    rc = rm_inject_pod_patch(json_object_get(holder, "metadata"), json_object_get(holder, "spec"),
                             meta_path, spec_path, o, &patch, reason, err, errlen);
    if (rc != 1)
        return rc;
    /* Applied to a copy and swapped in, so a failure leaves obj untouched. */
    {
        json_t *copy = json_deep_copy(obj);
        if (copy == NULL || rm_inject_patch_apply(copy, patch, err, errlen) < 0 ||
            json_object_update(obj, copy) < 0) {
            json_decref(copy);
            json_decref(patch);
            return copy == NULL ? RM_INJECT_ENOMEM : RM_INJECT_EBADPOD;
        }
        json_decref(copy);
    }
    json_decref(patch);
    return 1;
}

/* Builds the AdmissionReview response; patch may be NULL (allowed unchanged). */
static char *review_response(const char *uid, const json_t *patch, const char *deny)
{
    json_t *resp = NULL, *review;
    char *out = NULL, *patch_text = NULL;
    unsigned char *b64 = NULL;

    if (deny != NULL) {
        resp = json_pack("{s:s, s:b, s:{s:i, s:s}}", "uid", uid, "allowed", 0, "status", "code",
                         400, "message", deny);
    } else {
        resp = json_pack("{s:s, s:b}", "uid", uid, "allowed", 1);
    }
    if (resp == NULL)
        return NULL;
    if (patch != NULL) {
        size_t n;
        patch_text = json_dumps(patch, JSON_COMPACT);
        if (patch_text == NULL)
            goto out;
        n = strlen(patch_text);
        if (n > INT_MAX / 2)
            goto out;
        b64 = malloc(4 * ((n + 2) / 3) + 1);
        if (b64 == NULL)
            goto out;
        EVP_EncodeBlock(b64, (const unsigned char *)patch_text, (int)n);
        if (json_object_set_new(resp, "patchType", json_string("JSONPatch")) < 0 ||
            json_object_set_new(resp, "patch", json_string((const char *)b64)) < 0)
            goto out;
    }
    review = json_pack("{s:s, s:s, s:O}", "apiVersion", "admission.k8s.io/v1", "kind",
                       "AdmissionReview", "response", resp);
    if (review != NULL) {
        out = json_dumps(review, JSON_COMPACT);
        json_decref(review);
    }
out:
    free(b64);
    free(patch_text);
    json_decref(resp);
    return out;
}

int rm_inject_review(const char *body, size_t len, const rm_inject_opts_t *o, char **resp_out,
                     char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root, *req, *kind, *object, *patch = NULL;
    const char *s, *uid, *reason, *deny = NULL;
    char msg[512];
    int rc, status = 400;

    *resp_out = NULL;
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        seterr(err, errlen, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
               jerr.text);
        return 400;
    }
    if (!json_is_object(root)) {
        seterr(err, errlen, "body is not a JSON object");
        goto out;
    }
    s = json_string_value(json_object_get(root, "apiVersion"));
    if (s == NULL || strcmp(s, "admission.k8s.io/v1") != 0) {
        seterr(err, errlen, "apiVersion must be admission.k8s.io/v1 (got %s)", s ? s : "none");
        goto out;
    }
    s = json_string_value(json_object_get(root, "kind"));
    if (s == NULL || strcmp(s, "AdmissionReview") != 0) {
        seterr(err, errlen, "kind must be AdmissionReview (got %s)", s ? s : "none");
        goto out;
    }
    req = json_object_get(root, "request");
    if (!json_is_object(req)) {
        seterr(err, errlen, "AdmissionReview has no request object");
        goto out;
    }
    uid = json_string_value(json_object_get(req, "uid"));
    if (uid == NULL || uid[0] == '\0') {
        seterr(err, errlen, "request.uid is missing or empty");
        goto out;
    }
    kind = json_object_get(req, "kind");
    if (!json_is_object(kind) || !json_is_string(json_object_get(kind, "kind"))) {
        seterr(err, errlen, "request.kind is missing or has no kind");
        goto out;
    }
    s = json_string_value(json_object_get(req, "operation"));
    if (s == NULL) {
        seterr(err, errlen, "request.operation is missing");
        goto out;
    }
    {
        const char *k = json_string_value(json_object_get(kind, "kind"));
        const char *g = json_string_value(json_object_get(kind, "group"));
        const char *sub = json_string_value(json_object_get(req, "subResource"));
        if (strcmp(k, "Pod") != 0 || (g != NULL && g[0] != '\0') || strcmp(s, "CREATE") != 0 ||
            (sub != NULL && sub[0] != '\0'))
            goto allow; /* not ours to change */
    }
    object = json_object_get(req, "object");
    if (!json_is_object(object)) {
        seterr(err, errlen, "request.object is missing or not an object");
        goto out;
    }
    rc = rm_inject_pod_patch(json_object_get(object, "metadata"), json_object_get(object, "spec"),
                             "/metadata", "/spec", o, &patch, &reason, msg, sizeof(msg));
    if (rc == RM_INJECT_EBADPOD) {
        seterr(err, errlen, "request.object: %s", msg);
        goto out;
    }
    if (rc == RM_INJECT_ENOMEM) {
        status = 500;
        seterr(err, errlen, "out of memory");
        goto out;
    }
    if (rc == RM_INJECT_EDENY)
        deny = msg;
allow:
    *resp_out = review_response(uid, patch, deny);
    if (*resp_out == NULL) {
        status = 500;
        seterr(err, errlen, "out of memory");
        goto out;
    }
    status = 200;
out:
    json_decref(patch);
    json_decref(root);
    return status;
}
