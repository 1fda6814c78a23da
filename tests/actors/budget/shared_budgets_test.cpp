#include "actors/budget/shared_budgets.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using squad::shared_budgets;
using squad::steady_time;

namespace {
const steady_time t0 = steady_time{} + std::chrono::hours{1000};
using verdict = shared_budgets::verdict;
} // namespace

TEST_CASE("shared_budgets: reservations count at admission, so concurrent calls cannot overshoot", "[budget][shared]") {
  // 2 calls per id: two admitted at once reserve both; a third is refused before either has sent.
  shared_budgets b{2, 3600000ms};
  CHECK(b.admit("run-a", t0, true, false) == verdict::ok);
  CHECK(b.admit("run-a", t0, true, false) == verdict::ok);
  CHECK(b.admit("run-a", t0, true, false) == verdict::spent);
  CHECK_FALSE(b.spent("run-a")); // nothing sent yet
  CHECK(b.spent("run-a", true));
  b.sent("run-a", t0 + 1s, true);
  b.unreserve("run-a"); // the second ended without a send: its reservation comes back
  CHECK(b.admit("run-a", t0 + 2s, true, false) == verdict::ok);
  b.sent("run-a", t0 + 3s, true);
  CHECK(b.spent("run-a"));
  CHECK(b.admit("run-b", t0, true, false) == verdict::ok); // another id has its own budget
}

TEST_CASE("shared_budgets: P0 runs beyond a spent budget", "[budget][shared]") {
  shared_budgets b{1, 3600000ms};
  CHECK(b.admit("x", t0, true, false) == verdict::ok);
  b.sent("x", t0, true);
  CHECK(b.admit("x", t0, true, false) == verdict::spent);
  CHECK(b.admit("x", t0, false, true) == verdict::ok);
}

TEST_CASE("shared_budgets: idle ids are forgotten after the ttl, at most once a minute; the id cap refuses new ids",
          "[budget][shared]") {
  shared_budgets b{1, 10min, 2};
  CHECK(b.admit("a", t0, true, false) == verdict::ok);
  b.sent("a", t0, true);
  CHECK(b.admit("b", t0, true, false) == verdict::ok); // b keeps a reservation: never pruned
  CHECK(b.admit("c", t0, true, false) == verdict::too_many_ids);
  b.prune(t0 + 10min);
  CHECK(b.size() == 1);
  CHECK_FALSE(b.spent("a")); // forgotten: a fresh budget
  b.prune(t0 + 10min + 30s); // within a minute of the last prune: nothing walked
  CHECK(b.size() == 1);
  CHECK(b.admit("c", t0 + 11min, true, false) == verdict::ok);
}
