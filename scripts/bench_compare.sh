#!/usr/bin/env bash
# Compares two builds on the standard io rows (save and restore, same
# layout, 1, 2 and 4 ranks) in one sitting: the runs alternate between the
# builds, round by round, so the disk's minute-to-minute swings fall on both.
#
#   scripts/bench_compare.sh OLD_BUILD_DIR NEW_BUILD_DIR [--rounds=3] [--data-dir=DIR]
#
# Prints, per row, the median time of each build over the rounds, each
# build's median ratio to the raw-disk baseline measured in the same run,
# and new/old. Reports; never fails on a timing (exit 1 only when a run
# failed).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 OLD_BUILD_DIR NEW_BUILD_DIR [--rounds=N] [--data-dir=DIR]" >&2; exit 2; }
OLD=$1 NEW=$2; shift 2
ROUNDS=3 DATA_DIR=${MESHCKPT_BENCH_DIR:-/tmp/meshckpt_bench_compare}
for arg in "$@"; do
  case "$arg" in
    --rounds=*) ROUNDS=${arg#*=} ;;
    --data-dir=*) DATA_DIR=${arg#*=} ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done
for b in "$OLD" "$NEW"; do
  [ -x "$b/bench/ckpt_bench" ] || { echo "no $b/bench/ckpt_bench (build the ckpt_bench target)" >&2; exit 2; }
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
OUT=$(mktemp -d /tmp/bench_compare.XXXXXX)
mkdir -p "$DATA_DIR"
failed=0
for ((round = 1; round <= ROUNDS; ++round)); do
  for np in 1 2 4; do
    # Alternate which build goes first, so neither always meets a warmer disk.
    if (( (round + np) % 2 )); then order="old new"; else order="new old"; fi
    for which in $order; do
      build=$OLD; [ "$which" = new ] && build=$NEW
      echo "+ round $round, $which, $np rank(s)"
      mpiexec --oversubscribe --mca mpi_yield_when_idle 1 --timeout 900 -n "$np" \
        "$build/bench/ckpt_bench" --mode=io --reps=1 --suite=compare \
        --dir="$DATA_DIR" --csv="$OUT/$which.csv" >/dev/null || failed=1
    done
  done
done
/usr/bin/python3 - "$OUT/old.csv" "$OUT/new.csv" <<'PY'
import csv, statistics, sys
def load(path):
    rows = {}
    for r in csv.DictReader(open(path)):
        if r["suite"] == "suite":  # Headers repeated by later runs.
            continue
        key = (int(r["ranks"]), r["op"])
        rows.setdefault(key, []).append((float(r["ours_median_s"]), float(r["ratio"])))
    return rows
old, new = load(sys.argv[1]), load(sys.argv[2])
print(f"{'ranks':>5} {'op':<8} {'old s':>8} {'new s':>8} {'old/raw':>8} {'new/raw':>8} {'new/old time':>13}")
for key in sorted(old):
    if key not in new:
        continue
    ot = statistics.median(t for t, _ in old[key]); nt = statistics.median(t for t, _ in new[key])
    orr = statistics.median(r for _, r in old[key]); nr = statistics.median(r for _, r in new[key])
    print(f"{key[0]:>5} {key[1]:<8} {ot:8.3f} {nt:8.3f} {orr:8.2f} {nr:8.2f} {nt / ot:13.2f}")
print("ratio = ours/raw throughput as ckpt_bench reports it (higher is better);"
      " new/old time < 1 means the new build is faster.")
PY
rm -rf "$OUT"
exit $failed
