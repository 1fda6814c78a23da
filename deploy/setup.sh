#!/usr/bin/env bash
# Squad's one entry point for a fresh Debian 12 machine: installs what is missing, builds, then
#   deploy/setup.sh run   builds Release, installs squad on PATH, runs `squad run` on a sample task (simulated)
#   deploy/setup.sh test  builds Debug and runs the whole test suite with ctest
#   deploy/setup.sh deps  only installs what is missing (the test tools included)
#   deploy/setup.sh install  builds Release and installs squad and squad-mock-provider on PATH
#                         (SQUAD_PREFIX, default /usr/local; personas and workflows under share/squad)
# Idempotent: packages already installed are not touched; builds are incremental (ccache when present).
# The end-to-end tests with real clients (tests/js, run by ctest) also need Node.js with npm, promtool (Debian's
# prometheus package) and the npm packages of tests/js/package.json, installed into tests/js/node_modules; the
# checks of deploy/ (tests/ops) need amtool (prometheus-alertmanager), systemd-analyze (systemd), podman, runc
# and debootstrap (the image test) and tests/ops/package.json's packages.
set -euo pipefail

mode=${1:-}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Debian packages the build and the tests need (see docs/architecture.md for why each).
packages=(
  g++ cmake make pkg-config ccache
  libcaf-dev libboost1.81-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev catch2 openssl
  libgoogle-perftools-dev
  libsqlite3-dev libpqxx-dev libre2-dev # storage (embedded SQLite, PostgreSQL) and PII redaction
)

source "$root/deploy/lib.sh" # sudo, installed, apt_install, disable_service

install_missing() { # install_missing [tests]: with "tests", also what tests/js needs
  local missing=()
  for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
  done
  if [[ ${1:-} == tests ]]; then
    # Node may come from elsewhere (NodeSource's nodejs bundles npm and conflicts with Debian's npm package):
    # a working command is enough.
    command -v node >/dev/null 2>&1 || installed nodejs || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || installed npm || missing+=(npm)
    command -v promtool >/dev/null 2>&1 || installed prometheus || missing+=(prometheus)
    command -v amtool >/dev/null 2>&1 || installed prometheus-alertmanager || missing+=(prometheus-alertmanager)
    command -v systemd-analyze >/dev/null 2>&1 || installed systemd || missing+=(systemd)
    command -v podman >/dev/null 2>&1 || installed podman || missing+=(podman) # tests/ops/image.sh
    command -v runc >/dev/null 2>&1 || installed runc || missing+=(runc)
    command -v debootstrap >/dev/null 2>&1 || installed debootstrap || missing+=(debootstrap)
    command -v clang-format >/dev/null 2>&1 || installed clang-format || missing+=(clang-format) # tests/format_check.sh
    command -v python3 >/dev/null 2>&1 || installed python3 || missing+=(python3) # tests/py, bench/faults
    installed postgresql-15 || missing+=(postgresql-15) # tests/store: a throwaway server per test run
    installed clang-14 || missing+=(clang-14)                       # tests/fuzz: libFuzzer, ASan, UBSan
    installed libclang-rt-14-dev || missing+=(libclang-rt-14-dev)
  fi
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    apt_install "${missing[@]}"
    if [[ " ${missing[*]} " == *" prometheus "* ]]; then
      disable_service prometheus # only promtool is wanted, not the package's server on port 9090
    fi
    if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
      disable_service postgresql # tests start their own throwaway server (tests/store/pg_fixture.sh)
    fi
    if [[ " ${missing[*]} " == *" prometheus-alertmanager "* ]]; then
      disable_service prometheus-alertmanager # only amtool is wanted, not the server on port 9093
    fi
  fi
  if [[ ${1:-} == tests ]]; then
    # The npm packages of the JS tests and of the deploy/ checks, when missing or older than package.json.
    for dir in tests/js tests/ops; do
      if [[ ! -d $dir/node_modules || $dir/package.json -nt $dir/node_modules ]]; then
        echo "setup: npm install --prefix $dir"
        npm install --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
        touch "$dir/node_modules"
      fi
    done
  fi
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

install_squad() { # squad and squad-mock-provider on PATH; personas, workflows and squad.yaml under share/squad
  local prefix=${SQUAD_PREFIX:-/usr/local}
  "${sudo[@]}" cmake --install build/release --prefix "$prefix" >/dev/null
  echo "setup: installed $prefix/bin/squad and $prefix/bin/squad-mock-provider ($("$prefix/bin/squad" --version))"
}

case "$mode" in
  deps)
    install_missing tests
    ;;
  run)
    install_missing
    build build/release RelWithDebInfo squad squad-mock-provider
    install_squad # so that the README's `squad ...` commands work from any directory afterwards
    ./build/release/runtime/app/squad run "${SQUAD_TASK:-Build a habit tracker for small teams}"
    ;;
  install)
    install_missing
    build build/release RelWithDebInfo squad squad-mock-provider
    install_squad
    ;;
  test)
    install_missing tests
    build build/debug Debug
    ctest --test-dir build/debug --output-on-failure -j "$jobs"
    # libFuzzer targets (tests/fuzz): the parsers fed random input for a bounded time, under ASan and UBSan.
    tests/fuzz/run.sh "${SQUAD_FUZZ_SECONDS:-20}"
    ;;
  *)
    echo "usage: deploy/setup.sh run|test|deps|install" >&2
    exit 2
    ;;
esac
