#!/usr/bin/env bash
# tests/run_all.sh — `make test`: lint, build everything, run every Bazel test target (unit and
# process-level integration tests), then a short smoke run of every libFuzzer target.
# Ends with the line "N passed, N failed" that CI reads; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

BAZEL=${BAZEL:-bazel}
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-15}
passed=0
failed=0
failures=()

record() { # record NAME STATUS(0=pass)
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "PASS $1"
  else
    failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1"
  fi
}

echo "== lint (clang-format)"
LINT_TIDY=0 scripts/lint.sh
record "lint:clang-format" $?

echo "== build //..."
$BAZEL build //... 2>&1 | tail -n 30
record "build://..." "${PIPESTATUS[0]}"

echo "== test //..."
log=$(mktemp)
$BAZEL test //... --color=no --curses=no --test_summary=short 2>&1 | tee "$log" | \
  grep -vE '^(INFO|Loading|Analyzing|\[)' | grep -E 'PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY|ERROR' || true
while read -r target status; do
  case "$status" in
    PASSED) record "$target" 0 ;;
    *) record "$target" 1 ;;
  esac
done < <(awk '/^\/\/[^ ]+ +(\(cached\) )?(PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY|FAILED TO BUILD)/ {
          t=$1; s=$2; if (s=="(cached)") s=$3; if (s=="NO") s="NO_STATUS"; print t, s }' "$log")
if ! grep -qE '^//[^ ]+ +(\(cached\) )?PASSED' "$log" && ! grep -qE 'FAILED|TIMEOUT' "$log"; then
  record "test://... (no test results)" 1
fi
rm -f "$log"

echo "== fuzz smoke (${FUZZ_SMOKE_SECONDS}s each)"
while read -r name rc; do
  record "fuzz:$name" "$rc"
done < <(FUZZ_SECONDS=$FUZZ_SMOKE_SECONDS tests/fuzz/run_fuzzers.sh --report)

if [ ${#failures[@]} -gt 0 ]; then
  echo "== failures"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
