#!/usr/bin/env bash
# Squad's one entry point for a fresh Debian 12 machine: installs what is missing, builds, then
#   deploy/setup.sh run   builds Release and runs `squad run` on a sample task (simulated providers)
#   deploy/setup.sh test  builds Debug and runs the whole test suite with ctest
#   deploy/setup.sh deps  only installs what is missing
# Idempotent: packages already installed are not touched; builds are incremental (ccache when present).
set -euo pipefail

mode=${1:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Debian packages the build and the tests need (see docs/architecture.md for why each).
packages=(
  g++ cmake make pkg-config ccache
  libcaf-dev libboost1.81-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev catch2 openssl
)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    return
  fi
  echo "setup: installing ${missing[*]}"
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

jobs=${SQUAD_JOBS:-2}
werror=OFF
if [[ ${CI:-} == true ]]; then
  werror=ON
fi

build() { # build DIR TYPE [TARGET...]
  local dir=$1 type=$2
  shift 2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DSQUAD_WERROR="$werror" >/dev/null
  if (($#)); then
    cmake --build "$dir" -j "$jobs" --target "$@"
  else
    cmake --build "$dir" -j "$jobs"
  fi
}

case "$mode" in
  deps)
    install_missing
    ;;
  run)
    install_missing
    build build/release RelWithDebInfo squad squad-mock-provider
    ./build/release/runtime/app/squad run "${SQUAD_TASK:-Build a habit tracker for small teams}"
    ;;
  test)
    install_missing
    build build/debug Debug
    ctest --test-dir build/debug --output-on-failure -j "$jobs"
    ;;
  *)
    echo "usage: deploy/setup.sh run|test|deps" >&2
    exit 2
    ;;
esac
