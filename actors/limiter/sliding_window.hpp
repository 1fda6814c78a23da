#pragma once
// A sliding-window log: a hard cap of `limit` admissions in any window of length `window`.
// Pure logic; time comes in as `now`.
#include <chrono>
#include <cstdint>
#include <deque>

namespace squad {

using steady_time = std::chrono::steady_clock::time_point;

class sliding_window {
public:
  sliding_window(std::int64_t limit, std::chrono::nanoseconds window) : limit_(limit), window_(window) {}

  /// Admits at `now` when fewer than `limit` admissions lie in (now - window, now].
  bool try_admit(steady_time now) {
    expire(now);
    if (static_cast<std::int64_t>(log_.size()) >= limit_)
      return false;
    log_.push_back(now);
    return true;
  }

  /// The earliest time >= now at which try_admit would succeed.
  steady_time earliest_admit(steady_time now) {
    expire(now);
    if (static_cast<std::int64_t>(log_.size()) < limit_)
      return now;
    return log_[log_.size() - static_cast<std::size_t>(limit_)] + window_;
  }

  /// Admissions inside the window ending at `now`.
  std::int64_t occupancy(steady_time now) {
    expire(now);
    return static_cast<std::int64_t>(log_.size());
  }

  std::int64_t limit() const { return limit_; }

private:
  void expire(steady_time now) {
    while (!log_.empty() && log_.front() + window_ <= now)
      log_.pop_front();
  }

  std::int64_t limit_;
  std::chrono::nanoseconds window_;
  std::deque<steady_time> log_;
};

} // namespace squad
