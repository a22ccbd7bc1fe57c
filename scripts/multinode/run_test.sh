#!/usr/bin/env bash
# The multinode ctest tests (label `multinode`; docs/multinode.md):
#
#   scripts/multinode/run_test.sh harness|story|reshard BUILD_DIR WORK_DIR
#
# Each brings up its own simulated hosts (state in WORK_DIR/hosts), runs
# its jobs through scripts/multinode/mpirun, and tears the hosts down on
# exit, failure and interrupt included. WORK_DIR is the shared checkpoint
# directory and must not be under /tmp.
#   harness  3 hosts: host names, node-local /tmp, what OpenMPI calls a node,
#            no shared-memory transport between hosts, and a save into a
#            node-local directory fails instead of half-succeeding
#   story    scripts/story.sh --quick on 2 hosts x 2 ranks
#   reshard  mpi_tests/reshard_matrix_test on 2 hosts x 2 ranks: save on 4
#            ranks, save and restore on 2 (one per host), restore both on 4
#            placed the other way round; then mpi_tests/read_once_test on 4
#            ranks round-robin and on 3 (2+1), so shards read once travel
#            between hosts
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: run_test.sh harness|story|reshard BUILD_DIR WORK_DIR" >&2; exit 2; }
TEST=$1
BUILD=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
mkdir -p "$3"
WORK=$(cd "$3" && pwd)
STATE=$WORK/hosts
MPIRUN=("$HERE/mpirun" --state="$STATE")
export MESHCKPT_MN_AGENT_LOG=$WORK/agent.log

say() { printf '\n== multinode %s: %s\n' "$TEST" "$*"; }
fail() { echo "multinode $TEST: FAIL: $*" >&2; exit 1; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  "$HERE/hosts.sh" down "$STATE" || { echo "multinode $TEST: teardown failed" >&2; rc=1; }
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of an earlier run that was killed go first (hosts.sh up does
# this too), then the work directory.
"$HERE/hosts.sh" down "$STATE" 2>/dev/null || true
find "$WORK" -mindepth 1 -delete
mkdir -p "$STATE"
start=$(date +%s.%N)

case $TEST in
  harness)
    "$HERE/hosts.sh" up "$STATE" --hosts=3 --slots=2 --owner=$$
    say "each host has its own name and its own /tmp; the work directory is shared"
    tag=meshckpt_multinode_$$
    for h in mnode1 mnode2 mnode3; do
      got=$("$HERE/hosts.sh" exec "$STATE" "$h" hostname)
      [ "$got" = "$h" ] || fail "host $h calls itself $got"
    done
    "$HERE/hosts.sh" exec "$STATE" mnode1 sh -c "echo on mnode1 >/tmp/$tag && echo on mnode1 >$WORK/$tag"
    "$HERE/hosts.sh" exec "$STATE" mnode1 test -e "/tmp/$tag" || fail "mnode1 lost its own /tmp/$tag"
    for h in mnode2 mnode3; do
      if "$HERE/hosts.sh" exec "$STATE" "$h" test -e "/tmp/$tag"; then
        fail "/tmp/$tag written on mnode1 is visible on $h: /tmp is not node-local"
      fi
      "$HERE/hosts.sh" exec "$STATE" "$h" test -e "$WORK/$tag" || fail "$WORK/$tag is not visible on $h"
    done
    [ ! -e "/tmp/$tag" ] || fail "/tmp/$tag written on mnode1 is visible on this machine"
    echo "/tmp/$tag: on mnode1 only; $WORK/$tag: on every host"

    say "probe: 5 ranks on 3 hosts (2+2+1), btl tcp,self"
    "${MPIRUN[@]}" --timeout 60 -np 5 "$BUILD/mpi_tests/multinode_probe" \
      --expect-hosts=3 --shared-dir="$WORK" | sort

    say "probe: one rank per host (--map-by node)"
    "${MPIRUN[@]}" --timeout 60 -np 3 --map-by node "$BUILD/mpi_tests/multinode_probe" \
      --expect-hosts=3 --shared-dir="$WORK" | sort

    say "shared memory only (btl vader,self) works within a host ..."
    "${MPIRUN[@]}" --timeout 60 -np 2 --host mnode2:2 \
      --mca btl vader,self --mca btl_vader_single_copy_mechanism none \
      "$BUILD/mpi_tests/multinode_probe" --expect-hosts=1 --shared-dir="$WORK" | sort
    say "... and cannot reach the ranks on another host (2 hosts x 2 ranks)"
    set +e
    "${MPIRUN[@]}" --timeout 60 -np 4 --host mnode1:2,mnode2:2 \
      --mca btl vader,self --mca btl_vader_single_copy_mechanism none \
      "$BUILD/mpi_tests/multinode_probe" --expect-hosts=2 --shared-dir="$WORK" \
      >"$WORK/vader.out" 2>&1
    rc=$?
    set -e
    [ $rc -ne 0 ] || fail "a vader,self job ran across two hosts: OpenMPI took them for one node"
    grep -q 'unable to reach each other' "$WORK/vader.out" ||
      { cat "$WORK/vader.out"; fail "the vader,self job failed (exit $rc) for another reason"; }
    grep -A3 'Process 1' "$WORK/vader.out" | sed -n '1,3p'
    echo "(exit $rc, as it should)"

    say "a checkpoint directory in node-local /tmp fails the first save, loudly"
    set +e
    "${MPIRUN[@]}" --timeout 60 -np 4 --host mnode1:2,mnode2:2 "$BUILD/examples/train" \
      --dir="/tmp/${tag}_ckpt" --mesh=data=2,model=2 --steps=10 --save-every=5 --hidden=16 \
      >"$WORK/local_dir.out" 2>&1
    rc=$?
    set -e
    [ $rc -ne 0 ] || fail "a save into /tmp/${tag}_ckpt on two hosts succeeded"
    grep -m1 'rank [23]: saving .*No such file or directory' "$WORK/local_dir.out" ||
      { cat "$WORK/local_dir.out"; fail "the save into node-local /tmp failed (exit $rc) for another reason"; }
    echo "(exit $rc, as it should)"
    ;;

  story)
    "$HERE/hosts.sh" up "$STATE" --hosts=2 --slots=2 --owner=$$
    say "scripts/story.sh --quick on 2 hosts x 2 ranks"
    bash "$ROOT/scripts/story.sh" "$BUILD" "$WORK/story" --quick \
      --mpirun="${MPIRUN[*]} --display-map"
    grep -q 'Data for node: mnode2.*Num slots: 2.*Num procs: 2' "$WORK/story/reference.out" ||
      fail "the 4-rank reference run did not put 2 ranks on mnode2 (see $WORK/story/reference.out)"
    ;;

  reshard)
    "$HERE/hosts.sh" up "$STATE" --hosts=2 --slots=2 --owner=$$
    EXE=$BUILD/mpi_tests/reshard_matrix_test
    DIR=$WORK/reshard
    say "save and restore on 4 ranks: mnode1 ranks 0-1, mnode2 ranks 2-3"
    "${MPIRUN[@]}" --timeout 150 -np 4 --display-map "$EXE" --dir="$DIR" --phase=all
    say "save and restore on 2 ranks, one per host, and restore the 4-rank checkpoints"
    "${MPIRUN[@]}" --timeout 150 -np 2 --map-by node "$EXE" --dir="$DIR" --phase=all
    say "restore both on 4 ranks placed round-robin: mnode1 ranks 0,2, mnode2 ranks 1,3"
    "${MPIRUN[@]}" --timeout 150 -np 4 --map-by node --display-map "$EXE" --dir="$DIR" \
      --phase=restore --expect-np=2,4
    say "read once, distribute: shards shared by ranks on both hosts go over TCP"
    "${MPIRUN[@]}" --timeout 120 -np 4 --map-by node "$BUILD/mpi_tests/read_once_test" \
      --dir="$WORK"
    "${MPIRUN[@]}" --timeout 120 -np 3 "$BUILD/mpi_tests/read_once_test" --dir="$WORK"
    ;;

  *) echo "unknown test $TEST (harness, story or reshard)" >&2; exit 2 ;;
esac

grep -q 'rsh-agent mnode2' "$MESHCKPT_MN_AGENT_LOG" ||
  fail "mpirun never started orted on mnode2 through rsh-agent"
say "passed in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s (rsh-agent started orted $(grep -c rsh-agent "$MESHCKPT_MN_AGENT_LOG") times)"
