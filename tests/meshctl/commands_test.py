"""tests/meshctl/commands_test.py — every meshctl command against a real remora-control: the
output of apply, get (table, YAML, JSON), delete, history, rollback, stats and proxy-status,
help and completion."""
import json
import os
import re
import subprocess
import unittest

from meshctl_fixture import Harness, Mesh, SERVICE, route, runfile, wait_until

CB = """kind: CircuitBreaker
name: reviews-limits
service: reviews
version: v2
limits: {maxConnections: 10, maxPendingRequests: 20, maxRequests: 30, maxRetries: 2}
"""

SERVICE_EPS = SERVICE + """endpoints:
  - {address: 127.0.0.1:9001, version: v1}
  - {address: 127.0.0.1:9002, version: v2}
"""


class CommandsTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.m = Mesh(self.h)

    def tearDown(self):
        self.m.close()
        self.h.close()

    def test_help_and_version(self):
        r = self.m.meshctl("--help", server=False)
        self.assertEqual(r.rc, 0, r)
        for cmd in ("apply", "get", "delete", "history", "rollback", "stats", "proxy-status"):
            self.assertIn(cmd, r.out)
            c = self.m.meshctl(cmd, "-h", server=False)
            self.assertEqual(c.rc, 0, c)
            self.assertIn("Usage: meshctl " + cmd, c.out)
            self.assertIn("Examples:", c.out)
            self.assertIn("meshctl " + cmd, c.out.split("Examples:")[1])
        r = self.m.meshctl("--version", server=False)
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.out, r"^meshctl \d+\.\d+\.\d+")

    def test_apply_get_delete_history_rollback(self):
        r = self.m.apply(SERVICE_EPS + "---\n" + route(90, 10) + "---\n" + CB)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines(), [
            "config version 1",
            "service default/reviews created",
            "route default/reviews-rollout created",
            "circuitbreaker default/reviews-limits created",
        ])
        # The same documents again change nothing and store no version.
        r = self.m.apply(SERVICE_EPS + "---\n" + route(90, 10) + "---\n" + CB)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("config version 1 (unchanged)", r.out)
        self.assertIn("route default/reviews-rollout unchanged", r.out)

        # Tables.
        r = self.m.meshctl("get", "services")
        self.assertEqual(r.rc, 0, r)
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "NAMESPACE", "PORT", "VIP", "HOSTS",
                                            "ENDPOINTS"])
        self.assertEqual(lines[1].split(), ["reviews", "default", "9080", "-", "-",
                                            "v1=127.0.0.1:9001", "v2=127.0.0.1:9002"])
        r = self.m.meshctl("get", "routes")
        self.assertEqual(r.rc, 0, r)
        row = r.out.splitlines()[1].split()
        self.assertEqual(row[:6], ["reviews-rollout", "default", "reviews", "1:canary", "*",
                                   "v1=90"])
        self.assertEqual(row[6], "v2=10")
        r = self.m.meshctl("get", "circuitbreakers")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines()[1].split()[:5],
                         ["reviews-limits", "default", "reviews", "v2", "10/20/30/2"])

        # JSON and YAML: the stored, defaulted documents; applying them back changes nothing.
        r = self.m.meshctl("get", "routes", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        docs = r.json()
        self.assertEqual(len(docs), 1)
        self.assertEqual(docs[0]["kind"], "Route")
        self.assertEqual([(d["version"], d["weight"]) for d in docs[0]["rules"][0]["destinations"]],
                         [("v1", 90), ("v2", 10)])
        self.assertEqual(self.m.apply(r.out, name="back.json").out.splitlines()[0],
                         "config version 1 (unchanged)")
        r = self.m.meshctl("get", "route", "reviews-rollout", "-o", "yaml")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("kind: Route", r.out)
        self.assertIn("name: reviews-rollout", r.out)
        self.assertEqual(self.m.apply(r.out, name="back.yaml").out.splitlines()[0],
                         "config version 1 (unchanged)")
        r = self.m.meshctl("get", "services", "-o", "json")
        self.assertEqual([s["name"] for s in r.json()], ["reviews"])

        # A new version, then history.
        r = self.m.apply(route(50, 50), name="fifty.yaml")
        self.assertEqual(r.out.splitlines(), ["config version 2",
                                              "route default/reviews-rollout updated"])
        r = self.m.meshctl("history")
        self.assertEqual(r.rc, 0, r)
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split()[:2], ["VERSION", "CREATED"])
        self.assertTrue(lines[1].startswith("2 *"), r)
        self.assertIn("apply fifty.yaml: route default/reviews-rollout updated", lines[1])
        self.assertTrue(lines[2].startswith("1 "), r)
        self.assertRegex(lines[1], r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
        hj = self.m.meshctl("history", "-o", "json").json()
        self.assertEqual([e["version"] for e in hj], [2, 1])
        self.assertTrue(hj[0]["current"])
        self.assertEqual(len(self.m.meshctl("history", "--limit", "1", "-o", "json").json()), 1)

        # An older version can be read.
        r = self.m.meshctl("get", "routes", "--config-version", "1", "-o", "json")
        self.assertEqual(r.json()[0]["rules"][0]["destinations"][0]["weight"], 90)

        # Delete, then rollback (default: the previous version) brings the route back.
        r = self.m.meshctl("delete", "circuitbreaker", "reviews-limits")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines(), ["circuitbreaker default/reviews-limits deleted",
                                              "config version 3"])
        r = self.m.meshctl("get", "cb")
        self.assertEqual(r.out.strip(), "no circuitbreakers in config version 3")
        r = self.m.meshctl("rollback")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines(), ["rolled back to the config of version 2",
                                              "config version 4"])
        self.assertEqual(len(self.m.meshctl("get", "cb", "-o", "json").json()), 1)
        r = self.m.meshctl("rollback", "1")
        self.assertEqual(r.out.splitlines(), ["rolled back to the config of version 1",
                                              "config version 5"])
        r = self.m.meshctl("get", "routes", "-o", "json")
        self.assertEqual(r.json()[0]["rules"][0]["destinations"][0]["weight"], 90)

    def test_dry_run_stores_nothing(self):
        self.assertEqual(self.m.apply(SERVICE_EPS + "---\n" + route(90, 10)).rc, 0)
        r = self.m.apply(route(10, 90), "--dry-run", name="dry.yaml")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines()[:2], [
            "dry run: nothing stored; config version 1 stays in force",
            "route default/reviews-rollout would be updated"])
        self.assertEqual(len(self.m.meshctl("history", "-o", "json").json()), 1)
        # The diff: stored against new, defaults filled on both sides, so only weights differ.
        diff = r.out.splitlines()[2:]
        self.assertEqual(diff[0], "Route default/reviews-rollout:")
        old = [l[4:] for l in diff[1:] if not l.startswith("  +")]
        new = [l[4:] for l in diff[1:] if not l.startswith("  -")]
        self.assertEqual([l.strip() for l in old if "weight" in l], ["weight: 90", "weight: 10"])
        self.assertEqual([l.strip() for l in new if "weight" in l], ["weight: 10", "weight: 90"])
        self.assertEqual([l for l in old if "weight" not in l],
                         [l for l in new if "weight" not in l])
        self.assertLessEqual(len([l for l in diff if l[:3] in ("  -", "  +")]), 6, r)
        self.assertIn("    kind: Route", diff)
        # A new document is all additions.
        r = self.m.apply(route(1, 1).replace("reviews-rollout", "second"), "--dry-run",
                         name="new.yaml")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("route default/second would be created", r.out)
        self.assertIn("  + name: second", r.out)

    def test_apply_from_stdin_and_warning(self):
        r = self.m.meshctl("apply", "-f", "-", stdin=SERVICE + "---\n" + route(1, 1))
        self.assertEqual(r.rc, 0, r)
        self.assertIn("config version 1", r.out)
        # No endpoint has v1 or v2: apply warns, with the position in the file.
        self.assertRegex(r.err, r"warning: <stdin>:\d+:\d+: rules\[0\]\.destinations\[0\]\.version:"
                                r" no endpoint of service \"reviews\" has version \"v1\"")

    def test_mesh_server_environment(self):
        r = self.m.meshctl("history", server=False, env={"MESH_SERVER": self.m.server})
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.strip(), "no config versions yet")

    def test_proxy_status_and_stats_empty(self):
        r = self.m.meshctl("proxy-status")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.strip(), "current config version 0; 0 sidecars connected")
        self.assertEqual(self.m.meshctl("proxy-status", "-o", "json").json(),
                         {"current_version": 0, "sidecars": []})
        r = self.m.meshctl("stats")
        self.assertEqual((r.rc, r.out.strip()), (0, "no traffic reported yet"))
        j = self.m.meshctl("stats", "-o", "json").json()
        self.assertEqual(j["rows"], [])
        # --watch piped appends one block per refresh and stops after --count.
        r = self.m.meshctl("stats", "--watch", "--interval", "100ms", "--count", "3")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(re.findall(r"^--- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", r.out, re.M)),
                         3, r)
        self.assertNotIn("\033", r.out)
        r = self.m.meshctl("stats", "-o", "json", "--watch", "--interval", "100ms", "--count", "2")
        self.assertEqual([json.loads(l)["rows"] for l in r.out.splitlines()], [[], []])

    def test_stats_watch_redraws_in_place_on_a_terminal(self):
        import pty
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(runfile("controlplane/meshctl/meshctl"),
                     ["meshctl", "--server", self.m.server, "stats", "--watch", "--interval",
                      "100ms", "--count", "2"])
        out = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        # Each refresh clears the screen and homes the cursor instead of appending.
        self.assertEqual(out.count(b"\033[H\033[2J"), 2, out)
        self.assertEqual(out.count(b"no traffic reported yet"), 2, out)

    def test_proxy_status_lists_sidecars(self):
        self.assertEqual(self.m.apply(SERVICE_EPS).rc, 0)
        s = self.m.fake_sidecar(pod="reviews-v1-abc", service="reviews", version="v1",
                                address="127.0.0.1:9001")
        snap = s.snapshot_where(lambda sn: sn.version == 1)
        s.ack(snap)

        def synced():
            j = self.m.meshctl("proxy-status", "-o", "json").json()
            return j if j["sidecars"] and j["sidecars"][0]["state"] == "SYNCED" else None
        j = wait_until(synced)
        sc = j["sidecars"][0]
        self.assertEqual((sc["pod"], sc["namespace"], sc["service"], sc["version"],
                          sc["config_version"], sc["error"], sc["scope"]),
                         ("reviews-v1-abc", "default", "reviews", "v1", 1, "", "all"))
        self.assertGreater(sc["last_seen_ms"], 0)
        r = self.m.meshctl("proxy-status")
        lines = r.out.splitlines()
        self.assertEqual(lines[0], "current config version 1; 1 sidecar connected")
        self.assertEqual(lines[1].split(), ["POD", "NAMESPACE", "SERVICE", "VERSION", "SCOPE",
                                            "CONFIG", "STATUS", "LAST", "SEEN", "ERROR"])
        self.assertRegex(lines[2], r"^reviews-v1-abc\s+default\s+reviews\s+v1\s+all\s+1\s+"
                                   r"SYNCED\s+\d+s ago$")
        s.close()

    def test_bash_completion(self):
        script = runfile("controlplane/meshctl/completion.bash")

        def complete(line):
            words = line.split(" ")
            cmd = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _meshctl; "
                   "printf '%%s\\n' \"${COMPREPLY[@]}\"") % (
                script, " ".join("'%s'" % w for w in words), len(words) - 1)
            env = dict(os.environ)
            env["PATH"] = os.path.dirname(runfile("controlplane/meshctl/meshctl")) + ":" + \
                env.get("PATH", "")
            out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env)
            self.assertEqual(out.returncode, 0, out.stderr)
            return [w for w in out.stdout.splitlines() if w]

        self.assertEqual(complete("meshctl ap"), ["apply"])
        self.assertEqual(complete("meshctl get ro"), ["routes"])
        self.assertEqual(sorted(complete("meshctl get routes -o ")), ["json", "table", "yaml"])
        self.assertIn("--dry-run", complete("meshctl apply --d"))
        self.assertEqual(self.m.apply(SERVICE_EPS + "---\n" + route(90, 10)).rc, 0)
        self.assertEqual(complete("meshctl --server %s get routes rev" % self.m.server),
                         ["reviews-rollout"])


if __name__ == "__main__":
    unittest.main()
