#!/usr/bin/env bash
# ThreadSanitizer over the tests whose code starts threads or shares state
# between them: saves through the MPI-IO transfer modes (mpiio_sink.cc
# hashes on a second thread while the first writes), async saves (a background
# thread writes and commits while the caller goes on), the directory lock's
# process-wide registry, and the manager, Saver and DTensorCheckpoint paths
# that use both. Built with g++ -fsanitize=thread (CMake option
# MESHCKPT_TSAN) in $TSAN_BUILD_DIR (default build-tsan); any report fails.
# Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${TSAN_BUILD_DIR:-build-tsan}
TESTS=(shard_io_serial_test chunk_sink_test dtensor_checkpoint_test checkpoint_manager_test
       async_save_test async_manager_test
       manager_recovery_test saver_test hostile_files_test)
# Line tables (-g1) are all a report's stack traces need.
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHCKPT_TSAN=ON \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${TESTS[@]}"
# Exit code 66 and a halt on the first race make any report a failure.
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1"
status=0
for t in "${TESTS[@]}"; do
  echo "tsan: $t"
  "$BUILD/tests/$t" --gtest_brief=1 "$@" || status=1
done
if [ $status -eq 0 ]; then echo "tsan: clean"; else echo "tsan: FAILED (see the reports above)"; fi
exit $status
