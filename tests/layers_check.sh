#!/usr/bin/env bash
# The layers, bottom up (docs/architecture.md): an include may only point down or sideways within its own folder.
#   0 runtime/time   1 runtime/net, runtime/metrics, runtime/audit   2 runtime/config, runtime/store   3 actors
#   4 runtime/mock
#   5 runtime/host   6 runtime/server   7 runtime/app
# Usage: tests/layers_check.sh [SOURCE_DIR]. Prints every include that runs back up (or across) and exits 1.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
rank() {
  case "$1" in
    runtime/time*) echo 0 ;; runtime/net*) echo 1 ;; runtime/metrics*) echo 1 ;; runtime/audit*) echo 1 ;;
    runtime/config*) echo 2 ;; runtime/store*) echo 2 ;;
    actors*) echo 3 ;; runtime/mock*) echo 4 ;; runtime/host*) echo 5 ;; runtime/server*) echo 6 ;;
    runtime/app*) echo 7 ;; *) echo -1 ;;
  esac
}
top() { # the folder a path belongs to, for the sideways rule
  case "$1" in actors/*) echo actors ;; *) echo "$1" | cut -d/ -f1-2 ;; esac
}
bad=0
while IFS= read -r file; do
  from=$(rank "$file")
  while IFS= read -r inc; do
    to=$(rank "$inc")
    [ "$to" -lt 0 ] && continue
    if [ "$to" -gt "$from" ] || { [ "$to" -eq "$from" ] && [ "$(top "$inc")" != "$(top "$file")" ]; }; then
      echo "$file includes $inc: $(top "$file") (layer $from) may not depend on $(top "$inc") (layer $to)"
      bad=1
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$file")
done < <(find actors runtime -name "*.[ch]pp" | sort)
[ "$bad" -eq 0 ] && echo "layers: no include runs back up"
exit "$bad"
