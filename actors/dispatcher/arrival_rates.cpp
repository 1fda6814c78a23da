#include "actors/dispatcher/arrival_rates.hpp"

#include <algorithm>
#include <chrono>

namespace squad {

namespace {
std::int64_t bucket_of(steady_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() / arrival_rates::bucket_ms;
}
} // namespace

void arrival_rates::add(std::size_t cls, steady_time now) {
  auto at = bucket_of(now);
  auto& b = ring_[static_cast<std::size_t>(at) % ring_.size()];
  if (b.index != at)
    b = bucket{at, {}};
  ++b.by_class[cls < 4 ? cls : 3];
}

double arrival_rates::rate_above(std::size_t cls, steady_time now) const {
  auto cur = bucket_of(now);
  constexpr auto span = static_cast<std::int64_t>(buckets);
  // count[k]: arrivals of the higher classes in whole bucket cur-1-k (k = 0 the latest).
  std::array<std::int64_t, buckets> count{};
  for (const auto& b : ring_) {
    auto k = cur - 1 - b.index;
    if (k < 0 || k >= span)
      continue;
    for (std::size_t c = 0; c < cls && c < 4; ++c)
      count[static_cast<std::size_t>(k)] += b.by_class[c];
  }
  if (count[0] == 0 || count[1] == 0)
    return 0;
  std::size_t since = 0; // the whole buckets since these arrivals began (the oldest one that had some)
  for (std::size_t k = 0; k < buckets; ++k)
    if (count[k] > 0)
      since = k + 1;
  constexpr std::size_t second = 1000 / bucket_ms;
  std::int64_t all = 0, recent = 0;
  for (std::size_t k = 0; k < since; ++k) {
    all += count[k];
    recent += k < second ? count[k] : 0;
  }
  auto per_s = [](std::int64_t n, std::size_t b) {
    return static_cast<double>(n) * 1000.0 / static_cast<double>(static_cast<std::int64_t>(b) * bucket_ms);
  };
  return std::min(per_s(all, since), per_s(recent, std::min(since, second)));
}

std::int64_t arrival_rates::forecast_wait(std::int64_t wait_ms, double rate_per_s, double slot_ms,
                                          std::int64_t horizon) {
  double taken = rate_per_s * slot_ms / 1000.0; // the share of capacity the higher classes take
  auto w = static_cast<double>(wait_ms);
  if (taken < 1 && w / (1 - taken) <= static_cast<double>(horizon))
    return static_cast<std::int64_t>(w / (1 - taken));
  return static_cast<std::int64_t>(w + taken * static_cast<double>(horizon));
}

} // namespace squad
