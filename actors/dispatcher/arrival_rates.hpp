#pragma once
// How fast calls of each class arrive at a provider, over the last few whole seconds: the forecast the shedding
// rule uses so that a low-class call is refused at its arrival when the higher classes arriving behind it will
// keep pushing it back past its tolerable wait (it used to be accepted and refused only when that wait ran out).
// Pure logic: time comes in as `now`. The current, unfinished second is left out, so a one-off burst (every call
// within the same second) forecasts nothing: its calls are already in the queue the estimate counts.
#include "actors/limiter/sliding_window.hpp"
#include "actors/vocabulary.hpp"

#include <array>
#include <cstdint>

namespace squad {

class arrival_rates {
public:
  static constexpr std::size_t seconds = 5; ///< whole seconds averaged over

  /// A call of class `cls` (0..3) arrived at `now`.
  void add(std::size_t cls, steady_time now);

  /// Calls per second of classes above `cls` (0..cls-1) over the last `seconds` whole seconds before `now`'s, or
  /// in the last whole second when fewer came then (arrivals that stopped forecast nothing).
  double rate_above(std::size_t cls, steady_time now) const;

  /// The wait of a call whose estimate is `wait_ms`, when calls of higher classes go on arriving at `rate_per_s`
  /// and each takes `slot_ms` of the capacity: wait / (1 - rate * slot) while that stays within `horizon_ms`;
  /// past it the rate is not trusted to last (it was only seen for `seconds`), so only the arrivals of the
  /// horizon count: wait + rate * slot * horizon.
  static std::int64_t forecast_wait(std::int64_t wait_ms, double rate_per_s, double slot_ms,
                                    std::int64_t horizon_ms = seconds * 1000);

private:
  struct bucket {
    std::int64_t second = -1;
    std::array<std::int64_t, 4> by_class{};
  };
  std::array<bucket, seconds + 1> ring_{};
};

} // namespace squad
