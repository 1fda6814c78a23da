#!/bin/sh
# tool.sh PACKAGE TOOL ARGS...: runs a command-line checker for ctest. A missing tool fails the test (it is never
# skipped) and names the Debian package to install; deploy/setup.sh deps installs it.
package=$1 tool=$2
shift 2
if ! command -v "$tool" >/dev/null 2>&1; then
  echo "FAILED: $tool is not installed (Debian package $package; deploy/setup.sh deps installs it)" >&2
  exit 1
fi
exec "$tool" "$@"
