#!/usr/bin/env bash
# scripts/lint.sh — style checks: clang-format on every C file (the checked-in .clang-format),
# clang-tidy on C files changed relative to the merge base with main (or the last commit).
# Exit 0 when clean; prints each offending file.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
files=$(git ls-files '*.c' '*.h' | grep -v '^third_party/')
bad=()
for f in $files; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "lint: not clang-formatted (run 'make format'):"
  printf '  %s\n' "${bad[@]}"
  status=1
fi

if [ "${LINT_TIDY:-1}" = 1 ]; then
  base=$(git merge-base HEAD origin/main 2>/dev/null || git rev-parse HEAD~1 2>/dev/null || true)
  changed=""
  if [ -n "$base" ]; then
    changed=$(git diff --name-only "$base" -- '*.c' | grep -v '^third_party/' || true)
  fi
  gen="$(bazel info bazel-bin 2>/dev/null)"
  for f in $changed; do
    [ -f "$f" ] || continue
    if ! clang-tidy --quiet "$f" -- -std=c11 -D_GNU_SOURCE -I. -I"$gen/proto" \
         -I/usr/share/include/llhttp -DPCRE2_CODE_UNIT_WIDTH=8 >/tmp/remora-tidy.log 2>&1; then
      echo "lint: clang-tidy found problems in $f:"
      grep -E "warning:|error:" /tmp/remora-tidy.log | head -20
      status=1
    fi
  done
fi
exit $status
