// The pressure gauge, the shedding table and step degradation, as pure logic on a fake clock.
#include "actors/budget/pressure.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using squad::degradation;
using squad::degrade;
using squad::degrade_settings;
using squad::pressure_gauge;
using squad::pressure_level;
using squad::pressure_settings;
using squad::pressure_signals;
using squad::priority_class;
using squad::shed_action;
using squad::shed_decision;
using squad::steady_time;
using squad::step_params;

namespace {

// A fixed epoch far from the clock's zero.
const steady_time t0 = steady_time{} + std::chrono::hours{1000};

steady_time at(std::int64_t ms) {
  return t0 + std::chrono::milliseconds{ms};
}

const pressure_signals quiet{};

pressure_signals wait(std::int64_t ms) {
  pressure_signals s;
  s.wait_ms = ms;
  return s;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// One signal, by name, for tables over all five.
struct signal_case {
  const char* name;
  std::function<void(pressure_signals&, double)> set;
  double elevated; // default entry thresholds
  double critical;
  double just_below; // how far under a threshold still counts as "just below"
};

std::vector<signal_case> all_signals() {
  return {
      {"wait", [](pressure_signals& s, double v) { s.wait_ms = static_cast<std::int64_t>(v); }, 2000, 10000, 1},
      {"queue", [](pressure_signals& s, double v) { s.queue_depth = static_cast<std::int64_t>(v); }, 10, 50, 1},
      {"429s", [](pressure_signals& s, double v) { s.rate_429_per_min = v; }, 1, 5, 0.01},
      {"open breakers", [](pressure_signals& s, double v) { s.open_breaker_share = v; }, 0.25, 0.5, 0.01},
      {"p95", [](pressure_signals& s, double v) { s.p95_latency_ms = static_cast<std::int64_t>(v); }, 20000, 60000, 1},
  };
}

pressure_signals with(const signal_case& c, double v) {
  pressure_signals s;
  c.set(s, v);
  return s;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// pressure_gauge
// ---------------------------------------------------------------------------------------------------------------

TEST_CASE("pressure: levels have names", "[pressure]") {
  // to_string gives the lower-case level name used in reasons and change lines.
  CHECK(std::string{to_string(pressure_level::normal)} == "normal");
  CHECK(std::string{to_string(pressure_level::elevated)} == "elevated");
  CHECK(std::string{to_string(pressure_level::critical)} == "critical");
}

TEST_CASE("pressure: a new gauge is normal and stays normal while quiet", "[pressure]") {
  // Before any sample and under quiet samples the level is normal, and why() says so.
  pressure_gauge g;
  CHECK(g.level() == pressure_level::normal);
  CHECK(g.why() == "all signals below elevated thresholds");
  for (int i = 0; i < 100; ++i)
    REQUIRE(g.update(quiet, at(i * 1000)) == pressure_level::normal);
  CHECK(g.why() == "all signals below elevated thresholds");
}

TEST_CASE("pressure: each signal alone reaches each level at its threshold, not below", "[pressure]") {
  // Entry is ">=": exactly at a threshold counts, just under does not, for every one of the five signals.
  for (const auto& c : all_signals()) {
    INFO("signal " << c.name);
    {
      pressure_gauge g;
      CHECK(g.update(with(c, c.elevated - c.just_below), at(0)) == pressure_level::normal);
    }
    {
      pressure_gauge g;
      CHECK(g.update(with(c, c.elevated), at(0)) == pressure_level::elevated);
      CHECK(contains(g.why(), c.name));
    }
    {
      pressure_gauge g;
      CHECK(g.update(with(c, c.critical - c.just_below), at(0)) == pressure_level::elevated);
    }
    {
      pressure_gauge g;
      CHECK(g.update(with(c, c.critical), at(0)) == pressure_level::critical);
      CHECK(contains(g.why(), c.name));
    }
  }
}

TEST_CASE("pressure: why() names the signal and the threshold it crossed", "[pressure]") {
  // The explanation is human-readable with units, and lists every signal at the level.
  pressure_gauge g;
  g.update(wait(12000), at(0));
  CHECK(g.why() == "wait 12000ms >= 10000ms");

  pressure_gauge h;
  pressure_signals s;
  s.wait_ms = 3000;           // elevated only
  s.queue_depth = 60;         // critical
  s.rate_429_per_min = 6;     // critical
  s.open_breaker_share = 0.5; // critical
  s.p95_latency_ms = 70000;   // critical
  REQUIRE(h.update(s, at(0)) == pressure_level::critical);
  CHECK(h.why() == "queue 60 >= 50; 429s 6/min >= 5/min; open breakers 50% >= 50%; p95 70000ms >= 60000ms");

  pressure_gauge e;
  s = {};
  s.rate_429_per_min = 1.5;
  s.open_breaker_share = 0.3;
  REQUIRE(e.update(s, at(0)) == pressure_level::elevated);
  CHECK(e.why() == "429s 1.5/min >= 1/min; open breakers 30% >= 25%");
}

TEST_CASE("pressure: rises at once, straight from normal to critical", "[pressure]") {
  // No dwell on the way up: one sample at critical makes the gauge critical.
  pressure_gauge g;
  CHECK(g.update(wait(10000), at(0)) == pressure_level::critical);
  CHECK(g.level() == pressure_level::critical);
}

TEST_CASE("pressure: rises from elevated to critical at once, even mid-dwell", "[pressure]") {
  // An elevated gauge counting down its dwell still jumps to critical on the first critical sample.
  pressure_gauge g;
  REQUIRE(g.update(wait(2000), at(0)) == pressure_level::elevated);
  REQUIRE(g.update(quiet, at(1000)) == pressure_level::elevated);
  REQUIRE(g.update(quiet, at(4000)) == pressure_level::elevated);
  CHECK(g.update(wait(10000), at(4500)) == pressure_level::critical);
  // and the dwell restarts from scratch after the spike
  CHECK(g.update(quiet, at(5000)) == pressure_level::critical);
  CHECK(g.update(quiet, at(9999)) == pressure_level::critical);
  CHECK(g.update(quiet, at(10000)) == pressure_level::elevated);
}

TEST_CASE("pressure: falls only after a full dwell below the exit thresholds", "[pressure]") {
  // The dwell counts from the first calm sample, not from the rise, and needs the full 5s.
  pressure_gauge g;
  REQUIRE(g.update(wait(2500), at(0)) == pressure_level::elevated);
  REQUIRE(g.update(wait(2500), at(10000)) == pressure_level::elevated); // still hot: no dwell yet
  CHECK(g.update(quiet, at(20000)) == pressure_level::elevated);        // calm since 20000
  CHECK(contains(g.why(), "holding elevated"));
  CHECK(g.update(quiet, at(22000)) == pressure_level::elevated);
  CHECK(g.why() == "holding elevated: all signals below exit thresholds for 2000ms of 5000ms");
  CHECK(g.update(quiet, at(24999)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(25000)) == pressure_level::normal);
  CHECK(g.why() == "all signals below elevated thresholds");
}

TEST_CASE("pressure: falls one level at a time, a full dwell per level", "[pressure]") {
  // Critical to normal takes two dwells even when every signal drops to zero at once.
  pressure_gauge g;
  REQUIRE(g.update(wait(50000), at(0)) == pressure_level::critical);
  CHECK(g.update(quiet, at(1000)) == pressure_level::critical); // calm since 1000
  CHECK(g.update(quiet, at(5999)) == pressure_level::critical);
  CHECK(g.update(quiet, at(6000)) == pressure_level::elevated); // elevated's dwell starts here
  CHECK(g.update(quiet, at(6001)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(10999)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(11000)) == pressure_level::normal);
}

TEST_CASE("pressure: a long gap between samples still steps down only one level", "[pressure]") {
  // Sparse sampling cannot skip a level: each update steps down at most once.
  pressure_gauge g;
  REQUIRE(g.update(wait(50000), at(0)) == pressure_level::critical);
  CHECK(g.update(quiet, at(1000)) == pressure_level::critical);
  CHECK(g.update(quiet, at(3'600'000)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(3'604'999)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(3'605'000)) == pressure_level::normal);
}

TEST_CASE("pressure: a single calm sample does not count as a dwell", "[pressure]") {
  // The first calm sample only starts the clock; it needs a later calm sample dwell after it.
  pressure_gauge g;
  REQUIRE(g.update(wait(3000), at(0)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(100000)) == pressure_level::elevated);
  CHECK(g.update(wait(1500), at(104000)) == pressure_level::elevated); // 1500 >= 1400: dwell broken
  CHECK(g.update(quiet, at(200000)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(205000)) == pressure_level::normal);
}

TEST_CASE("pressure: from critical, the step down lands on elevated while an elevated signal remains", "[pressure]") {
  // Critical's exit only needs signals below 0.7 x critical; a signal still at elevated keeps the gauge there.
  pressure_gauge g;
  REQUIRE(g.update(wait(12000), at(0)) == pressure_level::critical);
  CHECK(g.update(wait(3000), at(1000)) == pressure_level::critical); // 3000 < 7000: calm for critical
  CHECK(g.why() == "holding critical: all signals below exit thresholds for 0ms of 5000ms");
  CHECK(g.update(wait(3000), at(6000)) == pressure_level::elevated);
  CHECK(g.why() == "wait 3000ms >= 2000ms");
  for (int i = 7; i < 600; ++i)
    REQUIRE(g.update(wait(3000), at(i * 1000)) == pressure_level::elevated);
}

TEST_CASE("pressure: the hysteresis band holds the level indefinitely", "[pressure]") {
  // A signal between exit_ratio x threshold and the threshold neither raises nor lowers the level.
  for (const auto& c : all_signals()) {
    INFO("signal " << c.name);
    const double band = 0.85 * c.elevated; // between 0.7x and 1x

    pressure_gauge from_normal;
    for (int i = 0; i < 600; ++i)
      REQUIRE(from_normal.update(with(c, band), at(i * 1000)) == pressure_level::normal);

    pressure_gauge from_elevated;
    REQUIRE(from_elevated.update(with(c, c.elevated), at(0)) == pressure_level::elevated);
    for (int i = 1; i < 600; ++i)
      REQUIRE(from_elevated.update(with(c, band), at(i * 1000)) == pressure_level::elevated);
    CHECK(contains(from_elevated.why(), "holding elevated: "));
    CHECK(contains(from_elevated.why(), std::string{c.name} + " "));
    CHECK(contains(from_elevated.why(), "(exit)"));
  }
}

TEST_CASE("pressure: the exit threshold is strict and each signal can hold the level alone", "[pressure]") {
  // A signal exactly at exit_ratio x threshold still holds; just below it lets the dwell run.
  pressure_settings st;
  for (const auto& c : all_signals()) {
    INFO("signal " << c.name);
    const double exit = st.exit_ratio * c.elevated;

    pressure_gauge held;
    REQUIRE(held.update(with(c, c.elevated), at(0)) == pressure_level::elevated);
    REQUIRE(held.update(with(c, exit), at(1000)) == pressure_level::elevated);
    CHECK(held.update(with(c, exit), at(60000)) == pressure_level::elevated);

    pressure_gauge released;
    REQUIRE(released.update(with(c, c.elevated), at(0)) == pressure_level::elevated);
    REQUIRE(released.update(with(c, exit - c.just_below), at(1000)) == pressure_level::elevated);
    CHECK(released.update(with(c, exit - c.just_below), at(6000)) == pressure_level::normal);
  }
}

TEST_CASE("pressure: a signal bouncing back resets the dwell", "[pressure]") {
  // Calm for 4.9s, one hot sample, then the full 5s must pass again.
  pressure_gauge g;
  REQUIRE(g.update(wait(2000), at(0)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(1000)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(5900)) == pressure_level::elevated);
  CHECK(g.update(wait(1400), at(5950)) == pressure_level::elevated); // at the exit threshold: hot
  CHECK(g.update(quiet, at(6000)) == pressure_level::elevated);      // calm again since 6000
  CHECK(g.update(quiet, at(10999)) == pressure_level::elevated);
  CHECK(g.update(quiet, at(11000)) == pressure_level::normal);
}

TEST_CASE("pressure: never flaps when a signal alternates just above and just below a threshold", "[pressure]") {
  // Ten minutes of a signal alternating around an entry threshold changes the level exactly once.
  for (const auto& c : all_signals()) {
    for (auto [threshold, expected] :
         {std::pair{c.elevated, pressure_level::elevated}, std::pair{c.critical, pressure_level::critical}}) {
      INFO("signal " << c.name << " around " << threshold);
      pressure_gauge g;
      int changes = 0;
      auto last = g.level();
      for (int i = 0; i < 2400; ++i) { // every 250ms
        const double v = (i % 2 == 0) ? threshold + c.just_below : threshold - c.just_below;
        const auto now = g.update(with(c, v), at(i * 250));
        if (now != last)
          ++changes;
        last = now;
      }
      CHECK(changes == 1);
      CHECK(g.level() == expected);
    }
  }
}

TEST_CASE("pressure: never flaps when a signal alternates above the threshold and below the exit", "[pressure]") {
  // Even full swings, if they come back sooner than the dwell, hold the level; slower swings step down and up.
  pressure_gauge g;
  int changes = 0;
  auto last = g.level();
  for (int i = 0; i < 600; ++i) { // a swing every 2s, dwell 5s
    const auto now = g.update(wait(i % 2 == 0 ? 2001 : 0), at(i * 2000));
    if (now != last)
      ++changes;
    last = now;
  }
  CHECK(changes == 1);
  CHECK(g.level() == pressure_level::elevated);

  // Swings slower than the dwell do move the level, once per swing: that is load really coming and going.
  pressure_gauge slow;
  REQUIRE(slow.update(wait(2001), at(0)) == pressure_level::elevated);
  REQUIRE(slow.update(quiet, at(10000)) == pressure_level::elevated);
  REQUIRE(slow.update(quiet, at(15000)) == pressure_level::normal);
  REQUIRE(slow.update(wait(2001), at(20000)) == pressure_level::elevated);
}

TEST_CASE("pressure: without hysteresis or dwell the same input would flap", "[pressure]") {
  // The documented precondition: exit_ratio = 1 and dwell = 0 remove the protection, and the level alternates.
  pressure_settings st;
  st.exit_ratio = 1.0;
  st.dwell = 0ms;
  pressure_gauge g{st};
  int changes = 0;
  auto last = g.level();
  for (int i = 0; i < 100; ++i) {
    const auto now = g.update(wait(i % 2 == 0 ? 2001 : 1999), at(i * 250));
    if (now != last)
      ++changes;
    last = now;
  }
  CHECK(changes == 100);
}

TEST_CASE("pressure: custom settings are honoured", "[pressure]") {
  // Thresholds, exit ratio and dwell all come from the settings.
  pressure_settings st;
  st.elevated_queue = 3;
  st.critical_queue = 6;
  st.exit_ratio = 0.5;
  st.dwell = 1000ms;
  pressure_gauge g{st};
  pressure_signals s;
  s.queue_depth = 3;
  CHECK(g.update(s, at(0)) == pressure_level::elevated);
  CHECK(g.why() == "queue 3 >= 3");
  s.queue_depth = 6;
  CHECK(g.update(s, at(10)) == pressure_level::critical);
  s.queue_depth = 3; // exactly 0.5 x 6: holds critical
  CHECK(g.update(s, at(20)) == pressure_level::critical);
  CHECK(g.update(s, at(5000)) == pressure_level::critical);
  CHECK(g.why() == "holding critical: queue 3 >= 3 (exit)");
  s.queue_depth = 1; // below 0.5 x 3 as well
  CHECK(g.update(s, at(6000)) == pressure_level::critical);
  CHECK(g.update(s, at(7000)) == pressure_level::elevated);
  CHECK(g.update(s, at(7999)) == pressure_level::elevated);
  CHECK(g.update(s, at(8000)) == pressure_level::normal);
}

TEST_CASE("pressure: a NaN signal neither raises the level nor lets it fall", "[pressure]") {
  // A broken rate computation must not read as calm.
  pressure_signals s;
  s.rate_429_per_min = std::numeric_limits<double>::quiet_NaN();
  pressure_gauge g;
  CHECK(g.update(s, at(0)) == pressure_level::normal);
  REQUIRE(g.update(wait(2000), at(1000)) == pressure_level::elevated);
  CHECK(g.update(s, at(2000)) == pressure_level::elevated);
  CHECK(g.update(s, at(60000)) == pressure_level::elevated);
  CHECK(g.why() == "holding elevated: a signal is not a number");
}

// ---------------------------------------------------------------------------------------------------------------
// decide
// ---------------------------------------------------------------------------------------------------------------

TEST_CASE("shed: actions have names", "[shed]") {
  // to_string gives the lower-case action name.
  CHECK(std::string{to_string(shed_action::call)} == "call");
  CHECK(std::string{to_string(shed_action::cache)} == "cache");
  CHECK(std::string{to_string(shed_action::skip)} == "skip");
}

TEST_CASE("shed: the full table of priority x level x budget x cache", "[shed]") {
  // All 48 combinations, written out; skip reasons name the priority, the rule and the level.
  using P = priority_class;
  using L = pressure_level;
  constexpr auto call = shed_action::call;
  constexpr auto cache = shed_action::cache;
  constexpr auto skip = shed_action::skip;
  struct row {
    P p;
    L level;
    bool budget_left;
    bool cache_hit;
    shed_action expected;
    const char* rule; // for skips: the rule the reason must name
  };
  const row table[] = {
      // P0: always an LLM call, no cache, no budget check
      {P::p0, L::normal, false, false, call, ""},
      {P::p0, L::normal, false, true, call, ""},
      {P::p0, L::normal, true, false, call, ""},
      {P::p0, L::normal, true, true, call, ""},
      {P::p0, L::elevated, false, false, call, ""},
      {P::p0, L::elevated, false, true, call, ""},
      {P::p0, L::elevated, true, false, call, ""},
      {P::p0, L::elevated, true, true, call, ""},
      {P::p0, L::critical, false, false, call, ""},
      {P::p0, L::critical, false, true, call, ""},
      {P::p0, L::critical, true, false, call, ""},
      {P::p0, L::critical, true, true, call, ""},
      // P1: cache, else call while budget lasts; pressure does not shed it
      {P::p1, L::normal, false, false, skip, "budget spent"},
      {P::p1, L::normal, false, true, cache, ""},
      {P::p1, L::normal, true, false, call, ""},
      {P::p1, L::normal, true, true, cache, ""},
      {P::p1, L::elevated, false, false, skip, "budget spent"},
      {P::p1, L::elevated, false, true, cache, ""},
      {P::p1, L::elevated, true, false, call, ""},
      {P::p1, L::elevated, true, true, cache, ""},
      {P::p1, L::critical, false, false, skip, "budget spent"},
      {P::p1, L::critical, false, true, cache, ""},
      {P::p1, L::critical, true, false, call, ""},
      {P::p1, L::critical, true, true, cache, ""},
      // P2: cache, else budget, else pressure
      {P::p2, L::normal, false, false, skip, "budget spent"},
      {P::p2, L::normal, false, true, cache, ""},
      {P::p2, L::normal, true, false, call, ""},
      {P::p2, L::normal, true, true, cache, ""},
      {P::p2, L::elevated, false, false, skip, "budget spent"},
      {P::p2, L::elevated, false, true, cache, ""},
      {P::p2, L::elevated, true, false, skip, "enrichment skipped"},
      {P::p2, L::elevated, true, true, cache, ""},
      {P::p2, L::critical, false, false, skip, "budget spent"},
      {P::p2, L::critical, false, true, cache, ""},
      {P::p2, L::critical, true, false, skip, "enrichment skipped"},
      {P::p2, L::critical, true, true, cache, ""},
      // P3: cache, else pressure, else budget
      {P::p3, L::normal, false, false, skip, "budget spent"},
      {P::p3, L::normal, false, true, cache, ""},
      {P::p3, L::normal, true, false, call, ""},
      {P::p3, L::normal, true, true, cache, ""},
      {P::p3, L::elevated, false, false, skip, "cosmetic step skipped"},
      {P::p3, L::elevated, false, true, cache, ""},
      {P::p3, L::elevated, true, false, skip, "cosmetic step skipped"},
      {P::p3, L::elevated, true, true, cache, ""},
      {P::p3, L::critical, false, false, skip, "cosmetic step skipped"},
      {P::p3, L::critical, false, true, cache, ""},
      {P::p3, L::critical, true, false, skip, "cosmetic step skipped"},
      {P::p3, L::critical, true, true, cache, ""},
  };
  REQUIRE(std::size(table) == 48);

  for (const auto& r : table) {
    const shed_decision d = decide(r.p, r.level, r.budget_left, r.cache_hit);
    INFO(to_string(r.p) << " " << to_string(r.level) << " budget_left=" << r.budget_left << " cache_hit=" << r.cache_hit
                        << " -> " << to_string(d.action) << ": " << d.reason);
    CHECK(d.action == r.expected);
    CHECK_FALSE(d.reason.empty());
    CHECK(contains(d.reason, to_string(r.p)));
    if (r.expected == skip) {
      CHECK(contains(d.reason, r.rule));
      CHECK(contains(d.reason, to_string(r.level)));
    }
  }
}

TEST_CASE("shed: reasons read as documented", "[shed]") {
  // The exact wording operators will see in run logs.
  using P = priority_class;
  using L = pressure_level;
  CHECK(decide(P::p0, L::critical, false, true).reason == "P0 always runs");
  CHECK(decide(P::p1, L::critical, true, false).reason == "P1: an LLM call, waiting in line if needed");
  CHECK(decide(P::p1, L::normal, true, true).reason == "P1: cache hit");
  CHECK(decide(P::p1, L::elevated, false, false).reason == "P1: budget spent (pressure elevated)");
  CHECK(decide(P::p2, L::elevated, true, false).reason == "P2: pressure elevated: enrichment skipped");
  CHECK(decide(P::p2, L::critical, true, false).reason == "P2: pressure critical: enrichment skipped");
  CHECK(decide(P::p2, L::critical, false, false).reason == "P2: budget spent (pressure critical)");
  CHECK(decide(P::p2, L::normal, true, false).reason == "P2: an LLM call (pressure normal)");
  CHECK(decide(P::p3, L::elevated, true, false).reason == "P3: pressure elevated: cosmetic step skipped");
  CHECK(decide(P::p3, L::critical, false, false).reason == "P3: pressure critical: cosmetic step skipped");
  CHECK(decide(P::p3, L::normal, false, false).reason == "P3: budget spent (pressure normal)");
  CHECK(decide(P::p3, L::critical, false, true).reason == "P3: cache hit");
}

// ---------------------------------------------------------------------------------------------------------------
// degrade
// ---------------------------------------------------------------------------------------------------------------

namespace {

step_params step(std::int64_t max_tokens, double temperature, bool prefer_worker = false, bool optional = false) {
  step_params p{max_tokens, temperature};
  p.prefer_worker = prefer_worker;
  p.optional = optional;
  return p;
}

void check_same(const step_params& a, const step_params& b) {
  CHECK(a.max_tokens == b.max_tokens);
  CHECK(a.temperature == b.temperature);
  CHECK(a.prefer_worker == b.prefer_worker);
  CHECK(a.optional == b.optional);
}

} // namespace

TEST_CASE("degrade: normal changes nothing, not even optional steps", "[degrade]") {
  // At normal pressure every step runs exactly as written.
  for (bool optional : {false, true}) {
    const auto p = step(1024, 0.9, false, optional);
    const degradation d = degrade(p, pressure_level::normal);
    check_same(d.params, p);
    CHECK(d.changes.empty());
    CHECK_FALSE(d.drop);
  }
}

TEST_CASE("degrade: elevated halves max_tokens and leaves the rest", "[degrade]") {
  // Only max_tokens moves at elevated; temperature and routing stay.
  const degradation d = degrade(step(1024, 0.9), pressure_level::elevated);
  CHECK(d.params.max_tokens == 512);
  CHECK(d.params.temperature == 0.9);
  CHECK_FALSE(d.params.prefer_worker);
  CHECK_FALSE(d.drop);
  CHECK(d.changes == std::vector<std::string>{"max_tokens 1024 -> 512 (pressure elevated)"});
}

TEST_CASE("degrade: elevated drops optional steps, and says so", "[degrade]") {
  // An optional step is dropped with its own change line.
  const degradation d = degrade(step(1024, 0.9, false, true), pressure_level::elevated);
  CHECK(d.drop);
  CHECK(d.changes == std::vector<std::string>{"max_tokens 1024 -> 512 (pressure elevated)",
                                              "optional step dropped (pressure elevated)"});
}

TEST_CASE("degrade: drop_optional = false keeps optional steps", "[degrade]") {
  // With dropping switched off, optional steps are degraded like any other, at both levels.
  degrade_settings s;
  s.drop_optional = false;
  for (auto level : {pressure_level::elevated, pressure_level::critical}) {
    const degradation d = degrade(step(1024, 0.9, false, true), level, s);
    CHECK_FALSE(d.drop);
    for (const auto& line : d.changes)
      CHECK_FALSE(contains(line, "dropped"));
  }
}

TEST_CASE("degrade: critical quarters tokens, caps temperature, prefers the worker, drops optional", "[degrade]") {
  // Every knob moves at critical, each with its own line.
  const degradation d = degrade(step(2048, 0.8, false, true), pressure_level::critical);
  CHECK(d.params.max_tokens == 512);
  CHECK(d.params.temperature == 0.3);
  CHECK(d.params.prefer_worker);
  CHECK(d.drop);
  CHECK(d.changes == std::vector<std::string>{"max_tokens 2048 -> 512 (pressure critical)",
                                              "temperature 0.8 -> 0.3 (pressure critical)",
                                              "prefer_worker false -> true (pressure critical)",
                                              "optional step dropped (pressure critical)"});
}

TEST_CASE("degrade: max_tokens stops at min_tokens and is never raised", "[degrade]") {
  // Scaling floors at min_tokens; a value already at or under it is left alone with no line.
  SECTION("scaling lands below the floor") {
    const degradation d = degrade(step(200, 0.5), pressure_level::critical); // 50 -> 64
    CHECK(d.params.max_tokens == 64);
    CHECK(d.changes.front() == "max_tokens 200 -> 64 (pressure critical)");
  }
  SECTION("already at the floor") {
    const degradation d = degrade(step(64, 0.2, true), pressure_level::critical);
    CHECK(d.params.max_tokens == 64);
    CHECK(d.changes.empty());
  }
  SECTION("already under the floor") {
    const degradation e = degrade(step(32, 0.5), pressure_level::elevated);
    CHECK(e.params.max_tokens == 32);
    CHECK(e.changes.empty());
  }
  SECTION("odd values round down") {
    const degradation d = degrade(step(1001, 0.5), pressure_level::elevated);
    CHECK(d.params.max_tokens == 500);
  }
  SECTION("a custom floor") {
    degrade_settings s;
    s.min_tokens = 400;
    CHECK(degrade(step(1024, 0.5), pressure_level::critical, s).params.max_tokens == 400);
    CHECK(degrade(step(1024, 0.5), pressure_level::elevated, s).params.max_tokens == 512);
  }
}

TEST_CASE("degrade: values already within their limits produce no lines", "[degrade]") {
  // A cold temperature and a worker-preferring step only see the token cut.
  const degradation d = degrade(step(1024, 0.1, true), pressure_level::critical);
  CHECK(d.params.temperature == 0.1);
  CHECK(d.params.prefer_worker);
  CHECK(d.changes == std::vector<std::string>{"max_tokens 1024 -> 256 (pressure critical)"});

  const degradation exact = degrade(step(1024, 0.3, true), pressure_level::critical);
  CHECK(exact.params.temperature == 0.3);
  CHECK(exact.changes.size() == 1);
}

TEST_CASE("degrade: custom factors and temperature ceiling", "[degrade]") {
  // All levels read their numbers from degrade_settings.
  degrade_settings s;
  s.elevated_tokens = 0.75;
  s.critical_tokens = 0.1;
  s.critical_temperature = 0.0;
  s.min_tokens = 1;
  CHECK(degrade(step(1000, 0.5), pressure_level::elevated, s).params.max_tokens == 750);
  const degradation d = degrade(step(1000, 0.5), pressure_level::critical, s);
  CHECK(d.params.max_tokens == 100);
  CHECK(d.params.temperature == 0.0);
  CHECK(d.changes[1] == "temperature 0.5 -> 0 (pressure critical)");
}

TEST_CASE("degrade: nothing changes silently, and nothing goes up", "[degrade]") {
  // Over a grid of steps and levels: one line per changed field, none for unchanged ones, and no value rises.
  for (auto level : {pressure_level::normal, pressure_level::elevated, pressure_level::critical})
    for (std::int64_t tokens : {1, 63, 64, 65, 127, 128, 129, 256, 1024, 100000})
      for (double temp : {0.0, 0.29, 0.3, 0.31, 1.0, 2.0})
        for (bool worker : {false, true})
          for (bool optional : {false, true}) {
            const auto p = step(tokens, temp, worker, optional);
            const degradation d = degrade(p, level);
            INFO(to_string(level) << " tokens=" << tokens << " temp=" << temp << " worker=" << worker
                                  << " optional=" << optional);
            CHECK(d.params.max_tokens <= p.max_tokens);
            CHECK(d.params.temperature <= p.temperature);
            CHECK(d.params.optional == p.optional);
            std::size_t expected = (d.params.max_tokens != p.max_tokens) + (d.params.temperature != p.temperature) +
                                   (d.params.prefer_worker != p.prefer_worker) + (d.drop ? 1 : 0);
            CHECK(d.changes.size() == expected);
            for (const auto& line : d.changes)
              CHECK(contains(line, std::string{"(pressure "} + to_string(level) + ")"));
            CHECK(d.drop == (optional && level != pressure_level::normal));
            if (level == pressure_level::critical) {
              CHECK(d.params.prefer_worker);
              CHECK(d.params.temperature <= 0.3);
            }
            if (level != pressure_level::normal && tokens > 64)
              CHECK(d.params.max_tokens >= 64);
          }
}

TEST_CASE("degrade: an unset temperature stays unset, except at critical where it is capped", "[degrade]") {
  // Squad sends no temperature a caller did not set; critical pressure still asks for the cheap, steady setting.
  auto elevated = squad::degrade(step(1000, -1.0 /* unset */), squad::pressure_level::elevated);
  CHECK(elevated.params.temperature < 0);
  auto crit = squad::degrade(step(1000, -1.0 /* unset */), squad::pressure_level::critical);
  CHECK(crit.params.temperature == 0.3);
  CHECK(std::find(crit.changes.begin(), crit.changes.end(), "temperature unset -> 0.3 (pressure critical)") !=
        crit.changes.end());
}
