#!/usr/bin/env bash
# The Python module against the C++ engine, bit for bit, across rank counts:
#   1. C++ saves every dtype on 2 ranks (cross_check save); Python reads it
#      without MPI (read_cxx_checkpoint.py) and restores it, resharded, on 3
#      ranks and on 1 (cross_language.py restore);
#   2. Python saves every dtype on 3 ranks; `meshckpt verify` checks it, and
#      C++ restores it on 2 ranks and on 1;
#   3. the README's Python examples: save on 4 ranks, restore on 2, read.
# Every mpirun has a timeout.
#
#   cross_language_test.sh PYTHON CROSS_CHECK MESHCKPT_TOOL WORK_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PY=$1 CROSS=$2 TOOL=$3 WORK=$4
rm -rf "$WORK"
mkdir -p "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export PYTHONDONTWRITEBYTECODE=1
# PYTHONPATH (the build tree's python/) comes from ctest.
run() {  # run N COMMAND...
  local n=$1
  shift
  mpirun -n "$n" --oversubscribe --mca mpi_yield_when_idle 1 --timeout 120 "$@"
}

echo "=== C++ saves on 2 ranks; Python reads and restores on 3 and 1"
run 2 "$CROSS" save "$WORK/cxx"
MESHCKPT_CXX_CHECKPOINT=$WORK/cxx "$PY" -m pytest -q -p no:cacheprovider --color=no \
  "$HERE/read_cxx_checkpoint.py"
run 3 "$PY" "$HERE/cross_language.py" restore "$WORK/cxx"
run 1 "$PY" "$HERE/cross_language.py" restore "$WORK/cxx"

echo "=== Python saves on 3 ranks; C++ verifies and restores on 2 and 1"
run 3 "$PY" "$HERE/cross_language.py" save "$WORK/py"
"$TOOL" verify "$WORK/py"
run 2 "$CROSS" restore "$WORK/py"
run 1 "$CROSS" restore "$WORK/py"

echo "=== README examples: save on 4 ranks, restore on 2, read one tensor"
run 4 "$PY" "$SRC/python/examples/save_restore.py" save "$WORK/example_ckpt"
run 2 "$PY" "$SRC/python/examples/save_restore.py" restore "$WORK/example_ckpt"
"$PY" "$SRC/python/examples/read_one.py" "$WORK/example_ckpt" | tee "$WORK/read_one.out"
grep -q "('model/w', 'float32', (1024, 512))" "$WORK/read_one.out"
echo "cross_language_test: all passed"
