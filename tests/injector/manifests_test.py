"""tests/injector/manifests_test.py — deploy/*.yaml are valid Kubernetes objects, and so are the
pods the injector makes.

Validation runs validate_manifests.js (kubernetes-models' compiled OpenAPI schemas, plus a
TypeScript check against the same package's interfaces that catches misspelt fields). It needs
tests/injector/node_modules (`npm ci --prefix tests/injector`); without it the test skips with that
instruction. On top, the semantics the webhook depends on are checked here in Python.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from injector_fixture import Injector, admission_review, apply_patch, decode_patch
from remora_harness import runfile

HERE = os.path.dirname(os.path.realpath(runfile("tests/injector/package.json")))
DEPLOY = os.path.dirname(os.path.realpath(runfile("deploy/gen-certs.sh")))
MANIFESTS = sorted(os.path.join(DEPLOY, f) for f in os.listdir(DEPLOY) if f.endswith(".yaml"))
NODE_MODULES = os.path.join(HERE, "node_modules")


def validate(files):
    r = subprocess.run(["node", os.path.join(HERE, "validate_manifests.js"), "--strict", *files],
                       capture_output=True, text=True, timeout=300)
    if not r.stdout.strip():
        raise AssertionError("validator printed nothing: %s" % r.stderr)
    out = json.loads(r.stdout)
    return r.returncode, out["errors"], out["docs"]


@unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(NODE_MODULES,
                                                                          "kubernetes-models")),
                     "node_modules missing: run `npm ci --prefix tests/injector` "
                     "(scripts/setup.sh should) to validate manifests against Kubernetes schemas")
class ManifestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rc, cls.errors, cls.docs = validate(MANIFESTS)

    def find(self, kind, name=None):
        found = [d for d in self.docs if d["kind"] == kind and
                 (name is None or d["metadata"]["name"] == name)]
        self.assertTrue(found, "no %s %s in deploy/" % (kind, name or ""))
        return found[0]

    def test_all_manifests_valid(self):
        self.assertEqual(self.errors, [])
        self.assertEqual(self.rc, 0)
        kinds = sorted({d["kind"] for d in self.docs})
        for k in ("Deployment", "Service", "ServiceAccount", "PersistentVolumeClaim",
                  "MutatingWebhookConfiguration", "Namespace"):
            self.assertIn(k, kinds)

    def test_validator_rejects_bad_objects(self):
        # The check must be able to fail: a wrong type, a missing required field, a typo.
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
                    "spec:\n  replicas: two\n  template:\n    spec:\n      containers:\n"
                    "        - name: c\n          image: x\n          readinesProbe: {}\n"
                    "---\napiVersion: remora.io/v1\nkind: Route\nmetadata: {name: y}\n")
            f.flush()
            rc, errors, _ = validate([f.name])
        self.assertEqual(rc, 1)
        text = "\n".join(errors)
        self.assertIn("selector", text)
        self.assertIn("replicas", text)
        self.assertIn("readinesProbe", text)
        self.assertIn("unknown apiVersion/kind", text)

    def test_webhook_configuration(self):
        mwc = self.find("MutatingWebhookConfiguration")
        self.assertEqual(len(mwc["webhooks"]), 1)
        w = mwc["webhooks"][0]
        self.assertIn(w["failurePolicy"], ("Ignore", "Fail"))
        self.assertEqual(w["sideEffects"], "None")
        self.assertEqual(w["admissionReviewVersions"], ["v1"])
        self.assertEqual(w["reinvocationPolicy"], "IfNeeded")
        self.assertLessEqual(w["timeoutSeconds"], 30)
        svc = w["clientConfig"]["service"]
        self.assertEqual(svc["path"], "/inject")
        injector_svc = self.find("Service", svc["name"])
        self.assertEqual(injector_svc["metadata"]["namespace"], svc["namespace"])
        self.assertIn(svc["port"], [p["port"] for p in injector_svc["spec"]["ports"]])
        self.assertEqual(w["rules"][0]["resources"], ["pods"])
        self.assertEqual(w["rules"][0]["operations"], ["CREATE"])

    def namespace_matches(self, selector, labels):
        """Evaluates a LabelSelector as the API server does."""
        for k, v in selector.get("matchLabels", {}).items():
            if labels.get(k) != v:
                return False
        for e in selector.get("matchExpressions", []):
            has, val = e["key"] in labels, labels.get(e["key"])
            op = e["operator"]
            if op == "In" and not (has and val in e["values"]):
                return False
            if op == "NotIn" and has and val in e["values"]:
                return False
            if op == "Exists" and not has:
                return False
            if op == "DoesNotExist" and has:
                return False
        return True

    def test_namespace_selector_never_matches_kube_system(self):
        sel = self.find("MutatingWebhookConfiguration")["webhooks"][0]["namespaceSelector"]
        enabled = {"remora-injection": "enabled"}
        for ns in ("kube-system", "kube-public", "remora-system"):
            labels = dict(enabled, **{"kubernetes.io/metadata.name": ns})
            self.assertFalse(self.namespace_matches(sel, labels), ns)
        self.assertTrue(self.namespace_matches(
            sel, dict(enabled, **{"kubernetes.io/metadata.name": "demo"})))
        self.assertFalse(self.namespace_matches(sel, {"kubernetes.io/metadata.name": "demo"}))
        demo = self.find("Namespace", "demo")
        labels = dict(demo["metadata"]["labels"], **{"kubernetes.io/metadata.name": "demo"})
        self.assertTrue(self.namespace_matches(sel, labels))

    def test_control_plane_and_injector_wiring(self):
        cp = self.find("Deployment", "remora-control")
        c = cp["spec"]["template"]["spec"]["containers"][0]
        self.assertIn("--listen", c["args"])
        claim = cp["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
        self.find("PersistentVolumeClaim", claim)
        self.find("ServiceAccount", cp["spec"]["template"]["spec"]["serviceAccountName"])
        self.assertEqual(self.find("Service", "remora-control")["spec"]["ports"][0]["port"], 15010)
        inj = self.find("Deployment", "remora-injector")
        spec = inj["spec"]["template"]["spec"]
        args = " ".join(spec["containers"][0]["args"])
        self.assertIn("--cert=", args)
        self.assertIn("--key=", args)
        self.assertIn("--listen=0.0.0.0:8443", args)
        self.assertIn("remora-control.remora-system.svc:15010", args)
        self.find("ServiceAccount", spec["serviceAccountName"])
        # Mesh components never get a sidecar of their own.
        for d in (cp, inj):
            self.assertEqual(d["spec"]["template"]["metadata"]["annotations"]["remora.io/inject"],
                             "false")

    def test_example_app_two_versions(self):
        versions = sorted(d["spec"]["template"]["metadata"]["labels"].get("version", "")
                          for d in self.docs if d["kind"] == "Deployment" and
                          d["metadata"].get("namespace") == "demo" and
                          d["spec"]["template"]["metadata"]["labels"].get("app") == "reviews")
        self.assertEqual(versions, ["v1", "v2"])

    def test_injected_example_pods_are_valid(self):
        """The injector's output, applied to the example pods, validates as a Pod (both modes)."""
        pods = []
        for extra in ((), ("--sidecar-mode", "classic")):
            inj = Injector(*extra)
            try:
                for d in self.docs:
                    if d["kind"] != "Deployment" or d["metadata"].get("namespace") != "demo":
                        continue
                    tmpl = d["spec"]["template"]
                    pod = {"apiVersion": "v1", "kind": "Pod",
                           "metadata": dict(tmpl["metadata"], generateName=d["metadata"]["name"]),
                           "spec": tmpl["spec"]}
                    status, resp = inj.review(admission_review(pod))
                    self.assertEqual(status, 200)
                    pods.append(apply_patch(pod, decode_patch(resp)))
            finally:
                inj.close()
        self.assertEqual(len(pods), 6)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("\n---\n".join(json.dumps(p) for p in pods))
            f.flush()
            rc, errors, _ = validate([f.name])
        self.assertEqual(errors, [])
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    if not os.path.isdir(os.path.join(NODE_MODULES, "kubernetes-models")):
        print("manifests_test: SKIPPED, %s is missing: run `npm ci --prefix tests/injector`"
              % NODE_MODULES, flush=True)
    unittest.main(verbosity=2)
