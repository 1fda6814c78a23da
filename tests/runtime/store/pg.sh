#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for the tests (the storage suite's second backend, the outage tests).
#   pg.sh start DIR   initdb in DIR (once), start it on a free loopback port, write its URL to DIR/url
#   pg.sh stop DIR    stop it (fast) and keep DIR; pg.sh destroy DIR also removes DIR
# As root, initdb and pg_ctl run as the postgres user (initdb refuses root). Needs postgresql-15 (deploy/setup.sh).
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|destroy DIR} dir=${2:?usage: pg.sh start|stop|destroy DIR}
bin=/usr/lib/postgresql/15/bin
[[ -x $bin/pg_ctl ]] || { echo "pg.sh: no PostgreSQL 15 at $bin (run deploy/setup.sh --tests)" >&2; exit 1; }
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
start)
  if [[ $(id -u) == 0 ]]; then install -d -o postgres -g postgres -m 700 "$dir"; else mkdir -p "$dir"; fi
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true # a leftover from a killed run
  if [[ -f $dir/port ]]; then port=$(cat "$dir/port"); else # a restart keeps the port (the outage tests)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
  fi
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off" start >/dev/null ||
    { tail -n 20 "$dir/server.log" >&2; exit 1; }
  echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$dir/url.tmp"
  chmod 644 "$dir/url.tmp" && mv "$dir/url.tmp" "$dir/url"
  echo "pg.sh: PostgreSQL up at $(cat "$dir/url")"
  ;;
stop) as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true ;;
destroy)
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
