#!/usr/bin/env bash
# scripts/setup.sh — install every Debian package Remora needs to build, test, demo and bench.
# Idempotent and quick when everything is present: it only calls apt-get for what is missing.
# Called by the Makefile's targets; a developer never installs anything by hand.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap bazel-platforms gcc g++ make clang-14 libclang-rt-14-dev clang-format clang-tidy
  # libraries (see docs/architecture.md for why each)
  libev-dev libssl-dev libprotobuf-c-dev protobuf-c-compiler libgrpc-dev protobuf-compiler-grpc
  protobuf-compiler libprotobuf-dev node-llhttp libnghttp2-dev libyaml-dev libjansson-dev
  libpcre2-dev libsqlite3-dev libcmocka-dev
  # tests, demo and peers for benchmarks
  python3 python3-grpcio python3-protobuf curl iproute2 iptables procps nginx haproxy wrk nghttp2-client
  etcd-server slowhttptest openssl
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm (schema checks of deploy/): Debian's packages, unless the machine already has a
# node and npm of its own (a Debian `npm` would conflict with them).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts nginx/haproxy/etcd as services on install; benchmarks and tests start their own.
  for svc in nginx haproxy etcd; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# tests/injector validates deploy/ against the Kubernetes schemas (kubernetes-models, js-yaml,
# typescript from the npm registry), pinned by tests/injector/package-lock.json.
cd "$(dirname "$0")/.."
if [ ! -d tests/injector/node_modules/kubernetes-models ]; then
  echo "setup: npm ci in tests/injector" >&2
  npm ci --prefix tests/injector --no-audit --no-fund --loglevel=error >/dev/null
fi
