#!/usr/bin/env bash
# bench/run_all.sh — `make bench`: every benchmark, results written to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 bench/proxy_bench.py
python3 bench/rolling_update_bench.py
python3 bench/e2e_bench.py
bench/control_bench.sh
