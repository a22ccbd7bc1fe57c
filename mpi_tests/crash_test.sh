#!/usr/bin/env bash
# Crash-during-save tests: kills one rank with SIGKILL at each fault point of
# a CheckpointManager save (checkpoint/engine/fault_injection.h), under mpiexec, and
# checks on ANOTHER rank count what a restarted job finds (crash_test.cc
# --phase=verify): the state file's and LatestCheckpoint's checkpoint restore
# bit-exactly, nothing partial is committed, a new manager sweeps leftovers.
# Every mpiexec runs under --timeout and timeout(1): a hang fails the test.
#
#   crash_test.sh --mpiexec=PATH --driver=PATH --work=DIR            # CI
#   crash_test.sh --mpiexec=PATH --driver=PATH --work=DIR --soak=50 [--seed=S]
#   crash_test.sh ... --async      # the saves that get killed are async
#
# The default run covers every fault point, each with rank 0 killed and, for
# the points every rank reaches, a non-zero rank too. --soak=N instead kills
# at random moments N times (a random fault point with MESHCKPT_FAULT
# point=random, or a timer at a random delay; random rank, random rank counts)
# and counts saves attempted, faults injected, checkpoints lost (must be 0)
# and restores verified. With --async the killed job saves asynchronously
# (crash_test.cc --async), so the fault points from during_data_write to
# after_data_rename, and the timer, fire on its background thread, while the
# next step's values are already being computed. Exit code 0 only when every
# check passed.
set -uo pipefail

MPIEXEC=mpiexec DRIVER="" WORK="" SOAK=0 SEED=1 TIMEOUT=90 ASYNC=()
for arg in "$@"; do
  case "$arg" in
    --mpiexec=*) MPIEXEC=${arg#*=} ;;
    --driver=*) DRIVER=${arg#*=} ;;
    --work=*) WORK=${arg#*=} ;;
    --soak=*) SOAK=${arg#*=} ;;
    --seed=*) SEED=${arg#*=} ;;
    --timeout=*) TIMEOUT=${arg#*=} ;;
    --async) ASYNC=(--async) ;;
    *) echo "crash_test.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
if [ -z "$DRIVER" ] || [ -z "$WORK" ]; then
  echo "usage: crash_test.sh --mpiexec=PATH --driver=PATH --work=DIR [--soak=N --seed=S]" >&2
  exit 2
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
unset MESHCKPT_FAULT
rm -rf "$WORK"
mkdir -p "$WORK"

FAILURES=0
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }

# run NP LOGFILE ARGS...: the driver under mpiexec, bounded twice over.
# Returns the job's exit code; 124 means it hung.
run() {
  local np=$1 log=$2
  shift 2
  local export=()
  [ -n "${MESHCKPT_FAULT:-}" ] && export=(-x MESHCKPT_FAULT)
  timeout -k 10 $((TIMEOUT + 30)) "$MPIEXEC" -n "$np" --oversubscribe \
    --mca mpi_yield_when_idle 1 --timeout "$TIMEOUT" "${export[@]}" \
    "$DRIVER" "$@" >"$log" 2>&1
  local rc=$?
  if [ $rc -eq 124 ] || grep -q "time limit for job execution" "$log"; then
    echo "HANG: mpiexec -n $np $* (see $log)"
    cat "$log"
    return 124
  fi
  return $rc
}

max_saved() { grep -ho 'saved step=[0-9]*' "$@" 2>/dev/null | cut -d= -f2 | sort -n | tail -1; }

# The prepared directory: steps 1..3 saved on 3 ranks (ckpt-2, ckpt-3 kept).
PREP=$WORK/prepared
if ! run 3 "$WORK/prepare.log" --dir="$PREP" --phase=prepare --saves=3; then
  cat "$WORK/prepare.log"
  echo "crash_test.sh: preparing checkpoints failed"
  exit 1
fi

if [ "$SOAK" -eq 0 ]; then
  # point rank min_step max_step: the step LatestCheckpoint may hold
  # afterwards. Once the index is durable, the new checkpoint (step 4) wins;
  # a non-zero rank killed after the agreement may or may not outlive rank
  # 0's commit, so either is right there.
  SCENARIOS=(
    "during_data_write 0 3 3"
    "during_data_write 2 3 3"
    "after_flush 0 3 3"
    "after_flush 1 3 3"
    "after_agree 0 3 3"
    "after_agree 2 3 4"
    "after_data_rename 0 3 3"
    "after_index 0 4 4"
    "after_index 1 4 4"
    "after_state_file 0 4 4"
    "during_sweep 0 4 4"
  )
  INJECTED=0 VERIFIED=0 LOST=0 SWEPT=0
  printf '%-20s %4s %10s %8s %s\n' point rank killed latest verify
  for s in "${SCENARIOS[@]}"; do
    read -r point rank lo hi <<<"$s"
    dir=$WORK/$point-r$rank
    cp -a "$PREP" "$dir"
    faultlog=$dir.faults
    MESHCKPT_FAULT="point=$point,rank=$rank,log=$faultlog" \
      run 3 "$dir.crash.log" --dir="$dir" --phase=crash --saves=1 "${ASYNC[@]}"
    rc=$?
    killed=no
    if [ $rc -eq 124 ]; then
      fail "$point rank $rank: the killed job hung"
    elif [ $rc -eq 0 ]; then
      fail "$point rank $rank: the job was not killed (rc 0)"
    elif ! grep -q "fault point=$point rank=$rank " "$faultlog" 2>/dev/null; then
      cat "$dir.crash.log"
      fail "$point rank $rank: job failed (rc $rc) but not at the fault point"
    else
      killed=yes
      INJECTED=$((INJECTED + 1))
    fi
    run 2 "$dir.verify.log" --dir="$dir" --phase=verify --min-step="$lo" --max-step="$hi"
    vrc=$?
    latest=$(grep -o 'VERIFY ok step=[0-9]*' "$dir.verify.log" | cut -d= -f2)
    if [ $vrc -eq 0 ] && [ -n "$latest" ]; then
      VERIFIED=$((VERIFIED + 1))
      SWEPT=$((SWEPT + $(grep -o 'leftovers_swept=[0-9]*' "$dir.verify.log" | cut -d= -f2)))
      verdict=ok
    else
      cat "$dir.verify.log"
      fail "$point rank $rank: verification on 2 ranks failed (rc $vrc)"
      grep -q "expected \[" "$dir.verify.log" && LOST=$((LOST + 1))
      verdict=FAILED
    fi
    printf '%-20s %4s %10s %8s %s\n' "$point" "$rank" "$killed" "ckpt-${latest:-?}" "$verdict"
  done
  echo "CRASH SUMMARY${ASYNC:+ (async)} scenarios=${#SCENARIOS[@]} faults_injected=$INJECTED" \
       "restores_verified=$VERIFIED checkpoints_lost=$LOST leftovers_swept=$SWEPT" \
       "failures=$FAILURES"
  [ $FAILURES -eq 0 ]
  exit $?
fi

# Soak: random kills, one directory that lives through all of them.
RANDOM=$SEED
DIR=$WORK/soak
cp -a "$PREP" "$DIR"
last_saved=$(max_saved "$WORK/prepare.log")
ATTEMPTED=0 INJECTED=0 LOST=0 VERIFIED=0 HANGS=0
for ((i = 1; i <= SOAK; i++)); do
  nps=(2 3 4)
  np=${nps[RANDOM % 3]}
  victim=$((RANDOM % np))
  log=$WORK/soak-$i.crash.log
  faultlog=$WORK/soak-$i.faults
  if ((RANDOM % 2)); then
    how="fault point=random rank=$victim"
    MESHCKPT_FAULT="point=random,prob=0.12,seed=$RANDOM,rank=$victim,log=$faultlog" \
      run "$np" "$log" --dir="$DIR" --phase=crash --saves=3 "${ASYNC[@]}"
  else
    ms=$((RANDOM % 200))  # 3 saves take ~50-150 ms after MPI_Init.
    how="timer ${ms}ms rank=$victim"
    run "$np" "$log" --dir="$DIR" --phase=crash --saves=3 --kill-after-ms=$ms \
      --kill-rank=$victim "${ASYNC[@]}"
  fi
  rc=$?
  ATTEMPTED=$((ATTEMPTED + $(grep -c '^attempt step=' "$log")))
  if [ $rc -eq 124 ]; then
    HANGS=$((HANGS + 1))
    fail "soak $i: hung ($how)"
  elif [ $rc -ne 0 ]; then
    if grep -q -e 'MESHCKPT_FAULT kills' -e 'timer kills' "$log"; then
      INJECTED=$((INJECTED + 1))
    else
      cat "$log"
      fail "soak $i: crash phase failed without a kill ($how)"
    fi
  fi
  s=$(max_saved "$log")
  [ -n "$s" ] && [ "$s" -gt "$last_saved" ] && last_saved=$s
  vnps=(1 2 4)
  vnp=${vnps[RANDOM % 3]}
  [ "$vnp" -eq "$np" ] && vnp=1
  vlog=$WORK/soak-$i.verify.log
  min=$last_saved
  run "$vnp" "$vlog" --dir="$DIR" --phase=verify --min-step="$min"
  vrc=$?
  step=$(grep -o 'VERIFY ok step=[0-9]*' "$vlog" | cut -d= -f2)
  if [ $vrc -eq 0 ] && [ -n "$step" ]; then
    VERIFIED=$((VERIFIED + 1))
    ATTEMPTED=$((ATTEMPTED + 1))  # The verifier saves the next step too.
    s=$(max_saved "$vlog")
    [ -n "$s" ] && [ "$s" -gt "$last_saved" ] && last_saved=$s
  else
    cat "$vlog"
    if [ $vrc -eq 124 ]; then HANGS=$((HANGS + 1)); fi
    if grep -q "expected \[" "$vlog"; then LOST=$((LOST + 1)); fi
    fail "soak $i: verify on $vnp ranks after '$how' on $np ranks failed (rc $vrc)"
  fi
  echo "soak $i/$SOAK: np=$np $how -> rc=$rc; verify np=$vnp latest=ckpt-${step:-?} (last completed save: $min)"
done
echo "SOAK SUMMARY${ASYNC:+ (async)} iterations=$SOAK saves_attempted=$ATTEMPTED faults_injected=$INJECTED" \
     "checkpoints_lost=$LOST restores_verified=$VERIFIED hangs=$HANGS failures=$FAILURES"
[ $FAILURES -eq 0 ]
