-- wrk script for bench/gateway/run.sh: POSTs one small chat completion request, over and over.
--   BENCH_MODEL    the "model" field (default bench/echo)
--   BENCH_HEADERS  extra request headers, one "Name: value" per line (Portkey's routing headers, a bearer token)
-- done() prints one machine-readable line that run.sh parses:
--   BENCH requests=N seconds=S rps=R p50_us=.. p90_us=.. p99_us=.. max_us=.. non2xx=.. connect=.. read=.. write=.. timeout=..

local model = os.getenv("BENCH_MODEL") or "bench/echo"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'

local extra = os.getenv("BENCH_HEADERS") or ""
for line in extra:gmatch("[^\n]+") do
  local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if name then
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
