"""tests/injector/webhook_test.py — remora-injector end to end: real AdmissionReviews over TLS.

Each pod is shaped like the Kubernetes docs' examples; the base64 JSONPatch is decoded, applied with
the test's own "add" applier, and the resulting pod is checked, then reviewed again to prove a
second pass (reinvocation) changes nothing.
"""
import copy
import subprocess
import unittest

from remora_harness import runfile

from injector_fixture import (Injector, admission_review, apply_patch, arg_after, container,
                              decode_patch, env_of)


def web_pod():
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "reviews-v2-7d9c8f-",
            "namespace": "default",
            "labels": {"app": "reviews", "version": "v2", "pod-template-hash": "7d9c8f"},
        },
        "spec": {
            "terminationGracePeriodSeconds": 45,
            "containers": [{
                "name": "reviews",
                "image": "docker.io/example/reviews:2.0",
                "ports": [{"containerPort": 9080, "name": "http"}, {"containerPort": 9443}],
                "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                "livenessProbe": {"tcpSocket": {"port": 8081}},
                "resources": {"requests": {"cpu": "250m"}},
            }],
        },
    }


def busy_pod():
    """Init containers, several containers, existing annotations (docs' init-containers example)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "myapp-pod",
            "labels": {"app.kubernetes.io/name": "MyApp", "app": "myapp", "version": "v1"},
            "annotations": {"prometheus.io/scrape": "true", "owner": "team-a"},
        },
        "spec": {
            "containers": [
                {"name": "myapp-container", "image": "busybox:1.28",
                 "command": ["sh", "-c", "echo The app is running! && sleep 3600"],
                 "ports": [{"containerPort": 8080}]},
                {"name": "log-shipper", "image": "fluent/fluent-bit:2.1"},
            ],
            "initContainers": [
                {"name": "init-myservice", "image": "busybox:1.28",
                 "command": ["sh", "-c", "until nslookup myservice; do sleep 2; done"]},
                {"name": "init-mydb", "image": "busybox:1.28",
                 "command": ["sh", "-c", "until nslookup mydb; do sleep 2; done"]},
            ],
        },
    }


class WebhookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inj = Injector()

    @classmethod
    def tearDownClass(cls):
        cls.inj.close()

    def inject(self, pod, expect_patch=True):
        review = admission_review(pod)
        status, resp = self.inj.review(review)
        self.assertEqual(status, 200, resp)
        self.assertEqual(resp["apiVersion"], "admission.k8s.io/v1")
        self.assertEqual(resp["kind"], "AdmissionReview")
        self.assertEqual(resp["response"]["uid"], review["request"]["uid"])
        self.assertTrue(resp["response"]["allowed"], resp)
        patch = decode_patch(resp)
        if not expect_patch:
            self.assertIsNone(patch, "expected no patch")
            return pod
        self.assertIsNotNone(patch, "expected a patch: %r" % resp)
        out = apply_patch(pod, patch)
        # Second pass (reinvocationPolicy: IfNeeded): the injected pod gets no patch.
        status, again = self.inj.review(admission_review(out))
        self.assertEqual(status, 200)
        self.assertTrue(again["response"]["allowed"])
        self.assertIsNone(decode_patch(again), "second pass must not patch again")
        return out

    def test_native_sidecar_injection(self):
        pod = web_pod()
        out = self.inject(pod)
        self.assertEqual(out["metadata"]["annotations"]["remora.io/status"], "injected")
        inits = [c["name"] for c in out["spec"]["initContainers"]]
        self.assertEqual(inits, ["remora-init", "remora-proxy"])
        self.assertEqual([c["name"] for c in out["spec"]["containers"]], ["reviews"])
        self.assertEqual(out["spec"]["containers"][0], pod["spec"]["containers"][0],
                         "the app container must be untouched")

        proxy = container(out, "remora-proxy", init=True)
        self.assertEqual(proxy["restartPolicy"], "Always")
        sc = proxy["securityContext"]
        self.assertEqual(sc["runAsUser"], 1337)
        self.assertEqual(sc["runAsGroup"], 1337)
        self.assertTrue(sc["runAsNonRoot"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertEqual(proxy["readinessProbe"]["httpGet"], {"path": "/ready", "port": 15000})
        self.assertEqual(proxy["startupProbe"]["httpGet"]["path"], "/healthz")
        env = env_of(proxy)
        self.assertEqual(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name")
        self.assertEqual(env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
                         "metadata.namespace")
        self.assertEqual(env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP")
        self.assertEqual(env["REMORA_SERVICE"]["value"], "reviews")
        self.assertEqual(env["REMORA_VERSION"]["value"], "v2")
        self.assertEqual(env["REMORA_APP_PORT"]["value"], "9080")
        self.assertEqual(env["REMORA_DRAIN_SECONDS"]["value"], "45")  # terminationGracePeriod
        args = proxy["args"]
        self.assertEqual(arg_after(args, "--outbound-port"), "15001")
        self.assertEqual(arg_after(args, "--inbound-port"), "15006")
        self.assertEqual(arg_after(args, "--admin-port"), "15000")
        self.assertEqual(arg_after(args, "--drain-seconds"), "45")
        self.assertIsNotNone(arg_after(args, "--control-plane"))
        self.assertEqual(proxy["resources"]["requests"], {"cpu": "100m", "memory": "64Mi"})

        init = container(out, "remora-init", init=True)
        isc = init["securityContext"]
        self.assertEqual(isc["capabilities"]["add"], ["NET_ADMIN", "NET_RAW"])
        self.assertEqual(isc["runAsUser"], 0)
        self.assertFalse(isc["privileged"])
        self.assertNotIn("restartPolicy", init)
        iargs = init["args"]
        self.assertEqual(arg_after(iargs, "--proxy-uid"), "1337")
        # Probe ports (named "http" -> 9080, tcpSocket 8081) bypass inbound interception.
        self.assertEqual(arg_after(iargs, "--exclude-inbound-ports"), "8081,9080")
        self.assertIsNone(arg_after(iargs, "--exclude-outbound-ports"))

    def test_init_containers_several_containers_existing_annotations(self):
        pod = busy_pod()
        out = self.inject(pod)
        ann = out["metadata"]["annotations"]
        self.assertEqual(ann["prometheus.io/scrape"], "true")
        self.assertEqual(ann["owner"], "team-a")
        self.assertEqual(ann["remora.io/status"], "injected")
        self.assertEqual([c["name"] for c in out["spec"]["initContainers"]],
                         ["remora-init", "remora-proxy", "init-myservice", "init-mydb"])
        self.assertEqual(out["spec"]["containers"], pod["spec"]["containers"])
        proxy = container(out, "remora-proxy", init=True)
        self.assertEqual(env_of(proxy)["REMORA_APP_PORT"]["value"], "8080")
        self.assertEqual(env_of(proxy)["REMORA_DRAIN_SECONDS"]["value"], "30")
        self.assertIsNone(arg_after(container(out, "remora-init", True)["args"],
                                    "--exclude-inbound-ports"))

    def test_annotations_honoured(self):
        pod = web_pod()
        pod["metadata"]["annotations"] = {
            "remora.io/exclude-inbound-ports": "3306, 5432",
            "remora.io/exclude-outbound-ports": "25,587",
            "remora.io/exclude-outbound-cidrs": "10.0.0.0/8, 169.254.169.254, FD00:0::/8",
            "remora.io/proxy-cpu": "250m",
            "remora.io/proxy-memory": "128Mi",
            "remora.io/drain-seconds": "12",
        }
        out = self.inject(pod)
        init = container(out, "remora-init", init=True)
        self.assertEqual(arg_after(init["args"], "--exclude-inbound-ports"), "3306,5432,8081,9080")
        self.assertEqual(arg_after(init["args"], "--exclude-outbound-ports"), "25,587")
        self.assertEqual(arg_after(init["args"], "--exclude-outbound-cidrs"),
                         "10.0.0.0/8,169.254.169.254/32,fd00::/8")
        proxy = container(out, "remora-proxy", init=True)
        self.assertEqual(proxy["resources"]["requests"], {"cpu": "250m", "memory": "128Mi"})
        self.assertEqual(env_of(proxy)["REMORA_DRAIN_SECONDS"]["value"], "12")
        self.assertEqual(arg_after(proxy["args"], "--drain-seconds"), "12")

    def test_bad_annotations_deny_with_message(self):
        for key, value in [("remora.io/exclude-inbound-ports", "80,http"),
                           ("remora.io/exclude-outbound-ports", "70000"),
                           ("remora.io/exclude-outbound-cidrs", "10.0.0.0/33"),
                           ("remora.io/exclude-outbound-cidrs", "fd00::/129"),
                           ("remora.io/exclude-outbound-cidrs", "fe80::1%eth0"),
                           ("remora.io/exclude-outbound-cidrs", "::ffff:10.0.0.0/104"),
                           ("remora.io/proxy-cpu", "lots"),
                           ("remora.io/proxy-memory", "1; rm -rf /"),
                           ("remora.io/drain-seconds", "-1")]:
            with self.subTest(key=key, value=value):
                pod = web_pod()
                pod["metadata"]["annotations"] = {key: value}
                review = admission_review(pod)
                status, resp = self.inj.review(review)
                self.assertEqual(status, 200)
                r = resp["response"]
                self.assertEqual(r["uid"], review["request"]["uid"])
                self.assertFalse(r["allowed"])
                self.assertNotIn("patch", r)
                self.assertEqual(r["status"]["code"], 400)
                self.assertIn(key, r["status"]["message"])

    def test_opt_out(self):
        pod = web_pod()
        pod["metadata"]["annotations"] = {"remora.io/inject": "false"}
        self.inject(pod, expect_patch=False)

    def test_already_injected_by_name(self):
        pod = web_pod()
        pod["spec"]["containers"].append({"name": "remora-proxy", "image": "remora/proxy:old"})
        self.inject(pod, expect_patch=False)

    def test_host_network_left_alone(self):
        pod = web_pod()
        pod["spec"]["hostNetwork"] = True
        self.inject(pod, expect_patch=False)

    def test_no_labels_no_metadata_fields(self):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        out = self.inject(pod)
        proxy = container(out, "remora-proxy", init=True)
        self.assertEqual(env_of(proxy)["REMORA_SERVICE"]["value"], "")
        self.assertEqual(env_of(proxy)["REMORA_VERSION"]["value"], "")
        self.assertNotIn("REMORA_APP_PORT", env_of(proxy))
        # Patched pod without any metadata at all.
        pod2 = {"apiVersion": "v1", "kind": "Pod",
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        out2 = self.inject(pod2)
        self.assertEqual(out2["metadata"]["annotations"]["remora.io/status"], "injected")

    def test_other_kinds_and_operations_allowed_unchanged(self):
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": "web"}, "spec": {"template": {}}}
        cases = [admission_review(deployment, kind="Deployment", group="apps"),
                 admission_review({"apiVersion": "v1", "kind": "Service"}, kind="Service"),
                 admission_review(web_pod(), operation="UPDATE"),
                 admission_review(web_pod(), operation="DELETE")]
        sub = admission_review(web_pod())
        sub["request"]["subResource"] = "ephemeralcontainers"
        cases.append(sub)
        for review in cases:
            with self.subTest(kind=review["request"]["kind"]["kind"],
                              op=review["request"]["operation"]):
                status, resp = self.inj.review(review)
                self.assertEqual(status, 200, resp)
                self.assertEqual(resp["response"]["uid"], review["request"]["uid"])
                self.assertTrue(resp["response"]["allowed"])
                self.assertIsNone(decode_patch(resp))

    def test_keep_alive_two_reviews_on_one_connection(self):
        sock = self.inj.tls_socket()
        try:
            import json
            for _ in range(2):
                status, hdrs, body = self.inj.request(
                    "POST", "/inject", json.dumps(admission_review(web_pod())).encode(),
                    sock=sock)
                self.assertEqual(status, 200)
                self.assertNotEqual(hdrs.get("connection"), "close")
                self.assertIn("patch", json.loads(body)["response"])
        finally:
            sock.close()

    def test_new_connection_answered_without_delay(self):
        # With TLS 1.3 the injector's session-ticket write stays unacknowledged while the client
        # waits for its answer (its ACK is delayed, ~40 ms on Linux); under Nagle's algorithm the
        # response then waited for that ACK on every new connection, and the API server opens
        # one whenever it has no idle connection left.
        import statistics
        import time
        took = []
        for _ in range(7):
            sock = self.inj.tls_socket()
            try:
                t0 = time.monotonic()
                status, _, _ = self.inj.request("GET", "/healthz", sock=sock)
                took.append(time.monotonic() - t0)
                self.assertEqual(status, 200)
            finally:
                sock.close()
        self.assertLess(statistics.median(took), 0.025, took)

    def test_own_health_endpoints(self):
        for path in ("/healthz", "/ready"):
            status, _, body = self.inj.request("GET", path)
            self.assertEqual((status, body), (200, b"ok\n"))


class ClassicModeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inj = Injector("--sidecar-mode", "classic", "--proxy-image", "reg.example/proxy:9",
                           "--init-image", "reg.example/init:9", "--control-plane", "cp.x:15010")

    @classmethod
    def tearDownClass(cls):
        cls.inj.close()

    def test_classic_second_container(self):
        pod = busy_pod()
        status, resp = self.inj.review(admission_review(pod))
        self.assertEqual(status, 200)
        out = apply_patch(pod, decode_patch(resp))
        self.assertEqual([c["name"] for c in out["spec"]["initContainers"]],
                         ["init-myservice", "init-mydb", "remora-init"])
        self.assertEqual([c["name"] for c in out["spec"]["containers"]],
                         ["myapp-container", "log-shipper", "remora-proxy"])
        proxy = container(out, "remora-proxy")
        self.assertNotIn("restartPolicy", proxy)
        self.assertEqual(proxy["image"], "reg.example/proxy:9")
        self.assertEqual(container(out, "remora-init", True)["image"], "reg.example/init:9")
        self.assertEqual(arg_after(proxy["args"], "--control-plane"), "cp.x:15010")
        self.assertEqual(env_of(proxy)["REMORA_CONTROL_PLANE"]["value"], "cp.x:15010")
        status, again = self.inj.review(admission_review(out))
        self.assertIsNone(decode_patch(again))

    def test_classic_without_init_containers(self):
        pod = web_pod()
        status, resp = self.inj.review(admission_review(copy.deepcopy(pod)))
        out = apply_patch(pod, decode_patch(resp))
        self.assertEqual([c["name"] for c in out["spec"]["initContainers"]], ["remora-init"])
        self.assertEqual(out["spec"]["containers"][-1]["name"], "remora-proxy")


class FlagsTest(unittest.TestCase):
    def run_injector(self, *args):
        return subprocess.run([runfile("injector/remora-injector"), *args], capture_output=True,
                              text=True, timeout=30)

    def test_help_and_version(self):
        r = self.run_injector("--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--cert", "--key", "--listen", "--sidecar-mode"):
            self.assertIn(flag, r.stdout)
        r = self.run_injector("--version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("remora-injector "))

    def test_bad_flags_one_clear_line(self):
        for args in (["--bogus"], ["--cert", "a"], ["--sidecar-mode", "sidecar", "--cert", "a",
                                                     "--key", "b"],
                     ["--request-timeout", "0"], ["--cert"], ["extra"]):
            with self.subTest(args=args):
                r = self.run_injector(*args)
                self.assertNotEqual(r.returncode, 0)
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertTrue(lines[0].startswith("remora-injector: "), lines[0])

    def test_unreadable_cert(self):
        r = self.run_injector("--cert", "/nonexistent.crt", "--key", "/nonexistent.key",
                              "--listen", "127.0.0.1:0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent.crt", r.stderr)


if __name__ == "__main__":
    unittest.main()
