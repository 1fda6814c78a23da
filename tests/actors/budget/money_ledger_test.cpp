#include "actors/budget/money_ledger.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <vector>

using squad::money_ledger;

TEST_CASE("money_ledger: reserves the worst case and settles at the real cost", "[budget][money]") {
  money_ledger m{0.01};
  std::string why;
  REQUIRE(m.reserve(1, 0.004, why));
  REQUIRE(m.reserve(2, 0.004, why));
  CHECK(m.left() == Approx(0.002));
  CHECK_FALSE(m.reserve(3, 0.004, why)); // 0.008 reserved + 0.004 > 0.01
  CHECK(why == "usd budget: $0.0080 of $0.0100 used or reserved, this call needs up to $0.0040");
  REQUIRE(m.settle(1, 0.001)); // it cost less than its worst case: the rest comes back
  CHECK(m.spent() == Approx(0.001));
  CHECK(m.reserved() == Approx(0.004));
  CHECK(m.reserve(3, 0.004, why));
  CHECK_FALSE(m.settle(1, 0.001)); // already settled: no change
  CHECK(m.spent() == Approx(0.001));
}

TEST_CASE("money_ledger: unknown cost counts the worst case; cancel gives it back", "[budget][money]") {
  money_ledger m{1.0};
  std::string why;
  REQUIRE(m.reserve(7, 0.25, why));
  REQUIRE(m.reserve(8, 0.25, why));
  REQUIRE(m.settle(7, -1));
  CHECK(m.spent() == Approx(0.25));
  REQUIRE(m.cancel(8));
  CHECK(m.reserved() == Approx(0));
  CHECK_FALSE(m.cancel(8));
  CHECK_FALSE(m.reserve(9, 0.76, why)); // 0.25 spent
  CHECK(m.reserve(9, 0.75, why));
}

TEST_CASE("money_ledger: what a resumed run spent counts; no limit admits everything", "[budget][money]") {
  money_ledger m{0.02};
  m.spent_before(0.015);
  std::string why;
  CHECK_FALSE(m.reserve(1, 0.006, why));
  CHECK(m.reserve(1, 0.005, why));
  money_ledger free{0};
  CHECK_FALSE(free.limited());
  CHECK(free.reserve(1, 1e6, why));
  CHECK(free.left() > 1e300);
}

TEST_CASE("money_ledger: racing reservations never overspend (1000 interleavings)", "[budget][money][race]") {
  std::mt19937 rng{42};
  for (int round = 0; round < 1000; ++round) {
    money_ledger m{0.01};
    std::vector<std::uint64_t> open;
    std::uint64_t next = 1;
    std::string why;
    for (int op = 0; op < 60; ++op) {
      if (open.empty() || rng() % 3 != 0) {
        double worst = 0.0005 + (rng() % 40) * 0.0001;
        if (m.reserve(next, worst, why))
          open.push_back(next);
        ++next;
      } else {
        auto i = rng() % open.size();
        double worst_seen = 0.0005; // settle at most the smallest possible worst case: never above the reservation
        m.settle(open[i], rng() % 2 ? worst_seen : -1);
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
      }
      REQUIRE(m.spent() + m.reserved() <= 0.01 * (1 + 1e-9));
    }
  }
}
