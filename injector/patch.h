/* injector/patch.h — sidecar injection as a JSONPatch: shared by remora-injector and meshctl
 * inject.
 *
 * Everything here is pure computation on jansson values: no I/O, no globals, so any thread may
 * call any function as long as it does not share the json_t values it passes with another thread.
 */
#ifndef REMORA_INJECTOR_PATCH_H
#define REMORA_INJECTOR_PATCH_H

#include <stddef.h>

#include <jansson.h>

/* Status codes: 1 = a patch was made, 0 = the pod is left as it is, negative = error. */
#define RM_INJECT_EBADPOD -1 /* the object is not a pod spec we can read (HTTP 400) */
#define RM_INJECT_EDENY   -2 /* an annotation has a bad value: the admission is denied */
#define RM_INJECT_ENOMEM  -3

/* Annotations users set on pods. */
#define RM_INJECT_ANN_INJECT         "remora.io/inject"
#define RM_INJECT_ANN_STATUS         "remora.io/status"
#define RM_INJECT_ANN_EXCL_IN_PORTS  "remora.io/exclude-inbound-ports"
#define RM_INJECT_ANN_EXCL_OUT_PORTS "remora.io/exclude-outbound-ports"
#define RM_INJECT_ANN_EXCL_OUT_CIDRS "remora.io/exclude-outbound-cidrs"
#define RM_INJECT_ANN_PROXY_CPU      "remora.io/proxy-cpu"
#define RM_INJECT_ANN_PROXY_MEMORY   "remora.io/proxy-memory"
#define RM_INJECT_ANN_DRAIN_SECONDS  "remora.io/drain-seconds"
/* The services this pod calls ("name" or "name.namespace", comma-separated): the proxy gets
 * only their config and endpoints (REMORA_EGRESS; see docs/config.md). */
#define RM_INJECT_ANN_EGRESS "remora.io/egress"

#define RM_INJECT_PROXY_NAME "remora-proxy"
#define RM_INJECT_INIT_NAME  "remora-init"

typedef enum rm_inject_mode {
    /* Kubernetes 1.29+: the proxy is an init container with restartPolicy: Always, so it starts
     * before the app (and before the user's init containers) and stops after it. */
    RM_INJECT_MODE_NATIVE = 0,
    /* Older clusters: the proxy is one more regular container. */
    RM_INJECT_MODE_CLASSIC = 1,
} rm_inject_mode_t;

typedef struct rm_inject_opts {
    const char *proxy_image;   /* borrowed */
    const char *init_image;    /* borrowed */
    const char *control_plane; /* borrowed; HOST:PORT given to the proxy */
    rm_inject_mode_t mode;
    int proxy_uid;     /* 1337: the uid whose traffic is never redirected */
    int outbound_port; /* 15001 */
    int inbound_port;  /* 15006 */
    int admin_port;    /* 15000 */
} rm_inject_opts_t;

/* Fills *o with the defaults (images remora/proxy and remora/init at this build's version, control
 * plane remora-control.remora-system.svc:15010, native mode, the SPEC ports). Any thread. */
void rm_inject_opts_default(rm_inject_opts_t *o);

/* Computes the JSONPatch ("add" operations only) that injects the sidecar into one pod.
 * metadata and spec are the pod's (or a pod template's) objects, borrowed; metadata may be NULL.
 * meta_path/spec_path are their JSON pointers in the patched document ("/metadata" and "/spec" for
 * an AdmissionReview's pod, "/spec/template/metadata" and "/spec/template/spec" for a
 * Deployment). Returns 1 and a new reference in *patch_out (the caller owns it) when the pod
 * needs injection; 0 and a static reason in *reason when it is left unchanged (opted out,
 * already injected, host network); RM_INJECT_EBADPOD or RM_INJECT_EDENY with a message in err
 * (errlen bytes, NUL-terminated) otherwise. Any thread. */
int rm_inject_pod_patch(const json_t *metadata, const json_t *spec, const char *meta_path,
                        const char *spec_path, const rm_inject_opts_t *o, json_t **patch_out,
                        const char **reason, char *err, size_t errlen);

/* Applies a JSONPatch made of "add" operations (RFC 6902 semantics: object members are set,
 * array indexes insert, "-" appends) to doc in place. patch is borrowed; values are copied into
 * doc, which the caller keeps owning. Returns 0, or a negative code with a message in err when an
 * operation is not "add" or its path does not resolve (doc may then be partly patched). */
int rm_inject_patch_apply(json_t *doc, const json_t *patch, char *err, size_t errlen);

/* Injects the sidecar into one Kubernetes object in place, as `meshctl inject` does offline: a
 * Pod, or the pod template of a Deployment, ReplicaSet, StatefulSet, DaemonSet, Job or CronJob.
 * obj stays the caller's. Returns 1 when obj was changed; 0 with a static reason in *reason when
 * it is left as it is (another kind, opted out, already injected, host network); a negative code
 * with a message in err (errlen bytes) otherwise (obj is then unchanged). Any thread. */
int rm_inject_object(json_t *obj, const rm_inject_opts_t *o, const char **reason, char *err,
                     size_t errlen);

/* Handles one AdmissionReview request body (len bytes, not NUL-terminated, borrowed). Returns the
 * HTTP status: 200 with a malloc'd, NUL-terminated AdmissionReview response in *resp_out (the
 * caller frees it) — allowed with a base64 JSONPatch, allowed unchanged, or denied for bad
 * annotations; or 400 with a one-line message in err (and *resp_out NULL) for input that is not a
 * readable AdmissionReview v1; or 500 when memory runs out. Any thread. */
int rm_inject_review(const char *body, size_t len, const rm_inject_opts_t *o, char **resp_out,
                     char *err, size_t errlen);

#endif /* REMORA_INJECTOR_PATCH_H */
