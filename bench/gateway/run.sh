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
set -Eeuo pipefail
export PATH=$PATH:/usr/sbin:/sbin # nginx lives in /usr/sbin, not on a normal user's PATH on Debian

here=$(cd "$(dirname "$0")" && pwd)
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
pids=()

stop_pid() { # TERM, up to 5 s to go, then KILL
  local pid=$1 state i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    state=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null || true)
    [[ -z $state || $state == Z ]] && break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_tracked() { # stop a started process now and forget it
  local keep=() p
  stop_pid "$1"
  for p in "${pids[@]}"; do
    [[ $p == "$1" ]] || keep+=("$p")
  done
  pids=("${keep[@]}")
}

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

port_free() { ! (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 30000))
    if port_free "$p"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

alive() { # true while the process runs (a zombie does not count)
  local state
  state=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null || true)
  [[ -n $state && $state != Z ]]
}

# wait_http PID URL: until URL answers any HTTP status, the process dies, or start_timeout passes
wait_http() {
  local pid=$1 url=$2 i
  for ((i = 0; i < start_timeout * 10; i++)); do
    alive "$pid" || return 1
    if curl -s -o /dev/null --max-time 1 "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# --- memory: VmRSS of a process and its descendants, in kB ---------------------------------------------------------
tree_pids() {
  local c
  echo "$1"
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
    tree_pids "$c"
  done
}

status_kb() { # status_kb PID FIELD -> kB (0 if gone)
  local k v rest
  while read -r k v rest; do
    if [[ $k == "$2:" ]]; then
      echo "$v"
      return
    fi
  done <"/proc/$1/status" 2>/dev/null || true
  echo 0
}

tree_rss_kb() {
  local sum=0 p
  for p in $(tree_pids "$1"); do
    sum=$((sum + $(status_kb "$p" VmRSS)))
  done
  echo "$sum"
}

# --- results ---------------------------------------------------------------------------------------------------------
declare -A R # R[target.key]: c1_p50_us c1_p99_us c1_rps c32_rps c32_p50_us c32_p99_us errors rss_kb na
order=()

add_row() { # add_row TARGET: the table lists targets in the order they were tried
  local t
  for t in "${order[@]}"; do
    [[ $t == "$1" ]] && return
  done
  order+=("$1")
}

na() { # na TARGET REASON
  add_row "$1"
  R[$1.na]=$2
  echo "run.sh: $1: n/a ($2)" >&2
}

# wrk_run OUT WRK-ARGS...: runs wrk with chat.lua, OUT gets its output. wrk runs in the background and the shell
# waits for it: `wait` returns at once on Ctrl-C and the INT trap stops everything (wrk catches SIGINT itself and
# exits 0, which would otherwise let the script carry on to its next step before the trap runs).
wrk_run() {
  local out=$1
  shift
  wrk "$@" --timeout 5s -s "$here/chat.lua" >"$out" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait "$pid" || true
  unset 'pids[${#pids[@]}-1]'
}

bench_line() { grep '^BENCH ' "$1" 2>/dev/null | tail -n 1 || true; }

field() { # field "BENCH k=v ..." KEY
  local kv
  for kv in $1; do
    if [[ $kv == "$2="* ]]; then
      echo "${kv#*=}"
      return
    fi
  done
  echo 0
}

errors_of() { # non-2xx responses plus socket errors of one BENCH line
  echo $(($(field "$1" non2xx) + $(field "$1" connect) + $(field "$1" read) + $(field "$1" write) + $(field "$1" timeout)))
}

ms() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1000 }'; }
added_ms() { awk -v us="$1" 'BEGIN { printf "%+.3f", us / 1000 }'; } # a difference in us, as signed ms
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

median() { # median "N N ...": the middle value, or the mean of the two middle ones
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{ v[NR] = $1 }
    END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# prepare TARGET URL MODEL [HEADER...]: remembers how wrk calls TARGET, then one smoke request (false: row is n/a)
prepare() {
  local t=$1 url=$2 model=$3
  shift 3
  local headers="" h curl_h=()
  for h in "$@"; do
    headers+="$h"$'\n'
    curl_h+=(-H "$h")
  done
  R[$t.url]=$url
  R[$t.model]=$model
  R[$t.headers]=$headers
  add_row "$t"

  # One request first: it must reach nginx and come back as the canned completion.
  local body code
  body='{"model":"'$model'","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'
  code=$(curl -s -o "$work/$t.smoke" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    "${curl_h[@]}" -d "$body" "$url" || true)
  if [[ $code != 200 ]] || ! grep -q '"chat.completion"' "$work/$t.smoke"; then
    na "$t" "smoke request got HTTP ${code:-none}: $(head -c 160 "$work/$t.smoke" 2>/dev/null | tr -d '\n')"
    return 1
  fi
}

# wrk_target TARGET OUT WRK-ARGS...: wrk_run against TARGET with its model and headers (chat.lua reads them)
wrk_target() {
  local t=$1 out=$2
  shift 2
  export BENCH_MODEL=${R[$t.model]} BENCH_HEADERS=${R[$t.headers]}
  wrk_run "$out" "$@" "${R[$t.url]}"
}

warm_up() {
  if ((warmup > 0)); then
    wrk_target "$1" "$work/$1.warmup.txt" -t1 -c1 -d"${warmup}s"
  fi
}

# c1_once TARGET OUT: one c=1 run; sets c1_p50/c1_p99 (us) and adds the run to TARGET's c=1 values and totals
c1_p50="" c1_p99=""
c1_once() {
  local t=$1 out=$2 line
  wrk_target "$t" "$out" -t1 -c1 -d"${round_seconds}s" --latency
  line=$(bench_line "$out")
  [[ -n $line ]] || return 1
  c1_p50=$(field "$line" p50_us)
  c1_p99=$(field "$line" p99_us)
  R[$t.c1_p50s]="${R[$t.c1_p50s]:-} $c1_p50"
  R[$t.c1_p99s]="${R[$t.c1_p99s]:-} $c1_p99"
  R[$t.c1_rounds]=$((${R[$t.c1_rounds]:-0} + 1))
  R[$t.c1_requests]=$((${R[$t.c1_requests]:-0} + $(field "$line" requests)))
  R[$t.c1_non2xx]=$((${R[$t.c1_non2xx]:-0} + $(field "$line" non2xx)))
  R[$t.c1_errors]=$((${R[$t.c1_errors]:-0} + $(errors_of "$line")))
  R[$t.c1_seconds]=$(awk -v a="${R[$t.c1_seconds]:-0}" -v b="$(field "$line" seconds)" 'BEGIN { printf "%.3f", a + b }')
}

# c1_rounds GATEWAY: BENCH_ROUNDS rounds at 1 connection; each runs direct and GATEWAY back to back, direct first in
# odd rounds and GATEWAY first in even ones, and records GATEWAY's p50/p99 minus direct's of the same round. Direct
# drifts by a millisecond of p99 from one window to the next on a small VM: only same-round differences compare.
# With direct unavailable (or GATEWAY=direct) the rounds run GATEWAY alone. False: GATEWAY got no result (row n/a).
c1_rounds() {
  local gw=$1 r t run_order dp50 dp99 gp50 gp99 with_direct="" out
  if [[ $gw != direct && -n ${R[direct.url]:-} && -z ${R[direct.na]:-} ]]; then
    with_direct=1
  fi
  for ((r = 1; r <= rounds; r++)); do
    if [[ -n $with_direct && -z ${R[direct.na]:-} ]]; then
      if ((r % 2 == 1)); then run_order=(direct "$gw"); else run_order=("$gw" direct); fi
    else
      run_order=("$gw")
    fi
    dp50="" dp99="" gp50="" gp99=""
    for t in "${run_order[@]}"; do
      out=$work/c1.$gw.r$r.$t.txt
      if ! c1_once "$t" "$out"; then
        na "$t" "wrk printed no result at c=1 (round $r of $gw): $(tail -n 1 "$out")"
        [[ $t == "$gw" ]] && return 1
        continue
      fi
      if [[ $t == direct && $gw != direct ]]; then
        dp50=$c1_p50 dp99=$c1_p99
      else
        gp50=$c1_p50 gp99=$c1_p99
      fi
    done
    if [[ -n $dp50 ]]; then
      R[$gw.added_p50s]="${R[$gw.added_p50s]:-} $((gp50 - dp50))"
      R[$gw.added_p99s]="${R[$gw.added_p99s]:-} $((gp99 - dp99))"
      echo "run.sh: $gw: round $r/$rounds (${run_order[*]}): p50 $(ms "$gp50") vs $(ms "$dp50") ms, p99 $(ms "$gp99") vs $(ms "$dp99") ms" >&2
    else
      echo "run.sh: $gw: round $r/$rounds: p50 $(ms "$gp50") ms, p99 $(ms "$gp99") ms" >&2
    fi
  done
}

# load_run TARGET PID: the c=BENCH_CONNECTIONS run; PID's process tree's memory is sampled meanwhile (PID - : none).
# False: no result (row n/a).
load_run() {
  local t=$1 pid=$2 c32 sampler="" peak_file=$work/$1.peak
  echo 0 >"$peak_file"
  if [[ $pid != - ]]; then
    (
      trap - ERR
      max=0
      while :; do
        kb=$(tree_rss_kb "$pid")
        if ((kb > max)); then
          max=$kb
          echo "$max" >"$peak_file"
        fi
        sleep 0.25
      done
    ) &
    sampler=$!
    pids+=("$sampler")
  fi
  wrk_target "$t" "$work/$t.c32.txt" -t"$threads" -c"$conns" -d"${seconds}s" --latency
  c32=$(bench_line "$work/$t.c32.txt")
  if [[ -n $sampler ]]; then
    stop_pid "$sampler"
    unset 'pids[${#pids[@]}-1]'
  fi
  if [[ -z $c32 ]]; then
    na "$t" "wrk printed no result at c=$conns: $(tail -n 1 "$work/$t.c32.txt")"
    return 1
  fi
  R[$t.c32_rps]=$(field "$c32" rps)
  R[$t.c32_p50_us]=$(field "$c32" p50_us)
  R[$t.c32_p99_us]=$(field "$c32" p99_us)
  R[$t.c32_errors]=$(errors_of "$c32")
  R[$t.c32_detail]="c=$conns: $(field "$c32" requests) requests, non-2xx $(field "$c32" non2xx), connect $(field "$c32" connect), read $(field "$c32" read), write $(field "$c32" write), timeout $(field "$c32" timeout)"
  if [[ $pid != - ]]; then
    # The peak of the samples under load, or the process's own high-water mark if that is higher.
    local sampled hwm
    sampled=$(<"$peak_file")
    hwm=$(status_kb "$pid" VmHWM)
    R[$t.rss_kb]=$((sampled > hwm ? sampled : hwm))
  fi
}

# measure_direct: the smoke check, the warm-up and the load run of nginx itself. Its c=1 values come from the
# gateways' rounds (c1_rounds), or from rounds of its own when no gateway gets that far.
measure_direct() {
  prepare direct "$upstream/v1/chat/completions" bench-direct || return 0
  echo "run.sh: direct: warm-up ${warmup}s, then c=$conns for ${seconds}s (c=1: in each gateway's rounds)" >&2
  warm_up direct
  load_run direct - || return 0
}

# measure_gateway TARGET URL PID MODEL [HEADER...]: smoke check, warm-up, the interleaved c=1 rounds, the load run
measure_gateway() {
  local t=$1 url=$2 pid=$3 model=$4
  shift 4
  prepare "$t" "$url" "$model" "$@" || return 0
  echo "run.sh: $t: warm-up ${warmup}s, then $rounds c=1 rounds of ${round_seconds}s alternating with direct, then c=$conns for ${seconds}s" >&2
  warm_up "$t"
  c1_rounds "$t" || return 0
  if [[ $t == squad ]]; then # Squad's own view: the time a call spent in Squad outside the upstream exchange
    curl -s --max-time 5 "${url%/v1/chat/completions}/metrics" >"$work/$t.c1.metrics" || true
    R[$t.overhead]=$(awk '/^squad_gateway_overhead_seconds_sum /{s=$2} /^squad_gateway_overhead_seconds_count /{c=$2}
      END {if (c > 0) printf "%.1f", s / c * 1e6; else print "n/a"}' "$work/$t.c1.metrics")
  fi
  load_run "$t" "$pid" || return 0
}

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
  "$squad_bin" serve --config "$here/squad-bench.yaml" --listen 127.0.0.1:0 >"$work/squad.out" 2>"$work/squad.err" &
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
