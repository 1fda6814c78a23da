#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with Debian's clang 14 (-fsanitize=fuzzer,address,undefined) and
# runs each for SECONDS (default 20) from its seed corpus. Fails on any crash, leak or sanitizer report.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     e.g. tests/fuzz/run.sh 600 sse   (a longer run of one)
# The corpora grow in build/fuzz/corpus (the committed seeds stay as they are).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(sse limit_headers duration json_body)
cxx=$(command -v clang++-14 || command -v clang++ || true)
[[ -n $cxx ]] || { echo "fuzz: clang++ is not installed (deploy/setup.sh test installs clang-14)" >&2; exit 1; }
out=build/fuzz
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I.)
declare -A sources=(
  [sse]="actors/provider/sse_parser.cpp"
  [limit_headers]="actors/provider/limit_headers.cpp runtime/net/url.cpp"
  [duration]="runtime/time/duration.cpp"
  [json_body]="runtime/server/json_body.cpp"
)
status=0
for t in "${targets[@]}"; do
  [[ -n ${sources[$t]:-} ]] || { echo "fuzz: unknown target $t" >&2; exit 2; }
  bin=$out/fuzz_$t
  # shellcheck disable=SC2086
  "$cxx" "${flags[@]}" tests/fuzz/fuzz_$t.cpp ${sources[$t]} -o "$bin"
  mkdir -p "$out/corpus/$t"
  log=$out/fuzz_$t.log
  if "$bin" -artifact_prefix="$out/" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       "$out/corpus/$t" tests/fuzz/corpus/$t >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    files=$(find "$out/corpus/$t" tests/fuzz/corpus/$t -type f | wc -l)
    echo "fuzz $t: ok, $runs runs in ${seconds}s, corpus $files files"
  else
    echo "fuzz $t: FAILED (see $log)"
    grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5
    status=1
  fi
done
exit $status
