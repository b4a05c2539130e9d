#!/usr/bin/env bash
# bench/run_all.sh — `make bench`: every benchmark, results written to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 bench/proxy_bench.py
# remora-proxy before the data-path refactor (issue 15) against the current one, same run.
old_proxy="${REMORA_PROXY_OLD:-/tmp/remora-baseline-bin/remora-proxy}"
if [ -x "$old_proxy" ]; then
  python3 bench/refactor_ab.py
  python3 bench/instructions_ab.py
else
  echo "bench: refactor_ab.py and instructions_ab.py SKIPPED: no pre-refactor remora-proxy at" \
       "$old_proxy (build commit c83fef7's //dataplane/proxy:remora-proxy in a git worktree and" \
       "set REMORA_PROXY_OLD to it)"
fi
python3 bench/rolling_update_bench.py
python3 bench/e2e_bench.py
bench/control_bench.sh
