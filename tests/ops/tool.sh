#!/bin/sh
# tool.sh PACKAGE TOOL ARGS...: runs a command-line checker for ctest, or skips (exit 77, ctest's SKIP_RETURN_CODE)
# with the Debian package to install when the tool is not on this machine. Any other failure fails the test.
package=$1 tool=$2
shift 2
if ! command -v "$tool" >/dev/null 2>&1; then
  echo "skipped: $tool is not installed (Debian package $package; deploy/setup.sh deps installs it)"
  exit 77
fi
exec "$tool" "$@"
