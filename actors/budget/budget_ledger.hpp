#pragma once
// A run's call and token budget, as pure logic (no clock, no actor). Reserve, then reconcile:
//
//   reserve(p, est)   takes one call and `est` tokens from what is left and returns a reservation id
//   settle(id, act)   turns the reservation into spending with the actual token count (more or less than the
//                     estimate; spending past the limit is recorded, "left" never goes below 0); act < 0 means
//                     "unknown" and records the estimate
//   cancel(id)        gives the reservation back: the call did not happen
//   Unknown, refused (id 0) or already settled/cancelled ids: settle/cancel return false and change nothing.
//
// Who is granted:
//   P1..P3   only if, after this reservation, at least `p0_reserve` calls remain for P0 (calls_left - 1 >=
//            p0_reserve) and, when `tokens` > 0, the estimate fits in the tokens left. Refusals name the limit:
//              "budget spent: 8 of 8 calls used or reserved"
//              "budget: 1 call kept for P0"
//              "token budget: 900 of 1000 tokens used or reserved, this call needs 300"
//   P0       always. Within the budget when one call and the estimate fit (it may use the P0 reserve);
//            otherwise with over_budget = true, reason "P0 runs beyond the budget", counted in
//            over_budget_calls() (until cancelled). Over-budget calls still count as reserved/spent.
//
// calls_left = calls - spent - reserved; tokens_left = tokens - spent - reserved (INT64_MAX when unlimited);
// both clamped at 0. Negative limits and estimates count as 0; token sums saturate at INT64_MAX.
#include "runtime/config/config.hpp"

#include <cstdint>
#include <string>
#include <unordered_map>

namespace squad {

struct budget_limits {
  std::int64_t calls = 8;      ///< calls per run, P0's reserve included
  std::int64_t tokens = 0;     ///< tokens per run; 0 = unlimited
  std::int64_t p0_reserve = 1; ///< calls only P0 may use
};

class budget_ledger {
public:
  explicit budget_ledger(budget_limits limits);

  /// The answer to reserve(). A refused reservation has id 0.
  struct reservation {
    bool granted = false;
    std::uint64_t id = 0;
    std::string reason;       ///< why refused, or for P0 beyond budget: "P0 runs beyond the budget"
    bool over_budget = false; ///< a P0 call granted past the budget
  };

  /// Takes one call and `tokens` (the estimate) for a call of class `p`, or refuses (see the header comment).
  reservation reserve(priority_class p, std::int64_t tokens);

  /// The call happened and used `actual_tokens` (< 0: unknown, the estimate is recorded). False (and no change)
  /// for an unknown or finished id.
  bool settle(std::uint64_t id, std::int64_t actual_tokens);

  /// The call did not happen; its call and tokens go back. False (and no change) for an unknown or finished id.
  bool cancel(std::uint64_t id);

  /// Counts what the run spent before this ledger existed (a run resumed after a restart): it is not spent twice.
  void spent_before(std::int64_t calls, std::int64_t tokens);

  std::int64_t calls_left() const;  ///< calls - spent - reserved, at least 0
  std::int64_t tokens_left() const; ///< tokens - spent - reserved, at least 0; INT64_MAX when unlimited
  std::int64_t calls_spent() const { return calls_spent_; }
  std::int64_t calls_reserved() const { return static_cast<std::int64_t>(open_.size()); }
  std::int64_t tokens_spent() const { return tokens_spent_; }
  std::int64_t over_budget_calls() const { return over_budget_calls_; } ///< granted past the budget, not cancelled
  const budget_limits& limits() const { return limits_; }

private:
  struct open_reservation {
    std::int64_t tokens = 0; ///< the estimate, held until settled or cancelled
    bool over_budget = false;
  };

  std::int64_t calls_used() const { return calls_spent_ + calls_reserved(); }
  std::int64_t tokens_used() const;
  void release_tokens(std::int64_t estimate);
  bool tokens_fit(std::int64_t estimate) const;

  budget_limits limits_;
  std::unordered_map<std::uint64_t, open_reservation> open_;
  std::uint64_t next_id_ = 1; // 0 stays "no reservation"
  std::int64_t calls_spent_ = 0;
  std::int64_t tokens_spent_ = 0;
  std::int64_t tokens_reserved_ = 0;
  std::int64_t over_budget_calls_ = 0;
};

} // namespace squad
