#pragma once
// What the pressure gauge reads, collected from the calls as they pass: the last routed wait, 429 answers over the
// last minute and the latencies of the last answered calls. Pure: time is passed in. The dispatcher feeds it
// (on_wait, on_reply) and reads pressure_signals from it (with the queue depth it counts itself).
#include "actors/budget/pressure.hpp"

#include <deque>

namespace squad {

class pressure_inputs {
public:
  /// `latency_window`: how many answered calls the p95 latency is taken over.
  explicit pressure_inputs(std::size_t latency_window = 200) : latency_window_(latency_window) {}

  /// A call was routed (or admitted) with this estimated wait.
  void on_wait(std::int64_t wait_ms) { last_wait_ms_ = wait_ms; }
  /// An upstream answer: a 429 counts for a minute; a success's latency joins the window.
  void on_reply(bool rate_limited, bool ok, std::int64_t latency_ms, steady_time now);
  /// The signals at `now`, with `queue_depth` calls waiting (queued at limiters and parked).
  pressure_signals signals(steady_time now, std::int64_t queue_depth);

private:
  std::size_t latency_window_;
  std::int64_t last_wait_ms_ = 0;
  std::deque<steady_time> recent_429_;
  std::deque<std::int64_t> latencies_;
};

} // namespace squad
