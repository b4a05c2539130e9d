#!/usr/bin/env bash
# tests/fuzz/run_fuzzers.sh — build every libFuzzer driver (tests/fuzz/<name>/<name>_fuzz) with
# clang-14 + ASan/UBSan and run each for FUZZ_SECONDS over its seed corpus.
#
# Fuzz builds use their own Bazel output base, so switching the C compiler to clang never throws
# away the main (gcc) build's cache. New inputs found are kept in a scratch corpus, not the repo.
# With --report, prints one line "NAME RC" per fuzzer on stdout (logs go to stderr).
set -uo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
REPORT=0
[ "${1:-}" = "--report" ] && REPORT=1
OUTPUT_BASE=${FUZZ_OUTPUT_BASE:-$HOME/.cache/remora-fuzz-bazel/$(pwd | md5sum | cut -c1-12)}
BAZEL="bazel --output_base=$OUTPUT_BASE"

say() { if [ $REPORT = 1 ]; then echo "$@" >&2; else echo "$@"; fi; }

names=()
for dir in tests/fuzz/*/; do
  name=$(basename "$dir")
  [ -f "$dir/BUILD" ] && grep -q "\"${name}_fuzz\"" "$dir/BUILD" && names+=("$name")
done
[ ${#names[@]} -eq 0 ] && exit 0

targets=()
for n in "${names[@]}"; do targets+=("//tests/fuzz/$n:${n}_fuzz"); done
say "fuzz: building ${targets[*]}"
if ! $BAZEL build --config=fuzz --symlink_prefix=/ "${targets[@]}" >&2 2>/tmp/remora-fuzz-build.log; then
  tail -n 40 /tmp/remora-fuzz-build.log >&2
  for n in "${names[@]}"; do [ $REPORT = 1 ] && echo "$n 1"; done
  exit 1
fi
bin=$($BAZEL info --config=fuzz bazel-bin 2>/dev/null)

status=0
for n in "${names[@]}"; do
  scratch=$(mktemp -d)
  dict=()
  [ -f "tests/fuzz/$n/$n.dict" ] && dict=(-dict="tests/fuzz/$n/$n.dict")
  say "fuzz: $n for ${FUZZ_SECONDS}s"
  mkdir -p tests/fuzz/artifacts
  "$bin/tests/fuzz/$n/${n}_fuzz" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
     -print_final_stats=1 -artifact_prefix="tests/fuzz/artifacts/$n-" "${dict[@]}" \
     "$scratch" "tests/fuzz/$n/corpus" >/tmp/remora-fuzz-$n.log 2>&1
  rc=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY" /tmp/remora-fuzz-$n.log >&2 || true
  [ $rc -ne 0 ] && { tail -n 30 /tmp/remora-fuzz-$n.log >&2; status=1; }
  [ $REPORT = 1 ] && echo "$n $rc"
  rm -rf "$scratch"
done
exit $status
