#!/usr/bin/env python3
"""scripts/demo.py — Remora's demo on loopback: real sidecar, real backends, real numbers.

Today it shows the sidecar on its own (config from a file): a canary split measured over real
requests, an A/B cohort, a config change applied live with SIGHUP, a bad config refused with its
exact error, and the sidecar's own stats. It grows with the control plane, meshctl and network
namespace pods (see docs/STATUS.md). Under a minute; everything it starts is stopped on exit,
Ctrl-C included.
"""
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))
from remora_harness import Harness, free_port, http_request, wait_port  # noqa: E402

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
        with open(cfg, "w") as f:
            f.write(config(ports, 50, 50))
        proxy.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        show(*split(out, n), n)

        step(5, "A bad edit is refused with its exact error; the 50/50 split stays in force")
        with open(cfg, "w") as f:
            f.write(config(ports, 50, 50).replace("weight: 50}]", "weight: fifty}]"))
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
        print("\nDone. Everything started by the demo has been stopped.")
    finally:
        h.close()


if __name__ == "__main__":
    main()
