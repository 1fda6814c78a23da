#pragma once
// One provider's admission rules, as pure logic (time comes in as `now`). A call is admitted only when every
// rule allows it at once:
//
//   pause        after a 429: until its Retry-After / reset deadline (a later deadline extends, never shortens)
//   quota        the provider's own x-ratelimit-remaining-requests: after a reply said "r left until reset",
//                at most r more admissions until then, or until the oldest admission in our window log leaves
//                it (then the window rule knows as much); counted from the request that reply answered; an
//                announced x-ratelimit-limit-requests below `requests` replaces `requests` (advertised != real)
//   bucket       token bucket: `rate` = requests/per, capacity `burst`
//   window       sliding-window log: a hard cap of `requests` per `per` (+ a margin for arrival jitter)
//   interval     at least `min_interval` between two sends
//   concurrency  `concurrency` permits; a permit not released within `permit_ttl` is reclaimed. Learned lower at
//                once when a 429 answers a call that went with k calls in flight while calls with fewer in flight
//                succeeded within the last minute and the window was not the cause (the provider allows fewer
//                at once than configured): then the most that succeeded together
//   day          at most `per_day` admissions in a day (a fixed 24 h window from its first admission)
//   tokens       prompt estimate + max_tokens reserved per call within `per`, reconciled with actual usage
//
// The adaptive throttle scales bucket rate and window cap: `throttle_after` 429s within `throttle_period` cut
// the factor by `throttle_step` (down to `throttle_floor`); each `throttle_quiet` without a 429 restores a step.
// Learned limits recover: a learned concurrency gains one permit per `throttle_quiet` without a 429, and an
// announced request limit is raised once every announcement for a whole window `per` said more (to the lowest
// of them, never above the configured `requests`).
#include "actors/limiter/limiter_checkpoint.hpp"
#include "actors/limiter/sliding_window.hpp"
#include "actors/vocabulary.hpp"
#include "runtime/config/config.hpp"

#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace squad {

struct limiter_settings {
  std::int64_t requests = 60;
  millis per{60000};
  std::int64_t burst = 1;
  std::int64_t concurrency = 4;
  millis min_interval{0};
  std::int64_t tokens = 0;   ///< 0: not limited
  std::int64_t per_day = 0;  ///< admissions per 24 h window; 0: not limited
  millis window_margin{0};   ///< added to `per` by the window rule
  millis permit_ttl{600000}; ///< a permit held longer is reclaimed (a lost reply cannot leak a slot)
  millis hold_prior{0};      ///< how long a call holds its permit until releases have measured it; 0: unknown
  /// The caller tells when each admitted call actually went upstream (sent()): until then its window entry cannot
  /// leave the window, and then it counts from the send, not the admission. A call admitted at t but sent at
  /// t + d (a busy dispatcher, a loaded machine) otherwise leaves our window d early, and the provider, which
  /// counts arrivals, sees one call too many.
  bool confirm_sends = false;
  std::int64_t throttle_after = 3; ///< 429s within throttle_period that cut the rate
  millis throttle_period{60000};
  double throttle_step = 0.2;
  double throttle_floor = 0.5;
  millis throttle_quiet{600000};
};

/// The settings a provider's `limits` imply: window margin 1% of `per` (at least 5ms, at most 1s).
limiter_settings limiter_settings_from(const limits_config& l);
/// A provider's settings: its limits, and the hold time to plan with before replies measure one
/// (`limits.expected_latency`; unset: a sim provider's mean simulated latency, other kinds 1s).
limiter_settings limiter_settings_from(const provider_config& p);

/// Which rule holds a call back.
enum class limit_rule : std::uint8_t {
  none,
  pause,
  quota,
  bucket,
  window,
  interval,
  concurrency,
  tokens,
  too_big,
  day
};
const char* to_string(limit_rule r);

class rate_limiter {
public:
  static constexpr steady_time never = steady_time::max();

  rate_limiter(limiter_settings s, steady_time now);

  struct verdict {
    bool admitted = false;
    std::uint64_t permit = 0;     ///< when admitted
    steady_time retry_at = never; ///< when not: the earliest time every rule but concurrency could allow it
    limit_rule blocked_by = limit_rule::none;
  };

  /// Admits a call reserving `tokens` at `now`, or says what holds it back and until when. With concurrency
  /// full, retry_at is when the first permit is expected back (its start plus expected_hold(); never before now
  /// + 1ms; the permit's expiry when no hold time is known). A release frees a permit sooner or later than that:
  /// callers waiting on concurrency wait for a release, not for retry_at.
  verdict try_acquire(steady_time now, std::int64_t tokens);

  /// The same question without admitting.
  verdict probe(steady_time now, std::int64_t tokens);

  /// When a call reserving `tokens` could be admitted if `ahead` calls were admitted before it, as early as the
  /// rules allow. Permits are modelled as coming back after expected_hold() (concurrency is left out when no hold
  /// time is known at all). `never` when it cannot be.
  steady_time estimate(steady_time now, std::int64_t ahead, std::int64_t tokens) const;

  /// How many calls every rule would admit at `now`, one after another, without time passing; 0 also when a rule
  /// it does not count applies (tokens, min_interval, a pause). estimate() uses it to skip its simulation.
  std::int64_t headroom(steady_time now) const;

  /// For waiters in queue order (tokens, queue deadline): whether each can still be admitted by its deadline
  /// when the ones before it that can go first (concurrency as in estimate()). A waiter that cannot takes no slot.
  std::vector<bool> feasible(steady_time now, const std::vector<std::pair<std::int64_t, steady_time>>& waiters) const;

  /// The call holding `permit` ended; `actual_tokens` (prompt + completion; < 0: unknown) replaces its reservation.
  /// `sent`: false for a permit given back unused (the call was dropped before it went upstream): its hold time
  /// says nothing about the provider and is left out of mean_hold(). Returns false for an unknown permit.
  bool release(std::uint64_t permit, steady_time now, std::int64_t actual_tokens, bool sent = true);

  /// The call holding `permit` went upstream at `at` (with confirm_sends): its window entry now counts from then.
  /// Unknown or already confirmed permits are ignored.
  void sent(std::uint64_t permit, steady_time at);

  /// What the reply to `permit`'s call said about limits, at `now`. `rate_limited`: it was a 429.
  /// Returns true when the effective limits changed (a throttle step, an announced request limit, a learned
  /// concurrency); change_note() then says what, for people.
  bool on_signals(std::uint64_t permit, steady_time now, const limit_signals& s, bool rate_limited);

  /// Pauses admission until `until` (never shortens a pause already set).
  void pause_until(steady_time until);

  /// Restores a throttle step, and a permit of a learned concurrency, when quiet long enough; true on a change.
  bool maybe_restore(steady_time now);
  /// What the last change of on_signals() or maybe_restore() was, e.g. "concurrency learned: 3 (configured 8)".
  const std::string& change_note() const { return change_note_; }
  /// The concurrency in force: the configured one, or a lower one learned from 429s.
  std::int64_t concurrency_now() const {
    return learned_conc_ > 0 ? std::min(learned_conc_, s_.concurrency) : s_.concurrency;
  }

  double factor() const { return factor_; }
  /// Admissions in the current per_day window (0 when it is off or over).
  std::int64_t day_used(steady_time now) const {
    return s_.per_day > 0 && day_start_ != steady_time{} && day_start_ + std::chrono::hours{24} > now ? day_count_ : 0;
  }
  /// The mean time a permit is held (an EWMA over releases; 0 before the first).
  std::chrono::nanoseconds mean_hold() const {
    return std::chrono::nanoseconds{static_cast<std::int64_t>(hold_ewma_ns_)};
  }
  /// The hold time routing plans with: the measured mean once a release measured one, else `hold_prior`.
  std::chrono::nanoseconds expected_hold() const {
    return hold_ewma_ns_ > 0 ? mean_hold() : std::chrono::nanoseconds{s_.hold_prior};
  }
  /// The provider's announced request limit when lower than the configured one (it then replaces it).
  std::optional<std::int64_t> announced_limit() const { return announced_; }
  double effective_rate_per_s() const;
  std::int64_t effective_window_cap() const;
  steady_time paused_until() const { return pause_until_; }
  std::int64_t in_flight() const { return static_cast<std::int64_t>(permits_.size()); }
  std::int64_t reclaimed() const { return reclaimed_; }
  std::int64_t window_occupancy(steady_time now);
  const limiter_settings& settings() const { return s_; }

  /// What must survive a restart (limiter_checkpoint.cpp), with times on the wall clock: `now_ms` is the unix time
  /// at `now`. Every window entry is kept, including calls in flight; one granted but not confirmed sent yet is dated
  /// `now` (the earliest it can still go). Permits are not kept: their calls end with the process.
  limiter_checkpoint checkpoint(steady_time now, std::int64_t now_ms) const;
  /// Adds what `cp` remembers to this limiter, at `now` (unix `now_ms`): window entries and token reservations still
  /// inside the window (older ones are dropped; none is dated after now), the pause, the throttle and its 429s, a
  /// learned concurrency, an announced limit, the day's count, the provider's quota, the bucket's level. It only adds
  /// constraints: the configured limits bound what it restores, and a restored limiter admits nothing at any time
  /// that the same limiter without it would refuse.
  limiter_restore_report restore(const limiter_checkpoint& cp, steady_time now, std::int64_t now_ms);

private:
  static constexpr std::chrono::seconds max_send_delay{30}; // a grant not confirmed sent by then was lost

  struct permit_info {
    steady_time started;
    std::uint64_t seq; // admission order
    std::int64_t reserved;
    std::int64_t together = 1;  // calls in flight when it was admitted, itself included
    std::int64_t window_at = 0; // window entries then
  };
  struct window_entry {
    steady_time at; // the admission, or the send once confirmed
    std::uint64_t permit;
    bool pending; // admitted, send not confirmed yet: it stays in the window
  };
  struct token_entry {
    steady_time at;
    std::uint64_t permit;
    std::int64_t tokens;
  };

  void expire(steady_time now);
  rate_limiter simulation(steady_time now) const; // a copy for what-if questions from `now`
  void refill(steady_time now);
  verdict check(steady_time now, std::int64_t tokens);
  std::int64_t tokens_in_window() const;
  std::chrono::nanoseconds bucket_wait() const; ///< until the bucket holds a token; zero when it does

  limiter_settings s_;
  double factor_ = 1.0;
  double bucket_;
  steady_time refilled_at_;
  void confirm(std::deque<window_entry>::iterator it, steady_time at); // a pending entry counts from `at`
  // The window entry of `permit` (admitted at `since`) while it is pending; window_log_.end() otherwise.
  std::deque<window_entry>::iterator pending_entry(std::uint64_t permit, steady_time since);
  std::deque<window_entry> window_log_; // admissions inside per + margin, in time order
  std::optional<steady_time> last_send_;
  steady_time pause_until_{};
  std::map<std::uint64_t, permit_info> permits_;
  std::uint64_t next_permit_ = 1;
  std::uint64_t admitted_seq_ = 0;
  std::deque<token_entry> token_log_;
  std::deque<steady_time> recent_429_;
  steady_time last_429_{};
  steady_time last_throttle_change_{};
  // The provider's own count: `quota_left_` admissions after seq `quota_seq_`, until `quota_reset_`.
  std::optional<std::int64_t> quota_left_;
  std::uint64_t quota_seq_ = 0;
  steady_time quota_reset_{};
  std::int64_t reclaimed_ = 0;
  std::optional<std::int64_t> announced_; // a request limit the provider announced below `requests`
  double hold_ewma_ns_ = 0;
  std::optional<steady_time> raise_since_; // since when every announcement was above announced_
  std::int64_t raise_to_ = 0;              // the lowest of those
  std::int64_t learned_conc_ = 0;          // 0: none learned
  steady_time learned_conc_at_{};          // when it last changed
  std::int64_t ok_together_ = 0;           // the most calls in flight together that were answered without a 429...
  steady_time ok_together_at_{};           // ...lately (it counts for a minute)
  std::int64_t day_count_ = 0;             // admissions in the day window that began at day_start_
  steady_time day_start_{};
  std::string change_note_;
};

} // namespace squad
