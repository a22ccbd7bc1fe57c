#!/usr/bin/env bash
# Include rules that keep the library's rooms apart. Lists every violation
# and exits 1 when there is one.
#
#   scripts/check_includes.sh
#
# 1. A public header includes a generated .pb.h. Public: any .h under base/
#    mesh/ layout/ comm/ io/ checkpoint/ tools/, except *_internal.h, files
#    in a folder named internal/, and io/format/index_proto.h, the proto
#    framing the format tests and fuzzers use (proto/ is outside these
#    rooms: there the on-disk protos are the interface).
# 2. <hdf5.h> outside io/, or <mpi.h> outside comm/, in code that ships:
#    the library rooms, proto/, tfbundle/, bench/, fuzz/ and python/ (which
#    reaches MPI through mpi4py's Fortran handle). Not checked:
#    tests/ and mpi_tests/, which build hostile files with the HDF5 C API
#    and drive MPI themselves, and examples/, which are user programs
#    (train.cc does its own MPI for training). io/transfer/hdf5_*.cc see
#    MPI only through parallel HDF5's own headers, which include <mpi.h>.
# 3. Rooms depend one way:
#      checkpoint/engine/  not on checkpoint/object|saver|manager|reader
#      checkpoint/reader/  not on checkpoint/object|saver|manager
#      io/                 not on checkpoint/
#      base/ mesh/ layout/ not on comm/ io/ checkpoint/
#      tfbundle/           on base/ only (a leaf: TensorFlow's formats)
#      base/ mesh/ layout/ comm/ io/ not on tfbundle/
# 4. One of our headers included without the "meshckpt/" prefix it is
#    installed under.
set -uo pipefail
cd "$(dirname "$0")/.."

violations=0
report() {  # RULE FILE:LINE:TEXT...
  local rule=$1
  shift
  [ $# -eq 0 ] && return
  echo "$rule:"
  printf '  %s\n' "$@"
  violations=$((violations + $#))
}
# grep_includes PATTERN FILES...: file:line:text of matching #include lines.
grep_includes() {
  local pattern=$1
  shift
  [ $# -eq 0 ] && return
  grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*$pattern" "$@" /dev/null || true
}

mapfile -t public < <(git ls-files 'base/*.h' 'mesh/*.h' 'layout/*.h' 'comm/*.h' 'io/*.h' \
    'checkpoint/*.h' 'tools/*.h' |
  grep -v -e '_internal\.h$' -e '/internal/' -e '^io/format/index_proto\.h$')
mapfile -t lines < <(grep_includes '"[^"]*\.pb\.h"' "${public[@]}")
report "public headers that include a generated .pb.h" "${lines[@]}"

mapfile -t shipped < <(git ls-files 'base/*' 'mesh/*' 'layout/*' 'proto/*' 'comm/*' 'io/*' \
    'checkpoint/*' 'tools/*' 'tfbundle/*' 'bench/*' 'fuzz/*' 'python/*' | grep -E '\.(h|cc)$')
mapfile -t lines < <(grep_includes '<hdf5\.h>' $(printf '%s\n' "${shipped[@]}" | grep -v '^io/'))
report "<hdf5.h> outside io/" "${lines[@]}"
mapfile -t lines < <(grep_includes '<mpi\.h>' $(printf '%s\n' "${shipped[@]}" | grep -v '^comm/'))
report "<mpi.h> outside comm/" "${lines[@]}"

# room RULE PATTERN PATHSPEC...: files under PATHSPEC including PATTERN.
room() {
  local rule=$1 pattern=$2
  shift 2
  local files
  mapfile -t files < <(git ls-files "$@" | grep -E '\.(h|cc)$')
  mapfile -t lines < <(grep_includes "$pattern" "${files[@]}")
  report "$rule" "${lines[@]}"
}
room "checkpoint/engine/ includes object, saver, manager or reader" \
  '"meshckpt/checkpoint/(object|saver|manager|reader)/' 'checkpoint/engine/*'
room "checkpoint/reader/ includes object, saver or manager" \
  '"meshckpt/checkpoint/(object|saver|manager)/' 'checkpoint/reader/*'
room "io/ includes checkpoint/" '"meshckpt/checkpoint/' 'io/*'
room "base/, mesh/ or layout/ includes comm/, io/ or checkpoint/" \
  '"meshckpt/(comm|io|checkpoint)/' 'base/*' 'mesh/*' 'layout/*'
room "tfbundle/ includes more than base/" '"meshckpt/(mesh|layout|comm|io|checkpoint|tools)/' \
  'tfbundle/*'
room "base/, mesh/, layout/, comm/ or io/ includes tfbundle/" '"meshckpt/tfbundle/' \
  'base/*' 'mesh/*' 'layout/*' 'comm/*' 'io/*'

# 4. Our headers are included as installed: "meshckpt/<folder>/<file>.h".
#    Generated protos keep their protoc paths ("proto/<name>.pb.h").
mapfile -t all < <(git ls-files '*.h' '*.cc')
mapfile -t lines < <(grep_includes '"(base|mesh|layout|proto|comm|io|checkpoint|tools|tfbundle)/' \
  "${all[@]}" | grep -v '\.pb\.h"')
report "our headers included without the meshckpt/ prefix" "${lines[@]}"

if [ $violations -eq 0 ]; then
  echo "check_includes: clean"
else
  echo "check_includes: $violations violation(s)"
  exit 1
fi
