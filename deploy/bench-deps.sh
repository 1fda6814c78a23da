#!/usr/bin/env bash
# Installs what the gateway benchmark (bench/gateway/run.sh) needs, only what is missing:
#   apt:  nginx (the fixed upstream), wrk (the load generator), curl (readiness and smoke checks),
#         nodejs + npm (for Portkey)
#   npm:  @portkey-ai/gateway into $BENCH_CACHE (default /var/cache/squad-bench)
# Idempotent: installed packages are not touched. The Debian nginx package starts a system nginx on port 80 when
# installed; the benchmark runs its own private nginx, so that one is stopped and disabled right after install.
#   deploy/bench-deps.sh
set -euo pipefail

cache=${BENCH_CACHE:-/var/cache/squad-bench}
portkey_pkg=@portkey-ai/gateway

source "$(cd "$(dirname "$0")" && pwd)/lib.sh" # sudo, installed, apt_install, disable_service

missing=()
for p in nginx wrk curl; do
  installed "$p" || missing+=("$p")
done
# Node may come from elsewhere (NodeSource's nodejs bundles npm and conflicts with Debian's npm package):
# a working command is enough.
command -v node >/dev/null 2>&1 || installed nodejs || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || installed npm || missing+=(npm)

if ((${#missing[@]})); then
  echo "bench-deps: installing ${missing[*]}"
  apt_install "${missing[@]}"
  if [[ " ${missing[*]} " == *" nginx "* ]]; then
    # The package's own service would hold port 80 with /etc/nginx; the benchmark runs a private nginx.
    disable_service nginx
    if pgrep -x nginx >/dev/null 2>&1; then # no init system stopped it
      "${sudo[@]}" nginx -s stop >/dev/null 2>&1 || true
    fi
  fi
fi

if [[ ! -f $cache/node_modules/$portkey_pkg/package.json ]]; then
  echo "bench-deps: npm install --prefix $cache $portkey_pkg"
  "${sudo[@]}" mkdir -p "$cache"
  "${sudo[@]}" npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "$portkey_pkg"
fi
