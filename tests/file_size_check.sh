#!/usr/bin/env bash
# No C++ source file outside tests/ (and bench/) over 500 lines: a file that grows past it holds more than one job.
# Usage: tests/file_size_check.sh [SOURCE_DIR]. Prints each file over the limit and exits 1.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
bad=0
while IFS= read -r f; do
  n=$(wc -l <"$f")
  if ((n > 500)); then
    echo "over 500 lines: $f ($n)"
    bad=1
  fi
done < <(git ls-files '*.cpp' '*.hpp' | grep -v -E '^(tests|bench)/')
((bad == 0)) && echo "file sizes: no source file outside tests/ and bench/ over 500 lines"
exit $bad
