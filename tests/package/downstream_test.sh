#!/usr/bin/env bash
# meshckpt as a downstream project sees it. From a built tree:
#   1. install into a temporary prefix; every installed header compiles on
#      its own against that prefix alone, and none includes a generated
#      protobuf header or an internal one;
#   2. build tests/package/consumer three ways: find_package against the
#      install, pkg-config against the install (both static), and
#      add_subdirectory of the source tree (shared);
#   3. build the .deb with cpack, check its Depends, unpack it with
#      dpkg -x and build the consumer against what it holds;
#   4. when the build made the Python module, import and use it from the
#      install and from the unpacked .deb.
# Each consumer saves on 2 ranks and restores on 3 under mpirun, checking
# every value.
#
#   tests/package/downstream_test.sh BUILD_DIR WORK_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$1" && pwd)
WORK=$2
rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
CONSUMER=$SRC/tests/package/consumer
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
JOBS=$(nproc)
CXX=${CXX:-c++}

step() { echo; echo "=== $*"; }
# run_consumer LABEL EXE: save on 2 ranks, restore on 3.
run_consumer() {
  local label=$1 exe=$2 dir=$WORK/ckpt_$1
  mkdir -p "$dir"
  mpirun --oversubscribe --mca mpi_yield_when_idle 1 --timeout 120 -n 2 "$exe" save "$dir"
  mpirun --oversubscribe --mca mpi_yield_when_idle 1 --timeout 120 -n 3 "$exe" restore "$dir"
  echo "ok: $label consumer saved on 2 ranks, restored on 3"
}

step "install into $WORK/prefix"
cmake --install "$BUILD" --prefix "$WORK/prefix" >"$WORK/install.log"
PREFIX=$WORK/prefix
LIBDIR=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
INC=$PREFIX/include
[ -f "$INC/meshckpt/meshckpt.h" ] || { echo "FAIL: no umbrella header"; exit 1; }
[ -x "$PREFIX/bin/meshckpt" ] || { echo "FAIL: no meshckpt tool"; exit 1; }
"$PREFIX/bin/meshckpt" --help >/dev/null

# The Python module, when the build made one: installed under the prefix,
# importable from there alone, and working (a save and read in one process).
PYDIR=$(sed -n 's/^MESHCKPT_PYTHON_INSTALL_DIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
PYTHON=$(sed -n 's/^MESHCKPT_PYTHON:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
check_python() {  # check_python ROOT: the package in ROOT/$PYDIR works
  local root=$1
  [ -f "$root/$PYDIR/meshckpt/__init__.py" ] || { echo "FAIL: no Python package in $root/$PYDIR"; exit 1; }
  (cd "$WORK" && PYTHONPATH=$root/$PYDIR "$PYTHON" - "$root/$PYDIR" "$WORK/pyckpt_$2" <<'PY'
import sys
import numpy as np
import meshckpt
assert meshckpt.__file__.startswith(sys.argv[1]), meshckpt.__file__
layout = meshckpt.Layout(["x"], meshckpt.Mesh({"x": 2}))
arrays = [np.arange(3, dtype=np.float32) + 3 * i for i in range(2)]
meshckpt.save(None, sys.argv[2], [meshckpt.Tensor("v", (6,), layout, arrays)])
assert meshckpt.open(sys.argv[2]).read("v").tolist() == list(range(6))
PY
  )
  echo "ok: the Python module from $root/$PYDIR"
}
if [ -d "$BUILD/python/meshckpt" ]; then
  step "the installed Python module"
  check_python "$PREFIX" install
fi

step "every installed header alone"
if grep -rnE '#include ["<][^">]*(\.pb\.h|_internal\.h)[">]' "$INC/meshckpt"; then
  echo "FAIL: an installed header includes a generated or internal header"
  exit 1
fi
mapfile -t headers < <(cd "$INC" && find meshckpt -name '*.h' | sort)
# The public headers and only those: exactly the umbrella and what it
# reaches through "meshckpt/..." includes.
mapfile -t closure < <(/usr/bin/python3 - "$INC" <<'PY'
import re, sys, os
inc = sys.argv[1]
seen, todo = set(), ["meshckpt/meshckpt.h"]
while todo:
    h = todo.pop()
    if h in seen:
        continue
    seen.add(h)
    path = os.path.join(inc, h)
    if not os.path.exists(path):
        print("MISSING " + h)
        continue
    todo += re.findall(r'^#include "(meshckpt/[^"]+)"', open(path).read(), re.M)
print("\n".join(sorted(seen)))
PY
)
if [ "$(printf '%s\n' "${headers[@]}")" != "$(printf '%s\n' "${closure[@]}")" ]; then
  echo "FAIL: installed headers differ from the umbrella's closure:"
  diff <(printf '%s\n' "${headers[@]}") <(printf '%s\n' "${closure[@]}") || true
  exit 1
fi
mkdir -p "$WORK/headers"
for h in "${headers[@]}"; do
  printf '#include "%s"\n#include "%s"\n' "$h" "$h" >"$WORK/headers/$(echo "$h" | tr / _).cc"
done
# Only the prefix and the system: nothing from the source or build tree.
printf '%s\n' "$WORK"/headers/*.cc |
  xargs -P "$JOBS" -I{} "$CXX" -std=c++17 -fsyntax-only -I"$INC" {}
# And every meshckpt header they reach came from the prefix, not from a
# meshckpt installed system-wide.
stray=$("$CXX" -std=c++17 -M -I"$INC" "$WORK"/headers/*.cc | tr ' \\' '\n\n' |
  grep 'meshckpt/' | grep -v -e "^$INC/" -e "^$WORK/headers/" -e '^$' || true)
if [ -n "$stray" ]; then
  echo "FAIL: headers resolved outside the prefix:"; echo "$stray"; exit 1
fi
echo "ok: ${#headers[@]} headers, exactly the umbrella's closure, compile alone (each included twice)"

step "find_package(meshckpt)"
cmake -S "$CONSUMER" -B "$WORK/find_package" -DMESHCKPT_VIA=find_package \
  -DCMAKE_PREFIX_PATH="$PREFIX" >"$WORK/find_package.log"
grep -qx "meshckpt_DIR:PATH=$PREFIX/$LIBDIR/cmake/meshckpt" "$WORK/find_package/CMakeCache.txt" ||
  { echo "FAIL: find_package did not take meshckpt from $PREFIX"; exit 1; }
cmake --build "$WORK/find_package" -j"$JOBS" >>"$WORK/find_package.log"
run_consumer find_package "$WORK/find_package/consumer"

step "pkg-config meshckpt"
export PKG_CONFIG_PATH=$PREFIX/$LIBDIR/pkgconfig
pkg-config --exists --print-errors meshckpt
pkg-config --modversion meshckpt
[ "$(realpath "$(pkg-config --variable=prefix meshckpt)")" = "$PREFIX" ] ||
  { echo "FAIL: pkg-config did not take meshckpt from $PREFIX"; exit 1; }
# The library is static, so --static brings its private dependencies.
# shellcheck disable=SC2046
"$CXX" -std=c++17 -o "$WORK/consumer_pkgconfig" "$CONSUMER/consumer.cc" \
  $(pkg-config --cflags meshckpt) $(pkg-config --libs --static meshckpt)
unset PKG_CONFIG_PATH
run_consumer pkg_config "$WORK/consumer_pkgconfig"

step "add_subdirectory(meshckpt), shared"
# This one builds the library from source anyway, so it builds it shared
# (BUILD_SHARED_LIBS), the other form a consumer may choose.
cmake -S "$CONSUMER" -B "$WORK/subdirectory" -DMESHCKPT_VIA=subdirectory \
  -DMESHCKPT_SOURCE_DIR="$SRC" -DBUILD_SHARED_LIBS=ON >"$WORK/subdirectory.log"
# Only the library and the consumer: no tests, tools or examples of ours.
for d in tests mpi_tests examples bench tools; do
  if [ -d "$WORK/subdirectory/meshckpt/$d" ]; then
    echo "FAIL: add_subdirectory configured our $d/"
    exit 1
  fi
done
cmake --build "$WORK/subdirectory" -j"$JOBS" >>"$WORK/subdirectory.log"
libs=$(ldd "$WORK/subdirectory/consumer")
grep -q 'libmeshckpt\.so' <<<"$libs" ||
  { echo "FAIL: the add_subdirectory consumer is not linked to libmeshckpt.so"; exit 1; }
run_consumer subdirectory "$WORK/subdirectory/consumer"

step "cpack -G DEB"
(cd "$WORK" && cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$WORK/deb" >"$WORK/cpack.log")
deb=$(ls "$WORK"/deb/*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for pkg in libabsl-dev libprotobuf-dev libhdf5-openmpi-dev libopenmpi-dev libxxhash-dev libc6; do
  grep -qE "(^|, )$pkg( |,|$)" <<<"$depends" || { echo "FAIL: Depends lacks $pkg"; exit 1; }
done
dpkg -x "$deb" "$WORK/debroot"
[ -x "$WORK/debroot/usr/bin/meshckpt" ] || { echo "FAIL: the .deb has no usr/bin/meshckpt"; exit 1; }
cmake -S "$CONSUMER" -B "$WORK/deb_consumer" -DMESHCKPT_VIA=find_package \
  -DCMAKE_PREFIX_PATH="$WORK/debroot/usr" >"$WORK/deb_consumer.log"
cmake --build "$WORK/deb_consumer" -j"$JOBS" >>"$WORK/deb_consumer.log"
grep -q "$WORK/debroot/usr" "$WORK/deb_consumer/CMakeCache.txt"
run_consumer deb "$WORK/deb_consumer/consumer"
if [ -d "$BUILD/python/meshckpt" ]; then
  grep -qE "(^|, )python3-numpy( |,|$)" <<<"$depends" || { echo "FAIL: Depends lacks python3-numpy"; exit 1; }
  check_python "$WORK/debroot/usr" deb
fi
echo
echo "downstream: all passed"
