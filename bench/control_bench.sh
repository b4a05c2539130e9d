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
  # "all": every sidecar receives every service (no --egress); "50 scopes": pods of 50 services,
  # each sidecar scoped (Node.egress) to one other service, so each push is ~1/50 of the bytes.
  for run in "8 0" "1000 0" "8 50"; do
    set -- $run
    channels=$1 services=$2
    if [ "$services" = 0 ]; then scope="every sidecar receives everything"; else
      scope="pods of $services services, each sidecar scoped to one other service"; fi
    echo "## $channels connection(s) for 1,000 streams; $scope"
    echo
    echo '```'
    bazel-bin/controlplane/loadtest/remora-control-load --spawn bazel-bin/controlplane/remora-control \
      --streams 1000 --channels "$channels" --services "$services" --rounds 5 2>&1 | tail -n 9
    echo '```'
    echo
  done
} > "$out"
cat "$out"
