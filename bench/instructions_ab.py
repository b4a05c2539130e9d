#!/usr/bin/env python3
"""bench/instructions_ab.py — user-space instructions per proxied request, two remora-proxy
binaries (before and after a change), counted by callgrind: exact and repeatable, whatever else
the host is doing, where CPU time on this shared 2-core machine swings by ±10% between rounds.

proxy_bench's workload (its nginx backend and config); each binary runs under
`valgrind --tool=callgrind`, is warmed with wrk, its counters are zeroed, then wrk runs a fixed
time at WRK_CONNECTIONS connections and the counters are dumped: instructions / wrk's requests.
Kernel time is not counted (it is ~80% of a request here: docs/benchmarks.md), so this measures
what a change of our code can change. Appends its table to bench/results/refactor_ab.md when
that file exists (bench/refactor_ab.py writes it) and writes bench/results/instructions_ab.json.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy_bench as pb  # noqa: E402

OLD = os.environ.get("REMORA_PROXY_OLD", "/tmp/remora-baseline-bin/remora-proxy")
NEW = os.environ.get("REMORA_PROXY", pb.PROXY)
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = [int(c) for c in os.environ.get("WRK_CONNECTIONS", "10,200").split(",")]
RESULTS = os.path.join(pb.HERE, "results")


def wrk_requests(port, conns, seconds):
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "-H", "Host: bench",
                          "http://127.0.0.1:%d/" % port], capture_output=True, text=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit("instructions_ab: %s non-2xx responses" % errors.group(1))
    return int(re.search(r"(\d+) requests in", out).group(1))


def instructions_per_request(binary, tmp, backend_port, conns):
    port = pb.free_port()
    out = os.path.join(tmp, "cg.%d" % port)
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out + ".%p"] + \
        pb.remora_argv(tmp, port, binary)
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=pb.raise_fd_limit)
    try:
        pb.wait_port(port, timeout=60)
        wrk_requests(port, conns, 2)  # warm: pools, caches, first allocations
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
        requests = wrk_requests(port, conns, SECONDS)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
        time.sleep(0.5)
        dumps = sorted(glob.glob(out + ".%d.*" % proc.pid), key=os.path.getmtime)
        with open(dumps[-1]) as f:
            total = int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))
        return total / requests, requests
    finally:
        pb.kill_all([proc])


def main():
    for path in (OLD, NEW):
        if not os.path.exists(path):
            print("bench: instructions_ab.py SKIPPED: no binary at %s" % path)
            return 0
    tmp = tempfile.mkdtemp(prefix="remora-insn-")
    backend_port = pb.free_port()
    backend = pb.start_backend(tmp, backend_port)
    rows = []
    try:
        pb.wait_port(backend_port)
        pb.write_remora_config(tmp, backend_port)
        for conns in CONNECTIONS:
            old, old_n = instructions_per_request(OLD, tmp, backend_port, conns)
            new, new_n = instructions_per_request(NEW, tmp, backend_port, conns)
            pb.log("%d connections: OLD %.0f, NEW %.0f instructions per request" % (conns, old, new))
            rows.append({"connections": conns, "old": round(old), "new": round(new),
                         "ratio": round(new / old, 3), "old_requests": old_n,
                         "new_requests": new_n})
    finally:
        pb.kill_all([backend])
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "instructions_ab.json"), "w") as f:
        json.dump({"old": OLD, "new": NEW, "seconds": SECONDS, "rows": rows}, f, indent=2)
    md = os.path.join(RESULTS, "refactor_ab.md")
    if os.path.exists(md):
        with open(md) as f:
            text = f.read().split("\n## User-space instructions per request")[0].rstrip("\n")
        table = ["", "## User-space instructions per request (callgrind, exact)", "",
                 "bench/instructions_ab.py: each binary under callgrind, warmed, counters zeroed, "
                 "wrk for %d s, instructions / requests (kernel time not counted)." % SECONDS, "",
                 "| connections | OLD | NEW | NEW/OLD |", "|---|---|---|---|"]
        table += ["| %d | %d | %d | %.3f |" % (r["connections"], r["old"], r["new"], r["ratio"])
                  for r in rows]
        with open(md, "w") as f:
            f.write(text + "\n" + "\n".join(table) + "\n")
    for r in rows:
        print("instructions per request at %d connections: OLD %d, NEW %d (NEW/OLD %.3f)"
              % (r["connections"], r["old"], r["new"], r["ratio"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
