#include "actors/budget/pressure_inputs.hpp"

#include <algorithm>
#include <vector>

namespace squad {

void pressure_inputs::on_reply(bool rate_limited, bool ok, std::int64_t latency_ms, steady_time now) {
  if (rate_limited)
    recent_429_.push_back(now);
  if (ok) {
    latencies_.push_back(latency_ms);
    if (latencies_.size() > latency_window_)
      latencies_.pop_front();
  }
}

pressure_signals pressure_inputs::signals(steady_time now, std::int64_t queue_depth) {
  while (!recent_429_.empty() && recent_429_.front() + std::chrono::minutes{1} <= now)
    recent_429_.pop_front();
  pressure_signals sig;
  sig.wait_ms = last_wait_ms_;
  sig.queue_depth = queue_depth;
  sig.rate_429_per_min = static_cast<double>(recent_429_.size());
  // Open breakers are judged per chain (a call whose targets are all open ends or waits for a probe; one with a
  // healthy target is routed there), not as a global signal that would shed calls a healthy chain can serve.
  sig.open_breaker_share = 0;
  if (!latencies_.empty()) {
    std::vector<std::int64_t> v(latencies_.begin(), latencies_.end());
    auto k = std::min(v.size() - 1, v.size() * 95 / 100);
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    sig.p95_latency_ms = v[k];
  }
  return sig;
}

} // namespace squad
