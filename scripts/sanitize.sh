#!/usr/bin/env bash
# The unit and MPI tests built with AddressSanitizer and UndefinedBehavior-
# Sanitizer (CMake option MESHCKPT_SANITIZE) and run; any report fails.
#
#   scripts/sanitize.sh          # every unit test, every MPI test but `large`
#   scripts/sanitize.sh --ci     # every unit test, a representative MPI subset
#                                # (what scripts/test.sh runs in CI)
#
# Build tree: $SANITIZE_BUILD_DIR, by default build-asan (the compiler CMake
# picks, g++ on Debian, with MESHCKPT_SANITIZE=ON) or, with --ci, build-fuzz
# (clang at -O1 with ASan, UBSan and libFuzzer instrumentation, shared with
# scripts/fuzz.sh so CI builds one sanitizer tree, not two).
# UBSan halts on the first error. LeakSanitizer is on for the unit tests,
# with scripts/lsan.supp for leaks inside the MPI and HDF5 libraries; for the
# MPI tests it is off (OpenMPI's own allocations at exit are not ours).
# Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

CI=0
CTEST_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --ci) CI=1 ;;
    *) CTEST_ARGS+=("$arg") ;;
  esac
done
JOBS=$(nproc)

# The MPI tests of the CI subset: the failure paths, the collective restore
# and save on 2-4 ranks, the crash and full-disk tests (both).
MPI_SUBSET='^(bad_input_mpi_test_np(2|3)|save_failure(_restore)?_test_np(2|3)|reshard_matrix_test_np2|checkpoint_api_test_np4|checkpoint_api_restore_np2|saver_mpi_test_np2|plan_agreement_test_np3|full_disk_test_np2|full_disk_edge_test_np2|crash_test)$'

if [ $CI -eq 1 ]; then
  # The clang tree of scripts/fuzz.sh (ASan + UBSan + fuzzer instrumentation
  # at -O1): one sanitizer build serves both, which keeps CI in its budget.
  BUILD=${SANITIZE_BUILD_DIR:-build-fuzz}
  FUZZ_BUILD_DIR=$BUILD bash scripts/fuzz.sh --configure-only
else
  BUILD=${SANITIZE_BUILD_DIR:-build-asan}
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHCKPT_SANITIZE=ON >/dev/null
fi
if [ $CI -eq 1 ]; then
  # Only what the subset needs: test executables and the CLI.
  targets=$(grep -ho 'meshckpt_add_unit_test([a-z_0-9]*' tests/CMakeLists.txt | cut -d'(' -f2)
  targets+=" $(printf 'fuzz_replay_%s ' index state mesh layout tf_table tf_entry tf_meta tf_bundle)"
  targets+=" bad_input_mpi_test save_failure_test save_failure_restore_test"
  targets+=" reshard_matrix_test checkpoint_api_test"
  targets+=" saver_mpi_test plan_agreement_test full_disk_test full_disk_edge_test crash_test"
  targets+=" meshckpt_cli"
  cmake --build "$BUILD" -j"$JOBS" --target $targets
else
  cmake --build "$BUILD" -j"$JOBS"
fi

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
SUPP="$PWD/scripts/lsan.supp"
status=0

echo "sanitize: unit tests (ASan + UBSan + LSan)"
# Fewer corruption trials: ASan makes each one several times slower.
ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1" \
LSAN_OPTIONS="suppressions=$SUPP:print_suppressions=0" \
MESHCKPT_CORRUPTION_TRIALS=${MESHCKPT_CORRUPTION_TRIALS:-60} \
  ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" -L unit "${CTEST_ARGS[@]}" || status=1

echo "sanitize: MPI tests (ASan + UBSan)"
mpi_args=(-L mpi -LE large)
[ $CI -eq 1 ] && mpi_args=(-R "$MPI_SUBSET")
ASAN_OPTIONS="detect_leaks=0" \
  ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" "${mpi_args[@]}" "${CTEST_ARGS[@]}" ||
  status=1

if [ $status -eq 0 ]; then
  echo "sanitize: clean"
else
  echo "sanitize: FAILED (see the reports above)"
fi
exit $status
