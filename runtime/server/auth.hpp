#pragma once
// API keys of `squad serve`: SHA-256 hashing (the config stores hashes only) and per-key limits as pure logic
// (time comes in as `now`): requests per minute over a sliding 60 s window, requests in flight, and requests per
// UTC day. A refusal says which limit and when to retry, for the 429's Retry-After.
#include "runtime/config/config.hpp"

#include <chrono>
#include <deque>
#include <string>
#include <string_view>

namespace squad::server {

/// Lowercase hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);

struct key_verdict {
  bool ok = true;
  std::int64_t retry_after_s = 0; ///< when refused: seconds until the limit that refused can admit (>= 1)
  std::string why;                ///< when refused: which limit, with its numbers
  // The key's limits as the client sees them after this request (x-ratelimit-* headers); a limit 0 is not set.
  std::int64_t rpm_limit = 0, rpm_remaining = 0, rpm_reset_ms = 0; ///< per minute: reset when a slot frees
  std::int64_t day_limit = 0, day_remaining = 0, day_reset_s = 0;  ///< per UTC day: reset at midnight
};

class key_limits {
public:
  explicit key_limits(api_key_config cfg) : cfg_(std::move(cfg)) {}

  /// Admits one request at `now` (steady time) on UTC day `day` (days since the epoch), or says why not.
  /// An admitted request holds a concurrency slot until finish().
  key_verdict admit(std::chrono::steady_clock::time_point now, std::int64_t day, std::int64_t seconds_to_midnight);
  void finish();

  const api_key_config& config() const { return cfg_; }
  std::int64_t in_flight() const { return in_flight_; }

private:
  api_key_config cfg_;
  std::deque<std::chrono::steady_clock::time_point> minute_; // admissions in the last 60 s
  std::int64_t in_flight_ = 0;
  std::int64_t day_ = -1, today_ = 0;
};

} // namespace squad::server
