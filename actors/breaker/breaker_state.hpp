#pragma once
// A circuit breaker's state machine, as pure logic (time comes in as `now`).
//
//   CLOSED    -> OPEN       after `consecutive` failures in a row, or when failures are at least `ratio` of the
//                            last calls within `window` (once `min_calls` calls are in it)
//   OPEN      -> HALF_OPEN  once `cooldown` has passed (on the next allow/phase query)
//   HALF_OPEN -> CLOSED     when `probes` probe calls have all succeeded
//   HALF_OPEN -> OPEN       on a probe's failure (a fresh cooldown)
//
// Failures: server_error, overloaded, timeout, connect_failed, bad_response, stream_cut, auth_failed, unavailable.
// rate_limited is a busy signal for the limiter, not a failure, unless `rate_limit_is_failure`. bad_request and
// context_too_long say nothing about the provider's health: neutral.
#include "actors/limiter/sliding_window.hpp"
#include "actors/vocabulary.hpp"

#include <cstdint>
#include <deque>
#include <optional>

namespace squad {

struct breaker_settings {
  std::int64_t consecutive = 5;
  double ratio = 0.5;
  std::int64_t min_calls = 10;
  std::chrono::milliseconds window{60000};
  std::chrono::milliseconds cooldown{60000};
  std::int64_t probes = 1;
  bool rate_limit_is_failure = false;
};

enum class breaker_phase : std::uint8_t { closed, open, half_open };
const char* to_string(breaker_phase p);

/// How an outcome counts for the breaker.
enum class health : std::uint8_t { success, failure, neutral };
health classify_health(outcome o, bool rate_limit_is_failure);

class breaker_state {
public:
  explicit breaker_state(breaker_settings s = {}) : s_(s) {}

  /// Whether a call may go at `now`. In HALF_OPEN it takes one of the probe slots; false when none is left.
  bool allow(steady_time now);

  /// The outcome of a call that allow() let through. Returns the new phase when it changed.
  std::optional<breaker_phase> record(outcome o, steady_time now);

  /// allow(), returning the generation (phase changes so far) the call was let through in; nullopt: refused.
  std::optional<std::uint64_t> admit(steady_time now);

  /// record() for a call admitted in `generation`; ignored when the phase changed since (e.g. the late reply of
  /// a call let through before a trip must not count as a half-open probe's result).
  std::optional<breaker_phase> record(outcome o, steady_time now, std::uint64_t generation);
  /// Phase changes so far (what admit() hands out while the phase holds).
  std::uint64_t generation() const { return generation_; }

  /// The phase at `now` (OPEN turns HALF_OPEN once the cooldown is over).
  breaker_phase phase(steady_time now);

  /// When an OPEN breaker lets probes through.
  steady_time open_until() const { return open_until_; }
  std::int64_t consecutive_failures() const { return consecutive_; }
  const breaker_settings& settings() const { return s_; }

private:
  void trip(steady_time now);

  breaker_settings s_;
  breaker_phase phase_ = breaker_phase::closed;
  std::int64_t consecutive_ = 0;
  // Calls within the window, coalesced: calls less than window/1000 after a slot's start join it (and leave the
  // window with it), so memory stays bounded (about 1000 slots) at any call rate; totals kept as they change.
  struct slot {
    steady_time at;
    std::int64_t calls = 0, failures = 0;
  };
  std::deque<slot> recent_;
  std::int64_t recent_calls_ = 0, recent_failures_ = 0;
  steady_time open_until_{};
  std::int64_t probes_out_ = 0;
  std::int64_t probes_ok_ = 0;
  std::uint64_t generation_ = 0;
};

} // namespace squad
