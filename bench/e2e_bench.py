#!/usr/bin/env python3
"""bench/e2e_bench.py — what the mesh adds end to end: client pod -> server pod, four ways, one run.

Pods are network namespaces (tests/pods/pod_runner.py; needs root). The same app (the test
backend on :8080) answers on every path; the client is tests/pods/open_loop.py, an open-loop
generator at a fixed rate whose latency counts from each request's scheduled send time (no
coordinated omission). Paths:
  direct   client pod (no sidecar, no rules) -> server pod's app, nothing in between;
  remora   the real setup: client pod with remora-init's rules and its sidecar, calling the
           Service vip -> client sidecar (outbound) -> server sidecar (inbound, intercepted)
           -> app; both sidecars under remora-control;
  nginx    two hops: nginx in the client pod (the app calls it on 127.0.0.1) -> nginx in the
           server pod in front of the app, upstream keep-alive on both;
  haproxy  the same with HAProxy.
Per path: p50/p99 and the latency added over direct; per hop: CPU (utime+stime from
/proc/PID/stat around each measurement) as vCPU per 1,000 req/s, memory (VmRSS and RssAnon)
after the load. Rounds are interleaved (the order rotates) and each figure is the median over
rounds (the least disturbed round's CPU is kept too). Writes bench/results/e2e.{json,md}.
Environment: BENCH_RATE (1000), BENCH_SECONDS (6), BENCH_ROUNDS (5).
"""
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))
sys.path.insert(0, os.path.join(TOP, "tests", "pods"))
from pod_runner import PodRunner, available  # noqa: E402
from procstat import cpu_seconds, status_kb, with_children  # noqa: E402

RATE = int(os.environ.get("BENCH_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
WARMUP = 1.0
VIP = "10.96.0.20"
OPEN_LOOP = os.path.join(TOP, "tests", "pods", "open_loop.py")
PATHS = ("direct", "remora", "nginx", "haproxy")
# Istio's published sidecar cost (istio.io "Performance and Scalability", 1.2x-1.2x docs):
# 0.20-0.35 vCPU and 40-60 MB per 1,000 requests/s through one sidecar.
ISTIO = {"vcpu_per_1k_rps": (0.20, 0.35), "memory_mb": (40, 60)}

SERVICE = """kind: Service
name: e2e
port: 80
vip: %s
""" % VIP

NGINX = """worker_processes 1; daemon off; pid %(dir)s/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path %(dir)s/cb; proxy_temp_path %(dir)s/pt;
  upstream up { server %(upstream)s; keepalive 64; }
  server { listen %(listen)s; location / { proxy_pass http://up; proxy_http_version 1.1;
           proxy_set_header Connection ""; } } }
"""

HAPROXY = """global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind %(listen)s
  default_backend be
backend be
  server s1 %(upstream)s
"""


def log(msg):
    print("e2e-bench: " + msg, file=sys.stderr, flush=True)


def comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


class Bench:
    def __init__(self, runner):
        self.r = runner
        self.hops = {}  # path -> [(hop name, [pids])]

    def start_proxy(self, pod, kind, listen, upstream):
        d = self.r.h.path("%s-%s" % (kind, pod.name))
        os.makedirs(d)
        conf = os.path.join(d, "conf")
        with open(conf, "w") as f:
            f.write((NGINX if kind == "nginx" else HAPROXY) % {"dir": d, "listen": listen,
                                                               "upstream": upstream})
        argv = (["nginx", "-c", conf, "-p", d] if kind == "nginx" else
                ["haproxy", "-f", conf, "-db"])
        p = self.r.h.start(["ip", "netns", "exec", pod.ns] + argv, log_name=kind + "-" + pod.name)
        host, port = listen.rsplit(":", 1)
        self.wait_listen(pod, host, int(port), p)
        time.sleep(0.3)  # nginx forks its worker after listening
        return p

    def wait_listen(self, pod, host, port, proc, timeout=10):
        code = ("import socket,sys,time\nend=time.time()+%f\nwhile time.time()<end:\n try:\n"
                "  socket.create_connection(('%s',%d),0.5).close(); sys.exit(0)\n"
                " except OSError: time.sleep(0.05)\nsys.exit(1)\n" % (timeout, host, port))
        if pod.exec("/usr/bin/python3", "-c", code, check=False).returncode != 0:
            raise RuntimeError("%s:%d never listened in %s:\n%s" % (host, port, pod.name,
                                                                   self.r.h.log_of(proc)))

    def setup(self):
        r = self.r
        r.apply(SERVICE)
        self.srv_mesh = r.start_pod("e2e", "v1", name="srv-mesh", wait_ready=False)
        self.cli_mesh = r.start_pod(None, None, name="cli-mesh", wait_ready=False)
        self.srv_plain = r.start_pod("e2e", "v1", name="srv-plain", mesh=False)
        self.cli_plain = r.start_pod(None, None, name="cli-plain", mesh=False)
        r.wait_ready(self.srv_mesh, self.cli_mesh)
        for p in (self.srv_mesh, self.cli_mesh):
            if comm(p.sidecar.pid) != "remora-proxy":
                raise RuntimeError("pid %d is %s, not the sidecar" % (p.sidecar.pid,
                                                                     comm(p.sidecar.pid)))
        srv = self.srv_plain.ip
        ngx_in = self.start_proxy(self.srv_plain, "nginx", "0.0.0.0:8081", "127.0.0.1:8080")
        hap_in = self.start_proxy(self.srv_plain, "haproxy", "0.0.0.0:8082", "127.0.0.1:8080")
        ngx_out = self.start_proxy(self.cli_plain, "nginx", "127.0.0.1:9081", srv + ":8081")
        hap_out = self.start_proxy(self.cli_plain, "haproxy", "127.0.0.1:9082", srv + ":8082")
        self.targets = {"direct": (self.cli_plain, srv + ":8080", None),
                        "remora": (self.cli_mesh, VIP + ":80", "e2e"),
                        "nginx": (self.cli_plain, "127.0.0.1:9081", None),
                        "haproxy": (self.cli_plain, "127.0.0.1:9082", None)}
        self.hops = {
            "direct": [],
            "remora": [("client sidecar", [self.cli_mesh.sidecar.pid]),
                       ("server sidecar", [self.srv_mesh.sidecar.pid])],
            "nginx": [("client nginx", with_children(ngx_out.pid)),
                      ("server nginx", with_children(ngx_in.pid))],
            "haproxy": [("client haproxy", with_children(hap_out.pid)),
                        ("server haproxy", with_children(hap_in.pid))],
        }
        for path, hops in self.hops.items():
            for name, pids in hops:
                log("%s: %s pids %s (%s)" % (path, name, pids, ",".join(comm(p) for p in pids)))

    def load(self, path, seconds):
        pod, target, authority = self.targets[path]
        argv = ["/usr/bin/python3", OPEN_LOOP, "--target", target, "--rate", str(RATE),
                "--seconds", str(seconds), "--connections", "16", "--timeout", "5"]
        if authority:
            argv += ["--authority", authority]
        out = pod.exec(*argv, timeout=seconds + 30).stdout
        return json.loads(out.strip().splitlines()[-1])

    def measure(self, path):
        self.load(path, WARMUP)  # connections and pools warm, caches hot
        hops = self.hops[path]
        cpu0 = [cpu_seconds(pids) for _, pids in hops]
        t0 = time.monotonic()
        s = self.load(path, SECONDS)
        wall = time.monotonic() - t0
        cpu = [cpu_seconds(pids) - c0 for (_, pids), c0 in zip(hops, cpu0)]
        mem = [{k: sum(status_kb(p, k) for p in pids) for k in ("VmRSS", "RssAnon")}
               for _, pids in hops]
        thousands = s["total"] / 1000.0
        out = {"p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "p999_ms": s["p999_ms"],
               "max_ms": s["max_ms"], "requests": s["total"], "failures": s["failures"],
               "achieved_rps": s["achieved_rps"], "wall_s": round(wall, 2),
               "hops": {}}
        for (name, _), c, m in zip(hops, cpu, mem):
            # CPU seconds per 1,000 requests == vCPU busy at 1,000 requests/s
            out["hops"][name] = {"cpu_s": round(c, 3),
                                 "vcpu_per_1k_rps": c / thousands if thousands else None,
                                 "rss_kb": m["VmRSS"], "rss_anon_kb": m["RssAnon"]}
        log("%-8s p50 %.3f ms  p99 %.3f ms  %d req  %d failed  %s" % (
            path, s["p50_ms"], s["p99_ms"], s["total"], s["failures"],
            "  ".join("%s %.3f vCPU/1k" % (n, h["vcpu_per_1k_rps"]) for n, h in out["hops"].items())))
        return out


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    if not available():
        print("e2e-bench: needs root, iproute2, iptables, setpriv and curl; skipped",
              file=sys.stderr)
        return 0
    started = time.time()
    runner = PodRunner(prefix="rmeb", log_level="warn")
    try:
        runner.setup()
        b = Bench(runner)
        b.setup()
        rounds = {p: [] for p in PATHS}
        for rnd in range(ROUNDS):
            order = PATHS[rnd % len(PATHS):] + PATHS[:rnd % len(PATHS)]
            for path in order:
                rounds[path].append(b.measure(path))
    finally:
        runner.close()

    res = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "workload": {"rate_rps": RATE, "seconds": SECONDS, "rounds": ROUNDS,
                        "method": "GET, keep-alive, up to 16 connections, open loop",
                        "app": "remora-test-backend (JSON identity line, ~100 B)",
                        "generator": "tests/pods/open_loop.py (python3, one thread)",
                        "cores": os.cpu_count()},
           "istio_published": ISTIO, "paths": {}, "rounds": rounds}
    direct = res["paths"]["direct"] = {
        "p50_ms": med(x["p50_ms"] for x in rounds["direct"]),
        "p99_ms": med(x["p99_ms"] for x in rounds["direct"]),
        "requests": sum(x["requests"] for x in rounds["direct"]),
        "failures": sum(x["failures"] for x in rounds["direct"])}
    for path in PATHS[1:]:
        rs = rounds[path]
        p = res["paths"][path] = {
            "p50_ms": med(x["p50_ms"] for x in rs), "p99_ms": med(x["p99_ms"] for x in rs),
            "p99_all": [x["p99_ms"] for x in rs],
            "requests": sum(x["requests"] for x in rs),
            "failures": sum(x["failures"] for x in rs), "hops": {}}
        p["added_p50_ms"] = p["p50_ms"] - direct["p50_ms"]
        p["added_p99_ms"] = p["p99_ms"] - direct["p99_ms"]
        for hop in rs[0]["hops"]:
            p["hops"][hop] = {
                "vcpu_per_1k_rps": med(x["hops"][hop]["vcpu_per_1k_rps"] for x in rs),
                "vcpu_per_1k_rps_min": min(x["hops"][hop]["vcpu_per_1k_rps"] for x in rs),
                "rss_kb": max(x["hops"][hop]["rss_kb"] for x in rs),
                "rss_anon_kb": max(x["hops"][hop]["rss_anon_kb"] for x in rs)}
        p["vcpu_per_1k_rps_both_hops"] = sum(h["vcpu_per_1k_rps"] for h in p["hops"].values())
    res["run_seconds"] = round(time.time() - started, 1)

    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "e2e.json"), "w") as f:
        json.dump(res, f, indent=2)
    write_md(res)
    print(json.dumps(res["paths"], indent=2))
    return 0


def rounds_p99(res, path):
    return " ".join("%.1f" % x["p99_ms"] for x in res["rounds"][path])


def ratio(a, b):
    return a / b if b else float("nan")


def write_md(res):
    w = res["workload"]
    d = res["paths"]["direct"]
    lines = [
        "# End to end: what the mesh adds between two pods (%s)" % res["measured_at"], "",
        "Client pod -> server pod, pods as network namespaces on one bridge (tests/pods). %d "
        "GET/s open loop for %gs per measurement after 1 s of warm-up (latency from each request's scheduled send "
        "time), %d interleaved rounds, medians (every round in e2e.json). Same app on every path "
        "(the test backend). Made by `bench/e2e_bench.py` in %.0f s." % (
            w["rate_rps"], w["seconds"], w["rounds"], res["run_seconds"]), "",
        "**Machine caveat**: a shared 2-core VM that also runs other builds; the generator, both "
        "hops and the app share those two cores. Absolute numbers are noise; compare paths "
        "within this run (the ratios), and the added latency over direct.", "",
        "| path | p50 ms | p99 ms | added p50 ms | added p99 ms | p99 of each round | requests "
        "| failed |",
        "|---|---|---|---|---|---|---|---|",
        "| direct (no proxy) | %.3f | %.3f | — | — | %s | %d | %d |" % (
            d["p50_ms"], d["p99_ms"], rounds_p99(res, "direct"), d["requests"], d["failures"])]
    labels = {"remora": "Remora: client sidecar + server sidecar (iptables interception)",
              "nginx": "nginx, two hops", "haproxy": "HAProxy, two hops"}
    for path in PATHS[1:]:
        p = res["paths"][path]
        lines.append("| %s | %.3f | %.3f | %.3f | %.3f | %s | %d | %d |" % (
            labels[path], p["p50_ms"], p["p99_ms"], p["added_p50_ms"], p["added_p99_ms"],
            rounds_p99(res, path), p["requests"], p["failures"]))
    lines += ["", "A p99 over one round is its %d slowest requests: one "
              % (w["rate_rps"] * w["seconds"] / 100) +
              "scheduling hiccup of the shared machine moves it by tens of ms (see each round). "
              "The medians of p50 and the per-hop CPU are the steadier figures."]
    lines += ["", "Per hop, under the load (CPU seconds per 1,000 requests = vCPU busy at "
              "1,000 req/s; memory after the load, the largest of the rounds):", "",
              "| hop | vCPU per 1,000 req/s (median) | least of the rounds | RSS MB | private "
              "(RssAnon) MB |", "|---|---|---|---|---|"]
    for path in PATHS[1:]:
        for hop, h in res["paths"][path]["hops"].items():
            lines.append("| %s | %.3f | %.3f | %.1f | %.1f |" % (hop, h["vcpu_per_1k_rps"],
                                                         h["vcpu_per_1k_rps_min"],
                                                         h["rss_kb"] / 1024.0,
                                                         h["rss_anon_kb"] / 1024.0))
    pr = res["paths"]
    lines += ["", "Both hops together, Remora against the two-hop proxies: CPU %.2fx nginx's and "
              "%.2fx HAProxy's; added p50 %.2fx and %.2fx (added p99s are too noisy for a "
              "ratio; see the rounds)." % (
                  pr["remora"]["vcpu_per_1k_rps_both_hops"] / pr["nginx"]["vcpu_per_1k_rps_both_hops"],
                  pr["remora"]["vcpu_per_1k_rps_both_hops"] / pr["haproxy"]["vcpu_per_1k_rps_both_hops"],
                  ratio(pr["remora"]["added_p50_ms"], pr["nginx"]["added_p50_ms"]),
                  ratio(pr["remora"]["added_p50_ms"], pr["haproxy"]["added_p50_ms"])),
              "Remora's path also crosses the iptables REDIRECT twice (client outbound, server "
              "inbound) and looks up SO_ORIGINAL_DST; the proxies' paths are plain connections "
              "to a known address."]
    rm = res["paths"]["remora"]["hops"]
    worst_cpu = max(h["vcpu_per_1k_rps"] for h in rm.values())
    worst_mem = max(h["rss_kb"] for h in rm.values()) / 1024.0
    worst_anon = max(h["rss_anon_kb"] for h in rm.values()) / 1024.0
    lo, hi = ISTIO["vcpu_per_1k_rps"]
    mlo, mhi = ISTIO["memory_mb"]
    lines += [
        "", "## Against Istio's published sidecar cost", "",
        "Istio publishes %.2f–%.2f vCPU and %d–%d MB per sidecar per 1,000 req/s (Envoy; "
        "istio.io, Performance and Scalability). The target is a tenth: %.3f–%.3f vCPU, "
        "%d–%d MB." % (lo, hi, mlo, mhi, lo / 10, hi / 10, mlo // 10, mhi // 10), "",
        "Remora's busier sidecar here: **%.3f vCPU per 1,000 req/s** (%.2fx Istio's low "
        "figure: %s the tenth), **%.1f MB private (RssAnon), %.1f MB RSS** (private memory %s "
        "a tenth of Istio's low %d MB; RSS %s it — RSS counts the shared pages of libgrpc, "
        "OpenSSL and libc, which every sidecar on a node shares)." % (
            worst_cpu, worst_cpu / lo, "within" if worst_cpu <= hi / 10 else "above",
            worst_anon, worst_mem, "within" if worst_anon <= mlo / 10 else "above", mlo,
            "within" if worst_mem <= mlo / 10 else "above"), "",
        "The CPU figure is measured at %d req/s on a shared machine: a sidecar that is mostly "
        "idle between requests pays a wakeup per request, so per-request CPU at a low rate is "
        "higher than at saturation (bench/results/proxy.md measures that)." % w["rate_rps"], "",
        "Where a sidecar's CPU goes at this rate (profiled once by hand on 2026-11-22, not by "
        "this script: `strace -c -f -p PID` and `perf record -g -p PID` on the client sidecar "
        "during 5 s of the Remora path): 4.6 syscalls per request (2 read, 2 sendto, 0.6 "
        "epoll_wait — the loop already batches), 85% of the samples in the kernel (40% of all in "
        "finish_task_switch: going to sleep in epoll_wait and waking up again, costly on this "
        "VM; the rest the TCP/veth/bridge/conntrack path), about 15% in user space (HTTP "
        "parsing, metrics, malloc). At 1,000 req/s a sidecar's cost here is the kernel's "
        "per-wakeup and per-packet work, which nginx and HAProxy pay alike (same figures within "
        "noise); a faster parser would not reach a tenth of Istio's figure on this machine.", "",
        "The generator is python3 (one thread, select loop): its own scheduling shows in the "
        "direct path's figures and is the same on every path; the added columns subtract it.", ""]
    with open(os.path.join(HERE, "results", "e2e.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
