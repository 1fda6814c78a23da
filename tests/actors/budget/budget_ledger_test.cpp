#include "actors/budget/budget_ledger.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

using squad::budget_ledger;
using squad::budget_limits;
using squad::priority_class;

namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
constexpr auto p0 = priority_class::p0;
constexpr auto p1 = priority_class::p1;
constexpr auto p2 = priority_class::p2;
constexpr auto p3 = priority_class::p3;

budget_limits limits(std::int64_t calls, std::int64_t tokens, std::int64_t p0_reserve) {
  budget_limits l;
  l.calls = calls;
  l.tokens = tokens;
  l.p0_reserve = p0_reserve;
  return l;
}

// Everything the ledger reports, so "changes nothing" is one comparison.
struct snapshot {
  std::int64_t calls_left, tokens_left, calls_spent, calls_reserved, tokens_spent, over_budget_calls;
  bool operator==(const snapshot& o) const {
    return calls_left == o.calls_left && tokens_left == o.tokens_left && calls_spent == o.calls_spent &&
           calls_reserved == o.calls_reserved && tokens_spent == o.tokens_spent &&
           over_budget_calls == o.over_budget_calls;
  }
};

std::ostream& operator<<(std::ostream& os, const snapshot& s) {
  return os << "{left " << s.calls_left << " calls/" << s.tokens_left << " tokens, spent " << s.calls_spent << " calls/"
            << s.tokens_spent << " tokens, reserved " << s.calls_reserved << ", over budget " << s.over_budget_calls
            << "}";
}

snapshot snap(const budget_ledger& b) {
  return {b.calls_left(),     b.tokens_left(),  b.calls_spent(),
          b.calls_reserved(), b.tokens_spent(), b.over_budget_calls()};
}

// Random numbers from mt19937's standardised sequence (distributions differ between standard libraries).
struct dice {
  std::mt19937 rng;
  explicit dice(std::uint32_t seed) : rng(seed) {}
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(rng() % static_cast<std::uint32_t>(n)); }
  bool chance(std::int64_t percent) { return below(100) < percent; }
  priority_class any_class() { return static_cast<priority_class>(below(4)); }
};

} // namespace

TEST_CASE("budget_ledger: a fresh ledger has the whole budget", "[budget]") {
  // Defaults are 8 calls, unlimited tokens, 1 call kept for P0; nothing is spent or reserved yet.
  budget_limits d;
  CHECK(d.calls == 8);
  CHECK(d.tokens == 0);
  CHECK(d.p0_reserve == 1);

  budget_ledger b{d};
  CHECK(snap(b) == snapshot{8, int64_max, 0, 0, 0, 0});
  CHECK(b.limits().calls == 8);

  budget_ledger t{limits(3, 1000, 1)};
  CHECK(snap(t) == snapshot{3, 1000, 0, 0, 0, 0});
}

TEST_CASE("budget_ledger: negative limits count as 0", "[budget]") {
  // A negative call limit is an empty budget, a negative token limit is "unlimited", a negative reserve is none.
  budget_ledger b{limits(-3, -5, -1)};
  CHECK(b.limits().calls == 0);
  CHECK(b.limits().tokens == 0);
  CHECK(b.limits().p0_reserve == 0);
  CHECK(b.calls_left() == 0);
  CHECK(b.tokens_left() == int64_max);
  auto r = b.reserve(p1, 10);
  CHECK_FALSE(r.granted);
  CHECK(r.reason == "budget spent: 0 of 0 calls used or reserved");
  CHECK(b.reserve(p0, 10).over_budget);
}

namespace {

struct step {
  priority_class p;
  std::int64_t tokens;
  bool granted;
  bool over_budget;
  std::string reason;
};

struct ledger_case {
  std::string name;
  budget_limits limits;
  std::vector<step> steps;
};

const std::string kept1 = "budget: 1 call kept for P0";
const std::string beyond = "P0 runs beyond the budget";

// Shorthands for the table: granted within budget, refused with a reason, P0 granted beyond the budget.
step ok(priority_class p, std::int64_t tokens = 0) {
  return {p, tokens, true, false, ""};
}
step no(priority_class p, std::int64_t tokens, std::string reason) {
  return {p, tokens, false, false, std::move(reason)};
}
step over(std::int64_t tokens = 0) {
  return {p0, tokens, true, true, beyond};
}

} // namespace

TEST_CASE("budget_ledger: who is granted, by limits and class (table)", "[budget]") {
  // Each row is a run: reserves in order (nothing settled or cancelled) and the answer each must get.
  const std::vector<ledger_case> cases = {
      {"defaults: 7 for anyone, the 8th for P0 only, then P0 beyond",
       budget_limits{},
       {ok(p1), ok(p2), ok(p3), ok(p1), ok(p2), ok(p3), ok(p1), no(p2, 0, kept1), no(p1, 0, kept1), ok(p0),
        no(p1, 0, "budget spent: 8 of 8 calls used or reserved"), over(),
        no(p3, 0, "budget spent: 9 of 8 calls used or reserved"), over()}},
      {"P0 may use the whole budget, reserve included",
       budget_limits{},
       {ok(p0), ok(p0), ok(p0), ok(p0), ok(p0), ok(p0), ok(p0), ok(p0), over(),
        no(p1, 0, "budget spent: 9 of 8 calls used or reserved")}},
      {"P0 using calls shrinks what the others get",
       limits(4, 0, 1),
       {ok(p0), ok(p0), ok(p2), no(p2, 0, kept1), ok(p0), over()}},
      {"no reserve: every call for anyone",
       limits(4, 0, 0),
       {ok(p3), ok(p3), ok(p3), ok(p3), no(p3, 0, "budget spent: 4 of 4 calls used or reserved"), over()}},
      {"reserve of 2 is named in plural",
       limits(4, 0, 2),
       {ok(p1), ok(p2), no(p3, 0, "budget: 2 calls kept for P0"), ok(p0), ok(p0), over()}},
      {"reserve equal to the budget: only P0",
       limits(2, 0, 2),
       {no(p1, 0, "budget: 2 calls kept for P0"), ok(p0), ok(p0), over(),
        no(p1, 0, "budget spent: 3 of 2 calls used or reserved")}},
      {"reserve above the budget: only P0",
       limits(1, 0, 5),
       {no(p3, 0, "budget: 5 calls kept for P0"), ok(p0), over()}},
      {"empty budget: P0 only, beyond it",
       limits(0, 0, 1),
       {no(p1, 0, "budget spent: 0 of 0 calls used or reserved"), over(), over()}},
      {"tokens: an estimate that does not fit is refused, a smaller one that fits exactly is not",
       limits(8, 1000, 1),
       {ok(p1, 400), ok(p2, 500), no(p3, 300, "token budget: 900 of 1000 tokens used or reserved, this call needs 300"),
        ok(p3, 100), ok(p1, 0), no(p1, 1, "token budget: 1000 of 1000 tokens used or reserved, this call needs 1"),
        over(1), over(0)}},
      {"tokens: an estimate above the whole limit",
       limits(8, 1000, 1),
       {no(p2, 1001, "token budget: 0 of 1000 tokens used or reserved, this call needs 1001"), ok(p2, 1000)}},
      {"tokens: P0 over the token limit runs beyond the budget, and its estimate counts",
       limits(8, 100, 1),
       {over(500), no(p1, 0, "token budget: 500 of 100 tokens used or reserved, this call needs 0"), over(0)}},
      {"calls are checked before the reserve, the reserve before tokens",
       limits(3, 100, 1),
       {ok(p1, 100), no(p1, 1, "token budget: 100 of 100 tokens used or reserved, this call needs 1"), ok(p2, 0),
        no(p2, 1, kept1), ok(p0, 0), no(p3, 1, "budget spent: 3 of 3 calls used or reserved")}},
      {"negative estimates count as 0",
       limits(8, 10, 1),
       {ok(p1, -50), ok(p1, 10), no(p1, 1, "token budget: 10 of 10 tokens used or reserved, this call needs 1")}},
  };

  for (const auto& c : cases) {
    INFO("case: " << c.name);
    budget_ledger b{c.limits};
    std::set<std::uint64_t> ids;
    std::int64_t granted = 0, over_budget = 0;
    for (std::size_t i = 0; i < c.steps.size(); ++i) {
      const auto& s = c.steps[i];
      INFO("step " << i << ": " << squad::to_string(s.p) << " estimating " << s.tokens);
      auto r = b.reserve(s.p, s.tokens);
      CHECK(r.granted == s.granted);
      CHECK(r.over_budget == s.over_budget);
      CHECK(r.reason == s.reason);
      if (r.granted) {
        CHECK(r.id != 0);
        CHECK(ids.insert(r.id).second);
        ++granted;
        over_budget += r.over_budget ? 1 : 0;
      } else {
        CHECK(r.id == 0);
      }
      CHECK(b.calls_reserved() == granted);
      CHECK(b.over_budget_calls() == over_budget);
      CHECK(b.calls_left() == std::max<std::int64_t>(b.limits().calls - granted, 0));
      CHECK(b.calls_spent() == 0);
    }
  }
}

TEST_CASE("budget_ledger: settle records the actual tokens, more or less than estimated", "[budget]") {
  // The estimate is held while reserved; settling swaps it for the actual count, and "left" never goes negative.
  budget_ledger b{limits(8, 1000, 1)};

  auto more = b.reserve(p1, 300);
  REQUIRE(more.granted);
  CHECK(snap(b) == snapshot{7, 700, 0, 1, 0, 0});
  CHECK(b.settle(more.id, 500));
  CHECK(snap(b) == snapshot{7, 500, 1, 0, 500, 0});

  auto less = b.reserve(p2, 300);
  REQUIRE(less.granted);
  CHECK(b.tokens_left() == 200);
  CHECK(b.settle(less.id, 100));
  CHECK(snap(b) == snapshot{6, 400, 2, 0, 600, 0});

  // A call that fit by its estimate but blew past the limit when it ran.
  auto past = b.reserve(p3, 400);
  REQUIRE(past.granted);
  CHECK(b.tokens_left() == 0);
  CHECK(b.settle(past.id, 900));
  CHECK(snap(b) == snapshot{5, 0, 3, 0, 1500, 0});
  CHECK(b.over_budget_calls() == 0); // the reservation was within budget; only P0 grants are "over budget"

  auto refused = b.reserve(p1, 0);
  CHECK_FALSE(refused.granted);
  CHECK(refused.reason == "token budget: 1500 of 1000 tokens used or reserved, this call needs 0");
  auto urgent = b.reserve(p0, 10);
  CHECK(urgent.granted);
  CHECK(urgent.over_budget);

  // A negative actual count means "unknown": the estimate is recorded as spent. 0 is a real count.
  budget_ledger n{limits(8, 1000, 1)};
  auto unknown = n.reserve(p1, 50);
  CHECK(n.settle(unknown.id, -7));
  CHECK(snap(n) == snapshot{7, 950, 1, 0, 50, 0});
  auto nothing = n.reserve(p1, 50);
  CHECK(n.settle(nothing.id, 0));
  CHECK(snap(n) == snapshot{6, 950, 2, 0, 50, 0});
}

TEST_CASE("budget_ledger: settled calls stay spent while open reservations share the budget", "[budget]") {
  // Spending and reserving draw from the same budget: settled calls keep their slot, reserved ones hold theirs.
  budget_ledger b{limits(3, 0, 1)};
  auto a = b.reserve(p1, 0);
  auto c = b.reserve(p2, 0);
  REQUIRE(a.granted);
  REQUIRE(c.granted);
  CHECK(b.settle(a.id, 0));
  CHECK(b.calls_spent() == 1);
  CHECK(b.calls_reserved() == 1);
  CHECK(b.calls_left() == 1);
  CHECK(b.reserve(p3, 0).reason == kept1);
  CHECK(b.settle(c.id, 0));
  CHECK(b.calls_left() == 1);
  CHECK(b.reserve(p3, 0).reason == kept1);
  CHECK_FALSE(b.reserve(p0, 0).over_budget);
  CHECK(snap(b) == snapshot{0, int64_max, 2, 1, 0, 0});
}

TEST_CASE("budget_ledger: cancel gives the call and its tokens back", "[budget]") {
  // A cancelled reservation did not happen: the ledger is as if it had never been made.
  budget_ledger b{limits(2, 1000, 1)};
  const auto before = snap(b);
  auto r = b.reserve(p2, 200);
  REQUIRE(r.granted);
  CHECK(snap(b) == snapshot{1, 800, 0, 1, 0, 0});
  CHECK(b.cancel(r.id));
  CHECK(snap(b) == before);

  // A refused caller gets in once a holder cancels.
  auto x = b.reserve(p1, 100);
  auto y = b.reserve(p1, 100);
  REQUIRE(x.granted);
  CHECK(y.reason == kept1);
  CHECK(b.cancel(x.id));
  CHECK(b.reserve(p1, 100).granted);

  // Cancelling a P0 reservation frees the reserve for P0 again, not for the others.
  budget_ledger c{limits(2, 0, 1)};
  auto first = c.reserve(p1, 0);
  auto urgent = c.reserve(p0, 0);
  REQUIRE(first.granted);
  REQUIRE(urgent.granted);
  CHECK_FALSE(urgent.over_budget);
  CHECK(c.cancel(urgent.id));
  CHECK(c.reserve(p1, 0).reason == kept1);
  CHECK_FALSE(c.reserve(p0, 0).over_budget);
}

TEST_CASE("budget_ledger: settling or cancelling twice, or an unknown id, changes nothing", "[budget]") {
  // Only an open reservation can be finished, and only once.
  budget_ledger b{limits(8, 1000, 1)};
  auto settled = b.reserve(p1, 100);
  auto cancelled = b.reserve(p2, 100);
  auto open = b.reserve(p3, 100);
  REQUIRE(settled.granted);
  REQUIRE(cancelled.granted);
  REQUIRE(open.granted);
  CHECK(b.settle(settled.id, 120));
  CHECK(b.cancel(cancelled.id));
  const auto after = snap(b);
  CHECK(after == snapshot{6, 780, 1, 1, 120, 0});

  CHECK_FALSE(b.settle(settled.id, 500));
  CHECK_FALSE(b.cancel(settled.id));
  CHECK_FALSE(b.cancel(cancelled.id));
  CHECK_FALSE(b.settle(cancelled.id, 500));
  CHECK_FALSE(b.settle(0, 1));
  CHECK_FALSE(b.cancel(0));
  CHECK_FALSE(b.settle(open.id + 1000, 1));
  CHECK_FALSE(b.cancel(open.id + 1000));
  CHECK(snap(b) == after);

  // A refused reservation's id (0) cannot be settled either.
  budget_ledger tiny{limits(1, 0, 1)};
  auto refused = tiny.reserve(p1, 0);
  REQUIRE_FALSE(refused.granted);
  CHECK_FALSE(tiny.settle(refused.id, 0));
  CHECK_FALSE(tiny.cancel(refused.id));
  CHECK(snap(tiny) == snapshot{1, int64_max, 0, 0, 0, 0});

  // The open one is still finishable.
  CHECK(b.settle(open.id, 80));
  CHECK(snap(b) == snapshot{6, 800, 2, 0, 200, 0});
}

TEST_CASE("budget_ledger: P0 beyond the budget runs, is counted, and spends", "[budget]") {
  // Past the budget P0 still runs; its calls are counted as over budget and as spent, and left stays at 0.
  budget_ledger b{limits(2, 0, 1)};
  REQUIRE(b.reserve(p1, 0).granted);
  auto within = b.reserve(p0, 0);
  CHECK(within.granted);
  CHECK_FALSE(within.over_budget);
  CHECK(within.reason.empty());

  std::vector<std::uint64_t> beyond_ids;
  for (int i = 0; i < 3; ++i) {
    auto r = b.reserve(p0, 0);
    CHECK(r.granted);
    CHECK(r.over_budget);
    CHECK(r.reason == beyond);
    beyond_ids.push_back(r.id);
  }
  CHECK(b.over_budget_calls() == 3);
  CHECK(b.calls_reserved() == 5);
  CHECK(b.calls_left() == 0);

  CHECK(b.settle(beyond_ids[0], 10));
  CHECK(b.settle(beyond_ids[1], 10));
  CHECK(b.over_budget_calls() == 3); // settling keeps the count: the calls happened
  CHECK(b.calls_spent() == 2);
  CHECK(b.cancel(beyond_ids[2]));
  CHECK(b.over_budget_calls() == 2); // cancelling drops it: that call did not happen
  CHECK(b.calls_left() == 0);
  CHECK(b.reserve(p1, 0).reason == "budget spent: 4 of 2 calls used or reserved");

  // Cancelling within-budget calls does not reopen the budget while over-budget calls still use it.
  CHECK(b.cancel(within.id));
  CHECK(b.calls_left() == 0);
  CHECK(b.reserve(p0, 0).over_budget);
}

TEST_CASE("budget_ledger: huge token counts saturate instead of wrapping", "[budget]") {
  // A provider reporting absurd usage must not turn the ledger negative or overflow.
  budget_ledger b{limits(8, 1000, 1)};
  auto huge = b.reserve(p0, int64_max);
  CHECK(huge.over_budget);
  CHECK(b.tokens_left() == 0);
  auto huge2 = b.reserve(p0, int64_max);
  CHECK(b.tokens_left() == 0);
  CHECK(b.cancel(huge.id));
  CHECK(b.cancel(huge2.id));
  CHECK(b.tokens_left() == 1000);
  CHECK(b.over_budget_calls() == 0);
  CHECK_FALSE(b.reserve(p1, int64_max).granted);

  auto r1 = b.reserve(p1, 10);
  auto r2 = b.reserve(p1, 10);
  CHECK(b.settle(r1.id, int64_max));
  CHECK(b.settle(r2.id, int64_max));
  CHECK(b.tokens_spent() == int64_max);
  CHECK(b.tokens_left() == 0);

  budget_ledger unlimited{limits(8, 0, 1)};
  CHECK(unlimited.reserve(p1, int64_max).granted);
  CHECK(unlimited.reserve(p1, int64_max).granted);
  CHECK(unlimited.tokens_left() == int64_max);
}

namespace {

// One simulated caller: asks for a call, then (if granted) later settles or cancels it.
struct caller {
  enum { idle, holding } state = idle;
  priority_class p = p0;
  std::uint64_t id = 0;
  std::int64_t estimate = 0;
  bool over_budget = false;
};

// What the test itself knows was granted and not cancelled, to hold the ledger to.
struct model {
  std::int64_t live_calls = 0;    // granted and not cancelled (held or settled)
  std::int64_t live_non_p0 = 0;   // of which P1..P3
  std::int64_t live_over = 0;     // of which P0 beyond the budget
  std::int64_t held_calls = 0;    // granted, not yet settled or cancelled
  std::int64_t held_tokens = 0;   // their estimates
  std::int64_t spent_tokens = 0;  // actuals of settled calls
  std::int64_t non_p0_grants = 0; // every non-P0 grant, cancelled ones included
};

} // namespace

TEST_CASE("budget_ledger: racing callers never get more than the budget (1000 interleavings)", "[budget][race]") {
  // Random limits and 1000 seeded interleavings of reserve/settle/cancel from up to 24 concurrent callers: after
  // every step non-P0 calls stay within calls - p0_reserve, calls within the budget stay within `calls`, and a
  // non-P0 call is refused only when it would not have fit.
  dice top{20240917};
  std::int64_t total_refused = 0, total_over = 0, total_cancelled = 0;
  for (int run = 0; run < 1000; ++run) {
    const auto seed = static_cast<std::uint32_t>(top.rng());
    dice d{seed};
    budget_limits l; // drawn one by one: argument evaluation order is unspecified
    l.calls = d.below(13);
    l.tokens = d.chance(50) ? 0 : 50 + d.below(2000);
    l.p0_reserve = d.below(4);
    const std::int64_t cap_non_p0 = std::max<std::int64_t>(l.calls - l.p0_reserve, 0);
    budget_ledger b{l};
    std::vector<caller> callers(static_cast<std::size_t>(2 + d.below(23)));
    model m;
    std::set<std::uint64_t> ids;

    for (int s = 0; s < 300; ++s) {
      INFO("run " << run << " (seed " << seed << ", calls " << l.calls << ", tokens " << l.tokens << ", reserve "
                  << l.p0_reserve << ") step " << s);
      auto& c = callers[static_cast<std::size_t>(d.below(static_cast<std::int64_t>(callers.size())))];
      if (c.state == caller::idle) {
        c.p = d.chance(15) ? p0 : static_cast<priority_class>(1 + d.below(3));
        c.estimate = d.below(400);
        const std::int64_t calls_left_before = std::max<std::int64_t>(l.calls - m.live_calls, 0);
        const std::int64_t tokens_used_before = m.spent_tokens + m.held_tokens;
        const bool tokens_fit = l.tokens == 0 || tokens_used_before + c.estimate <= l.tokens;
        auto r = b.reserve(c.p, c.estimate);
        if (c.p == p0) {
          REQUIRE(r.granted);
          REQUIRE(r.over_budget == !(calls_left_before >= 1 && tokens_fit));
        } else {
          // Exactly the budget: granted if and only if it fits.
          REQUIRE(r.granted == (calls_left_before - 1 >= l.p0_reserve && tokens_fit));
          REQUIRE_FALSE(r.over_budget);
          if (!r.granted) {
            REQUIRE_FALSE(r.reason.empty());
            ++total_refused;
          }
        }
        if (r.granted) {
          REQUIRE(ids.insert(r.id).second);
          c.state = caller::holding;
          c.id = r.id;
          c.over_budget = r.over_budget;
          ++m.live_calls;
          ++m.held_calls;
          m.held_tokens += c.estimate;
          if (c.p != p0) {
            ++m.live_non_p0;
            ++m.non_p0_grants;
          }
          if (r.over_budget) {
            ++m.live_over;
            ++total_over;
          }
        }
      } else if (d.chance(70)) {
        const std::int64_t actual = d.below(600);
        REQUIRE(b.settle(c.id, actual));
        REQUIRE_FALSE(b.settle(c.id, actual));
        --m.held_calls;
        m.held_tokens -= c.estimate;
        m.spent_tokens += actual;
        c.state = caller::idle;
      } else {
        REQUIRE(b.cancel(c.id));
        REQUIRE_FALSE(b.cancel(c.id));
        --m.live_calls;
        --m.held_calls;
        m.held_tokens -= c.estimate;
        if (c.p != p0)
          --m.live_non_p0;
        if (c.over_budget)
          --m.live_over;
        c.state = caller::idle;
        ++total_cancelled;
      }

      REQUIRE(m.live_non_p0 <= cap_non_p0);
      REQUIRE(m.live_calls - m.live_over <= l.calls);
      REQUIRE(b.calls_spent() + b.calls_reserved() == m.live_calls);
      REQUIRE(b.calls_reserved() == m.held_calls);
      REQUIRE(b.over_budget_calls() == m.live_over);
      REQUIRE(b.tokens_spent() == m.spent_tokens);
      REQUIRE(b.calls_left() == std::max<std::int64_t>(l.calls - m.live_calls, 0));
      REQUIRE(b.tokens_left() ==
              (l.tokens == 0 ? int64_max : std::max<std::int64_t>(l.tokens - m.spent_tokens - m.held_tokens, 0)));
    }
  }
  // The runs exercised every path, not just the easy one.
  CHECK(total_refused > 1000);
  CHECK(total_over > 100);
  CHECK(total_cancelled > 1000);
}

TEST_CASE("budget_ledger: exactly the budget is granted when more callers race for the last calls", "[budget][race]") {
  // N > budget requests arrive in a random order, interleaved with settles of those already granted: exactly the
  // calls left outside the P0 reserve go to P1..P3, exactly the reserve to P0, and the other P0s run beyond it.
  dice top{7};
  for (int run = 0; run < 200; ++run) {
    const auto seed = static_cast<std::uint32_t>(top.rng());
    INFO("run " << run << " (seed " << seed << ")");
    dice d{seed};
    budget_ledger b{limits(8, 0, 1)};
    for (int i = 0; i < 3; ++i) { // three calls already done
      auto r = b.reserve(p1, 0);
      REQUIRE(b.settle(r.id, 50));
    }

    std::vector<priority_class> wave(40);
    for (auto& p : wave)
      p = static_cast<priority_class>(1 + d.below(3));
    std::shuffle(wave.begin(), wave.end(), d.rng);
    std::vector<std::uint64_t> held;
    std::int64_t granted = 0;
    for (auto p : wave) {
      auto r = b.reserve(p, 0);
      if (r.granted) {
        ++granted;
        held.push_back(r.id);
      } else {
        REQUIRE(r.reason == (b.calls_left() == 0 ? "budget spent: 8 of 8 calls used or reserved" : kept1));
      }
      if (!held.empty() && d.chance(30)) { // some finish while others still ask
        auto at = held.begin() + d.below(static_cast<std::int64_t>(held.size()));
        REQUIRE(b.settle(*at, 10));
        held.erase(at);
      }
    }
    CHECK(granted == 8 - 3 - 1);
    CHECK(b.calls_left() == 1);

    std::int64_t p0_within = 0, p0_over = 0;
    for (int i = 0; i < 10; ++i) {
      auto r = b.reserve(p0, 0);
      REQUIRE(r.granted);
      (r.over_budget ? p0_over : p0_within) += 1;
    }
    CHECK(p0_within == 1);
    CHECK(p0_over == 9);
    CHECK(b.over_budget_calls() == 9);
    CHECK(b.calls_left() == 0);
  }
}

TEST_CASE("budget_ledger: exactly the token budget is granted when more callers race for it", "[budget][race]") {
  // Calls are plentiful, tokens are not: 30 callers estimating 100 each share 1000 tokens, so exactly 10 get in;
  // a cancel lets exactly one more in.
  dice d{99};
  budget_ledger b{limits(100, 1000, 1)};
  std::vector<std::uint64_t> held;
  std::int64_t refused = 0;
  for (int i = 0; i < 30; ++i) {
    auto r = b.reserve(static_cast<priority_class>(1 + d.below(3)), 100);
    if (r.granted)
      held.push_back(r.id);
    else {
      CHECK(r.reason == "token budget: 1000 of 1000 tokens used or reserved, this call needs 100");
      ++refused;
    }
  }
  CHECK(held.size() == 10);
  CHECK(refused == 20);
  CHECK(b.tokens_left() == 0);

  REQUIRE(b.cancel(held.back()));
  held.pop_back();
  CHECK(b.reserve(p2, 100).granted);
  CHECK_FALSE(b.reserve(p2, 100).granted);
}
