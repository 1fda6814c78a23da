#!/usr/bin/env bash
# Gateway benchmark: the latency a gateway adds and the throughput it sustains in front of a fixed upstream.
# A private nginx on loopback answers POST /v1/chat/completions with a canned chat.completion (nginx.conf.in);
# wrk (chat.lua) sends the same small chat request to it directly, through `squad serve` and through Portkey's
# open-source gateway, and the script prints a markdown table and pass/fail lines against Squad's targets.
#
#   bench/gateway/run.sh
#
# Environment:
#   BENCH_SECONDS=10       length of each load (c=BENCH_CONNECTIONS) run
#   BENCH_ROUNDS=5         c=1 rounds per gateway: each runs direct and the gateway back to back (order alternates)
#   BENCH_ROUND_SECONDS=4  length of each c=1 run within a round
#   BENCH_WARMUP=2         warm-up of each target at 1 connection (seconds, not measured)
#   BENCH_CONNECTIONS=32   connections of the load run; BENCH_THREADS=2 its wrk threads
#   BENCH_TARGETS="direct squad portkey"   which rows to measure (direct is always measured: it is the baseline)
#   SQUAD_BIN              squad binary (default build/release/runtime/app/squad under the repository root)
#   BENCH_CACHE=/var/cache/squad-bench     where deploy/bench-deps.sh installed @portkey-ai/gateway
#   BENCH_SKIP_DEPS=1      do not run deploy/bench-deps.sh
#   BENCH_KEEP=1           keep the work directory (configs, logs, raw wrk output) and print its path
#   BENCH_STRICT=1         exit 1 when Squad misses a target or could not be measured
#   BENCH_START_TIMEOUT=30 seconds a server gets to start answering
#   BENCH_STORAGE          squad serve --storage: none (no audit trail), postgresql://... ; default a SQLite file
#                          in the work directory (the audit trail on, as in a default deployment)
set -Eeuo pipefail
export PATH=$PATH:/usr/sbin:/sbin # nginx lives in /usr/sbin, not on a normal user's PATH on Debian

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/gateway/lib.sh
source "$here/lib.sh" # process, memory, wrk and measuring helpers
root=$(cd "$here/../.." && pwd)

seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-5}
round_seconds=${BENCH_ROUND_SECONDS:-4}
warmup=${BENCH_WARMUP:-2}
conns=${BENCH_CONNECTIONS:-32}
threads=${BENCH_THREADS:-2}
targets=${BENCH_TARGETS:-direct squad portkey}
cache=${BENCH_CACHE:-/var/cache/squad-bench}
start_timeout=${BENCH_START_TIMEOUT:-30}
if [[ -n ${SQUAD_BIN:-} ]]; then
  squad_bin=$SQUAD_BIN
  [[ $squad_bin == /* ]] || squad_bin=$PWD/$squad_bin
else
  squad_bin=$root/build/release/runtime/app/squad
fi
portkey_entry=$cache/node_modules/@portkey-ai/gateway/build/start-server.js

# Squad's targets (what the pass/fail lines check).
target_added_p50=0.1  # ms
target_added_p99=0.3  # ms
target_rps=15000      # at BENCH_CONNECTIONS connections
target_rss=60         # MB

for v in seconds rounds round_seconds; do # wrk's -d takes whole seconds
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $v must be a positive whole number, not '${!v}'" >&2; exit 2; }
done
[[ $warmup =~ ^[0-9]+$ ]] || { echo "run.sh: warmup must be a whole number, not '$warmup'" >&2; exit 2; }

if [[ ${BENCH_SKIP_DEPS:-0} != 1 ]]; then
  "$root/deploy/bench-deps.sh"
fi
for cmd in nginx wrk curl; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "run.sh: $cmd not found (run deploy/bench-deps.sh)" >&2; exit 2; }
done

cd "$root" # squad-bench.yaml names personas_dir and workflows_dir relative to the repository root
work=$(mktemp -d "${TMPDIR:-/tmp}/squad-bench.XXXXXX")

# --- processes: every one started is stopped on exit, Ctrl-C and SIGTERM included ----------------------------------
pids=() # what stop_tracked and cleanup stop

cleanup() {
  local rc=$?
  trap - EXIT INT TERM ERR
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${pids[i]}"
  done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "run.sh: work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
# Says where an unexpected failure stopped the script (the main shell only: command substitutions fail on purpose).
trap 'rc=$?; [[ $BASHPID == "$$" ]] && echo "run.sh: line $LINENO: a command failed (exit $rc)" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# --- results ---------------------------------------------------------------------------------------------------------
declare -A R # R[target.key]: c1_p50_us c1_p99_us c1_rps c32_rps c32_p50_us c32_p99_us errors rss_kb na
order=()

c1_p50="" c1_p99="" # the last c1_once run's p50/p99 (us)

# --- the upstream: a private nginx ----------------------------------------------------------------------------------
start_nginx() {
  local prefix=$work/nginx try port
  mkdir -p "$prefix"
  for ((try = 0; try < 5; try++)); do
    port=$(pick_port) || break
    sed -e "s#@PREFIX@#$prefix#g" -e "s#@PORT@#$port#g" "$here/nginx.conf.in" >"$prefix/nginx.conf"
    nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" >"$prefix/stdout.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    if wait_http "$pid" "http://127.0.0.1:$port/"; then
      nginx_port=$port
      nginx_pid=$pid
      return 0
    fi
    stop_pid "$pid"
    unset 'pids[${#pids[@]}-1]'
  done
  echo "run.sh: nginx did not start:" >&2
  tail -n 5 "$prefix/error.log" "$prefix/stdout.log" >&2 2>/dev/null || true
  return 1
}

nginx_port="" nginx_pid=""
start_nginx || exit 1
upstream=http://127.0.0.1:$nginx_port
echo "run.sh: upstream nginx on $upstream (pid $nginx_pid), work dir $work" >&2

# --- direct ----------------------------------------------------------------------------------------------------------
measure_direct

# --- Squad -----------------------------------------------------------------------------------------------------------
run_squad() {
  if [[ ! -x $squad_bin ]]; then
    na squad "no squad binary at $squad_bin; build it or set SQUAD_BIN"
    return
  fi
  export BENCH_UPSTREAM_URL=$upstream/v1 # the OpenAI base URL form: Squad appends /chat/completions
  local rc=0
  "$squad_bin" config check "$here/squad-bench.yaml" >"$work/squad-check.log" 2>&1 || rc=$?
  if ((rc != 0)); then
    local msg
    msg=$(grep -v '^$' "$work/squad-check.log" 2>/dev/null | head -n 3 | tr '\n' ' ' || true)
    na squad "config check exited $rc${msg:+: $msg}"
    return
  fi
  : >"$work/squad.out" # created here: the background job's own redirection may come later than the first read
  "$squad_bin" serve --config "$here/squad-bench.yaml" --listen 127.0.0.1:0 \
    --storage "${BENCH_STORAGE:-sqlite:$work/squad.db}" >"$work/squad.out" 2>"$work/squad.err" &
  local pid=$! port="" i
  pids+=("$pid")
  for ((i = 0; i < start_timeout * 10; i++)); do
    port=$(sed -n 's#^squad serve: listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$work/squad.out" 2>/dev/null | head -n 1 || true)
    [[ -n $port ]] && break
    alive "$pid" || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    if alive "$pid"; then
      na squad "no 'listening on' line within ${start_timeout}s"
    else
      na squad "squad serve exited: $(tail -n 3 "$work/squad.err" | tr '\n' ' ')"
    fi
    stop_tracked "$pid"
    return
  fi
  echo "run.sh: squad on 127.0.0.1:$port (pid $pid)" >&2
  measure_gateway squad "http://127.0.0.1:$port/v1/chat/completions" "$pid" bench/echo
  stop_tracked "$pid" # one gateway at a time: the next target gets the CPUs to itself
}

# --- Portkey ---------------------------------------------------------------------------------------------------------
run_portkey() {
  if ! command -v node >/dev/null 2>&1; then
    na portkey "node not found"
    return
  fi
  if [[ ! -f $portkey_entry ]]; then
    na portkey "no $portkey_entry (run deploy/bench-deps.sh)"
    return
  fi
  local try port pid="" up=""
  for ((try = 0; try < 3; try++)); do
    port=$(pick_port) || break
    # --port=N (only the = form is parsed); --headless: no web UI or log stream. Binds all interfaces (no host flag).
    NODE_ENV=production node "$portkey_entry" --port="$port" --headless >"$work/portkey.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    if wait_http "$pid" "http://127.0.0.1:$port/"; then
      up=1
      break
    fi
    stop_pid "$pid"
    unset 'pids[${#pids[@]}-1]'
  done
  if [[ -z $up ]]; then
    na portkey "gateway did not answer: $(tail -c 300 "$work/portkey.log" | tr -d '\r' | tr '\n' ' ')"
    return
  fi
  echo "run.sh: portkey on 127.0.0.1:$port (pid $pid)" >&2
  measure_gateway portkey "http://127.0.0.1:$port/v1/chat/completions" "$pid" gpt-4o-mini \
    "x-portkey-provider: openai" \
    "x-portkey-custom-host: $upstream/v1" \
    "Authorization: Bearer sk-bench-not-checked"
  stop_tracked "$pid"
}

for t in $targets; do
  case $t in
    direct) ;;
    squad) run_squad ;;
    portkey) run_portkey ;;
    *) echo "run.sh: unknown target $t (direct, squad, portkey)" >&2 ;;
  esac
done

# No gateway got as far as its c=1 rounds: direct's c=1 numbers come from rounds of its own.
if [[ -n ${R[direct.url]:-} && -z ${R[direct.na]:-} && -z ${R[direct.c1_p50s]:-} ]]; then
  echo "run.sh: direct: no gateway rounds; $rounds c=1 rounds of ${round_seconds}s on direct alone" >&2
  c1_rounds direct || true
fi

# --- report ----------------------------------------------------------------------------------------------------------
# c=1 p50/p99: the median of the target's per-round values; added p50/p99: the median of the per-round differences.
for t in "${order[@]}"; do
  [[ -z ${R[$t.na]:-} ]] || continue
  R[$t.c1_p50_us]=$(median "${R[$t.c1_p50s]}")
  R[$t.c1_p99_us]=$(median "${R[$t.c1_p99s]}")
  R[$t.c1_rps]=$(awk -v n="${R[$t.c1_requests]}" -v s="${R[$t.c1_seconds]}" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')
  R[$t.errors]=$((${R[$t.c1_errors]} + ${R[$t.c32_errors]}))
  R[$t.detail]="c=1: ${R[$t.c1_requests]} requests in ${R[$t.c1_rounds]} runs of ${round_seconds}s, ${R[$t.c1_non2xx]} non-2xx; ${R[$t.c32_detail]}"
  if [[ -n ${R[$t.added_p50s]:-} ]]; then
    R[$t.added_p50_us]=$(median "${R[$t.added_p50s]}")
    R[$t.added_p99_us]=$(median "${R[$t.added_p99s]}")
  fi
done

cpus=$(nproc 2>/dev/null || echo "?")
echo
echo "Gateway benchmark: c=1 in $rounds rounds per gateway of ${round_seconds}s direct + ${round_seconds}s gateway (order alternating),"
echo "1 wrk thread; c=$conns for ${seconds}s with $threads wrk threads; warm-up ${warmup}s per target. c=1 p50/p99: median over"
echo "rounds; added: median of the per-round differences (gateway minus direct in the same round). Upstream nginx"
echo "$(nginx -v 2>&1 | sed 's#.*/##'), $cpus CPUs shared by wrk, the gateways and nginx. Latency in ms."
echo
echo "| target | c=1 p50 ms | c=1 p99 ms | added p50 ms | added p99 ms | c=$conns req/s | c=$conns p99 ms | errors | RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
direct_ok=""
if [[ -z ${R[direct.na]:-} && -n ${R[direct.c1_p50_us]:-} ]]; then
  direct_ok=1
fi
for t in "${order[@]}"; do
  if [[ -n ${R[$t.na]:-} ]]; then
    echo "| $t | n/a (${R[$t.na]//|/\\|}) | | | | | | | |"
    continue
  fi
  added50="-" added99="-" rss="-"
  if [[ $t != direct && -n $direct_ok && -n ${R[$t.added_p50_us]:-} ]]; then
    added50=$(added_ms "${R[$t.added_p50_us]}")
    added99=$(added_ms "${R[$t.added_p99_us]}")
  fi
  [[ -n ${R[$t.rss_kb]:-} ]] && rss=$(mb "${R[$t.rss_kb]}")
  printf '| %s | %s | %s | %s | %s | %.0f | %s | %s | %s |\n' "$t" \
    "$(ms "${R[$t.c1_p50_us]}")" "$(ms "${R[$t.c1_p99_us]}")" "$added50" "$added99" \
    "${R[$t.c32_rps]}" "$(ms "${R[$t.c32_p99_us]}")" "${R[$t.errors]}" "$rss"
done
echo
for t in "${order[@]}"; do
  [[ -z ${R[$t.na]:-} ]] || continue
  printf '%s: c=1 %.0f req/s; c=%s p50 %s ms; %s\n' "$t" "${R[$t.c1_rps]}" "$conns" "$(ms "${R[$t.c32_p50_us]}")" \
    "${R[$t.detail]}"
  if [[ $t != direct && -n $direct_ok && -n ${R[$t.added_p99s]:-} ]]; then
    line="$t: added p99 per round (ms):"
    for v in ${R[$t.added_p99s]}; do line+=" $(added_ms "$v")"; done
    echo "$line"
  fi
  if [[ -n ${R[$t.overhead]:-} ]]; then
    echo "$t: mean time a c=1 call spent in Squad outside the upstream exchange (its own histogram): ${R[$t.overhead]} us"
  fi
done

# Pass/fail against Squad's targets. Portkey is checked against the same numbers for comparison; RSS only for Squad.
echo
squad_failed=0
add_check() { # add_check OK TEXT
  if [[ $1 == 1 ]]; then checks+=("$2 pass"); else checks+=("$2 FAIL"); all=FAIL; fi
}
for t in "${order[@]}"; do
  [[ $t == direct ]] && continue
  if [[ -n ${R[$t.na]:-} ]]; then
    echo "$t: not measured (${R[$t.na]})"
    [[ $t == squad ]] && squad_failed=1
    continue
  fi
  if [[ -z $direct_ok || -z ${R[$t.added_p50_us]:-} ]]; then
    echo "$t: no direct baseline, added latency not evaluated"
    [[ $t == squad ]] && squad_failed=1
    continue
  fi
  checks=() all=PASS
  a50=$(added_ms "${R[$t.added_p50_us]}")
  a99=$(added_ms "${R[$t.added_p99_us]}")
  le "$a50" "$target_added_p50" && ok=1 || ok=0
  add_check "$ok" "added p50 $a50 <= $target_added_p50 ms:"
  le "$a99" "$target_added_p99" && ok=1 || ok=0
  add_check "$ok" "added p99 $a99 <= $target_added_p99 ms:"
  ge "${R[$t.c32_rps]}" "$target_rps" && ok=1 || ok=0
  add_check "$ok" "c=$conns $(printf '%.0f' "${R[$t.c32_rps]}") >= $target_rps req/s:"
  [[ ${R[$t.errors]} == 0 ]] && ok=1 || ok=0
  add_check "$ok" "errors ${R[$t.errors]} == 0:"
  if [[ $t == squad ]]; then
    le "$(mb "${R[$t.rss_kb]:-0}")" "$target_rss" && ok=1 || ok=0
    add_check "$ok" "RSS $(mb "${R[$t.rss_kb]:-0}") <= $target_rss MB:"
    [[ $all == PASS ]] || squad_failed=1
    label="squad: $all"
  else
    label="$t (vs Squad's targets, for comparison): $all"
  fi
  line="$label --"
  for c in "${checks[@]}"; do line+=" $c;"; done
  echo "${line%;}"
done

if [[ ${BENCH_STRICT:-0} == 1 && $squad_failed == 1 ]]; then
  exit 1
fi
