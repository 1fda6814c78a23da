#pragma once
// A key's money budgets (server.keys.<k>.daily_usd, monthly_usd) as pure logic over unix time: a call reserves
// its worst case before it goes and settles at its real cost after, so concurrent calls can never spend past the
// budget together (what is reserved counts as spent until it settles). A refusal says when the budget that
// refused resets: the next UTC midnight, or the first of the next month (UTC). Not thread-safe (the gateway's key
// table holds a lock).
#include <cstdint>
#include <string>

namespace squad::server {

struct spend_verdict {
  bool ok = true;
  std::int64_t retry_after_s = 0; ///< refused: seconds until the budget that refused resets
  std::string why;
};

class spend_limits {
public:
  spend_limits(double daily_usd, double monthly_usd) : daily_(daily_usd), monthly_(monthly_usd) {}

  bool limited() const { return daily_ > 0 || monthly_ > 0; }
  /// What the store says was spent today and this month (a restart), at `unix_s`.
  void restore(double today, double this_month, std::int64_t unix_s);
  /// Reserves `worst` USD at `unix_s`, or says which budget it would pass.
  spend_verdict reserve(double worst, std::int64_t unix_s);
  /// A reserved call ended, costing `actual` USD.
  void settle(double worst, double actual, std::int64_t unix_s);

  double spent_today() const { return day_spent_; }
  double spent_this_month() const { return month_spent_; }
  double reserved() const { return reserved_; }

private:
  void roll(std::int64_t unix_s); // a new day or month starts from nothing spent
  double daily_, monthly_;
  double day_spent_ = 0, month_spent_ = 0, reserved_ = 0;
  std::int64_t day_ = -1, month_ = -1;
};

/// Days since the epoch, and months since year 0 (UTC), of `unix_s`; seconds to the next midnight / month.
std::int64_t utc_day(std::int64_t unix_s);
std::int64_t utc_month(std::int64_t unix_s);
std::int64_t seconds_to_next_month(std::int64_t unix_s);

} // namespace squad::server
