#pragma once
// A run's USD budget, as pure logic (no clock, no actor). Reserve the worst case, then settle at the real cost:
//
//   reserve(worst)   takes `worst` USD (what the call could cost at most: its prompt estimate and max_tokens at the
//                    dearest price it may be routed to) from what is left, or refuses when it does not fit
//   settle(id, usd)  the call cost `usd` (< 0: unknown, the worst case is recorded as spent)
//   cancel(id)       the call did not happen: the reservation comes back
//
// A money budget is a hard cap for every priority class (P0 included): reserved + spent never exceed it, so
// concurrent calls cannot overspend it together. A limit of 0 means no money limit (everything fits).
// Ids are the caller's (the call ledger's reservation ids); an unknown or finished id changes nothing.
#include <cstdint>
#include <string>
#include <unordered_map>

namespace squad {

class money_ledger {
public:
  explicit money_ledger(double limit_usd) : limit_(limit_usd > 0 ? limit_usd : 0) {}

  bool limited() const { return limit_ > 0; }
  /// Reserves `worst` USD under `id`; false with `why` ("usd budget: $0.0090 of $0.0100 used or reserved, this
  /// call needs up to $0.0030") when it does not fit.
  bool reserve(std::uint64_t id, double worst, std::string& why);
  bool settle(std::uint64_t id, double actual_usd);
  bool cancel(std::uint64_t id);
  /// What the run spent before this ledger existed (a resumed run).
  void spent_before(double usd);

  double limit() const { return limit_; }
  double spent() const { return spent_; }
  double reserved() const { return reserved_; }
  double left() const; ///< limit - spent - reserved, at least 0 (infinity when not limited)

private:
  double limit_;
  double spent_ = 0, reserved_ = 0;
  std::unordered_map<std::uint64_t, double> open_;
};

/// "$0.0123": USD with four decimals (budgets are small).
std::string usd_text(double usd);

} // namespace squad
