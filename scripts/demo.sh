#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: the mesh on this machine, telling its story in numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/demo.py "$@"
