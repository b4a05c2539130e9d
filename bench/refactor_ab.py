#!/usr/bin/env python3
"""bench/refactor_ab.py — remora-proxy from before the data-path refactor (issue 15: transport /
codec / protocol-free exchange) against the one after it, in one run.

OLD is $REMORA_PROXY_OLD (default /tmp/remora-baseline-bin/remora-proxy, built before the
change); NEW is $REMORA_PROXY (default bazel-bin/dataplane/proxy/remora-proxy), as in
proxy_bench. The workload is proxy_bench's and shares its code: nginx on loopback answering a
small body, remora-proxy with one worker and upstream keep-alive and the config file proxy_bench
writes, each proxy pinned to its own CPU and wrk and the backend to the other (on two or more
CPUs). Per binary, per round:
  - CPU µs per request at saturation: utime+stime of the proxy over a wrk run (keep-alive,
    BENCH_CONNECTIONS=50 connections, BENCH_SECONDS) / the requests wrk completed;
  - CPU µs per request at a sidecar's real, unsaturated load: the same over a wrk run paced to
    about BENCH_RATE=1000 req/s by proxy_bench's Lua delay (BENCH_PACED_SECONDS, default three
    times BENCH_SECONDS: the proxy's CPU is read in 10 ms ticks and a paced run uses little);
  - throughput at a CPU budget: wrk's req/s at 50 connections with the proxy capped at
    BENCH_CPU_BUDGET=0.5 of a core (bench/cpubudget.py; skipped without a cgroup CPU controller);
  - idle private memory (RssAnon) after start, and memory per idle keep-alive connection
    (RssAnon growth with BENCH_IDLE_CONNECTIONS idle connections, proxy_bench's measurement),
    both on fresh processes, before any load.
Each round starts both binaries afresh; the binary that goes first alternates from round to
round, and each measurement is taken for both binaries back to back, so slow drifts of a shared
machine hit both alike. Per metric: the median over BENCH_ROUNDS rounds for each binary, NEW/OLD
round by round, the median of those ratios, and the verdict: "no worse" when that median is
better than 1 or within the noise, the noise being half the spread (max - min) of the per-round
ratios, but never less than the measurement's resolution (one 10 ms CPU tick, one page, relative
to OLD's measured amount: memory figures repeat exactly and would otherwise call a one-page
difference worse). OLD and NEW may be the same file: an A/A run, which shows the noise alone.
Results go to bench/results/refactor_ab.json and bench/results/refactor_ab.md.
"""
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import cpubudget
import proxy_bench as pb
from procstat import cpu_seconds, status_kb

HERE = os.path.dirname(os.path.abspath(__file__))
OLD = os.environ.get("REMORA_PROXY_OLD", "/tmp/remora-baseline-bin/remora-proxy")
NEW = pb.PROXY  # $REMORA_PROXY, default bazel-bin/dataplane/proxy/remora-proxy
BINARIES = {"old": OLD, "new": NEW}
PACED_SECONDS = int(os.environ.get("BENCH_PACED_SECONDS", str(3 * pb.DURATION)))
HOST = "bench"

# (key, label, unit, lower is better)
METRICS = [
    ("cpu_us_per_request", "CPU µs per request at saturation (%d connections)" % pb.CONNS, "µs", True),
    ("paced_cpu_us_per_request", "CPU µs per request paced at ~%d req/s (%d connections)"
     % (pb.RATE, pb.LATENCY_CONNS), "µs", True),
    ("budget_rps", "req/s at %.0f%% of a core (%d connections)" % (pb.BUDGET * 100, pb.CONNS), "req/s", False),
    ("bytes_per_idle_connection", "memory per idle keep-alive connection", "bytes", True),
    ("idle_private_kb", "idle private memory (RssAnon)", "KB", True),
]


def describe(path):
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "sha256": digest,
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))}


def per_request_us(cpu, requests, what):
    """CPU seconds over a run / the requests it completed, in µs."""
    if not requests:
        raise RuntimeError("wrk completed no requests through %s" % what)
    return cpu / requests * 1e6


def one_round(rnd, tmp, script, budget):
    """Both binaries, fresh processes; returns {"old": {...}, "new": {...}, "order": [...]}."""
    order = ["old", "new"] if rnd % 2 == 0 else ["new", "old"]
    procs, ports = {}, {}
    try:
        for b in order:
            ports[b] = pb.free_port()
            procs[b] = pb.start_remora(tmp, ports[b], BINARIES[b])
            pb.wait_port(ports[b])
        time.sleep(0.5)
        pid = {b: procs[b].pid for b in order}
        for b in order:
            pb.pin_pids(pb.PROXY_CPU, [pid[b]])
            if budget is not None:
                budget.add(pid[b])
        s = {b: {} for b in order}
        for b in order:
            s[b]["idle_rss_kb"] = status_kb(pid[b], "VmRSS")
            s[b]["idle_private_kb"] = status_kb(pid[b], "RssAnon")
        # Memory per idle connection on fresh processes, before any load (as proxy_bench).
        for b in order:
            s[b]["idle_connections"], s[b]["bytes_per_idle_connection"] = pb.idle_memory_per_conn([pid[b]], ports[b])
            time.sleep(1.5)  # let the closed connections go before the next proxy
        for b in order:
            cpu0 = cpu_seconds([pid[b]])
            rps, requests, errors = pb.wrk(ports[b], HOST)
            cpu = cpu_seconds([pid[b]]) - cpu0
            s[b].update(cpu_us_per_request=per_request_us(cpu, requests, b.upper()), cpu_s=cpu,
                        requests=requests, non_2xx=errors, rps=rps)
        for b in order:
            cpu0 = cpu_seconds([pid[b]])
            p50, p99, requests, errors = pb.paced_run(ports[b], HOST, script, PACED_SECONDS)
            cpu = cpu_seconds([pid[b]]) - cpu0
            s[b].update(paced_cpu_us_per_request=per_request_us(cpu, requests, b.upper()), paced_cpu_s=cpu,
                        paced_requests=requests, paced_non_2xx=errors, paced_rps=requests / PACED_SECONDS,
                        paced_p50_ms=p50, paced_p99_ms=p99)
        for b in order:
            s[b]["budget_rps"], s[b]["budget_non_2xx"] = None, 0
            if budget is not None:
                budget.set(pb.BUDGET)
                try:
                    rps, _, errors = pb.wrk(ports[b], HOST)
                finally:
                    budget.set(None)
                s[b]["budget_rps"], s[b]["budget_non_2xx"] = rps, errors
        for b in order:
            if procs[b].poll() is not None:
                raise RuntimeError("%s remora-proxy (%s) exited during round %d" % (b.upper(), BINARIES[b], rnd + 1))
        s["order"] = order
        return s
    finally:
        pb.kill_all(procs.values())


TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def resolution(rounds, key):
    """One quantum of the measurement (a CPU tick, a page) relative to OLD's median amount: a
    difference smaller than this cannot be seen, spread or not."""
    quantum, amount = {
        "cpu_us_per_request": (TICK_S, lambda r: r["cpu_s"]),
        "paced_cpu_us_per_request": (TICK_S, lambda r: r["paced_cpu_s"]),
        "bytes_per_idle_connection": (PAGE, lambda r: r["bytes_per_idle_connection"] * r["idle_connections"]),
        "idle_private_kb": (PAGE / 1024, lambda r: r["idle_private_kb"]),
    }.get(key, (0, None))
    if not quantum:
        return 0.0
    base = statistics.median(amount(r["old"]) for r in rounds)
    return quantum / base if base > 0 else float("inf")


def summarize(rounds, key, lower_is_better):
    old = [r["old"][key] for r in rounds]
    new = [r["new"][key] for r in rounds]
    if any(x is None for x in old + new):
        return None
    ratios = [n / o if o else float("nan") for n, o in zip(new, old)]
    med = statistics.median(ratios)
    spread = (max(ratios) - min(ratios)) / 2
    floor = resolution(rounds, key)
    noise = max(spread, floor)
    worse = med > 1 + noise if lower_is_better else med < 1 - noise
    better = med < 1 if lower_is_better else med > 1
    return {"old_median": statistics.median(old), "new_median": statistics.median(new),
            "old_all": old, "new_all": new,
            "ratio_of_medians": statistics.median(new) / statistics.median(old) if statistics.median(old) else float("nan"),
            "ratio_by_round": ratios, "ratio_median_of_rounds": med, "noise": noise,
            "half_spread": spread, "resolution": floor,
            "ratio_median_interval95": list(pb.median_interval(ratios)) if len(ratios) > 1 else None,
            "lower_is_better": lower_is_better,
            "verdict": "worse" if worse else "no worse",
            "why": "better" if better else ("within noise" if not worse else "beyond noise")}


def write_md(res, path):
    metrics = res["metrics"]
    with open(path, "w") as f:
        f.write("# remora-proxy before vs after the data-path refactor (issue 15), one run, %s\n\n" % res["measured_at"])
        f.write("Method: OLD (`%s`, before the refactor) and NEW (`%s`) on proxy_bench's workload: nginx on "
                "loopback answering a 23-byte body, remora-proxy with one worker, upstream keep-alive and the "
                "same config file%s. %d rounds; each round starts both binaries afresh, alternates which goes "
                "first, and takes every measurement for both back to back: idle private memory (RssAnon) "
                "after start and memory per idle keep-alive connection (RssAnon growth with %d idle "
                "connections) on the fresh processes, then CPU per request (utime+stime from /proc over the "
                "run / wrk's requests) at saturation (wrk, %d connections, %d s) and paced at ~%d req/s (%d "
                "connections, proxy_bench's Lua delay, %d s), then wrk's req/s at %d connections with the "
                "proxy capped at %.0f%% of a core (cgroup CPU quota). Figures are medians over rounds; "
                "NEW/OLD is taken round by round and the verdict uses the median of those ratios. "
                "Noise = half the spread (max − min) of the per-round ratios, but at least the measurement's "
                "resolution (one 10 ms CPU tick or one page, relative to OLD's amount): \"no worse\" when "
                "the median ratio is better than 1 or within 1 ± noise.\n\n"
                % (res["binaries"]["old"]["path"], res["binaries"]["new"]["path"],
                   "; each proxy pinned to CPU %s, wrk and the backend to CPU %s" % (pb.PROXY_CPU, pb.CLIENT_CPU)
                   if res["pinned"] else "", res["rounds"], res["workload"]["idle_connections"],
                   pb.CONNS, pb.DURATION, pb.RATE, pb.LATENCY_CONNS, PACED_SECONDS, pb.CONNS, pb.BUDGET * 100))
        if res["same_binary"]:
            f.write("**OLD and NEW are the same file: this is an A/A run, it measures the noise only.**\n\n")
        f.write("| metric | OLD | NEW | NEW/OLD (median of rounds) | per-round NEW/OLD | noise | verdict |\n"
                "|---|---|---|---|---|---|---|\n")
        for key, label, unit, lower in METRICS:
            m = metrics.get(key)
            if m is None:
                f.write("| %s | – | – | – | – | – | skipped (no cgroup CPU controller) |\n" % label)
                continue
            fmt = "%.0f" if unit in ("req/s", "bytes", "KB") else "%.2f"
            f.write("| %s (%s, %s is better) | %s | %s | %.3f | %s | ±%.1f%% | %s |\n" % (
                label, unit, "lower" if lower else "higher", fmt % m["old_median"], fmt % m["new_median"],
                m["ratio_median_of_rounds"], ", ".join("%.3f" % x for x in m["ratio_by_round"]),
                m["noise"] * 100, m["verdict"]))
        f.write("\n")
        for key, label, unit, lower in METRICS:
            m = metrics.get(key)
            if m is None:
                continue
            rr = m["ratio_by_round"]
            f.write("- %s: **%s** — NEW/OLD %.3f (median of %d round%s; ratio of medians %.3f), %s; per-round "
                    "ratios %.3f–%.3f, noise ±%.1f%% (%s)%s.\n" % (
                        label, m["verdict"], m["ratio_median_of_rounds"], len(rr), "s" if len(rr) > 1 else "",
                        m["ratio_of_medians"], m["why"], min(rr), max(rr), m["noise"] * 100,
                        "the spread" if m["half_spread"] >= m["resolution"] else "the resolution",
                        "" if len(rr) > 1 else "; one round: no spread, run more rounds for a verdict"))
        bad = ["%s %s" % (b.upper(), k) for b in ("old", "new") for k in ("non_2xx", "paced_non_2xx", "budget_non_2xx")
               if sum(r[b][k] or 0 for r in res["by_round"])]
        if bad:
            f.write("\n**Non-2xx responses were counted (%s): those figures are not comparable.**\n" % ", ".join(bad))
        f.write("\nBinaries: OLD sha256 %s (%d bytes, built %s); NEW sha256 %s (%d bytes, built %s). Every round's "
                "figures (also wrk req/s and the paced p50/p99) are in refactor_ab.json.\n" % (
                    res["binaries"]["old"]["sha256"][:12], res["binaries"]["old"]["size"], res["binaries"]["old"]["mtime"],
                    res["binaries"]["new"]["sha256"][:12], res["binaries"]["new"]["size"], res["binaries"]["new"]["mtime"]))


def main():
    for name, path in (("OLD ($REMORA_PROXY_OLD)", OLD), ("NEW ($REMORA_PROXY)", NEW)):
        if not os.access(path, os.X_OK):
            pb.log("%s remora-proxy not found at %s" % (name, path))
            return 2
    tmp = tempfile.mkdtemp(prefix="remora-ab-")
    procs, budget = [], None
    backend_port = pb.free_port()
    try:
        procs.append(pb.start_backend(tmp, backend_port))
        pb.wait_port(backend_port)
        pb.write_remora_config(tmp, backend_port)
        script = pb.paced_script(tmp)
        if cpubudget.available():
            budget = cpubudget.CpuBudget("remora-ab-%d" % os.getpid())
        else:
            pb.log("no cgroup CPU controller here (root needed): throughput at a CPU budget skipped")
        rounds = []
        for rnd in range(pb.ROUNDS):
            pb.log("round %d of %d" % (rnd + 1, pb.ROUNDS))
            rounds.append(one_round(rnd, tmp, script, budget))
        binaries = {b: describe(BINARIES[b]) for b in BINARIES}
        res = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "binaries": binaries,
               "same_binary": binaries["old"]["sha256"] == binaries["new"]["sha256"],
               "workload": {"duration_s": pb.DURATION, "paced_duration_s": PACED_SECONDS,
                            "connections": pb.CONNS, "paced_rate_rps": pb.RATE,
                            "paced_connections": pb.LATENCY_CONNS, "idle_connections": pb.IDLE_CONNS,
                            "body": "23 bytes", "backend": "nginx return 200"},
               "rounds": pb.ROUNDS, "pinned": pb.PIN,
               "cpu_budget": pb.BUDGET if budget is not None else None,
               "noise": "half the spread (max - min) of the per-round NEW/OLD ratios, at least one quantum of "
                        "the measurement (a 10 ms CPU tick, a page) relative to OLD's measured amount",
               "metrics": {}, "by_round": rounds}
        for key, label, unit, lower in METRICS:
            m = summarize(rounds, key, lower)
            if m is not None:
                m.update(label=label, unit=unit)
                res["metrics"][key] = m
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", "refactor_ab.json"), "w") as f:
            json.dump(res, f, indent=2)
        write_md(res, os.path.join(HERE, "results", "refactor_ab.md"))
        print(json.dumps(res["metrics"], indent=2))
        return 0
    finally:
        if budget is not None:
            budget.remove()
        pb.kill_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
