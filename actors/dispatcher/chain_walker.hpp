#pragma once
// Walks a call's fallback chain: which target to try next, when to wait, when to give up.
// Pure logic: outcomes and time come in, decisions go out.
//
// Rules: targets are tried in chain order; a target that answered rate_limited rests until its
// retry-after; another retryable failure rests it for an exponential backoff (base * 2^failures, capped);
// a non-retryable failure (auth, bad request) removes it. When no target is ready, wait for the earliest
// one unless that lies past the deadline. At most `max_attempts` attempts in all.
#include "actors/limiter/sliding_window.hpp"
#include "actors/vocabulary.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace squad {

struct walker_options {
  std::int64_t max_attempts = 8;
  std::chrono::milliseconds backoff_base{200};
  std::chrono::milliseconds backoff_cap{5000};
  std::chrono::milliseconds default_retry_after{1000}; ///< when a rate_limited reply names no deadline
  bool jitter = false;        ///< full jitter: a backoff rests a target uniformly in (0, base * 2^n] (capped)
  std::uint64_t seed = 1;     ///< of the jitter's generator (deterministic for a seed)
};

class chain_walker {
public:
  enum class action { try_target, wait, exhausted };

  struct decision {
    action what = action::exhausted;
    std::size_t target = 0; ///< for try_target
    steady_time until{};    ///< for wait
  };

  chain_walker(std::size_t targets, steady_time deadline, walker_options opts = {});

  /// What to do at `now`.
  decision next(steady_time now) const;

  /// Records how an attempt at `target` ended at `now`.
  void record(std::size_t target, outcome result, steady_time now, std::chrono::milliseconds retry_after);

  /// Rests `target` until `until` without counting an attempt (e.g. its limiter could not admit in time).
  void rest(std::size_t target, steady_time until);

  /// Whether `target` is still in the walk (not removed, not rested for good).
  bool usable(std::size_t target) const;

  /// The targets ready at `now`, in chain order (empty when the walk is over or every target rests).
  std::vector<std::size_t> ready(steady_time now) const;

  std::int64_t attempts() const { return attempts_; }

  /// Why the walk ended, for an exhausted decision: "deadline", "attempts" or "targets".
  const char* exhausted_reason(steady_time now) const;

private:
  struct target_state {
    steady_time ready_at{};
    std::int64_t failures = 0;
    bool removed = false;
  };
  std::vector<target_state> targets_;
  steady_time deadline_;
  walker_options opts_;
  std::int64_t attempts_ = 0;
  std::uint64_t rng_;
};

} // namespace squad
