#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every
# test (unit and MPI) with ctest. Extra arguments go to ctest, e.g.
#   scripts/test.sh -L unit        # unit tests only
#   scripts/test.sh -L mpi         # MPI tests only
#   scripts/test.sh -L python      # the Python module's tests only
# BUILD_DIR (default: build) picks the build tree.
#
# It first checks the include rules (scripts/check_includes.sh) and the
# formatting (scripts/check_format.sh). Without
# arguments (the full run, what CI does) it then also runs clang-tidy over
# the library (scripts/tidy.sh) and the reliability extras of
# docs/reliability.md: the sanitizer build on the unit
# tests and a representative MPI subset (scripts/sanitize.sh --ci),
# ThreadSanitizer on the tests whose code starts threads (scripts/tsan.sh),
# and each libFuzzer target for a bounded time (scripts/fuzz.sh --seconds=15).
# MESHCKPT_EXTRAS=0 leaves them out.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
# phase NAME: prints NAME with the minutes and seconds since the start, so
# a CI log shows where its time goes.
phase() { printf '=== %s (at %dm%02ds)\n' "$1" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)); }

phase "setup"
bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=$(nproc)
phase "build"
# -g1 (line tables and function names: enough for backtraces) instead of
# RelWithDebInfo's full -g, which made every compile about half again slower.
G1="-O2 -g1 -DNDEBUG"
# MESHCKPT_BUILD_PYTHON=ON: the Python module and its tests are part of
# the run; a missing pybind11 or numpy fails here instead of skipping them.
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHCKPT_BUILD_PYTHON=ON \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="$G1" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$G1"
cmake --build "$BUILD_DIR" -j"$JOBS"
status=0
phase "checks and tests"
bash scripts/check_includes.sh || status=1
bash scripts/check_format.sh || status=1
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" "$@" || status=$?

if [ $# -eq 0 ] && [ "${MESHCKPT_EXTRAS:-1}" != 0 ]; then
  phase "clang-tidy (scripts/tidy.sh)"
  bash scripts/tidy.sh "$BUILD_DIR" || status=1
  phase "sanitizers (scripts/sanitize.sh --ci)"
  bash scripts/sanitize.sh --ci || status=1
  phase "ThreadSanitizer (scripts/tsan.sh)"
  bash scripts/tsan.sh || status=1
  phase "fuzzing (scripts/fuzz.sh --seconds=15)"
  bash scripts/fuzz.sh --seconds=15 || status=1
fi
phase "done, status $status"
exit $status
