"""tests/meshctl/errors_test.py — meshctl's error paths: unknown commands, flags, kinds and
formats with suggestions; apply errors with file:line:col (local parse errors without any
server, semantic errors from the control plane) and nothing half-applied; refusals; an
unreachable control plane (exit 2, address named) for every command; offline inject."""
import json
import unittest

from meshctl_fixture import Harness, Mesh, SERVICE, free_port, route


class ErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Harness()
        cls.m = Mesh(cls.h)
        r = cls.m.apply(SERVICE + "---\n" + route(90, 10))
        assert r.rc == 0, r

    @classmethod
    def tearDownClass(cls):
        cls.m.close()
        cls.h.close()

    def versions(self):
        return [e["version"] for e in self.m.meshctl("history", "-o", "json").json()]

    def test_unknown_command_flag_kind_format(self):
        r = self.m.meshctl("aplly")
        self.assertEqual(r.rc, 1)
        self.assertIn('unknown command "aplly"; did you mean "apply"?', r.err)
        r = self.m.meshctl("proxystatus")
        self.assertIn('did you mean "proxy-status"?', r.err)
        r = self.m.meshctl("frobnicate")
        self.assertEqual(r.rc, 1)
        self.assertIn('unknown command "frobnicate"', r.err)
        self.assertNotIn("did you mean", r.err)
        self.assertIn("valid: apply, get, delete", r.err)
        r = self.m.meshctl("get", "routes", "--outptu", "json")
        self.assertEqual(r.rc, 1)
        self.assertIn('unknown flag "--outptu"; did you mean "--output"?', r.err)
        r = self.m.meshctl("apply", "--dryrun", "-f", "x")
        self.assertIn('did you mean "--dry-run"?', r.err)
        r = self.m.meshctl("get", "rutes")
        self.assertEqual(r.rc, 1)
        self.assertIn('unknown kind "rutes"; did you mean "routes"?', r.err)
        r = self.m.meshctl("delete", "servise", "reviews")
        self.assertIn('did you mean "services"?', r.err)
        r = self.m.meshctl("get", "routes", "-o", "jsno")
        self.assertEqual(r.rc, 1)
        self.assertIn('unknown output format "jsno"; did you mean "json"?', r.err)
        r = self.m.meshctl("--sever", "x", "history", server=False)
        self.assertEqual(r.rc, 1)
        self.assertIn('did you mean "--server"?', r.err)
        r = self.m.meshctl("apply")
        self.assertEqual(r.rc, 1)
        self.assertIn("-f FILE is required", r.err)
        r = self.m.meshctl("apply", "-f", "x", "--timeout", "soon")
        self.assertEqual(r.rc, 1)
        self.assertIn('--timeout "soon"', r.err)
        r = self.m.meshctl("delete", "route")
        self.assertEqual(r.rc, 1)
        self.assertIn("needs KIND and NAME", r.err)
        r = self.m.meshctl("rollback", "abc")
        self.assertEqual(r.rc, 1)
        r = self.m.meshctl("apply", "-f", "does-not-exist.yaml")
        self.assertEqual(r.rc, 1)
        self.assertIn("cannot open does-not-exist.yaml", r.err)
        r = self.m.meshctl(server=False)
        self.assertEqual(r.rc, 1)
        self.assertIn("Usage: meshctl", r.err)

    def test_parse_errors_are_local_with_position(self):
        # No control plane at all: a broken file is still rejected (exit 1, not 2), with
        # file:line:col, because meshctl parses before it connects.
        self.h.write("typo.yaml", "kind: Route\nname: r\nservic: reviews\n")
        dead = "127.0.0.1:%d" % free_port()
        r = self.m.meshctl("--server", dead, "apply", "-f", "typo.yaml", server=False)
        self.assertEqual(r.rc, 1, r)
        self.assertIn('error: typo.yaml:3:1: unknown field "servic" (did you mean "service"?)',
                      r.err)
        self.h.write("syntax.yaml", "kind: Route\nname: [unclosed\n")
        r = self.m.meshctl("apply", "-f", "syntax.yaml")
        self.assertEqual(r.rc, 1, r)
        self.assertRegex(r.err, r"error: syntax\.yaml:\d+:\d+: ")

    def test_semantic_errors_from_the_server_every_line(self):
        before = self.versions()
        bad = ("kind: Route\nname: r2\nservice: nosuch\nrules:\n  - destinations:\n"
               "      - {version: v1, weight: 1}\n---\n"
               "kind: Route\nname: r3\nservice: reviews\nrules:\n  - destinations:\n"
               "      - {version: v1, weight: 1}\n      - {version: v1, weight: 2}\n")
        # The good document travels with a bad one: nothing of the file may be stored.
        r = self.m.apply(SERVICE.replace("9080", "9081") + "---\n" + bad, name="bad.yaml")
        self.assertEqual(r.rc, 1, r)
        errs = [l for l in r.err.splitlines() if l.startswith("error: bad.yaml:")]
        self.assertGreaterEqual(len(errs), 2, r)
        self.assertIn('error: bad.yaml:7:1: service: unknown service "nosuch" in namespace '
                      '"default"', r.err)
        self.assertRegex(r.err, r"error: bad\.yaml:18:10: rules\[0\]\.destinations\[1\]")
        self.assertEqual(r.out, "")
        self.assertEqual(self.versions(), before)
        self.assertEqual(self.m.meshctl("get", "services", "-o", "json").json()[0]["port"], 9080)

    def test_refusals(self):
        r = self.m.meshctl("delete", "service", "reviews")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("error: deleting Service default/reviews would leave the config invalid",
                      r.err)
        self.assertIn("error: Route default/reviews-rollout: service: unknown service", r.err)
        r = self.m.meshctl("delete", "route", "nope")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("not found", r.err)
        r = self.m.meshctl("get", "routes", "nope")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("not found", r.err)
        r = self.m.meshctl("rollback", "99")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("error: ", r.err)

    def test_unreachable_control_plane(self):
        dead = "127.0.0.1:%d" % free_port()
        self.h.write("ok.yaml", SERVICE)
        for args in (["apply", "-f", "ok.yaml"], ["get", "routes"], ["delete", "route", "x"],
                     ["history"], ["rollback"], ["stats"], ["proxy-status"]):
            r = self.m.meshctl("--server", dead, *args, server=False, timeout=30)
            self.assertEqual(r.rc, 2, (args, r))
            self.assertIn("cannot reach the control plane at %s: " % dead, r.err)
            self.assertEqual(r.out, "")
        r = self.m.meshctl("history", server=False, env={"MESH_SERVER": dead})
        self.assertEqual(r.rc, 2, r)
        self.assertIn(dead, r.err)

    def test_inject_offline(self):
        manifest = """apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {ports: [{port: 9080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec:
      containers:
        - name: app
          image: example/reviews:1
          ports: [{containerPort: 9080}]
"""
        self.h.write("manifest.yaml", manifest)
        r = self.m.meshctl("inject", "-f", "manifest.yaml", server=False)
        self.assertEqual(r.rc, 0, r)
        docs = [json.loads(d) for d in r.out.split("\n---\n")]
        self.assertEqual([d["kind"] for d in docs], ["Service", "Deployment"])
        spec = docs[1]["spec"]["template"]["spec"]
        init = [c["name"] for c in spec["initContainers"]]
        self.assertEqual(init[:2], ["remora-init", "remora-proxy"])  # native sidecar by default
        proxy = spec["initContainers"][1]
        self.assertEqual(proxy["restartPolicy"], "Always")
        self.assertEqual(proxy["securityContext"]["runAsUser"], 1337)
        self.assertIn("not a workload kind", r.err)
        # the output injected again changes nothing (reinvocation-safe)
        self.h.write("injected.yaml", r.out)
        again = self.m.meshctl("inject", "-f", "injected.yaml", server=False)
        self.assertEqual(again.rc, 0, again)
        self.assertEqual([json.loads(d) for d in again.out.split("\n---\n")], docs)
        # classic mode puts the proxy beside the app
        classic = self.m.meshctl("inject", "-f", "manifest.yaml", "--sidecar-mode", "classic",
                                 server=False)
        spec = json.loads(classic.out.split("\n---\n")[1])["spec"]["template"]["spec"]
        self.assertIn("remora-proxy", [c["name"] for c in spec["containers"]])
        # bad YAML: exit 1, the position named, nothing printed
        self.h.write("bad.yaml", "kind: Pod\nmetadata: {name: x\n")
        bad = self.m.meshctl("inject", "-f", "bad.yaml", server=False)
        self.assertEqual(bad.rc, 1)
        self.assertIn("bad.yaml:3:1:", bad.err)
        self.assertEqual(bad.out, "")

if __name__ == "__main__":
    unittest.main()
