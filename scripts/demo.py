#!/usr/bin/env python3
"""scripts/demo.py — Remora's demo on loopback: real sidecar, real backends, real numbers.

Part one shows a sidecar on its own (config from a file): a canary split measured over real
requests, an A/B cohort, a live reload, a bad config refused with its exact error. Part two is the
mesh: remora-control on its embedded SQLite store, pods (test backend + sidecar registered through
the control plane), a client sidecar under load, meshctl pushing routes, a rolling update with its
error count, and `meshctl stats`. Part three, when run as root, repeats the rolling update with
pods as network namespaces (tests/pods/pod_runner.py): remora-init's iptables rules, the sidecar
as uid 1337, the client app calling a Service vip through transparent interception. Under a minute; everything it starts is stopped on
exit, Ctrl-C included.
"""
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))
from remora_harness import Harness, Load, free_port, http_request, wait_port  # noqa: E402

BIN = os.path.join(TOP, "bazel-bin")


def step(n, text):
    print("\n%d. %s" % (n, text), flush=True)


def config(ports, w1, w2):
    return """kind: Service
name: reviews
port: 9080
endpoints:
  - {address: 127.0.0.1:%d, version: v1}
  - {address: 127.0.0.1:%d, version: v2}
---
kind: Route
name: reviews-rollout
service: reviews
rules:
  - name: beta-users
    match: {headers: {x-user-group: {exact: beta}}}
    destinations: [{version: v2, weight: 100}]
  - name: canary
    destinations: [{version: v1, weight: %d}, {version: v2, weight: %d}]
""" % (ports["v1"], ports["v2"], w1, w2)


def write_atomically(path, text):
    """As editors do: a reader (the sidecar's file watcher) never sees a half-written file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def split(port, n, headers=None):
    counts = collections.Counter()
    errors = 0
    t = time.time()
    sock = socket.create_connection(("127.0.0.1", port))
    for _ in range(n):
        h = {"Host": "reviews"}
        h.update(headers or {})
        try:
            r = http_request(port, "/", headers=h, sock=sock)
            if r.status == 200:
                counts[r.header("x-backend-version")] += 1
            else:
                errors += 1
        except OSError:
            errors += 1
            sock = socket.create_connection(("127.0.0.1", port))
    return counts, errors, time.time() - t


def show(counts, errors, secs, n):
    shares = ", ".join("%s %.1f%%" % (v, 100.0 * c / n) for v, c in sorted(counts.items()))
    print("   %d requests in %.2fs (%.0f/s): %s; errors: %d" % (n, secs, n / secs, shares, errors))


MESH_CONFIG = """kind: Service
name: reviews
port: 9080
---
kind: Route
name: reviews-rollout
service: reviews
rules:
  - name: canary
    destinations: [{version: v1, weight: %d}, {version: v2, weight: %d}]
    retries: {attempts: 3, retryOn: [connect-failure, reset], backoff: {base: 5ms, max: 50ms}}
"""


SHADOW_CONFIG = MESH_CONFIG.replace("    retries:", "    mirror: {version: v3, percent: 100}\n    retries:") % (50, 50)


def app_requests(app):
    """Requests the test backend has answered (its own counter, GET /__backend/stats)."""
    return json.loads(http_request(app.port, "/__backend/stats").body)["requests"]


def meshctl(server, *args, stdin=None):
    r = subprocess.run([os.path.join(BIN, "controlplane/meshctl/meshctl"), "--server", server] +
                       list(args), input=stdin, capture_output=True, text=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).rstrip()


def show_cmd(server, *args, stdin=None, indent="   "):
    rc, out = meshctl(server, *args, stdin=stdin)
    print(indent + "$ meshctl " + " ".join(args))
    for line in out.splitlines():
        print(indent + line)
    return rc


class Pod:
    def __init__(self, h, server, version, name, app):
        self.name, self.app = name, app
        self.inbound, self.admin = free_port(), free_port()
        self.sidecar = h.start([os.path.join(BIN, "dataplane/proxy/remora-proxy"), "--control-plane",
                                server, "--bind", "127.0.0.1", "--service", "reviews", "--version",
                                version, "--pod", name, "--app-port", str(app.port),
                                "--outbound-port", "0", "--inbound-port", str(self.inbound),
                                "--admin-port", str(self.admin), "--drain-grace", "1s"],
                               log_name="sidecar-" + name)
        wait_port(self.admin, proc=self.sidecar)

    def ready(self):
        try:
            return http_request(self.admin, "/ready", timeout=2).status == 200
        except OSError:
            return False


def wait_ready(pods, timeout=10):
    end = time.time() + timeout
    while time.time() < end and not all(p.ready() for p in pods):
        time.sleep(0.05)


def mesh_story(h, backends):
    port = free_port()
    server = "127.0.0.1:%d" % port
    step(7, "The mesh: remora-control on its embedded SQLite store, three pods, a client sidecar")
    control = h.start([os.path.join(BIN, "controlplane/remora-control"), "--listen", server,
                       "--store", "sqlite:" + h.path("store/remora.db")], log_name="control")
    wait_port(port, proc=control)
    pods = [Pod(h, server, "v1", "reviews-v1-a", backends["v1"]),
            Pod(h, server, "v1", "reviews-v1-b", h.backend("reviews", "v1")),
            Pod(h, server, "v2", "reviews-v2-a", backends["v2"])]
    out, admin = free_port(), free_port()
    client = h.start([os.path.join(BIN, "dataplane/proxy/remora-proxy"), "--control-plane", server,
                      "--bind", "127.0.0.1", "--pod", "frontend", "--outbound-port", str(out),
                      "--inbound-port", "0", "--admin-port", str(admin)], log_name="client")
    wait_port(out, proc=client)

    step(8, "Push a 90/10 canary with meshctl and wait until every sidecar has it")
    show_cmd(server, "apply", "-f", "-", "--wait", stdin=MESH_CONFIG % (90, 10))
    wait_ready(pods)
    show(*split(out, 1000), 1000)

    step(9, "Promote to 50/50")
    show_cmd(server, "apply", "-f", "-", "--wait", stdin=MESH_CONFIG % (50, 50))
    show(*split(out, 1000), 1000)

    step(10, "Rolling update of the v1 pods under 300 requests/s (GET and POST): start new, wait "
            "ready, SIGTERM old")
    load = Load(out, "reviews", rate=300, connections=6).start()
    time.sleep(0.5)
    for i, old in enumerate([p for p in pods if "v1" in p.name]):
        new = Pod(h, server, "v1", "reviews-v1-new-%d" % i, h.backend("reviews", "v1"))
        wait_ready([new])
        time.sleep(0.3)
        old.sidecar.send_signal(signal.SIGTERM)
        old.app.send_signal(signal.SIGTERM)
        old.sidecar.wait(timeout=15)
        print("   replaced %s with %s" % (old.name, new.name))
    time.sleep(0.5)
    load.stop()
    total = sum(load.sent.values())
    retries = redirected = 0
    for line in http_request(admin, "/stats").body.decode().splitlines():
        if line.startswith("remora_retries_total{"):
            retries += int(float(line.rsplit(" ", 1)[1]))
        if line.startswith("remora_drain_redirects_total{"):
            redirected += int(float(line.rsplit(" ", 1)[1]))
    print("   %d requests (%s), %d client-visible errors; %d sent back by a draining pod and "
          "redirected, %d retried" % (
              total, ", ".join("%s %d" % kv for kv in sorted(load.sent.items())),
              len(load.failures), redirected, retries))

    step(11, "A bad route never reaches a sidecar; the error says where")
    show_cmd(server, "apply", "-f", "-", stdin=(MESH_CONFIG % (50, 50)).replace("weight: 50}]", "weight: fifty}]"))

    step(12, "Dark launch: a v3 pod receives a copy of every request; users still see only v1/v2")
    dark_app = h.backend("reviews", "v3")
    Pod(h, server, "v3", "reviews-v3-dark", dark_app)
    show_cmd(server, "apply", "-f", "-", "--wait", stdin=SHADOW_CONFIG)
    before = app_requests(dark_app)
    counts, errors, secs = split(out, 500)
    show(counts, errors, secs, 500)
    time.sleep(0.5)  # shadow copies are detached: the last ones may still be in flight
    print("   the v3 pod received %d shadow copies (Host: reviews-shadow); v3 answered %d user "
          "requests" % (app_requests(dark_app) - before, counts.get("v3", 0)))

    step(13, "Look at the mesh the way an operator does")
    time.sleep(5.5)  # sidecars report their counters every 5 s
    show_cmd(server, "proxy-status")
    show_cmd(server, "stats", "reviews", "--window", "5s")  # steps 9-12: all at 50/50


NETNS_CONFIG = """kind: Service
name: reviews
port: 9080
vip: 10.96.0.10
"""


def netns_story():
    """The same rolling update with pods as network namespaces: remora-init's iptables rules in
    every pod, the sidecar as uid 1337, the client app calling the Service's vip with no idea a
    mesh exists (transparent interception). Needs root; otherwise says so and skips."""
    step(14, "Pods as network namespaces: transparent interception, a v1 -> v2 rolling update")
    sys.path.insert(0, os.path.join(TOP, "tests", "pods"))
    from pod_load import start_load, stop_load  # noqa: E402
    from pod_runner import PodRunner, available  # noqa: E402
    if not available():
        print("   skipped: needs root, iproute2, iptables, setpriv and curl (the loopback run above "
              "told the same story)")
        return
    with PodRunner(prefix="rmdemo") as r:
        r.apply(NETNS_CONFIG)
        pods = [r.start_pod("reviews", "v1", wait_ready=False) for _ in range(3)]
        client = r.start_pod(None, None, name="client", wait_ready=False)
        r.wait_ready(*pods)
        time.sleep(1.0)
        print("   node namespace with a bridge and remora-control; 3 pods of reviews v1 and a "
              "client pod, each its own namespace")
        try:
            load = start_load(client, "10.96.0.10:9080", 200, authority="reviews", seconds=60,
                              connections=8, tally=True)
        except RuntimeError as e:
            print("   %s" % e)
            return
        time.sleep(1.0)
        new, codes = r.rolling_update("reviews", pods, "v2", max_surge=1, max_unavailable=0)
        time.sleep(1.0)
        summary = stop_load(load)
        versions = ", ".join("%s %d" % kv for kv in sorted(summary["versions"].items()))
        print("   the client app called http://10.96.0.10:9080/ (GET and POST, 200 req/s); "
              "iptables sent it through its sidecar")
        print("   replaced %s with %s (maxSurge 1, maxUnavailable 0)" % (
            ", ".join(p.name for p in pods), ", ".join(p.name for p in new)))
        print("   %d requests, %d client-visible errors; answered by %s; %d of %d carried the "
              "hops of both sidecars" % (summary["total"], summary["failures"], versions,
                                               summary["through_mesh"], summary["total"]))
        time.sleep(5.5)  # sidecars report their counters every 5 s
        stats = r.meshctl("stats", "reviews", check=False)
        print("   $ meshctl stats reviews   (inside the node namespace)")
        for line in (stats.stdout + stats.stderr).rstrip().splitlines():
            print("   " + line)


def main():
    h = Harness()
    signal.signal(signal.SIGINT, lambda *a: (h.close(), sys.exit(130)))
    try:
        print("Remora demo — sidecar on loopback (control plane, meshctl and pods come next; see docs/STATUS.md)")
        step(1, "Start two versions of the 'reviews' app (the test backend)")
        backends = {v: h.backend("reviews", v) for v in ("v1", "v2")}
        ports = {v: b.port for v, b in backends.items()}
        print("   reviews v1 on :%d, reviews v2 on :%d" % (ports["v1"], ports["v2"]))

        step(2, "Start remora-proxy with a 90/10 canary route from a file")
        cfg = h.write("reviews.yaml", config(ports, 90, 10))
        out, admin = free_port(), free_port()
        proxy = h.start([os.path.join(BIN, "dataplane/proxy/remora-proxy"), "--config", cfg,
                         "--bind", "127.0.0.1", "--outbound-port", str(out), "--inbound-port", "0",
                         "--admin-port", str(admin)], log_name="proxy")
        wait_port(out, proc=proxy)
        print("   outbound :%d, admin :%d" % (out, admin))
        n = 2000
        show(*split(out, n), n)

        step(3, "A/B: requests with x-user-group: beta always reach v2")
        show(*split(out, 500, {"x-user-group": "beta"}), 500)

        step(4, "Promote the canary to 50/50: edit the file, SIGHUP (no restart, no dropped request)")
        write_atomically(cfg, config(ports, 50, 50))
        proxy.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        show(*split(out, n), n)

        step(5, "A bad edit is refused with its exact error; the 50/50 split stays in force")
        write_atomically(cfg, config(ports, 50, 50).replace("weight: 50}]", "weight: fifty}]"))
        proxy.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        for line in h.log_of(proxy).splitlines():
            if "config rejected" in line:
                print("   " + line.split(" error ", 1)[-1])
        show(*split(out, 500), 500)

        step(6, "The sidecar's own numbers (GET :%d/stats)" % admin)
        for line in http_request(admin, "/stats").body.decode().splitlines():
            if line.startswith(("remora_requests_total", "remora_config_version", "remora_config_rejected_total",
                                "remora_upstream_connections")):
                print("   " + line)
        mesh_story(h, backends)
        h.close()  # part two's processes go before the pods start
        netns_story()
        print("\nDone. Everything started by the demo has been stopped.")
    finally:
        h.close()


if __name__ == "__main__":
    main()
