#include "actors/dispatcher/arrival_rates.hpp"

#include <algorithm>
#include <chrono>

namespace squad {

namespace {
std::int64_t second_of(steady_time t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
} // namespace

void arrival_rates::add(std::size_t cls, steady_time now) {
  auto sec = second_of(now);
  auto& b = ring_[static_cast<std::size_t>(sec) % ring_.size()];
  if (b.second != sec)
    b = bucket{sec, {}};
  ++b.by_class[cls < 4 ? cls : 3];
}

double arrival_rates::rate_above(std::size_t cls, steady_time now) const {
  auto sec = second_of(now);
  std::int64_t n = 0, last = 0;
  for (auto& b : ring_)
    if (b.second < sec && b.second >= sec - static_cast<std::int64_t>(seconds))
      for (std::size_t c = 0; c < cls && c < 4; ++c) {
        n += b.by_class[c];
        last += b.second == sec - 1 ? b.by_class[c] : 0;
      }
  // The lower of the average and the last whole second: arrivals that stopped (a burst that is over, and queued
  // already) forecast nothing.
  return std::min(static_cast<double>(n) / static_cast<double>(seconds), static_cast<double>(last));
}

std::int64_t arrival_rates::forecast_wait(std::int64_t wait_ms, double rate_per_s, double slot_ms,
                                          std::int64_t horizon_ms) {
  double taken = rate_per_s * slot_ms / 1000.0; // the share of capacity the higher classes take
  auto w = static_cast<double>(wait_ms);
  if (taken < 1 && w / (1 - taken) <= static_cast<double>(horizon_ms))
    return static_cast<std::int64_t>(w / (1 - taken));
  return static_cast<std::int64_t>(w + taken * static_cast<double>(horizon_ms));
}

} // namespace squad
