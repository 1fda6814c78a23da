# Helpers of bench/gateway/run.sh, sourced by it: starting and stopping processes, ports, memory of a process
# tree, wrk runs and their BENCH lines, and the measuring steps (smoke check, warm-up, c=1 rounds, load run).
# Only functions: the state they read and write (pids, R, order, work, the settings) is run.sh's.
# shellcheck shell=bash

# --- processes: every one started is stopped on exit, Ctrl-C and SIGTERM included ----------------------------------
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
