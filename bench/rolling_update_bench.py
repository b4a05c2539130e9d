#!/usr/bin/env python3
"""bench/rolling_update_bench.py — what Remora's drain and safe retries save during a rolling
update, measured side by side in one run.

Same mesh both times (remora-control, three pods = test backend + sidecar, a client sidecar, a
fixed-rate load of GET and POST over keep-alive connections), same rolling update (start new pod,
wait ready, SIGTERM old app and sidecar together, wait exit, three times):
  - "remora": the defaults — drain with a grace period, withdraw through the control plane,
    safe retries;
  - "plain": the same proxies with retries off and no drain (the sidecar exits at SIGTERM), i.e.
    what a mesh without these features gives.
Writes bench/results/rolling_update.{json,md}.
"""
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))
from remora_harness import Harness, Load, free_port, http_request, wait_port  # noqa: E402

BIN = os.path.join(TOP, "bazel-bin")
RATE = int(os.environ.get("BENCH_RATE", "500"))

CONFIG = """kind: Service
name: reviews
port: 9080
---
kind: Route
name: reviews
service: reviews
rules:
  - name: all
    destinations: [{version: v1, weight: 1}]
    retries: %s
"""


def sidecar(h, server, name, app_port, drain):
    inbound, admin = free_port(), free_port()
    p = h.start([os.path.join(BIN, "dataplane/proxy/remora-proxy"), "--control-plane", server,
                 "--bind", "127.0.0.1", "--service", "reviews", "--version", "v1", "--pod", name,
                 "--app-port", str(app_port), "--outbound-port", "0", "--inbound-port",
                 str(inbound), "--admin-port", str(admin)] + drain, log_name=name)
    wait_port(admin, proc=p)
    p.admin = admin
    return p


def ready(p):
    try:
        return http_request(p.admin, "/ready", timeout=2).status == 200
    except OSError:
        return False


def run(mode):
    h = Harness()
    try:
        port = free_port()
        server = "127.0.0.1:%d" % port
        control = h.start([os.path.join(BIN, "controlplane/remora-control"), "--listen", server,
                           "--store", "sqlite:" + h.path("store/x.db")], log_name="control")
        wait_port(port, proc=control)
        retries = "{attempts: 3, retryOn: [connect-failure, reset]}" if mode == "remora" else "{attempts: 0}"
        drain = ["--drain-grace", "1s", "--drain-seconds", "10"] if mode == "remora" else \
            ["--drain-grace", "0s", "--drain-seconds", "0"]
        subprocess.run([os.path.join(BIN, "controlplane/meshctl/meshctl"), "--server", server,
                        "apply", "-f", "-"], input=CONFIG % retries, text=True, check=True,
                       capture_output=True)
        pods = []
        for i in range(3):
            app = h.backend("reviews", "v1", extra=["--drain-seconds", "5"])
            pods.append((app, sidecar(h, server, "reviews-%d" % i, app.port, drain)))
        out, admin = free_port(), free_port()
        client = h.start([os.path.join(BIN, "dataplane/proxy/remora-proxy"), "--control-plane",
                          server, "--bind", "127.0.0.1", "--pod", "client", "--outbound-port",
                          str(out), "--inbound-port", "0", "--admin-port", str(admin)],
                         log_name="client")
        wait_port(out, proc=client)
        end = time.time() + 10
        while time.time() < end and not all(ready(s) for _, s in pods):
            time.sleep(0.05)
        time.sleep(0.5)
        load = Load(out, "reviews", rate=RATE, connections=10).start()
        time.sleep(1.0)
        for i, (app, sc) in enumerate(list(pods)):
            new_app = h.backend("reviews", "v1", extra=["--drain-seconds", "5"])
            new_sc = sidecar(h, server, "reviews-new-%d" % i, new_app.port, drain)
            end = time.time() + 10
            while time.time() < end and not ready(new_sc):
                time.sleep(0.05)
            time.sleep(0.3)
            sc.send_signal(signal.SIGTERM)
            app.send_signal(signal.SIGTERM)
            sc.wait(timeout=15)
            app.wait(timeout=15)
        time.sleep(1.0)
        load.stop()
        by_method = {}
        for m in ("GET", "POST"):
            by_method[m] = {"sent": load.sent[m],
                            "failed": sum(1 for f in load.failures if f[0] == m)}
        saved = redirected = 0
        for line in http_request(admin, "/stats").body.decode().splitlines():
            if line.startswith("remora_retry_success_total{"):
                saved += int(float(line.rsplit(" ", 1)[1]))
            if line.startswith("remora_drain_redirects_total{"):
                redirected += int(float(line.rsplit(" ", 1)[1]))
        return {"requests": sum(load.sent.values()), "failed": len(load.failures),
                "by_method": by_method, "saved_by_retries": saved,
                "redirected_by_drain_hand_off": redirected,
                "failure_samples": [list(map(str, f)) for f in load.failures[:5]]}
    finally:
        h.close()


def main():
    results = {"rate_rps": RATE, "pods": 3, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for mode in ("plain", "remora"):
        print("bench: rolling update, %s" % mode, file=sys.stderr, flush=True)
        results[mode] = run(mode)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "rolling_update.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(HERE, "results", "rolling_update.md"), "w") as f:
        f.write("# Rolling update of 3 pods under %d req/s (one run, %s)\n\n" % (RATE, results["measured_at"]))
        f.write("| mode | requests | failed | failed GET | failed POST | saved by retries | "
                "redirected by a draining pod |\n|---|---|---|---|---|---|---|\n")
        for mode in ("plain", "remora"):
            r = results[mode]
            f.write("| %s | %d | %d | %d | %d | %d | %d |\n" % (
                mode, r["requests"], r["failed"], r["by_method"]["GET"]["failed"],
                r["by_method"]["POST"]["failed"], r["saved_by_retries"],
                r["redirected_by_drain_hand_off"]))
        f.write("\nplain = the same proxies with retries off and no drain (the sidecar exits at "
                "SIGTERM); remora = defaults (drain, withdraw, the drain hand-off, safe retries).\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
