/* tests/fuzz/admission/admission_fuzz.c — libFuzzer driver for the AdmissionReview handler in
 * //injector:patch.
 *
 * Beyond "no crash, no leak": every input goes through rm_inject_review in both sidecar modes and
 * must get 200 or 400; and when the input holds a pod that gets a patch, the patch must apply to
 * the pod (add operations whose paths resolve) and the patched pod must then be left alone — the
 * reinvocation guarantee the webhook relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "injector/patch.h"

static void check_pod(const json_t *object, const rm_inject_opts_t *o)
{
    json_t *pod, *patch = NULL, *again = NULL;
    const char *reason;
    char err[512];
    int rc;

    if (!json_is_object(object))
        return;
    rc = rm_inject_pod_patch(json_object_get(object, "metadata"), json_object_get(object, "spec"),
                             "/metadata", "/spec", o, &patch, &reason, err, sizeof(err));
    if (rc != 1)
        return;
    pod = json_deep_copy(object);
    if (pod == NULL)
        abort();
    if (rm_inject_patch_apply(pod, patch, err, sizeof(err)) != 0)
        abort(); /* the patch does not fit the pod it was made for */
    rc = rm_inject_pod_patch(json_object_get(pod, "metadata"), json_object_get(pod, "spec"),
                             "/metadata", "/spec", o, &again, &reason, err, sizeof(err));
    if (rc != 0)
        abort(); /* a second pass would inject twice */
    json_decref(pod);
    json_decref(patch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_inject_opts_t o;
    char err[512];
    json_t *root;

    rm_inject_opts_default(&o);
    for (int mode = 0; mode < 2; mode++) {
        char *resp = NULL;
        int status;
        o.mode = mode ? RM_INJECT_MODE_CLASSIC : RM_INJECT_MODE_NATIVE;
        status = rm_inject_review((const char *)data, size, &o, &resp, err, sizeof(err));
        if (status == 200) {
            json_t *r = json_loads(resp, 0, NULL);
            if (r == NULL || !json_is_object(json_object_get(r, "response")))
                abort(); /* our own answer must be a well-formed review */
            json_decref(r);
        } else if (status != 400 || resp != NULL || err[0] == '\0') {
            abort();
        }
        free(resp);

        root = json_loadb((const char *)data, size, 0, NULL);
        if (root != NULL) {
            check_pod(json_object_get(json_object_get(root, "request"), "object"), &o);
            check_pod(root, &o); /* a bare pod too */
            /* Any object, as meshctl inject sees it: injected at most once. */
            if (json_is_object(root)) {
                const char *reason;
                if (rm_inject_object(root, &o, &reason, err, sizeof(err)) == 1 &&
                    rm_inject_object(root, &o, &reason, err, sizeof(err)) != 0)
                    abort();
            }
            json_decref(root);
        }
    }
    return 0;
}
