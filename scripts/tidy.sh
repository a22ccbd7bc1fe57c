#!/usr/bin/env bash
# clang-tidy with the checks of .clang-tidy over the library's own sources
# (base mesh layout proto comm io checkpoint tools; not tests, mpi_tests,
# fuzz, bench, examples, tfbundle, test-only testing/ folders or generated
# protos), using the compile_commands.json of a build tree. Any warning
# fails; prints a summary either way.
#
#   scripts/tidy.sh [BUILD_DIR]     (default: $BUILD_DIR or build)
#
# TIDY_JOBS (default 2) files run at once. The build tree is configured
# when it has no compile_commands.json, and the protos are generated, since
# the library includes their headers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${1:-${BUILD_DIR:-build}}
JOBS=${TIDY_JOBS:-2}
TIDY=${CLANG_TIDY:-clang-tidy}
ROOMS=(base mesh layout proto comm io checkpoint tools)

command -v "$TIDY" >/dev/null || { echo "tidy: $TIDY not found (scripts/setup.sh installs it)" >&2; exit 2; }
if [ ! -f "$BUILD/compile_commands.json" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" -j"$JOBS" --target meshckpt_proto >/dev/null

mapfile -t FILES < <(git ls-files "${ROOMS[@]/%//*.cc}" | grep -v -e '/testing/' -e '_test\.cc$')
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
rooms_re=$(IFS='|'; echo "${ROOMS[*]}")
# Our headers are reached through the build tree's include/meshckpt link
# to the source root (CMakeLists.txt), so both spellings are ours.
roots_re="($ROOT|$(cd "$BUILD" && pwd)/include/meshckpt)"
start=$(date +%s)
# One log per file; xargs keeps going past failures so every file is seen.
printf '%s\n' "${FILES[@]}" |
  xargs -P "$JOBS" -I{} sh -c '
    log="$1/$(echo "$2" | tr / _).log"
    "$3" -p "$4" --quiet --header-filter="^$5/($6)/" "$2" >"$log" 2>&1 || echo "$2" >>"$1/failed"
  ' _ "$OUT" {} "$TIDY" "$BUILD" "$roots_re" "$rooms_re" || true
seconds=$(( $(date +%s) - start ))

# Diagnostics can repeat (a header seen from several files): count them once.
cat "$OUT"/*.log | grep -E '(warning|error): .* \[[a-z0-9,.-]+\]$' | sort -u >"$OUT/diags" || true
n=$(wc -l <"$OUT/diags")
failed=0
[ -f "$OUT/failed" ] && failed=$(wc -l <"$OUT/failed")
if [ "$n" -gt 0 ]; then
  cat "$OUT/diags"
  echo
  echo "tidy: by check:"
  grep -oE '\[[a-z0-9,.-]+\]$' "$OUT/diags" | sort | uniq -c | sort -rn
fi
if [ "$failed" -gt 0 ] && [ "$n" -eq 0 ]; then
  # clang-tidy failed without a diagnostic we recognise (e.g. a compile error).
  for f in $(cat "$OUT/failed"); do
    echo "== $f"
    cat "$OUT/$(echo "$f" | tr / _).log"
  done
fi
echo "TIDY files=${#FILES[@]} diagnostics=$n files_failing=$failed seconds=$seconds jobs=$JOBS"
[ "$n" -eq 0 ] && [ "$failed" -eq 0 ]
