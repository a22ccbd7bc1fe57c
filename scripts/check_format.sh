#!/usr/bin/env bash
# Fails, listing the files, when a tracked .h or .cc differs from what
# clang-format makes of it with the .clang-format at the root.
#   scripts/check_format.sh          check
#   scripts/check_format.sh --fix    reformat in place
set -uo pipefail
cd "$(dirname "$0")/.."
FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$FORMAT" >/dev/null || { echo "check_format: $FORMAT not found (scripts/setup.sh installs it)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.h' '*.cc')
if [ "${1:-}" = --fix ]; then
  printf '%s\0' "${files[@]}" | xargs -0 "$FORMAT" -i
  exit 0
fi
# --dry-run prints one warning per differing line, prefixed by the file.
mapfile -t bad < <(printf '%s\0' "${files[@]}" |
  xargs -0 -P 2 -n 64 "$FORMAT" --dry-run 2>&1 |
  grep -oE '^[^:]+\.(h|cc):[0-9]+:[0-9]+: (warning|error)' | cut -d: -f1 | sort -u)
if [ ${#bad[@]} -gt 0 ]; then
  echo "check_format: not formatted (scripts/check_format.sh --fix):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "check_format: clean (${#files[@]} files)"
