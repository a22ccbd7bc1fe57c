#!/usr/bin/env bash
# The whole story on built binaries: train on 4 ranks until the scheduler
# preempts the job with SIGTERM (it saves at the next step and exits 0),
# resume on 4 ranks from exactly that step, kill the job hard in the middle
# of training, resume on 2 ranks, then on 3 with another mesh saving
# asynchronously (the summary reports how long training stalled), reshard
# the last checkpoint offline to 1 rank, inspect and verify it, and compare
# the loss curve with an uninterrupted run.
#
#   scripts/story.sh BUILD_DIR WORK_DIR [--quick] [--mpirun="CMD ARG..."]
#
# --quick (what CI runs): fewer steps, and the preemption and the kill are a
# SIGTERM and a SIGKILL that rank 0 sends itself at fixed steps, so the test
# does not depend on timing.
# --mpirun replaces `mpirun` (split on spaces), e.g. to run every job across
# simulated hosts: --mpirun="scripts/multinode/mpirun --state=DIR"
# (docs/multinode.md); WORK_DIR must then be on a path all hosts share.
# Exits non-zero if any step fails or the loss curves do not match.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
WORK=$2
QUICK=
MPIRUN_CMD=(mpirun)
for arg in "${@:3}"; do
  case $arg in
    --quick) QUICK=--quick ;;
    --mpirun=*) read -r -a MPIRUN_CMD <<<"${arg#--mpirun=}" ;;
    *) echo "story.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
TRAIN=$BUILD/examples/train
CLI=$BUILD/tools/meshckpt
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=("${MPIRUN_CMD[@]}" --oversubscribe --mca mpi_yield_when_idle 1 --timeout 300)

if [ "$QUICK" = "--quick" ]; then
  STEPS=(60 90 120); SAVE_EVERY=10; PREEMPT_AT=23; KILL_AT=37; STEP_MS=0; HIDDEN=64
else
  STEPS=(200 300 400); SAVE_EVERY=25; PREEMPT_AT=40; KILL_AT=87; STEP_MS=40; HIDDEN=512
fi
rm -rf "$WORK"
mkdir -p "$WORK"
RUN=$WORK/run REF=$WORK/reference
COMMON=(--save-every=$SAVE_EVERY --hidden=$HIDDEN --max-to-keep=3)
say() { printf '\n== %s\n' "$*"; }
# wait_for_step N: until the training log passes step N.
wait_for_step() {
  for _ in $(seq 600); do
    last=$(tail -n 1 "$WORK/run.csv" 2>/dev/null | cut -d, -f1 || true)  # No log yet: keep waiting.
    [ -n "$last" ] && [ "$last" -ge "$1" ] && return
    sleep 0.1
  done
}

say "reference: uninterrupted run on 4 ranks (data=2, model=2) to step ${STEPS[2]}"
"${MPIRUN[@]}" -np 4 "$TRAIN" --dir="$REF" --mesh=data=2,model=2 --steps="${STEPS[2]}" \
  "${COMMON[@]}" --log="$WORK/reference.csv" >"$WORK/reference.out"
tail -n 2 "$WORK/reference.out"

say "train on 4 ranks (data=2, model=2); preempted with SIGTERM around step $PREEMPT_AT"
if [ "$QUICK" = "--quick" ]; then
  # Rank 0 alone gets the SIGTERM, in the middle of step PREEMPT_AT; the
  # ranks agree on it at the end of that step.
  "${MPIRUN[@]}" -np 4 "$TRAIN" --dir="$RUN" --mesh=data=2,model=2 --steps="${STEPS[0]}" \
    "${COMMON[@]}" --log="$WORK/run.csv" --preempt-at-step=$PREEMPT_AT >"$WORK/preempt4.out" 2>&1
else
  "${MPIRUN[@]}" -np 4 "$TRAIN" --dir="$RUN" --mesh=data=2,model=2 --steps="${STEPS[0]}" \
    "${COMMON[@]}" --log="$WORK/run.csv" --step-ms=$STEP_MS >"$WORK/preempt4.out" 2>&1 &
  job=$!
  wait_for_step "$PREEMPT_AT"
  # SIGTERM goes to the rank processes, as Slurm delivers it to every task.
  # Not to mpirun: OpenMPI 4.1's mpirun answers SIGTERM by signalling the
  # ranks with SIGTERM and SIGKILL one second later (odls_base_sigkill_timeout)
  # and exits 1 whatever they do. mpirun does forward SIGUSR1 and SIGUSR2
  # untouched ("mpirun: Forwarding signal 10 to job"), so under plain mpirun
  # `kill -USR1 <mpirun>` with `train --preempt-signal=USR1` works too.
  pkill -TERM -f "^$TRAIN --dir=$RUN " || true
  wait $job  # set -e: the preempted job must exit 0.
fi
preempted=$(sed -n 's/^preempted at step \([0-9]*\).*/\1/p' "$WORK/preempt4.out")
grep -E '^saved' "$WORK/preempt4.out" | tail -n 1 || true
[ -n "$preempted" ] || { echo "the job did not report a preemption"; exit 1; }
last_logged=$(tail -n 1 "$WORK/run.csv" | cut -d, -f1)
[ "$last_logged" = "$preempted" ] || { echo "ran past the preemption: $last_logged"; exit 1; }
echo "preempted at step $preempted: saved, exit 0"

say "resume on 4 ranks from step $preempted; killed hard at step $KILL_AT, between checkpoints"
if [ "$QUICK" = "--quick" ]; then
  set +e
  "${MPIRUN[@]}" -np 4 "$TRAIN" --dir="$RUN" --mesh=data=2,model=2 --steps="${STEPS[0]}" \
    "${COMMON[@]}" --log="$WORK/run.csv" --crash-at-step=$KILL_AT >"$WORK/train4.out" 2>&1
  rc=$?
  set -e
else
  "${MPIRUN[@]}" -np 4 "$TRAIN" --dir="$RUN" --mesh=data=2,model=2 --steps="${STEPS[0]}" \
    "${COMMON[@]}" --log="$WORK/run.csv" --step-ms=$STEP_MS >"$WORK/train4.out" 2>&1 &
  job=$!
  # Wait until the log passes the kill step, then SIGKILL every rank.
  wait_for_step "$KILL_AT"
  pkill -KILL -f "$TRAIN --dir=$RUN" || true
  set +e; wait $job; rc=$?; set -e
fi
grep -E '^(resumed|saved)' "$WORK/train4.out" | sed -n '1p;$p' || true
grep -qE "^resumed from .* at step $preempted on 4 ranks" "$WORK/train4.out" ||
  { echo "the resumed run did not continue from step $preempted"; exit 1; }
last_logged=$(tail -n 1 "$WORK/run.csv" | cut -d, -f1)
echo "killed (exit $rc) after step $last_logged; latest checkpoint: $("$CLI" ls "$RUN" | grep -m1 latest || true)"
[ "$rc" -ne 0 ] || { echo "the job was supposed to die"; exit 1; }

say "resume on 2 ranks (data=1, model=2) to step ${STEPS[1]}"
"${MPIRUN[@]}" -np 2 "$TRAIN" --dir="$RUN" --mesh=data=1,model=2 --steps="${STEPS[1]}" \
  "${COMMON[@]}" --log="$WORK/run.csv" | tee "$WORK/train2.out" | grep -E '^(resumed|saved)' | tail -n 3

say "resume on 3 ranks (data=1, model=3: hidden units split unevenly) to step ${STEPS[2]}, saving asynchronously"
"${MPIRUN[@]}" -np 3 "$TRAIN" --dir="$RUN" --mesh=data=1,model=3 --steps="${STEPS[2]}" \
  "${COMMON[@]}" --log="$WORK/run.csv" --async | tee "$WORK/train3.out" |
  grep -E '^(resumed|saving|last async)' | tail -n 3

say "checkpoints in $RUN"
"$CLI" ls "$RUN"
LATEST=$(awk -F'"' '/^model_checkpoint_path/ {print $2}' "$RUN/checkpoint")
LATEST=$RUN/$LATEST

say "reshard $LATEST offline onto 1 rank (mesh x=1)"
"${MPIRUN[@]}" -np 1 "$CLI" reshard "$LATEST" "$WORK/single" --mesh x=1
"$CLI" inspect "$WORK/single" | head -n 20
"$CLI" verify "$WORK/single"

say "summary"
python3 - "$WORK" "${STEPS[2]}" <<'PY'
import re, sys, os
work, final = sys.argv[1], int(sys.argv[2])
def curve(path):
    d = {}
    for line in open(path):
        s, v = line.split(",")
        d[int(s)] = float(v)          # a re-run step after a resume: last wins
    return d
ref, run = curve(f"{work}/reference.csv"), curve(f"{work}/run.csv")
missing = [s for s in range(1, final + 1) if s not in run]
rel = max(abs(run[s] - ref[s]) / abs(ref[s]) for s in ref if s in run)
saves, restores, sizes, stalls = [], [], [], []
for name in ("preempt4.out", "train4.out", "train2.out", "train3.out"):
    for line in open(f"{work}/{name}"):
        m = re.match(r"saved \S+: (\d+) bytes in ([\d.]+) s", line)
        if m: sizes.append(int(m.group(1))); saves.append(float(m.group(2)))
        m = re.match(r"saving \S+ in the background: training stalled ([\d.]+) s", line)
        if m: stalls.append(float(m.group(1)))
        m = re.search(r"restore ([\d.]+) s", line)
        if m: restores.append(float(m.group(1)))
ok = not missing and rel <= 1e-9
print(f"steps {final} over 4 jobs (4 -> 4 -> 2 -> 3 ranks), preempted once, killed once; "
      f"{len(saves)} saves, then {len(stalls)} async saves")
print(f"checkpoint size {max(sizes)} bytes; save {min(saves):.3f}-{max(saves):.3f} s; "
      f"async save stall {min(stalls):.3f}-{max(stalls):.3f} s; "
      f"restore {min(restores):.3f}-{max(restores):.3f} s")
print(f"loss {ref[1]:.4f} -> {ref[final]:.4f}; max relative difference from the uninterrupted "
      f"run {rel:.2e} (tolerance 1e-9): {'MATCH' if ok else 'MISMATCH'}")
if missing: print("missing steps:", missing[:10])
sys.exit(0 if ok else 1)
PY
