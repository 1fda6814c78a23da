#include "actors/budget/budget_ledger.hpp"

#include <algorithm>
#include <limits>

namespace squad {

namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

// Token counts come from callers and providers; an absurd count saturates rather than wrapping the ledger.
std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  return b > int64_max - a ? int64_max : a + b;
}

budget_limits normalized(budget_limits l) {
  l.calls = std::max<std::int64_t>(l.calls, 0);
  l.tokens = std::max<std::int64_t>(l.tokens, 0);
  l.p0_reserve = std::max<std::int64_t>(l.p0_reserve, 0);
  return l;
}

} // namespace

budget_ledger::budget_ledger(budget_limits limits) : limits_(normalized(limits)) {}

void budget_ledger::spent_before(std::int64_t calls, std::int64_t tokens) {
  calls_spent_ += std::max<std::int64_t>(calls, 0);
  tokens_spent_ = saturating_add(tokens_spent_, std::max<std::int64_t>(tokens, 0));
}

std::int64_t budget_ledger::calls_left() const {
  return std::max<std::int64_t>(limits_.calls - calls_used(), 0);
}

std::int64_t budget_ledger::tokens_left() const {
  if (limits_.tokens == 0)
    return int64_max;
  return std::max<std::int64_t>(limits_.tokens - tokens_used(), 0);
}

std::int64_t budget_ledger::tokens_used() const {
  return saturating_add(tokens_spent_, tokens_reserved_);
}

void budget_ledger::release_tokens(std::int64_t estimate) {
  // Only below 0 after a saturated sum; the ledger then errs towards "spent".
  tokens_reserved_ = std::max<std::int64_t>(tokens_reserved_ - estimate, 0);
}

bool budget_ledger::tokens_fit(std::int64_t estimate) const {
  if (limits_.tokens == 0)
    return true;
  // Written as a subtraction so a huge estimate cannot overflow the sum.
  return tokens_used() <= limits_.tokens && estimate <= limits_.tokens - tokens_used();
}

budget_ledger::reservation budget_ledger::reserve(priority_class p, std::int64_t tokens) {
  const std::int64_t estimate = std::max<std::int64_t>(tokens, 0);
  reservation r;
  const bool call_fits = calls_left() >= 1;
  if (p == priority_class::p0) {
    r.over_budget = !(call_fits && tokens_fit(estimate));
    if (r.over_budget) {
      r.reason = "P0 runs beyond the budget";
      ++over_budget_calls_;
    }
  } else if (!call_fits) {
    r.reason = "budget spent: " + std::to_string(calls_used()) + " of " + std::to_string(limits_.calls) +
               " calls used or reserved";
    return r;
  } else if (calls_left() - 1 < limits_.p0_reserve) {
    r.reason = "budget: " + std::to_string(limits_.p0_reserve) + (limits_.p0_reserve == 1 ? " call" : " calls") +
               " kept for P0";
    return r;
  } else if (!tokens_fit(estimate)) {
    r.reason = "token budget: " + std::to_string(tokens_used()) + " of " + std::to_string(limits_.tokens) +
               " tokens used or reserved, this call needs " + std::to_string(estimate);
    return r;
  }
  r.granted = true;
  r.id = next_id_++;
  open_.emplace(r.id, open_reservation{estimate, r.over_budget});
  tokens_reserved_ = saturating_add(tokens_reserved_, estimate);
  return r;
}

bool budget_ledger::settle(std::uint64_t id, std::int64_t actual_tokens) {
  auto it = open_.find(id);
  if (it == open_.end())
    return false;
  release_tokens(it->second.tokens);
  tokens_spent_ = saturating_add(tokens_spent_, actual_tokens < 0 ? it->second.tokens : actual_tokens);
  ++calls_spent_;
  open_.erase(it);
  return true;
}

bool budget_ledger::cancel(std::uint64_t id) {
  auto it = open_.find(id);
  if (it == open_.end())
    return false;
  release_tokens(it->second.tokens);
  if (it->second.over_budget)
    --over_budget_calls_;
  open_.erase(it);
  return true;
}

} // namespace squad
