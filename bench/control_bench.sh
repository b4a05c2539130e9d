#!/usr/bin/env bash
# bench/control_bench.sh — control-plane convergence (issue 5): 1,000 discovery streams that ACK
# like sidecars; time from apply to the last ACK against the floor of writing the same bytes to
# 1,000 idle sockets, in the same run. Results: bench/results/control.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build //controlplane:remora-control //controlplane/loadtest:remora-control-load >/dev/null 2>&1
out=bench/results/control.md
{
  echo "# remora-control: 1,000 streams, apply -> last ACK (one run, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo
  for channels in 8 1000; do
    echo "## $channels connection(s) for 1,000 streams"
    echo
    echo '```'
    bazel-bin/controlplane/loadtest/remora-control-load --spawn bazel-bin/controlplane/remora-control \
      --streams 1000 --channels "$channels" --rounds 5 2>&1 | tail -n 9
    echo '```'
    echo
  done
} > "$out"
cat "$out"
