// Money budgets as pure logic: reservations count until they settle, so concurrent calls cannot pass the budget
// together; a refusal names the budget and when it resets; days and months roll over at UTC midnight.
#include "runtime/server/spend_limits.hpp"

#include <catch2/catch.hpp>

using namespace squad::server;

namespace {
constexpr std::int64_t dec3 = 1796256000; // 2026-12-03T00:00:00Z
}

TEST_CASE("spend limits: what is reserved counts until it settles, at its real cost") {
  spend_limits s{0.02, 0};
  REQUIRE(s.limited());
  CHECK(s.reserve(0.008, dec3 + 10).ok);
  CHECK(s.reserve(0.008, dec3 + 10).ok);
  auto no = s.reserve(0.008, dec3 + 10); // 0.024 with the two in flight
  CHECK_FALSE(no.ok);
  CHECK(no.retry_after_s == 86400 - 10);
  CHECK(no.why.find("daily budget of $0.0200") != std::string::npos);
  s.settle(0.008, 0.001, dec3 + 11); // it cost far less than its worst case
  CHECK(s.spent_today() == Approx(0.001));
  CHECK(s.reserved() == Approx(0.008));
  CHECK(s.reserve(0.008, dec3 + 12).ok); // 0.001 + 0.008 + 0.008 <= 0.02
  CHECK_FALSE(s.reserve(0.004, dec3 + 12).ok);
}

TEST_CASE("spend limits: a new UTC day starts from nothing spent; a month budget resets on the 1st") {
  spend_limits s{0.01, 0.015};
  REQUIRE(s.reserve(0.01, dec3).ok);
  s.settle(0.01, 0.01, dec3 + 5);
  CHECK_FALSE(s.reserve(0.001, dec3 + 6).ok);
  REQUIRE(s.reserve(0.005, dec3 + 86400).ok); // the 4th: the day is new, the month is not
  s.settle(0.005, 0.005, dec3 + 86401);
  auto month = s.reserve(0.001, dec3 + 86402);
  CHECK_FALSE(month.ok);
  CHECK(month.why.rfind("monthly", 0) == 0);
  CHECK(month.retry_after_s == 28 * 86400 - 2); // 2027-01-01T00:00:00Z
  CHECK(seconds_to_next_month(dec3) == 29 * 86400);
  s.restore(0, 0, dec3 + 29 * 86400); // January
  CHECK(s.reserve(0.01, dec3 + 29 * 86400).ok);
  CHECK_FALSE(spend_limits(0, 0).limited());
}
