#!/usr/bin/env bash
# Installs the Debian packages meshckpt needs, only when something is missing.
# Safe to run repeatedly; says what it does. Needs root (or sudo) to install.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  # lld: links the test programs about three times faster than ld.bfd.
  lld
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libprotobuf-dev protobuf-compiler
  libabsl-dev
  libgtest-dev libgmock-dev
  libxxhash-dev
  # TensorFlow checkpoints (tfbundle/): the index table writer and Snappy.
  libleveldb-dev libsnappy-dev
  # The sanitizer and libFuzzer build that scripts/test.sh runs after the
  # tests (scripts/sanitize.sh --ci, scripts/fuzz.sh).
  clang libclang-rt-14-dev
  # scripts/tidy.sh and the .clang-format at the root.
  clang-tidy clang-format
  # ps, for the multinode harness (scripts/multinode/); its unshare and
  # nsenter are in util-linux, which every Debian system has.
  procps
  # cpack -G DEB and the downstream test (dpkg-shlibdeps, dpkg-deb).
  dpkg-dev
  # The Python module (python/): pybind11 and numpy to build it against
  # Debian's python3, mpi4py for its collective side, pytest for its tests.
  python3-dev pybind11-dev python3-numpy python3-mpi4py python3-pytest
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all required packages are installed"
  exit 0
fi

echo "setup: installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup: not root and no sudo; install these by hand: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
