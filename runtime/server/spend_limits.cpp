#include "runtime/server/spend_limits.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace squad::server {

std::int64_t utc_day(std::int64_t unix_s) {
  return unix_s / 86400;
}

std::int64_t utc_month(std::int64_t unix_s) {
  auto t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

std::int64_t seconds_to_next_month(std::int64_t unix_s) {
  auto t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::tm next{};
  next.tm_year = tm.tm_mon == 11 ? tm.tm_year + 1 : tm.tm_year;
  next.tm_mon = (tm.tm_mon + 1) % 12;
  next.tm_mday = 1;
  return static_cast<std::int64_t>(timegm(&next)) - unix_s;
}

void spend_limits::roll(std::int64_t unix_s) {
  if (auto d = utc_day(unix_s); d != day_) {
    day_ = d;
    day_spent_ = 0;
  }
  if (auto m = utc_month(unix_s); m != month_) {
    month_ = m;
    month_spent_ = 0;
  }
}

void spend_limits::restore(double today, double this_month, std::int64_t unix_s) {
  roll(unix_s);
  day_spent_ = today;
  month_spent_ = this_month;
}

namespace {
std::string usd(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.4f", v);
  return buf;
}
} // namespace

spend_verdict spend_limits::reserve(double worst, std::int64_t unix_s) {
  roll(unix_s);
  spend_verdict v;
  if (daily_ > 0 && day_spent_ + reserved_ + worst > daily_) {
    v.ok = false;
    v.retry_after_s = std::max<std::int64_t>(1, 86400 - unix_s % 86400);
    v.why = "daily budget of " + usd(daily_) + " reached: " + usd(day_spent_) + " spent, " + usd(reserved_) +
            " reserved by calls in flight, this call may cost up to " + usd(worst) + "; it resets at 00:00 UTC";
  } else if (monthly_ > 0 && month_spent_ + reserved_ + worst > monthly_) {
    v.ok = false;
    v.retry_after_s = std::max<std::int64_t>(1, seconds_to_next_month(unix_s));
    v.why = "monthly budget of " + usd(monthly_) + " reached: " + usd(month_spent_) + " spent, " + usd(reserved_) +
            " reserved by calls in flight, this call may cost up to " + usd(worst) +
            "; it resets on the 1st at 00:00 UTC";
  } else {
    reserved_ += worst;
  }
  return v;
}

void spend_limits::settle(double worst, double actual, std::int64_t unix_s) {
  roll(unix_s);
  reserved_ = std::max(0.0, reserved_ - worst);
  day_spent_ += actual;
  month_spent_ += actual;
}

} // namespace squad::server
