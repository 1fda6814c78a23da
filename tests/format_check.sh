#!/usr/bin/env bash
# Every C++ file git knows is formatted as .clang-format says (Debian 12's clang-format 14; another version may
# format differently, so the check names the one it ran). Usage: tests/format_check.sh [SOURCE_DIR].
# Prints each unformatted file and exits 1; reformat with: git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [[ -z $fmt ]]; then
  echo "format check: clang-format is not installed (deploy/setup.sh test installs it)" >&2
  exit 1
fi
bad=0
while IFS= read -r f; do
  if ! "$fmt" --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f"
    bad=1
  fi
done < <(git ls-files '*.cpp' '*.hpp')
((bad == 0)) && echo "format check: every file formatted ($("$fmt" --version | head -1))"
exit $bad
