#!/usr/bin/env bash
# scripts/check_includes.sh must pass on the tree as committed and fail, naming
# the file, on each kind of violation planted in a copy of it.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
git clone -q "$ROOT" "$TMP/repo" || exit 1
cd "$TMP/repo" || exit 1

fail=0
out=$(bash scripts/check_includes.sh 2>&1) || { echo "FAIL: clean tree reported:"; echo "$out"; fail=1; }

# expect_violation FILE LINE WHAT: plants LINE at the top of FILE, expects a
# failure naming FILE, then restores it.
expect_violation() {
  local file=$1 line=$2 what=$3
  cp "$file" "$TMP/saved"
  { echo "$line"; cat "$TMP/saved"; } >"$file"
  if out=$(bash scripts/check_includes.sh 2>&1); then
    echo "FAIL: $what in $file passed"; fail=1
  elif ! grep -q "$file:1:" <<<"$out"; then
    echo "FAIL: $what in $file not named:"; echo "$out"; fail=1
  else
    echo "ok: $what in $file"
  fi
  cp "$TMP/saved" "$file"
}
expect_violation checkpoint/engine/shard_io.h '#include "proto/meshckpt.pb.h"' \
  "generated header in a public header"
expect_violation checkpoint/engine/shard_save.cc '#include <hdf5.h>' "<hdf5.h> outside io/"
expect_violation io/format/index_file.cc '#include <mpi.h>' "<mpi.h> outside comm/"
expect_violation python/tensors.cc '#include <mpi.h>' "<mpi.h> in python/ (MPI comes through mpi4py)"
expect_violation checkpoint/engine/save_plan.cc '#include "meshckpt/checkpoint/object/trackable.h"' \
  "engine including the object API"
expect_violation io/fs/fs.cc '#include "meshckpt/checkpoint/engine/shard_io.h"' \
  "io/ including checkpoint/"
expect_violation layout/box.cc '#include "mesh/mesh.h"' "an include without meshckpt/"
exit $fail
