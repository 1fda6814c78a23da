#pragma once
// How fast calls of each class arrive at a provider, over the last few seconds in quarter-second buckets: the
// forecast the shedding rule uses so that a low-class call is refused at its arrival when the higher classes
// arriving behind it will keep pushing it back past its tolerable wait (a call is judged once, at arrival).
// Pure logic: time comes in as `now`. The current, unfinished bucket is left out, and a rate is only seen once
// arrivals have come in each of the last two whole buckets: a one-off burst (its calls within a quarter second,
// or straddling two) forecasts nothing while it lands, and its calls are in the queue the estimate counts.
#include "actors/limiter/sliding_window.hpp"
#include "actors/vocabulary.hpp"

#include <array>
#include <cstdint>

namespace squad {

class arrival_rates {
public:
  static constexpr std::int64_t bucket_ms = 250;
  static constexpr std::size_t buckets = 20;       ///< averaged over at most 5 s
  static constexpr std::int64_t horizon_ms = 5000; ///< how long a seen rate is trusted to last

  /// A call of class `cls` (0..3) arrived at `now`.
  void add(std::size_t cls, steady_time now);

  /// Calls per second of classes above `cls` (0..cls-1): the lower of their average since they began (at most
  /// `buckets` whole buckets back) and their average over the last second; 0 unless both of the last two whole
  /// buckets had some (arrivals that stopped, or have not lasted, forecast nothing).
  double rate_above(std::size_t cls, steady_time now) const;

  /// The wait of a call whose estimate is `wait_ms`, when calls of higher classes go on arriving at `rate_per_s`
  /// and each takes `slot_ms` of the capacity: wait / (1 - rate * slot) while that stays within `horizon_ms`;
  /// past it the rate is not trusted to last (it was only seen for a few seconds), so only the arrivals of the
  /// horizon count: wait + rate * slot * horizon.
  static std::int64_t forecast_wait(std::int64_t wait_ms, double rate_per_s, double slot_ms,
                                    std::int64_t horizon = horizon_ms);

private:
  struct bucket {
    std::int64_t index = -1; ///< now / bucket_ms
    std::array<std::int64_t, 4> by_class{};
  };
  std::array<bucket, buckets + 1> ring_{};
};

} // namespace squad
