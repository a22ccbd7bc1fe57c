#!/usr/bin/env bash
# libFuzzer runs of the parsers of untrusted input (fuzz/): the index file
# decoder and validator, the `checkpoint` state file, Mesh and Layout strings,
# and the TensorFlow checkpoint parsers (index table, bundle entry, meta graph).
#
#   scripts/fuzz.sh                      # 10 minutes per target
#   scripts/fuzz.sh --seconds=15         # what CI runs (scripts/test.sh)
#   scripts/fuzz.sh --seconds=3600 index # one target, one hour
#
# Builds with clang in $FUZZ_BUILD_DIR (default build-fuzz): everything
# with -fsanitize=fuzzer-no-link,address,undefined at -O1, the targets
# linked with -fsanitize=fuzzer (--configure-only stops after configuring). Installs clang and libFuzzer (Debian: clang,
# libclang-rt-14-dev) when missing and running as root. Each run starts from
# the committed seeds in fuzz/corpus/<target> plus what earlier runs found
# (kept in the build tree, not in git). A crash stops the script with exit
# code 1 and the input that crashed under <build>/fuzz_artifacts/: add it to
# fuzz/corpus/<target>/ (the unit tests fuzz_replay_<target> replay that
# directory in every build) and fix the bug.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=600
TARGETS=()
CONFIGURE_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --seconds=*) SECONDS_PER_TARGET=${arg#*=} ;;
    --configure-only) CONFIGURE_ONLY=1 ;;
    index|state|mesh|layout|tf_table|tf_entry|tf_meta|tf_bundle) TARGETS+=("$arg") ;;
    *) echo "usage: scripts/fuzz.sh [--seconds=N] [--configure-only] [index|state|mesh|layout|tf_table|tf_entry|tf_meta|tf_bundle ...]" >&2
       exit 2 ;;
  esac
done
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(index state mesh layout tf_table tf_entry tf_meta tf_bundle)
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}

have_libfuzzer() {
  command -v clang++ >/dev/null 2>&1 &&
    echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}' |
      clang++ -x c++ -fsanitize=fuzzer - -o /tmp/meshckpt_fuzz_probe.$$ >/dev/null 2>&1
}
if ! have_libfuzzer; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "fuzz: installing clang and libFuzzer"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      clang libclang-rt-14-dev >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends clang libclang-rt-14-dev >/dev/null; }
  fi
  if ! have_libfuzzer; then
    echo "fuzz: clang++ with libFuzzer (-fsanitize=fuzzer) is not available;" \
         "install clang and libclang-rt-14-dev" >&2
    exit 1
  fi
fi
rm -f /tmp/meshckpt_fuzz_probe.$$

# -O1 and line tables only: quick to build, still fast to run. The same tree
# is the sanitizer build of CI (scripts/sanitize.sh --ci): instrumented for
# libFuzzer, ASan and UBSan throughout.
FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
OPT="-O1 -gline-tables-only -DNDEBUG"
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMESHCKPT_FUZZ=ON -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="$OPT" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$OPT" >/dev/null
[ $CONFIGURE_ONLY -eq 1 ] && exit 0
cmake --build "$BUILD" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$BUILD/fuzz_artifacts"
status=0
summary=()
for t in "${TARGETS[@]}"; do
  work="$BUILD/fuzz_corpus/$t"
  mkdir -p "$work"
  log="$BUILD/fuzz_$t.log"
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s (log: $log)"
  if "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
       -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
       -artifact_prefix="$BUILD/fuzz_artifacts/$t-" "$work" "fuzz/corpus/$t" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    summary+=("FUZZ $t seconds=$SECONDS_PER_TARGET runs=$runs coverage=$cov corpus=$(ls "$work" | wc -l) crashes=0")
  else
    status=1
    tail -60 "$log"
    summary+=("FUZZ $t FAILED: see $log and $BUILD/fuzz_artifacts/$t-*")
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
