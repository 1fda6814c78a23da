#pragma once
// Pure supervision logic (OTP-shaped): which exits restart a child, and how many restarts are too many.
#include <chrono>
#include <cstddef>
#include <deque>

namespace squad {

/// permanent: always restarted; transient: restarted only after an abnormal exit; temporary: never.
enum class restart_kind { permanent, transient, temporary };

/// Whether a child that exited should be started again. `abnormal` is false for a normal exit or a
/// shutdown its supervisor asked for.
constexpr bool should_restart(restart_kind kind, bool abnormal) {
  switch (kind) {
  case restart_kind::permanent:
    return true;
  case restart_kind::transient:
    return abnormal;
  case restart_kind::temporary:
    return false;
  }
  return false;
}

/// At most `max_restarts` restarts within any `period`; past that the supervisor gives up and escalates.
template <class TimePoint> class restart_intensity {
public:
  using duration = typename TimePoint::duration;

  restart_intensity(std::size_t max_restarts, duration period) : max_restarts_(max_restarts), period_(period) {}

  /// Records a restart wanted at `now`; false when it would exceed the limit (then nothing is recorded).
  bool try_restart(TimePoint now) {
    while (!recent_.empty() && now - recent_.front() >= period_)
      recent_.pop_front();
    if (recent_.size() >= max_restarts_)
      return false;
    recent_.push_back(now);
    return true;
  }

  /// Restarts counted in the current period.
  std::size_t recent() const { return recent_.size(); }

private:
  std::size_t max_restarts_;
  duration period_;
  std::deque<TimePoint> recent_;
};

} // namespace squad
