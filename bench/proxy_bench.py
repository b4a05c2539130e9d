#!/usr/bin/env python3
"""bench/proxy_bench.py — remora-proxy against nginx and HAProxy on the same workload, one run.

Same backend for all three: nginx from Debian answering a small body on loopback. Each proxy
runs one worker/thread with upstream keep-alive. Measured, per proxy, in one run:
  - throughput at a CPU budget: each proxy capped at the same fraction of a core (a cgroup CPU
    quota, bench/cpubudget.py), so the proxy is the bottleneck and wrk's req/s is its throughput;
    at the usual 50 connections and at 200 (past where a small upstream pool churns);
  - throughput: wrk, keep-alive, fixed connections, fixed duration, uncapped;
  - latency at a fixed moderate rate: wrk paced by a Lua delay (LATENCY_CONNS connections, each
    waiting so that together they send RATE req/s), microsecond percentiles — p50/p99 added over
    direct, per round, and remora against the better peer round by round;
  - CPU time per request: utime+stime of the proxy process over the throughput run / requests,
    and from it the proxy's capacity: requests per second of proxy CPU (1e6 / CPU µs per request);
  - pinning: on a machine with two or more CPUs each proxy runs on CPU 1 and the load generators
    and the backend on CPU 0, so the proxies never compete with them for a core. wrk's req/s then
    measures the whole machine (with two cores the generator + backend core saturates first), so
    the throughput comparison that isolates the proxy is its capacity;
  - idle memory: RSS and RssAnon (private) of the proxy after start;
  - memory per idle keep-alive connection: RssAnon growth with N idle connections open.
Ratios are what matter (absolute numbers on a shared 2-core machine are noise). Results go to
bench/results/proxy.json and bench/results/proxy.md.
"""
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import cpubudget
import memcharge
from procstat import cpu_seconds, status_kb, with_children

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
PROXY = os.environ.get("REMORA_PROXY", os.path.join(TOP, "bazel-bin/dataplane/proxy/remora-proxy"))
DURATION = int(os.environ.get("BENCH_SECONDS", "5"))
CONNS = int(os.environ.get("BENCH_CONNECTIONS", "50"))
RATE = int(os.environ.get("BENCH_RATE", "1000"))  # fixed rate for the latency run
IDLE_CONNS = int(os.environ.get("BENCH_IDLE_CONNECTIONS", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
# Latency rounds are cheap (one paced run per proxy) and single p99s swing widely on a shared
# host, so there are more of them than throughput rounds.
LATENCY_ROUNDS = int(os.environ.get("BENCH_LATENCY_ROUNDS", "15"))
CONNS_HIGH = int(os.environ.get("BENCH_CONNECTIONS_HIGH", "200"))
BUDGET = float(os.environ.get("BENCH_CPU_BUDGET", "0.5"))  # fraction of one core per proxy


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


PIN = os.cpu_count() is not None and os.cpu_count() >= 2
PROXY_CPU, CLIENT_CPU = "1", "0"


def pinned(cpu, argv):
    """argv run on one CPU when pinning is on (see the top of this file)."""
    return ["taskset", "-c", cpu] + argv if PIN else argv


def pin_pids(cpu, pids):
    if PIN:
        for pid in pids:
            subprocess.run(["taskset", "-a", "-pc", cpu, str(pid)], check=True,
                           stdout=subprocess.DEVNULL)


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def wrk(port, host, conns=CONNS):
    log("wrk -c%d against :%d" % (conns, port))
    out = subprocess.run(pinned(CLIENT_CPU, ["wrk", "-t1", "-c%d" % conns, "-d%ds" % DURATION, "-H", "Host: %s" % host,
                          "http://127.0.0.1:%d/" % port]), capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, total, int(errors.group(1)) if errors else 0


LATENCY_CONNS = 10


def paced_script(tmp):
    """A wrk script that makes each of LATENCY_CONNS connections wait between requests so that
    together they send about RATE req/s (wrk's latency histogram has microsecond resolution;
    hey, used before, printed 0.1 ms steps, coarser than the differences being compared)."""
    path = os.path.join(tmp, "paced.lua")
    with open(path, "w") as f:
        f.write("function delay() return %d end\n" % max(1, round(LATENCY_CONNS * 1000 / RATE)))
    return path


def wrk_duration_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)$", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def paced_run(port, host, script, seconds=DURATION):
    """One wrk run paced at about RATE req/s: (p50 ms, p99 ms, requests, non-2xx responses);
    the counts are None when wrk printed none."""
    log("wrk paced at ~%d req/s against :%d" % (RATE, port))
    out = subprocess.run(pinned(CLIENT_CPU, ["wrk", "-t1", "-c%d" % LATENCY_CONNS, "-d%ds" % seconds, "--latency",
                          "-s", script, "-H", "Host: %s" % host, "http://127.0.0.1:%d/" % port]),
                         capture_output=True, text=True).stdout
    def pct(p):
        m = re.search(r"^\s+%d%%\s+(\S+)" % p, out, re.M)
        return wrk_duration_ms(m.group(1)) if m else float("nan")
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (pct(50), pct(99), int(total.group(1)) if total else None,
            int(errors.group(1)) if errors else (0 if total else None))


def paced_latency(port, host, script):
    """(p50 ms, p99 ms) at about RATE req/s."""
    return paced_run(port, host, script)[:2]


def remora_argv(tmp, port, proxy=None):
    """remora-proxy (PROXY unless another binary is given) with the config write_remora_config wrote."""
    return [proxy or PROXY, "--config", os.path.join(tmp, "remora.yaml"), "--bind", "127.0.0.1",
            "--outbound-port", str(port), "--inbound-port", "0", "--admin-port", str(free_port()),
            "--workers", "1", "--log-level", "warn", "--max-connections", "100000"]


def nginx_argv(tmp, name, backend_port, port):
    """nginx as a reverse proxy with upstream keep-alive (1024 idle connections kept: its
    customary 64 would churn connections at 200 clients and understate it)."""
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1; daemon off; pid %s/%s.pid; error_log stderr error;
worker_rlimit_nofile 19000;
events { worker_connections 9000; }
http { access_log off; keepalive_requests 1000000;
  upstream be { server 127.0.0.1:%d; keepalive 1024; }
  server { listen 127.0.0.1:%d; location / { proxy_pass http://be; proxy_http_version 1.1;
           proxy_set_header Connection ""; } } }
""" % (tmp, name, backend_port, port))
    return ["nginx", "-c", conf, "-p", tmp]


def haproxy_argv(tmp, name, backend_port, port):
    """HAProxy 2.6 in HTTP mode, one thread."""
    cfg = os.path.join(tmp, name + ".cfg")
    with open(cfg, "w") as f:
        f.write("""global
  nbthread 1
  maxconn 9000
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  server s1 127.0.0.1:%d
""" % (port, backend_port))
    return ["haproxy", "-f", cfg, "-db"]


def charged_memory_kb(tmp, backend_port):
    """Each proxy's memory-cgroup working set as a second idle instance (bench/memcharge.py)."""
    argv_for = {"remora": lambda port: remora_argv(tmp, port),
                "nginx": lambda port: nginx_argv(tmp, "second", backend_port, port),
                "haproxy": lambda port: haproxy_argv(tmp, "second", backend_port, port)}
    out = {}
    for name, build in argv_for.items():
        port = free_port()
        argv = build(port)
        log("memory cgroup working set of a second idle %s" % name)
        out[name] = memcharge.working_set_kb(argv, lambda: wait_port(port),
                                             "remora-bench-mem-%d" % os.getpid())
    return out


def median_interval(values, resamples=2000, seed=1):
    """A 95% bootstrap interval of the median of `values` (fixed seed: the same rounds give the
    same interval). Says how far apart two proxies' latencies can be before rounds this noisy
    tell them apart."""
    rnd = random.Random(seed)
    meds = sorted(statistics.median(rnd.choice(values) for _ in values) for _ in range(resamples))
    return meds[int(0.025 * resamples)], meds[int(0.975 * resamples) - 1]


def idle_memory_per_conn(pids, port):
    """Private memory growth per idle keep-alive connection: N client connections, each used
    for one request (one at a time, so the upstream pool stays small), then left idle."""
    log("opening %d idle keep-alive connections to :%d" % (IDLE_CONNS, port))
    base = sum(status_kb(p, "RssAnon") for p in pids)
    socks = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(IDLE_CONNS, hard - 500)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.settimeout(5)
            s.sendall(req)
            data = b""
            while b"backend" not in data:
                data += s.recv(4096)
            socks.append(s)
        time.sleep(1.0)
        after = sum(status_kb(p, "RssAnon") for p in pids)
    finally:
        for s in socks:
            s.close()
    return n, (after - base) * 1024 / max(n, 1)


def start_backend(tmp, port):
    """The shared backend: nginx answering a small body on `port` (pinned with the clients).
    The caller waits for the port."""
    with open(os.path.join(tmp, "backend.conf"), "w") as f:
        f.write("""worker_processes 1; daemon off; pid %s/backend.pid; error_log stderr error;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:%d; location / { return 200 "hello from the backend\\n"; } } }
""" % (tmp, port))
    return subprocess.Popen(pinned(CLIENT_CPU, ["nginx", "-c", os.path.join(tmp, "backend.conf"), "-p", tmp]), start_new_session=True)


def write_remora_config(tmp, backend_port):
    """remora-proxy's routes: one service, one endpoint, the backend."""
    with open(os.path.join(tmp, "remora.yaml"), "w") as f:
        f.write("kind: Service\nname: bench\nport: 80\nendpoints:\n  - {address: 127.0.0.1:%d, version: v1}\n" % backend_port)


def start_remora(tmp, port, proxy=None):
    """remora-proxy (remora_argv) in its own session; the caller waits for the port."""
    return subprocess.Popen(remora_argv(tmp, port, proxy), start_new_session=True,
                            preexec_fn=raise_fd_limit)


def kill_all(procs):
    for p in procs:  # each in its own session: kill the whole group (nginx workers too)
        try:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
        except Exception:
            pass


def main():
    tmp = tempfile.mkdtemp(prefix="remora-bench-")
    procs = []
    budget = None
    backend_port = free_port()
    ports = {"remora": free_port(), "nginx": free_port(), "haproxy": free_port()}
    try:
        # --- the shared backend: nginx answering a small body ---
        procs.append(start_backend(tmp, backend_port))
        wait_port(backend_port)

        # --- remora-proxy ---
        write_remora_config(tmp, backend_port)
        remora = start_remora(tmp, ports["remora"])
        procs.append(remora)
        wait_port(ports["remora"])

        # --- nginx and HAProxy (configs in nginx_argv and haproxy_argv) ---
        ngx = subprocess.Popen(nginx_argv(tmp, "proxy", backend_port, ports["nginx"]), start_new_session=True)
        procs.append(ngx)
        wait_port(ports["nginx"])

        hap = subprocess.Popen(haproxy_argv(tmp, "haproxy", backend_port, ports["haproxy"]),
                               stdout=subprocess.DEVNULL, start_new_session=True)
        procs.append(hap)
        wait_port(ports["haproxy"])
        time.sleep(0.5)

        pids = {"remora": [remora.pid], "nginx": with_children(ngx.pid), "haproxy": [hap.pid]}
        for name in pids:
            pin_pids(PROXY_CPU, pids[name])
        results = {"workload": {"duration_s": DURATION, "connections": CONNS, "fixed_rate_rps": RATE,
                                "body": "23 bytes", "backend": "nginx return 200"}}
        idle = {name: {"rss_kb": sum(status_kb(p, "VmRSS") for p in pids[name]),
                       "rss_anon_kb": sum(status_kb(p, "RssAnon") for p in pids[name])} for name in pids}

        charged = charged_memory_kb(tmp, backend_port) if memcharge.available() else {}
        for name in idle:
            idle[name]["charged_kb"] = charged.get(name)

        # Memory per idle connection first, on fresh processes: after the load rounds each heap
        # holds freed memory that new connections reuse, which would understate the figure.
        for name in ("remora", "nginx", "haproxy"):
            idle[name]["per_conn"] = idle_memory_per_conn(pids[name], ports[name])
            time.sleep(1.5)  # let the closed connections go before the next proxy

        if cpubudget.available():
            budget = cpubudget.CpuBudget("remora-bench-%d" % os.getpid())
            for name in pids:
                for pid in pids[name]:
                    budget.add(pid)
        else:
            log("no cgroup CPU controller here (root needed): throughput at a CPU budget skipped")

        # Several rounds, interleaved (remora, nginx, haproxy, remora, ...), so slow drifts of a
        # shared machine hit all three alike; each figure is the median over the rounds, and the
        # ratios are taken round by round (each against the peers measured next to it).
        samples = {name: [] for name in ("remora", "nginx", "haproxy")}
        for rnd in range(ROUNDS):
            for name in ("remora", "nginx", "haproxy"):
                capped, capped_high = float("nan"), float("nan")
                if budget is not None:
                    budget.set(BUDGET)
                    capped = wrk(ports[name], "bench")[0]
                    capped_high = wrk(ports[name], "bench", CONNS_HIGH)[0]
                    budget.set(None)
                cpu0 = cpu_seconds(pids[name])
                rps, total, errors = wrk(ports[name], "bench")
                cpu = cpu_seconds(pids[name]) - cpu0
                samples[name].append((rps, total, errors, cpu / max(total, 1) * 1e6, capped, capped_high))

        # Latency at a fixed rate, in rounds of its own: the direct path and each proxy, in an
        # order that rotates from round to round (no proxy always runs right after the direct
        # path), so each proxy's added latency is taken against the direct path of its round.
        latency = {name: [] for name in ("direct", "remora", "nginx", "haproxy")}
        script = paced_script(tmp)
        order = ["direct", "remora", "nginx", "haproxy"]
        for rnd in range(LATENCY_ROUNDS):
            for name in order[rnd % 4:] + order[:rnd % 4]:
                port = backend_port if name == "direct" else ports[name]
                latency[name].append(paced_latency(port, "bench", script))
        direct_p50 = statistics.median(x[0] for x in latency["direct"])
        direct_p99 = statistics.median(x[1] for x in latency["direct"])
        results["direct"] = {"p50_ms": direct_p50, "p99_ms": direct_p99}
        results["rounds"] = ROUNDS
        results["latency_rounds"] = LATENCY_ROUNDS
        results["cpu_budget"] = BUDGET if budget is not None else None
        for name in ("remora", "nginx", "haproxy"):
            col = list(zip(*samples[name]))
            med = [statistics.median(c) for c in col]
            p50s, p99s = [x[0] for x in latency[name]], [x[1] for x in latency[name]]
            results[name] = {"rps": med[0], "rps_all": list(col[0]), "requests": int(sum(col[1])),
                             "non_2xx": int(sum(col[2])), "cpu_us_per_request": med[3],
                             "cpu_us_all": list(col[3]),
                             "capacity_rps_per_cpu": 1e6 / med[3] if med[3] > 0 else float("nan"),
                             "budget_rps": med[4], "budget_rps_all": list(col[4]),
                             "budget_rps_high": med[5], "budget_rps_high_all": list(col[5]),
                             "p50_ms": statistics.median(p50s), "p99_ms": statistics.median(p99s),
                             "p99_all": p99s,
                             # added over the direct path measured in the same round
                             "added_p50_all": [p - d[0] for p, d in zip(p50s, latency["direct"])],
                             "added_p99_all": [p - d[1] for p, d in zip(p99s, latency["direct"])],
                             "idle_rss_kb": idle[name]["rss_kb"], "idle_rss_anon_kb": idle[name]["rss_anon_kb"],
                             "idle_cgroup_working_set_kb": idle[name]["charged_kb"]}

        def per_round(key, higher_is_better=True):
            """remora / the better peer, round by round, and the median of those ratios."""
            out = []
            for r in range(ROUNDS):
                mine = results["remora"][key][r]
                peers = [results[n][key][r] for n in ("nginx", "haproxy")]
                out.append(mine / max(peers) if higher_is_better else min(peers) / mine)
            return out
        for name in ("remora", "nginx", "haproxy"):
            results[name]["idle_connections"], results[name]["bytes_per_idle_connection"] = idle[name]["per_conn"]
            results[name]["added_p50_ms"] = statistics.median(results[name]["added_p50_all"])
            results[name]["added_p99_ms"] = statistics.median(results[name]["added_p99_all"])
        best = max(results["nginx"]["rps"], results["haproxy"]["rps"])
        best_capacity = max(results["nginx"]["capacity_rps_per_cpu"], results["haproxy"]["capacity_rps_per_cpu"])
        results["pinned"] = PIN
        capacity_rounds = per_round("cpu_us_all", higher_is_better=False)
        results["ratios"] = {
            "capacity_vs_best_peer": results["remora"]["capacity_rps_per_cpu"] / best_capacity,
            "capacity_vs_best_peer_by_round": capacity_rounds,
            "capacity_vs_best_peer_median_of_rounds": statistics.median(capacity_rounds),
            "throughput_vs_best_peer": results["remora"]["rps"] / best,
            "throughput_vs_nginx": results["remora"]["rps"] / results["nginx"]["rps"],
            "throughput_vs_haproxy": results["remora"]["rps"] / results["haproxy"]["rps"],
            "cpu_per_request_vs_nginx": results["remora"]["cpu_us_per_request"] / results["nginx"]["cpu_us_per_request"],
            "cpu_per_request_vs_haproxy": results["remora"]["cpu_us_per_request"] / results["haproxy"]["cpu_us_per_request"],
        }
        # Added p99, remora minus each peer, round by round (negative: remora lower). The issue's
        # "no worse than either" is a comparison with each peer; remora minus the lower of the
        # two per round is also kept, but it is biased upwards under noise (the minimum of two
        # noisy figures sits below either one's typical value even when all three are alike).
        rr = range(LATENCY_ROUNDS)
        mine = results["remora"]["added_p99_all"]
        for peer in ("nginx", "haproxy"):
            gap = [mine[r] - results[peer]["added_p99_all"][r] for r in rr]
            results["ratios"]["added_p99_minus_%s_ms_by_round" % peer] = gap
            results["ratios"]["added_p99_minus_%s_ms" % peer] = statistics.median(gap)
            results["ratios"]["added_p99_minus_%s_ms_interval95" % peer] = median_interval(gap)
        p99_gap = [mine[r] - min(results[n]["added_p99_all"][r] for n in ("nginx", "haproxy")) for r in rr]
        results["ratios"]["added_p99_minus_best_peer_ms_by_round"] = p99_gap
        results["ratios"]["added_p99_minus_best_peer_ms"] = statistics.median(p99_gap)
        if budget is not None:
            for key, conns in (("budget_rps_all", CONNS), ("budget_rps_high_all", CONNS_HIGH)):
                rounds = per_round(key)
                results["ratios"]["budget_throughput_c%d_by_round" % conns] = rounds
                results["ratios"]["budget_throughput_c%d_vs_best_peer" % conns] = statistics.median(rounds)
        results["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", "proxy.json"), "w") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(HERE, "results", "proxy.md"), "w") as f:
            f.write("# remora-proxy vs nginx vs HAProxy (one run, %s)\n\n" % results["measured_at"])
            f.write("Keep-alive, one worker each, %ds per run; latency at %d req/s fixed. Throughput: "
                    "medians of %d interleaved rounds; ratios are remora / the better peer, taken round "
                    "by round (all rounds in proxy.json).\n\n" % (DURATION, RATE, ROUNDS))
            if PIN:
                f.write("Each proxy pinned to CPU %s; wrk and the backend pinned to CPU %s.\n\n" % (PROXY_CPU, CLIENT_CPU))
            ratios = results["ratios"]
            if budget is not None:
                f.write("## Throughput at a CPU budget (the proxy is the bottleneck)\n\n"
                        "Each proxy capped at %.0f%% of a core (cgroup CPU quota, bench/cpubudget.py); "
                        "wrk's req/s.\n\n| proxy | req/s, %d connections | req/s, %d connections |\n|---|---|---|\n"
                        % (BUDGET * 100, CONNS, CONNS_HIGH))
                for name in ("remora", "nginx", "haproxy"):
                    r = results[name]
                    f.write("| %s | %.0f | %.0f |\n" % (name, r["budget_rps"], r["budget_rps_high"]))
                for conns in (CONNS, CONNS_HIGH):
                    rounds = ratios["budget_throughput_c%d_by_round" % conns]
                    f.write("\nRemora / better peer, %d connections: **%.2fx** (median of rounds; rounds: %s; "
                            "%d of %d at or above 1.2x).\n" % (conns, ratios["budget_throughput_c%d_vs_best_peer" % conns],
                            ", ".join("%.2f" % x for x in rounds), sum(1 for x in rounds if x >= 1.2), len(rounds)))
                f.write("\n")
            f.write("## Uncapped: capacity, latency, memory\n\n")
            f.write("%d connections. Capacity = requests per second of the proxy's own CPU (1e6 / CPU µs per request).\n\n" % CONNS)
            f.write("| proxy | capacity req/s per CPU | CPU µs/req | wrk req/s | p50 ms | p99 ms | added p99 ms | idle RSS KB | idle private KB | bytes per idle conn |\n|---|---|---|---|---|---|---|---|---|---|\n")
            for name in ("remora", "nginx", "haproxy"):
                r = results[name]
                f.write("| %s | %.0f | %.1f | %.0f | %.3f | %.3f | %.3f | %d | %d | %.0f |\n" % (name, r["capacity_rps_per_cpu"], r["cpu_us_per_request"], r["rps"], r["p50_ms"], r["p99_ms"], r["added_p99_ms"], r["idle_rss_kb"], r["idle_rss_anon_kb"], r["bytes_per_idle_connection"]))
            f.write("\nDirect to the backend: p50 %.3f ms, p99 %.3f ms.\n\n" % (direct_p50, direct_p99))
            f.write("Latency: %d rounds of one paced run each (direct path and the three proxies, order "
                    "rotating); added latency is against the direct path of the same round.\n\n"
                    % LATENCY_ROUNDS)
            for peer, label in (("nginx", "nginx"), ("haproxy", "HAProxy")):
                gap = ratios["added_p99_minus_%s_ms_by_round" % peer]
                lo, hi = ratios["added_p99_minus_%s_ms_interval95" % peer]
                f.write("Added p99 at %d req/s, remora minus %s: **%+.3f ms** (median of rounds, 95%% "
                        "bootstrap interval %+.3f to %+.3f ms; remora lower in %d of %d; rounds: %s).\n\n"
                        % (RATE, label, ratios["added_p99_minus_%s_ms" % peer], lo, hi,
                           sum(1 for x in gap if x <= 0), len(gap), ", ".join("%+.3f" % x for x in gap)))
            gap = ratios["added_p99_minus_best_peer_ms_by_round"]
            f.write("Stricter, and biased against any one proxy under noise: remora minus the lower of the "
                    "two peers in each round: %+.3f ms (median; remora lowest of the three in %d of %d "
                    "rounds, where equals would be lowest in a third).\n\n"
                    % (ratios["added_p99_minus_best_peer_ms"], sum(1 for x in gap if x <= 0), len(gap)))
            f.write("Capacity ratio remora / best peer: **%.2fx** (median of rounds; rounds: %s). "
                    "wrk req/s ratio uncapped: %.2fx (the whole machine: with two cores the load "
                    "generator and backend's core saturates before the proxy's). "
                    "Idle connections measured: %d.\n" % (ratios["capacity_vs_best_peer_median_of_rounds"],
                    ", ".join("%.2f" % x for x in ratios["capacity_vs_best_peer_by_round"]),
                    ratios["throughput_vs_best_peer"], results["remora"]["idle_connections"]))
            f.write("RSS counts shared library pages (remora links libgrpc for its control-plane client); private (RssAnon) is what the process itself owns.\n")
            if results["remora"]["idle_cgroup_working_set_kb"] is not None:
                f.write("\nCharged to its own memory cgroup as a second idle instance on the machine (what "
                        "`kubectl top` shows for a second pod: library pages already in memory are not "
                        "charged again; bench/memcharge.py): %s.\n" % ", ".join(
                            "%s %d KB" % (n, results[n]["idle_cgroup_working_set_kb"])
                            for n in ("remora", "nginx", "haproxy")))
        print(json.dumps(results, indent=2))
    finally:
        if budget is not None:
            budget.remove()
        kill_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
