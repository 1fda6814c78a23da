#pragma once
// Walks a call's fallback chain: which target to try next, when to wait, when to give up.
// Pure logic: outcomes and time come in, decisions go out.
//
// Rules: targets are tried in chain order; a target that answered rate_limited rests until its
// retry-after; another retryable failure rests it for an exponential backoff (its retry policy: base * 2^(n-1),
// capped, +-jitter) and after `retries` of them it leaves the walk; a non-retryable failure (auth, bad request)
// removes it. When no target is ready, wait for the earliest one unless that lies past the deadline. At most
// `max_attempts` attempts in all.
#include "actors/limiter/sliding_window.hpp"
#include "actors/vocabulary.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace squad {

/// How one target is retried after retryable failures other than 429 (a provider's `retry:` in config).
struct retry_policy {
  std::int64_t retries = -1;           ///< further tries after the first such failure; -1: unbounded
  std::chrono::milliseconds base{200}; ///< the first rest; each further one doubles
  std::chrono::milliseconds cap{5000}; ///< no rest is longer
  double jitter = 0;                   ///< each rest moves uniformly by up to this share either way, in [0, 1)
};

struct walker_options {
  std::int64_t max_attempts = 8;
  retry_policy retry;                                  ///< for targets without a policy of their own
  std::chrono::milliseconds default_retry_after{1000}; ///< when a rate_limited reply names no deadline
  std::uint64_t seed = 1;                              ///< of the jitter's generator (deterministic for a seed)
};

class chain_walker {
public:
  enum class action { try_target, wait, exhausted };

  struct decision {
    action what = action::exhausted;
    std::size_t target = 0; ///< for try_target
    steady_time until{};    ///< for wait
  };

  /// `policies`: one per target (empty: every target uses opts.retry).
  chain_walker(std::size_t targets, steady_time deadline, walker_options opts = {},
               std::vector<retry_policy> policies = {});

  /// What to do at `now`.
  decision next(steady_time now) const;

  /// Records how an attempt at `target` ended at `now`.
  void record(std::size_t target, outcome result, steady_time now, std::chrono::milliseconds retry_after);

  /// Rests `target` until `until` without counting an attempt (e.g. its limiter could not admit in time).
  void rest(std::size_t target, steady_time until);

  /// Ends `target`'s rest now (its state changed, e.g. its breaker opened: it is worth looking at again).
  void wake(std::size_t target, steady_time now);

  /// Whether `target` is still in the walk (not removed, not rested for good).
  bool usable(std::size_t target) const;

  /// The targets ready at `now`, in chain order (empty when the walk is over or every target rests).
  std::vector<std::size_t> ready(steady_time now) const;

  std::int64_t attempts() const { return attempts_; }

  /// Why the walk ended, for an exhausted decision: "deadline", "attempts" or "targets".
  const char* exhausted_reason(steady_time now) const;

  /// How long until the first target still in the walk is ready again (0: one is now; -1: none left).
  std::int64_t next_ready_ms(steady_time now) const;

  /// Whether `target` left the walk because its retries were used up.
  bool retries_spent(std::size_t target) const { return targets_.at(target).spent; }

private:
  struct target_state {
    steady_time ready_at{};
    std::int64_t failures = 0; ///< consecutive retryable failures other than 429
    bool removed = false;
    bool spent = false; ///< removed because its retries were used up
    retry_policy policy;
  };
  std::vector<target_state> targets_;
  steady_time deadline_;
  walker_options opts_;
  std::int64_t attempts_ = 0;
  std::uint64_t rng_;
};

} // namespace squad
