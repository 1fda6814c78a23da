#include "actors/limiter/rate_limiter.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using squad::limit_rule;
using squad::limit_signals;
using squad::limiter_settings;
using squad::rate_limiter;
using squad::steady_time;

namespace {

using nanos = std::chrono::nanoseconds;

// A fixed epoch far from the clock's zero, so no rule can pass by comparing against a default-constructed time.
const steady_time t0 = steady_time{} + std::chrono::hours{1000};

steady_time at(std::int64_t ms) {
  return t0 + std::chrono::milliseconds{ms};
}

// Times are compared as nanoseconds since t0, so a failure prints numbers.
std::int64_t ns(steady_time t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - t0).count();
}

// Every rule wide open, so a test can switch on the one it is about.
limiter_settings open_settings() {
  limiter_settings s;
  s.requests = 1000000;
  s.per = 1000ms;
  s.burst = 1000000;
  s.concurrency = std::numeric_limits<std::int64_t>::max();
  s.min_interval = 0ms;
  s.tokens = 0;
  s.window_margin = 0ms;
  return s;
}

limit_signals retry_after(std::int64_t ms) {
  limit_signals s;
  s.retry_after_ms = ms;
  return s;
}

limit_signals quota(std::int64_t remaining, std::int64_t reset_ms) {
  limit_signals s;
  s.remaining_requests = remaining;
  s.reset_requests_ms = reset_ms;
  return s;
}

// Every rule open, with a window (60s) longer than any quota reset below: the quota rule lapses at the
// provider's reset, before our oldest admission leaves the window.
limiter_settings long_window_settings() {
  auto s = open_settings();
  s.per = 60000ms;
  return s;
}

// Three 429s at `now` (no Retry-After pause): exactly what cuts the throttle once with the defaults.
bool three_429s(rate_limiter& rl, steady_time now) {
  bool changed = false;
  for (int i = 0; i < 3; ++i)
    changed = rl.on_signals(0, now, retry_after(0), true) || changed;
  return changed;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// settings

TEST_CASE("rate_limiter: limiter_settings_from copies the limits and derives the window margin",
          "[limiter][rate_limiter]") {
  // The margin is 1% of `per`, clamped to [5ms, 1s]; the other fields come straight from the config.
  squad::limits_config l;
  l.requests = 7;
  l.per = 1000ms;
  l.burst = 3;
  l.concurrency = 2;
  l.min_interval = 25ms;
  l.tokens = 5000;
  auto s = squad::limiter_settings_from(l);
  CHECK(s.requests == 7);
  CHECK(s.per == 1000ms);
  CHECK(s.burst == 3);
  CHECK(s.concurrency == 2);
  CHECK(s.min_interval == 25ms);
  CHECK(s.tokens == 5000);
  CHECK(s.window_margin == 10ms);
  CHECK(s.permit_ttl == limiter_settings{}.permit_ttl);

  l.per = 60000ms; // 1% = 600ms, inside the clamp
  CHECK(squad::limiter_settings_from(l).window_margin == 600ms);
  l.per = 100000ms; // 1% = 1s, the cap itself
  CHECK(squad::limiter_settings_from(l).window_margin == 1000ms);
  l.per = 200000ms; // 1% = 2s, capped
  CHECK(squad::limiter_settings_from(l).window_margin == 1000ms);
  l.per = 500ms; // 1% = 5ms, the floor itself
  CHECK(squad::limiter_settings_from(l).window_margin == 5ms);
  l.per = 100ms; // 1% = 1ms, raised
  CHECK(squad::limiter_settings_from(l).window_margin == 5ms);
}

TEST_CASE("rate_limiter: every rule has a name", "[limiter][rate_limiter]") {
  // Log and stats text name the rule that held a call back.
  CHECK(std::string(squad::to_string(limit_rule::none)) == "none");
  CHECK(std::string(squad::to_string(limit_rule::pause)) == "pause");
  CHECK(std::string(squad::to_string(limit_rule::quota)) == "quota");
  CHECK(std::string(squad::to_string(limit_rule::bucket)) == "bucket");
  CHECK(std::string(squad::to_string(limit_rule::window)) == "window");
  CHECK(std::string(squad::to_string(limit_rule::interval)) == "interval");
  CHECK(std::string(squad::to_string(limit_rule::concurrency)) == "concurrency");
  CHECK(std::string(squad::to_string(limit_rule::tokens)) == "tokens");
  CHECK(std::string(squad::to_string(limit_rule::too_big)) == "too_big");
}

TEST_CASE("rate_limiter: probe answers without admitting", "[limiter][rate_limiter]") {
  // probe() gives try_acquire's verdict but takes no permit, no bucket token and no window slot.
  auto s = open_settings();
  s.requests = 2;
  s.burst = 2;
  rate_limiter rl{s, t0};
  for (int i = 0; i < 5; ++i) {
    auto v = rl.probe(t0, 0);
    CHECK(v.admitted);
    CHECK(v.permit == 0);
    CHECK(v.blocked_by == limit_rule::none);
  }
  CHECK(rl.in_flight() == 0);
  CHECK(rl.window_occupancy(t0) == 0);
  auto a = rl.try_acquire(t0, 0);
  auto b = rl.try_acquire(t0, 0);
  REQUIRE(a.admitted);
  REQUIRE(b.admitted);
  CHECK(a.permit != b.permit);
  CHECK(a.permit != 0);
  CHECK(rl.in_flight() == 2);
  CHECK(rl.window_occupancy(t0) == 2);
  CHECK_FALSE(rl.probe(t0, 0).admitted);
}

// ---------------------------------------------------------------------------------------------------------------
// bucket

TEST_CASE("rate_limiter: the bucket admits its burst at once, then one per 1/rate", "[limiter][rate_limiter][bucket]") {
  // burst 3 at 10/s: three calls at t0, then the next at exactly +100ms, +200ms, ... and not a nanosecond sooner.
  auto s = open_settings();
  s.requests = 10;
  s.per = 1000ms;
  s.burst = 3;
  rate_limiter rl{s, t0};
  for (int i = 0; i < 3; ++i)
    CHECK(rl.try_acquire(t0, 0).admitted);
  for (int k = 1; k <= 5; ++k) {
    auto due = at(100 * k);
    auto v = rl.try_acquire(due - 1ms, 0);
    CHECK_FALSE(v.admitted);
    CHECK(v.blocked_by == limit_rule::bucket);
    CHECK(ns(v.retry_at) == ns(due));
    CHECK(rl.probe(due - 1ns, 0).blocked_by == limit_rule::bucket);
    CHECK(rl.try_acquire(due, 0).admitted);
  }
}

TEST_CASE("rate_limiter: bucket retry_at is the ceiling in nanoseconds", "[limiter][rate_limiter][bucket]") {
  // At 3/s one token takes 333333333.33...ns: retry_at rounds up to 333333334ns, from any point of the refill.
  auto s = open_settings();
  s.requests = 3;
  s.per = 1000ms;
  s.burst = 1;
  rate_limiter rl{s, t0};
  REQUIRE(rl.try_acquire(t0, 0).admitted);
  auto due = t0 + 333333334ns;

  auto v = rl.probe(t0, 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::bucket);
  CHECK(ns(v.retry_at) == ns(due));

  v = rl.probe(at(100), 0); // 0.3 token in: the rest still lands on the same nanosecond
  CHECK(v.blocked_by == limit_rule::bucket);
  CHECK(ns(v.retry_at) == ns(due));

  v = rl.probe(t0 + 333333333ns, 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::bucket);
  CHECK(ns(v.retry_at) == ns(due));

  v = rl.try_acquire(due, 0);
  CHECK(v.admitted);
  CHECK(v.blocked_by == limit_rule::none);
}

TEST_CASE("rate_limiter: an idle bucket refills only up to its burst", "[limiter][rate_limiter][bucket]") {
  // After a long pause the bucket holds `burst` tokens, not the whole idle time's worth.
  auto s = open_settings();
  s.requests = 10;
  s.per = 1000ms;
  s.burst = 2;
  rate_limiter rl{s, t0};
  REQUIRE(rl.try_acquire(t0, 0).admitted);
  auto later = at(60000);
  CHECK(rl.try_acquire(later, 0).admitted);
  CHECK(rl.try_acquire(later, 0).admitted);
  auto v = rl.try_acquire(later, 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::bucket);
  CHECK(ns(v.retry_at) == ns(later + 100ms));
}

// ---------------------------------------------------------------------------------------------------------------
// window

TEST_CASE("rate_limiter: the window caps admissions per `per` + margin", "[limiter][rate_limiter][window]") {
  // 4 per 1s with a 20ms margin: the fifth call waits for the oldest entry + 1020ms, then each for the next one.
  auto s = open_settings();
  s.requests = 4;
  s.per = 1000ms;
  s.burst = 4;
  s.window_margin = 20ms;
  rate_limiter rl{s, t0};
  const std::int64_t sent[] = {0, 300, 310, 600};
  for (auto ms : sent)
    REQUIRE(rl.try_acquire(at(ms), 0).admitted);
  CHECK(rl.window_occupancy(at(700)) == 4);

  auto v = rl.try_acquire(at(700), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ns(v.retry_at) == ns(at(1020)));
  CHECK(rl.probe(at(1020) - 1ns, 0).blocked_by == limit_rule::window);
  CHECK(rl.window_occupancy(at(1020) - 1ns) == 4);
  CHECK(rl.window_occupancy(at(1020)) == 3);
  CHECK(rl.try_acquire(at(1020), 0).admitted);

  v = rl.probe(at(1021), 0);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ns(v.retry_at) == ns(at(300 + 1020)));
  CHECK(rl.try_acquire(at(1320), 0).admitted);
  v = rl.probe(at(1320), 0);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ns(v.retry_at) == ns(at(310 + 1020)));
}

TEST_CASE("rate_limiter: a bucket alone would admit burst + N in a window, the window does not",
          "[limiter][rate_limiter][window]") {
  // burst = requests = 5 per 1s: the bucket refills a token every 200ms, so by itself it would pass 5 at t0 and
  // 5 more before t0 + 1s. Each of those moments the window is what says no, until t0 + per + margin.
  auto s = open_settings();
  s.requests = 5;
  s.per = 1000ms;
  s.burst = 5;
  s.window_margin = 20ms;
  rate_limiter rl{s, t0};
  for (int i = 0; i < 5; ++i)
    REQUIRE(rl.try_acquire(t0, 0).admitted);
  int admitted = 5;
  for (int k = 1; k <= 5; ++k) {
    auto v = rl.try_acquire(at(200 * k), 0); // the bucket holds >= 1 token here
    admitted += v.admitted;
    CHECK(v.blocked_by == limit_rule::window);
    CHECK(ns(v.retry_at) == ns(at(1020)));
  }
  CHECK(admitted == 5);
  // At t0 + 1020ms the whole burst leaves the window and the bucket is full again: another 5, no more.
  for (int i = 0; i < 5; ++i)
    CHECK(rl.try_acquire(at(1020), 0).admitted);
  auto v = rl.try_acquire(at(1020), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ns(v.retry_at) == ns(at(2040)));
}

namespace {

struct sim_stats {
  int runs = 0;
  int refusals = 0;
  int by_bucket = 0;
  int by_window = 0;
  int bad_verdicts = 0;  // refused with no time, a time not in the future, or by a rule that is off
  int early = 0;         // admitted 1ns before its retry_at: retry_at is not the earliest
  int late = 0;          // refused at its own retry_at
  int window_excess = 0; // runs with more than `requests` admissions in some (t - per - margin, t]
  int bucket_excess = 0; // runs with more than burst + rate * (b - a) admissions in some [a, b]
  int saturated = 0;     // runs whose busiest window held exactly `requests`
};

// Random arrival times (nanosecond resolution) over 5 windows plus greedy clients that come back exactly at
// retry_at; every admission is released at once so only bucket and window can refuse. Each refusal is checked
// on a copy (what if nothing else is admitted until then): refused 1ns before retry_at, admitted at it.
// Afterwards the admission times are checked by brute force against the window cap and the bucket bound.
void simulate(const limiter_settings& s, std::mt19937_64& rng, sim_stats& st) {
  auto pick = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  const auto span = nanos(s.per) + nanos(s.window_margin);
  rate_limiter rl{s, t0};
  std::priority_queue<steady_time, std::vector<steady_time>, std::greater<>> events;
  const std::int64_t horizon = 5 * span.count();
  const auto arrivals = s.requests * 25;
  for (std::int64_t i = 0; i < arrivals; ++i)
    events.push(t0 + nanos(pick(0, horizon)));

  std::vector<steady_time> sent;
  for (int processed = 0; !events.empty() && processed < 20000; ++processed) {
    auto now = events.top();
    events.pop();
    auto v = rl.try_acquire(now, 0);
    if (v.admitted) {
      sent.push_back(now);
      rl.release(v.permit, now, -1);
      continue;
    }
    ++st.refusals;
    st.by_bucket += v.blocked_by == limit_rule::bucket;
    st.by_window += v.blocked_by == limit_rule::window;
    if (v.retry_at <= now || v.retry_at == rate_limiter::never ||
        (v.blocked_by != limit_rule::bucket && v.blocked_by != limit_rule::window)) {
      ++st.bad_verdicts;
      continue;
    }
    {
      auto copy = rl;
      if (copy.probe(v.retry_at - 1ns, 0).admitted)
        ++st.early;
      if (!copy.try_acquire(v.retry_at, 0).admitted)
        ++st.late;
    }
    if (pick(0, 1) == 0)
      events.push(v.retry_at);
  }

  const double rate_per_ns = static_cast<double>(s.requests) / static_cast<double>(nanos(s.per).count());
  std::int64_t most = 0;
  bool bucket_ok = true;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    std::int64_t in = 0;
    for (std::size_t j = 0; j <= i; ++j) {
      in += sent[j] > sent[i] - span;
      auto bound = static_cast<double>(s.burst) + rate_per_ns * static_cast<double>((sent[i] - sent[j]).count());
      if (static_cast<double>(i - j + 1) > bound + 1e-6)
        bucket_ok = false;
    }
    most = std::max(most, in);
  }
  ++st.runs;
  st.window_excess += most > s.requests;
  st.bucket_excess += !bucket_ok;
  st.saturated += most == s.requests;
}

} // namespace

TEST_CASE("rate_limiter: with burst = requests, never more than `requests` in any window of per + margin",
          "[limiter][rate_limiter][window][simulation]") {
  // Brute force over 300 seeds (random requests, per, margin, sometimes the config-derived margin): no half-open
  // interval of length per + margin ever holds more than `requests` admissions, the busiest one holds exactly
  // `requests`, and every retry_at is exact.
  sim_stats st;
  for (int seed = 1; seed <= 300; ++seed) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    auto pick = [&](std::int64_t lo, std::int64_t hi) {
      return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    };
    auto s = open_settings();
    s.requests = pick(1, 8);
    s.burst = s.requests;
    s.per = std::chrono::milliseconds{pick(50, 3000)};
    s.window_margin = std::chrono::milliseconds{pick(0, 60)};
    if (seed % 3 == 0) {
      squad::limits_config l;
      l.requests = s.requests;
      l.per = s.per;
      l.burst = s.burst;
      l.concurrency = 1000000;
      s = squad::limiter_settings_from(l);
    }
    simulate(s, rng, st);
  }
  CHECK(st.runs == 300);
  CHECK(st.by_window > 1000);
  CHECK(st.bad_verdicts == 0);
  CHECK(st.window_excess == 0);
  CHECK(st.bucket_excess == 0);
  CHECK(st.saturated == st.runs);
  CHECK(st.early == 0);
  CHECK(st.late == 0);
}

TEST_CASE("rate_limiter: bucket retry_at is exact under random arrivals and rates",
          "[limiter][rate_limiter][bucket][simulation]") {
  // Small bursts and rates that are not a whole number of nanoseconds per token (e.g. 7 per 3s): the bucket does
  // most of the refusing, and its retry_at must still be the first nanosecond at which the call goes.
  sim_stats st;
  for (int seed = 1; seed <= 300; ++seed) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed) + 1000);
    auto pick = [&](std::int64_t lo, std::int64_t hi) {
      return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    };
    auto s = open_settings();
    s.requests = pick(1, 40);
    s.burst = pick(1, std::min<std::int64_t>(4, s.requests));
    s.per = std::chrono::milliseconds{pick(3, 7000)};
    s.window_margin = std::chrono::milliseconds{pick(0, 20)};
    simulate(s, rng, st);
  }
  CHECK(st.by_bucket > 10000);
  CHECK(st.bad_verdicts == 0);
  CHECK(st.window_excess == 0);
  CHECK(st.bucket_excess == 0);
  CHECK(st.early == 0);
  CHECK(st.late == 0);
}

// ---------------------------------------------------------------------------------------------------------------
// min interval

TEST_CASE("rate_limiter: min_interval spaces two sends", "[limiter][rate_limiter][interval]") {
  // With 50ms min_interval, a call 10ms after the last send waits until last send + 50ms; refusals do not count.
  auto s = open_settings();
  s.min_interval = 50ms;
  rate_limiter rl{s, t0};
  CHECK(rl.try_acquire(t0, 0).admitted);
  auto v = rl.try_acquire(at(10), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::interval);
  CHECK(ns(v.retry_at) == ns(at(50)));
  CHECK(rl.probe(at(50) - 1ns, 0).blocked_by == limit_rule::interval);
  CHECK(rl.try_acquire(at(50), 0).admitted);
  CHECK(rl.try_acquire(at(120), 0).admitted); // more than 50ms later: no wait
  CHECK(ns(rl.probe(at(169), 0).retry_at) == ns(at(170)));
}

// ---------------------------------------------------------------------------------------------------------------
// concurrency

TEST_CASE("rate_limiter: concurrency full blocks until a release", "[limiter][rate_limiter][concurrency]") {
  // Two permits out: the third call is held by concurrency with retry_at at the earliest permit expiry (no hold
  // time known yet); releasing one lets it through; a second release of the same permit, or of one never issued, is
  // false.
  auto s = open_settings();
  s.concurrency = 2;
  s.permit_ttl = 10000ms;
  rate_limiter rl{s, t0};
  auto a = rl.try_acquire(t0, 0);
  auto b = rl.try_acquire(at(5), 0);
  REQUIRE(a.admitted);
  REQUIRE(b.admitted);
  CHECK(rl.in_flight() == 2);

  auto v = rl.try_acquire(at(10), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::concurrency);
  CHECK(ns(v.retry_at) == ns(at(10000)));
  CHECK(rl.probe(at(10), 0).blocked_by == limit_rule::concurrency);

  CHECK(rl.release(a.permit, at(20), -1));
  CHECK(rl.in_flight() == 1);
  auto c = rl.try_acquire(at(20), 0);
  CHECK(c.admitted);
  CHECK(rl.try_acquire(at(20), 0).blocked_by == limit_rule::concurrency);
  // b is now the oldest; a release measured a 20ms hold, so b is expected back 20ms after it started
  CHECK(ns(rl.try_acquire(at(20), 0).retry_at) == ns(at(5 + 20)));

  CHECK_FALSE(rl.release(a.permit, at(30), -1));
  CHECK_FALSE(rl.release(987654, at(30), -1));
  CHECK(rl.in_flight() == 2);
  CHECK(rl.reclaimed() == 0);
}

TEST_CASE("rate_limiter: permits not released within permit_ttl are reclaimed",
          "[limiter][rate_limiter][concurrency]") {
  // A lost reply cannot leak a slot: at started + permit_ttl the permit is gone, counted in reclaimed(),
  // and its late release is refused.
  auto s = open_settings();
  s.concurrency = 2;
  s.permit_ttl = 10000ms;
  rate_limiter rl{s, t0};
  auto a = rl.try_acquire(t0, 0);
  auto b = rl.try_acquire(at(3000), 0);
  REQUIRE(a.admitted);
  REQUIRE(b.admitted);

  CHECK(rl.try_acquire(at(10000) - 1ns, 0).blocked_by == limit_rule::concurrency);
  CHECK(rl.reclaimed() == 0);
  auto c = rl.try_acquire(at(10000), 0);
  CHECK(c.admitted);
  CHECK(rl.reclaimed() == 1);
  CHECK(rl.in_flight() == 2);
  CHECK_FALSE(rl.release(a.permit, at(10001), 500));

  auto v = rl.try_acquire(at(10001), 0);
  CHECK(v.blocked_by == limit_rule::concurrency);
  CHECK(ns(v.retry_at) == ns(at(13000))); // b's expiry
  CHECK(rl.try_acquire(at(13000), 0).admitted);
  CHECK(rl.reclaimed() == 2);
  CHECK_FALSE(rl.release(b.permit, at(13000), -1));
  CHECK(rl.release(c.permit, at(13000), -1));
}

TEST_CASE("rate_limiter: with concurrency full, another rule in the way names itself",
          "[limiter][rate_limiter][concurrency]") {
  // When a time-based rule also holds the call, blocked_by names it and retry_at is that rule's time.
  auto s = open_settings();
  s.concurrency = 1;
  s.min_interval = 50ms;
  s.permit_ttl = 10000ms;
  rate_limiter rl{s, t0};
  REQUIRE(rl.try_acquire(t0, 0).admitted);
  auto v = rl.try_acquire(at(10), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::interval);
  CHECK(ns(v.retry_at) == ns(at(50)));
  v = rl.try_acquire(at(50), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::concurrency);
  CHECK(ns(v.retry_at) == ns(at(10000)));
}

// ---------------------------------------------------------------------------------------------------------------
// tokens

TEST_CASE("rate_limiter: token reservations block until they leave the window", "[limiter][rate_limiter][tokens]") {
  // 1000 tokens per 1s: 600 reserved at t0 leaves room for 400, not 500; 500 waits for t0 + per + margin.
  auto s = open_settings();
  s.tokens = 1000;
  s.per = 1000ms;
  s.window_margin = 20ms;
  rate_limiter rl{s, t0};
  REQUIRE(rl.try_acquire(t0, 600).admitted);
  auto v = rl.probe(at(1), 500);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::tokens);
  CHECK(ns(v.retry_at) == ns(at(1020)));
  CHECK(rl.probe(at(1), 400).admitted);
  CHECK(rl.probe(at(1020) - 1ns, 500).blocked_by == limit_rule::tokens);
  CHECK(rl.try_acquire(at(1020), 500).admitted);
}

TEST_CASE("rate_limiter: the tokens rule waits for just enough old reservations to leave",
          "[limiter][rate_limiter][tokens]") {
  // 400 at t0 and 400 at +100ms: 500 more needs the first gone (t0 + 1s), 700 needs both (+100ms + 1s).
  auto s = open_settings();
  s.tokens = 1000;
  rate_limiter rl{s, t0};
  REQUIRE(rl.try_acquire(t0, 400).admitted);
  REQUIRE(rl.try_acquire(at(100), 400).admitted);
  CHECK(rl.probe(at(200), 200).admitted);
  auto v = rl.probe(at(200), 500);
  CHECK(v.blocked_by == limit_rule::tokens);
  CHECK(ns(v.retry_at) == ns(at(1000)));
  v = rl.probe(at(200), 700);
  CHECK(v.blocked_by == limit_rule::tokens);
  CHECK(ns(v.retry_at) == ns(at(1100)));
  CHECK(ns(rl.probe(at(200), 1000).retry_at) == ns(at(1100)));
}

TEST_CASE("rate_limiter: a call bigger than the whole token budget is too_big", "[limiter][rate_limiter][tokens]") {
  // Such a call can never run on this provider: too_big, retry_at never, even on an idle limiter. The whole
  // budget itself fits.
  auto s = open_settings();
  s.tokens = 1000;
  rate_limiter rl{s, t0};
  auto v = rl.try_acquire(t0, 1001);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::too_big);
  CHECK(ns(v.retry_at) == ns(rate_limiter::never));
  CHECK(rl.probe(t0, 1001).blocked_by == limit_rule::too_big);
  CHECK(rl.in_flight() == 0);
  CHECK(rl.try_acquire(t0, 1000).admitted);

  // Without a token budget nothing is too big.
  rate_limiter unlimited{open_settings(), t0};
  CHECK(unlimited.try_acquire(t0, 100000000).admitted);
}

TEST_CASE("rate_limiter: release with actual tokens lowers the reservation and admits earlier",
          "[limiter][rate_limiter][tokens]") {
  // 800 reserved, 300 actually used: a 500-token call goes right after the release instead of a window later.
  // An unknown count (< 0) keeps the reservation.
  auto s = open_settings();
  s.tokens = 1000;
  rate_limiter rl{s, t0};
  auto a = rl.try_acquire(t0, 800);
  REQUIRE(a.admitted);
  CHECK(ns(rl.probe(at(50), 500).retry_at) == ns(at(1000)));
  CHECK(rl.release(a.permit, at(100), 300));
  auto v = rl.try_acquire(at(100), 500);
  CHECK(v.admitted);
  CHECK(rl.probe(at(100), 201).blocked_by == limit_rule::tokens);
  CHECK(rl.probe(at(100), 200).admitted);

  rate_limiter kept{s, t0};
  auto b = kept.try_acquire(t0, 800);
  REQUIRE(b.admitted);
  CHECK(kept.release(b.permit, at(100), -1));
  CHECK(kept.probe(at(100), 500).blocked_by == limit_rule::tokens);
  CHECK(kept.probe(at(100), 200).admitted);
}

TEST_CASE("rate_limiter: actual tokens above the reservation count in full", "[limiter][rate_limiter][tokens]") {
  // Reconciliation goes both ways: a call that used more than it reserved takes more of the budget.
  auto s = open_settings();
  s.tokens = 1000;
  rate_limiter rl{s, t0};
  auto a = rl.try_acquire(t0, 100);
  REQUIRE(a.admitted);
  CHECK(rl.probe(at(10), 800).admitted);
  CHECK(rl.release(a.permit, at(10), 900));
  CHECK(rl.probe(at(10), 800).blocked_by == limit_rule::tokens);
  CHECK(rl.probe(at(10), 100).admitted);
}

// ---------------------------------------------------------------------------------------------------------------
// pause

TEST_CASE("rate_limiter: pause_until extends but never shortens", "[limiter][rate_limiter][pause]") {
  // A later deadline moves the pause out; an earlier one is ignored; admission resumes exactly at the deadline.
  rate_limiter rl{open_settings(), t0};
  rl.pause_until(at(5000));
  CHECK(ns(rl.paused_until()) == ns(at(5000)));
  rl.pause_until(at(2000));
  CHECK(ns(rl.paused_until()) == ns(at(5000)));
  rl.pause_until(at(7000));
  CHECK(ns(rl.paused_until()) == ns(at(7000)));

  auto v = rl.try_acquire(at(1000), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::pause);
  CHECK(ns(v.retry_at) == ns(at(7000)));
  CHECK(rl.probe(at(7000) - 1ns, 0).blocked_by == limit_rule::pause);
  CHECK(rl.try_acquire(at(7000), 0).admitted);
}

TEST_CASE("rate_limiter: a 429 pauses for Retry-After, 1s when none was given", "[limiter][rate_limiter][pause]") {
  // on_signals with rate_limited pauses until now + retry_after_ms, or now + 1000ms for -1; a shorter
  // Retry-After later does not shorten the pause.
  rate_limiter rl{open_settings(), t0};
  rl.on_signals(0, at(100), retry_after(2500), true);
  CHECK(ns(rl.paused_until()) == ns(at(2600)));
  auto v = rl.try_acquire(at(200), 0);
  CHECK(v.blocked_by == limit_rule::pause);
  CHECK(ns(v.retry_at) == ns(at(2600)));

  rl.on_signals(0, at(300), retry_after(100), true);
  CHECK(ns(rl.paused_until()) == ns(at(2600)));

  rate_limiter d{open_settings(), t0};
  d.on_signals(0, at(100), limit_signals{}, true);
  CHECK(ns(d.paused_until()) == ns(at(1100)));
  CHECK(d.probe(at(1100) - 1ns, 0).blocked_by == limit_rule::pause);
  CHECK(d.try_acquire(at(1100), 0).admitted);

  rate_limiter ok{open_settings(), t0}; // not a 429: a Retry-After alone does not pause
  ok.on_signals(0, at(100), retry_after(2500), false);
  CHECK(ok.try_acquire(at(100), 0).admitted);
}

TEST_CASE("rate_limiter: zero remaining tokens with a reset pauses until the reset", "[limiter][rate_limiter][pause]") {
  // x-ratelimit-remaining-tokens: 0 with a reset of 3s pauses admission for 3s; without a reset, or with tokens
  // left, nothing pauses.
  rate_limiter rl{open_settings(), t0};
  limit_signals sig;
  sig.remaining_tokens = 0;
  sig.reset_tokens_ms = 3000;
  CHECK_FALSE(rl.on_signals(0, at(100), sig, false));
  CHECK(ns(rl.paused_until()) == ns(at(3100)));
  auto v = rl.try_acquire(at(200), 0);
  CHECK(v.blocked_by == limit_rule::pause);
  CHECK(ns(v.retry_at) == ns(at(3100)));
  CHECK(rl.try_acquire(at(3100), 0).admitted);

  rate_limiter no_reset{open_settings(), t0};
  sig.reset_tokens_ms = -1;
  no_reset.on_signals(0, at(100), sig, false);
  CHECK(no_reset.try_acquire(at(100), 0).admitted);

  rate_limiter some_left{open_settings(), t0};
  sig.remaining_tokens = 5;
  sig.reset_tokens_ms = 3000;
  some_left.on_signals(0, at(100), sig, false);
  CHECK(some_left.try_acquire(at(100), 0).admitted);
}

// ---------------------------------------------------------------------------------------------------------------
// quota

TEST_CASE("rate_limiter: the provider's remaining count allows r admissions after the answered call",
          "[limiter][rate_limiter][quota]") {
  // P1's reply says 3 left for 5s: P2 and P3 (admitted after P1, before the reply) count, so one more goes,
  // then the quota rule holds calls until the reset, when it lapses (the 60s window outlasts the reset).
  rate_limiter rl{long_window_settings(), t0};
  auto p1 = rl.try_acquire(t0, 0);
  REQUIRE(p1.admitted);
  REQUIRE(rl.try_acquire(at(1), 0).admitted);
  REQUIRE(rl.try_acquire(at(2), 0).admitted);
  CHECK_FALSE(rl.on_signals(p1.permit, at(10), quota(3, 5000), false));

  CHECK(rl.try_acquire(at(20), 0).admitted);
  auto v = rl.try_acquire(at(30), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::quota);
  CHECK(ns(v.retry_at) == ns(at(5010)));
  CHECK(rl.probe(at(5010) - 1ns, 0).blocked_by == limit_rule::quota);
  for (int i = 0; i < 20; ++i) // lapsed: no quota left to count
    CHECK(rl.try_acquire(at(5010), 0).admitted);
}

TEST_CASE("rate_limiter: remaining 0 blocks at once; remaining r for the newest call allows exactly r more",
          "[limiter][rate_limiter][quota]") {
  // remaining 0: nothing more until the reset. remaining 2 in the reply to the newest call: exactly 2 more.
  rate_limiter rl{long_window_settings(), t0};
  auto p = rl.try_acquire(t0, 0);
  REQUIRE(p.admitted);
  rl.on_signals(p.permit, at(10), quota(0, 1000), false);
  auto v = rl.try_acquire(at(10), 0);
  CHECK(v.blocked_by == limit_rule::quota);
  CHECK(ns(v.retry_at) == ns(at(1010)));

  auto q = rl.try_acquire(at(1010), 0);
  REQUIRE(q.admitted);
  rl.on_signals(q.permit, at(1020), quota(2, 1000), false);
  CHECK(rl.try_acquire(at(1030), 0).admitted);
  CHECK(rl.try_acquire(at(1040), 0).admitted);
  CHECK(rl.try_acquire(at(1050), 0).blocked_by == limit_rule::quota);
}

TEST_CASE("rate_limiter: an older reply does not overwrite newer quota information", "[limiter][rate_limiter][quota]") {
  // P2's reply (5 left) arrives before P1's (0 left): P1 answered an earlier request, so its count is stale.
  // The other way round, the newer reply replaces the older one.
  rate_limiter rl{long_window_settings(), t0};
  auto p1 = rl.try_acquire(t0, 0);
  auto p2 = rl.try_acquire(at(1), 0);
  REQUIRE(p1.admitted);
  REQUIRE(p2.admitted);
  rl.on_signals(p2.permit, at(10), quota(5, 10000), false);
  rl.on_signals(p1.permit, at(11), quota(0, 10000), false);
  for (int i = 0; i < 5; ++i)
    CHECK(rl.try_acquire(at(20), 0).admitted);
  auto v = rl.try_acquire(at(20), 0);
  CHECK(v.blocked_by == limit_rule::quota);
  CHECK(ns(v.retry_at) == ns(at(10010)));

  rate_limiter fwd{long_window_settings(), t0};
  auto f1 = fwd.try_acquire(t0, 0);
  auto f2 = fwd.try_acquire(at(1), 0);
  REQUIRE(f1.admitted);
  REQUIRE(f2.admitted);
  fwd.on_signals(f1.permit, at(10), quota(5, 10000), false);
  fwd.on_signals(f2.permit, at(11), quota(0, 3000), false);
  v = fwd.try_acquire(at(20), 0);
  CHECK(v.blocked_by == limit_rule::quota);
  CHECK(ns(v.retry_at) == ns(at(3011)));
}

TEST_CASE("rate_limiter: a partial quota header changes nothing", "[limiter][rate_limiter][quota]") {
  // remaining without a reset (or a reset without remaining) gives no deadline, so no rule.
  rate_limiter rl{open_settings(), t0};
  auto p = rl.try_acquire(t0, 0);
  REQUIRE(p.admitted);
  rl.on_signals(p.permit, at(10), quota(0, -1), false);
  rl.on_signals(p.permit, at(10), quota(-1, 5000), false);
  CHECK(rl.try_acquire(at(20), 0).admitted);
}

TEST_CASE("rate_limiter: the quota lapses when our oldest admission leaves the window, if that comes first",
          "[limiter][rate_limiter][quota]") {
  // 1s window, 20ms margin: the reply to the call at 5ms says 0 left for 5s, but our oldest admission (t0) leaves
  // the window at 1020ms and from then on the window rule knows as much as the provider's count: the quota rule
  // holds calls until min(10ms + 5s, t0 + per + margin) = 1020ms, then lapses (no count left to apply).
  auto s = open_settings();
  s.per = 1000ms;
  s.window_margin = 20ms;
  rate_limiter rl{s, t0};
  REQUIRE(rl.try_acquire(t0, 0).admitted);
  auto p = rl.try_acquire(at(5), 0);
  REQUIRE(p.admitted);
  CHECK_FALSE(rl.on_signals(p.permit, at(10), quota(0, 5000), false));
  auto v = rl.probe(at(10), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::quota);
  CHECK(ns(v.retry_at) == ns(at(1020)));
  CHECK(rl.probe(at(1020) - 1ns, 0).blocked_by == limit_rule::quota);
  for (int i = 0; i < 5; ++i)
    CHECK(rl.try_acquire(at(1020), 0).admitted);

  // A reset sooner than that wins.
  rate_limiter soon{s, t0};
  auto q = soon.try_acquire(t0, 0);
  REQUIRE(q.admitted);
  soon.on_signals(q.permit, at(10), quota(0, 300), false);
  v = soon.probe(at(10), 0);
  CHECK(v.blocked_by == limit_rule::quota);
  CHECK(ns(v.retry_at) == ns(at(310)));

  // With our window log empty (the last admission left it before the reply came), only the reset counts.
  rate_limiter idle{s, t0};
  auto r = idle.try_acquire(t0, 0);
  REQUIRE(r.admitted);
  REQUIRE(idle.window_occupancy(at(1500)) == 0);
  idle.on_signals(r.permit, at(1500), quota(0, 5000), false);
  v = idle.probe(at(1500), 0);
  CHECK(v.blocked_by == limit_rule::quota);
  CHECK(ns(v.retry_at) == ns(at(6500)));
}

// ---------------------------------------------------------------------------------------------------------------
// announced limit (x-ratelimit-limit-requests)

namespace {
limit_signals announced(std::int64_t limit) {
  limit_signals s;
  s.limit_requests = limit;
  return s;
}
} // namespace

TEST_CASE("rate_limiter: an announced request limit below the configured one replaces it",
          "[limiter][rate_limiter][announced]") {
  // 10 per 1s configured, the provider announces 5: on_signals says the rate changed, the window cap and the rate
  // drop to 5, and only 5 calls go in a window; a still lower announcement lowers it again.
  auto s = open_settings();
  s.requests = 10;
  s.burst = 10;
  s.per = 1000ms;
  s.window_margin = 20ms;
  rate_limiter rl{s, t0};
  CHECK_FALSE(rl.announced_limit());
  CHECK(rl.effective_window_cap() == 10);
  CHECK(rl.effective_rate_per_s() == Approx(10.0));

  CHECK(rl.on_signals(0, t0, announced(5), false));
  REQUIRE(rl.announced_limit());
  CHECK(*rl.announced_limit() == 5);
  CHECK(rl.effective_window_cap() == 5);
  CHECK(rl.effective_rate_per_s() == Approx(5.0));
  for (int i = 0; i < 5; ++i)
    CHECK(rl.try_acquire(t0, 0).admitted);
  auto v = rl.try_acquire(t0, 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ns(v.retry_at) == ns(at(1020)));

  CHECK(rl.on_signals(0, at(1), announced(3), false));
  CHECK(*rl.announced_limit() == 3);
  CHECK(rl.effective_window_cap() == 3);
  CHECK(rl.effective_rate_per_s() == Approx(3.0));
}

TEST_CASE("rate_limiter: an announced limit never raises the configured one", "[limiter][rate_limiter][announced]") {
  // Absent (-1), zero, equal or higher announcements change nothing and on_signals says so; once lowered to 4, a
  // single higher announcement (even above the configured 10) leaves the lowest one in force.
  auto s = open_settings();
  s.requests = 10;
  s.per = 1000ms;
  rate_limiter rl{s, t0};
  CHECK_FALSE(rl.on_signals(0, t0, announced(-1), false));
  CHECK_FALSE(rl.on_signals(0, t0, announced(0), false));
  CHECK_FALSE(rl.on_signals(0, t0, announced(10), false));
  CHECK_FALSE(rl.on_signals(0, t0, announced(50), false));
  CHECK_FALSE(rl.announced_limit());
  CHECK(rl.effective_window_cap() == 10);
  CHECK(rl.effective_rate_per_s() == Approx(10.0));

  CHECK(rl.on_signals(0, t0, announced(4), false));
  CHECK_FALSE(rl.on_signals(0, at(1), announced(50), false));
  CHECK_FALSE(rl.on_signals(0, at(2), announced(4), false));
  CHECK(*rl.announced_limit() == 4);
  CHECK(rl.effective_window_cap() == 4);
  CHECK(rl.effective_rate_per_s() == Approx(4.0));
}

TEST_CASE("rate_limiter: an announced limit slows the bucket from the moment it is heard",
          "[limiter][rate_limiter][announced][bucket]") {
  // 10 per 1s, burst 1, empty at t0: 0.5 token earned at 10/s by 50ms, when 5 is announced; the other 0.5 takes
  // 100ms at 5/s, so the next call goes at 150ms (not 100ms at the old rate, not 200ms from scratch).
  auto s = open_settings();
  s.requests = 10;
  s.per = 1000ms;
  s.burst = 1;
  rate_limiter rl{s, t0};
  REQUIRE(rl.try_acquire(t0, 0).admitted);
  REQUIRE(rl.on_signals(0, at(50), announced(5), false));
  auto v = rl.probe(at(60), 0);
  CHECK(v.blocked_by == limit_rule::bucket);
  CHECK(ns(v.retry_at) == ns(at(150)));
  CHECK(rl.probe(at(150) - 1ns, 0).blocked_by == limit_rule::bucket);
  CHECK(rl.try_acquire(at(150), 0).admitted);
}

TEST_CASE("rate_limiter: the throttle scales the announced limit", "[limiter][rate_limiter][announced][throttle]") {
  // Announced 5 of a configured 100, then a throttle cut to 0.8: cap 4, rate 4/s.
  auto s = open_settings();
  s.requests = 100;
  s.per = 1000ms;
  rate_limiter rl{s, t0};
  REQUIRE(rl.on_signals(0, t0, announced(5), false));
  REQUIRE(three_429s(rl, at(10)));
  CHECK(rl.factor() == Approx(0.8));
  CHECK(rl.effective_window_cap() == 4);
  CHECK(rl.effective_rate_per_s() == Approx(4.0));
}

// ---------------------------------------------------------------------------------------------------------------
// estimate

TEST_CASE("rate_limiter: estimate with burst = requests = N per W", "[limiter][rate_limiter][estimate]") {
  // N = 4 per 1s, margin 10ms, nothing sent: with fewer than N ahead the call goes now; with N..2N-1 ahead when
  // the first N leave the window (t0 + W + margin); with 2N ahead a window later still.
  auto s = open_settings();
  s.requests = 4;
  s.burst = 4;
  s.per = 1000ms;
  s.window_margin = 10ms;
  rate_limiter rl{s, t0};
  for (std::int64_t ahead = 0; ahead < 4; ++ahead)
    CHECK(ns(rl.estimate(t0, ahead, 0)) == 0);
  CHECK(ns(rl.estimate(t0, 4, 0)) == ns(at(1010)));
  CHECK(ns(rl.estimate(t0, 7, 0)) == ns(at(1010)));
  CHECK(ns(rl.estimate(t0, 8, 0)) == ns(at(2020)));
  // Nothing was admitted by estimating.
  CHECK(rl.window_occupancy(t0) == 0);
  CHECK(rl.in_flight() == 0);

  // One real admission at t0: at 100ms two more fit now; with three ahead the call waits for the oldest entry
  // (t0) to leave: t0 + W + margin, not 100ms + W + margin.
  REQUIRE(rl.try_acquire(t0, 0).admitted);
  CHECK(ns(rl.estimate(at(100), 0, 0)) == ns(at(100)));
  CHECK(ns(rl.estimate(at(100), 2, 0)) == ns(at(100)));
  CHECK(ns(rl.estimate(at(100), 3, 0)) == ns(at(1010)));
  CHECK(rl.window_occupancy(at(100)) == 1);
}

TEST_CASE("rate_limiter: estimate follows the bucket, the pause and the token budget",
          "[limiter][rate_limiter][estimate]") {
  // Burst 1 at 10/s: k calls ahead cost k * 100ms. A pause pushes everything to its end. A call larger than the
  // token budget never goes. Concurrency is ignored (permits are assumed back in time).
  auto s = open_settings();
  s.requests = 10;
  s.per = 1000ms;
  s.burst = 1;
  rate_limiter rl{s, t0};
  for (std::int64_t k = 0; k <= 5; ++k)
    CHECK(ns(rl.estimate(t0, k, 0)) == ns(at(100 * k)));

  rate_limiter paused{s, t0};
  paused.pause_until(at(5000));
  CHECK(ns(paused.estimate(t0, 0, 0)) == ns(at(5000)));
  CHECK(ns(paused.estimate(t0, 2, 0)) == ns(at(5200)));

  auto tok = open_settings();
  tok.tokens = 1000;
  rate_limiter budget{tok, t0};
  CHECK(budget.estimate(t0, 0, 1001) == rate_limiter::never);
  CHECK(ns(budget.estimate(t0, 0, 1000)) == 0);
  CHECK(ns(budget.estimate(t0, 1, 600)) == ns(at(1000))); // the first 600 must leave the window

  auto one = open_settings();
  one.concurrency = 1;
  rate_limiter busy{one, t0};
  REQUIRE(busy.try_acquire(t0, 0).admitted);
  REQUIRE(busy.probe(at(1), 0).blocked_by == limit_rule::concurrency);
  CHECK(ns(busy.estimate(at(1), 0, 0)) == ns(at(1)));
}

// ---------------------------------------------------------------------------------------------------------------
// feasible

TEST_CASE("rate_limiter: feasible gives no slot to a waiter that cannot make its deadline",
          "[limiter][rate_limiter][feasible]") {
  // 1 per 1s, burst 1: the first waiter goes at t0; the second (deadline 500ms) cannot; the third (deadline 1s)
  // can, because the second took no slot (had it taken the 1s slot, the third would need 2s); the fourth
  // (1999ms) cannot, the fifth (exactly 2s) can: a slot at the deadline counts.
  auto s = open_settings();
  s.requests = 1;
  s.burst = 1;
  s.per = 1000ms;
  rate_limiter rl{s, t0};
  std::vector<std::pair<std::int64_t, steady_time>> waiters = {
      {0, at(5000)}, {0, at(500)}, {0, at(1000)}, {0, at(1999)}, {0, at(2000)}};
  auto ok = rl.feasible(t0, waiters);
  REQUIRE(ok.size() == 5);
  CHECK(ok[0]);
  CHECK_FALSE(ok[1]);
  CHECK(ok[2]);
  CHECK_FALSE(ok[3]);
  CHECK(ok[4]);
  // Nothing was admitted by asking.
  CHECK(rl.probe(t0, 0).admitted);
  CHECK(rl.window_occupancy(t0) == 0);
  CHECK(rl.feasible(t0, {}).empty());
}

TEST_CASE("rate_limiter: feasible skips a call too big for the budget and ignores concurrency",
          "[limiter][rate_limiter][feasible]") {
  // A waiter over the token budget can never go and takes nothing; the one behind it goes at once, deadline now.
  // With the only permit out, waiters still count as feasible: a release comes before any rule would.
  auto s = open_settings();
  s.tokens = 1000;
  s.concurrency = 1;
  rate_limiter rl{s, t0};
  auto ok = rl.feasible(t0, {{2000, at(60000)}, {1000, t0}});
  REQUIRE(ok.size() == 2);
  CHECK_FALSE(ok[0]);
  CHECK(ok[1]);

  REQUIRE(rl.try_acquire(t0, 10).admitted);
  REQUIRE(rl.probe(at(1), 10).blocked_by == limit_rule::concurrency);
  ok = rl.feasible(at(1), {{10, at(1)}, {980, at(1)}, {1, at(1)}});
  REQUIRE(ok.size() == 3);
  CHECK(ok[0]);
  CHECK(ok[1]);
  CHECK_FALSE(ok[2]); // 10 held + 10 + 980 fill the budget until t0's 10 leave at 1s
}

// ---------------------------------------------------------------------------------------------------------------
// throttle

TEST_CASE("rate_limiter: three 429s within 60s cut the factor to 0.8", "[limiter][rate_limiter][throttle]") {
  // The first two 429s only pause; the third within throttle_period cuts rate and window cap by 20%.
  auto s = open_settings();
  s.requests = 100;
  s.per = 1000ms;
  s.burst = 1;
  rate_limiter rl{s, t0};
  CHECK(rl.factor() == 1.0);
  CHECK(rl.effective_rate_per_s() == Approx(100.0));
  CHECK(rl.effective_window_cap() == 100);
  CHECK_FALSE(rl.on_signals(0, at(0), retry_after(0), true));
  CHECK_FALSE(rl.on_signals(0, at(20000), retry_after(0), true));
  CHECK(rl.on_signals(0, at(59999), retry_after(0), true));
  CHECK(rl.factor() == Approx(0.8));
  CHECK(rl.effective_rate_per_s() == Approx(80.0));
  CHECK(rl.effective_window_cap() == 80);
}

TEST_CASE("rate_limiter: only 429s within throttle_period count, and a cut starts the count afresh",
          "[limiter][rate_limiter][throttle]") {
  // 429s at 0s, 40s, 80s, 100s: never three within 60s (the 60s-old one has left). One more at 100.001s makes
  // 80s, 100s, 100.001s: a cut. After it, two more 429s do not cut again; the third does.
  auto s = open_settings();
  s.requests = 100;
  rate_limiter rl{s, t0};
  CHECK_FALSE(rl.on_signals(0, at(0), retry_after(0), true));
  CHECK_FALSE(rl.on_signals(0, at(40000), retry_after(0), true));
  CHECK_FALSE(rl.on_signals(0, at(80000), retry_after(0), true));
  CHECK_FALSE(rl.on_signals(0, at(100000), retry_after(0), true));
  CHECK(rl.factor() == 1.0);
  CHECK(rl.on_signals(0, at(100001), retry_after(0), true));
  CHECK(rl.factor() == Approx(0.8));
  CHECK_FALSE(rl.on_signals(0, at(100002), retry_after(0), true));
  CHECK_FALSE(rl.on_signals(0, at(100003), retry_after(0), true));
  CHECK(rl.factor() == Approx(0.8));
  CHECK(rl.on_signals(0, at(100004), retry_after(0), true));
  CHECK(rl.factor() == Approx(0.64));
}

TEST_CASE("rate_limiter: further cuts go down to the floor 0.5 and not below", "[limiter][rate_limiter][throttle]") {
  // 1.0 -> 0.8 -> 0.64 -> 0.512 -> 0.5 (floor), then more 429s change nothing; rate and window cap follow.
  auto s = open_settings();
  s.requests = 100;
  s.per = 2000ms;
  rate_limiter rl{s, t0};
  const double factors[] = {0.8, 0.64, 0.512, 0.5};
  const std::int64_t caps[] = {80, 64, 51, 50};
  std::int64_t ms = 0;
  for (int i = 0; i < 4; ++i) {
    CHECK(three_429s(rl, at(ms += 1000)));
    CHECK(rl.factor() == Approx(factors[i]));
    CHECK(rl.effective_rate_per_s() == Approx(50.0 * factors[i]));
    CHECK(rl.effective_window_cap() == caps[i]);
  }
  CHECK(rl.factor() == 0.5);
  for (int i = 0; i < 3; ++i) {
    CHECK_FALSE(three_429s(rl, at(ms += 1000)));
    CHECK(rl.factor() == 0.5);
    CHECK(rl.effective_window_cap() == 50);
  }
}

TEST_CASE("rate_limiter: the throttled window cap counts back from the newest entries",
          "[limiter][rate_limiter][throttle][window]") {
  // 10 per 1s, 10 admissions at 0..90ms; cut to 0.8 the cap is 8, so a call waits until only 7 remain, i.e.
  // until the third oldest entry (at 20ms) leaves: 20ms + per + margin.
  auto s = open_settings();
  s.requests = 10;
  s.burst = 10;
  s.per = 1000ms;
  s.window_margin = 20ms;
  rate_limiter rl{s, t0};
  for (int i = 0; i < 10; ++i)
    REQUIRE(rl.try_acquire(at(10 * i), 0).admitted);
  REQUIRE(three_429s(rl, at(100)));
  REQUIRE(rl.effective_window_cap() == 8);
  auto v = rl.probe(at(500), 0);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ns(v.retry_at) == ns(at(20 + 1020)));
  // Once the entries at 0..20ms have left, 7 remain: one more fits, then the next waits for the 30ms entry.
  CHECK(rl.try_acquire(at(1040), 0).admitted);
  v = rl.probe(at(1040), 0);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ns(v.retry_at) == ns(at(30 + 1020)));
}

TEST_CASE("rate_limiter: the throttled bucket refills at the cut rate", "[limiter][rate_limiter][throttle][bucket]") {
  // 10 per 1s, burst 1: a token every 100ms; at factor 0.8 every 125ms.
  auto s = open_settings();
  s.requests = 10;
  s.per = 1000ms;
  s.burst = 1;
  rate_limiter rl{s, t0};
  REQUIRE(three_429s(rl, t0));
  REQUIRE(rl.try_acquire(t0, 0).admitted);
  auto v = rl.probe(t0, 0);
  CHECK(v.blocked_by == limit_rule::bucket);
  CHECK(ns(v.retry_at) == ns(at(125)));
  CHECK(rl.probe(at(125) - 1ns, 0).blocked_by == limit_rule::bucket);
  CHECK(rl.try_acquire(at(125), 0).admitted);
}

TEST_CASE("rate_limiter: a rate change applies from the moment it happens",
          "[limiter][rate_limiter][throttle][bucket]") {
  // The bucket earns at the rate in force at each moment: 10/s before a cut, 8/s after it (and 5/s before a
  // restore, 6.25/s after it). Time before the change must not be credited at the new rate.
  auto s = open_settings();
  s.requests = 10;
  s.per = 1000ms;
  s.burst = 1;
  {
    rate_limiter rl{s, t0};
    REQUIRE(rl.try_acquire(t0, 0).admitted); // empty at t0
    REQUIRE(three_429s(rl, at(50)));         // 0.5 token earned at 10/s, the other 0.5 takes 62.5ms at 8/s
    auto v = rl.probe(at(60), 0);
    CHECK(v.blocked_by == limit_rule::bucket);
    CHECK(ns(v.retry_at) == ns(t0 + 112500us));
  }
  {
    rate_limiter rl{s, t0};
    std::int64_t ms = 0;
    for (int i = 0; i < 4; ++i)
      REQUIRE(three_429s(rl, at(ms += 1000)));
    REQUIRE(rl.factor() == 0.5);
    auto start = at(ms + 600000 - 100);
    REQUIRE(rl.try_acquire(start, 0).admitted); // empty; 5/s
    REQUIRE(rl.maybe_restore(start + 100ms));   // 0.5 token earned at 5/s; the rest takes 80ms at 6.25/s
    REQUIRE(rl.factor() == Approx(0.625));
    auto v = rl.probe(start + 110ms, 0);
    CHECK(v.blocked_by == limit_rule::bucket);
    CHECK(ns(v.retry_at) == ns(start + 180ms));
  }
}

TEST_CASE("rate_limiter: each quiet period restores one step, back to exactly 1.0",
          "[limiter][rate_limiter][throttle]") {
  // From the floor 0.5, every 10 minutes without a 429 (counted from the last 429 or change) restores a step:
  // 0.625, 0.78125, 0.9765625, then exactly 1.0, after which there is nothing to restore.
  auto s = open_settings();
  s.requests = 100;
  rate_limiter rl{s, t0};
  std::int64_t ms = 0;
  for (int i = 0; i < 4; ++i)
    REQUIRE(three_429s(rl, at(ms += 1000)));
  REQUIRE(rl.factor() == 0.5);
  const std::int64_t last = ms;
  const std::int64_t quiet = 600000;
  CHECK_FALSE(rl.maybe_restore(at(last + quiet - 1)));
  CHECK(rl.factor() == 0.5);
  const double steps[] = {0.625, 0.78125, 0.9765625};
  for (int i = 0; i < 3; ++i) {
    auto due = last + (i + 1) * quiet;
    CHECK_FALSE(rl.maybe_restore(at(due) - 1ns));
    CHECK(rl.maybe_restore(at(due)));
    CHECK(rl.factor() == Approx(steps[i]));
    CHECK_FALSE(rl.maybe_restore(at(due + 1)));
  }
  CHECK(rl.maybe_restore(at(last + 4 * quiet)));
  CHECK(rl.factor() == 1.0);
  CHECK(rl.effective_window_cap() == 100);
  CHECK(rl.effective_rate_per_s() == Approx(100.0));
  CHECK_FALSE(rl.maybe_restore(at(last + 10 * quiet)));
  CHECK(rl.factor() == 1.0);
}

TEST_CASE("rate_limiter: one cut is undone by one quiet period, exactly", "[limiter][rate_limiter][throttle]") {
  // 0.8 / 0.8 lands on 1.0 exactly, not 1.0000000000000002.
  auto s = open_settings();
  s.requests = 10;
  rate_limiter rl{s, t0};
  REQUIRE(three_429s(rl, at(1000)));
  CHECK_FALSE(rl.maybe_restore(at(1000)));
  CHECK(rl.maybe_restore(at(601000)));
  CHECK(rl.factor() == 1.0);
  CHECK(rl.effective_window_cap() == 10);
}

TEST_CASE("rate_limiter: a 429 that does not cut still restarts the quiet period",
          "[limiter][rate_limiter][throttle]") {
  // Cut at 1s; a lone 429 at 5min: no restore at 10min after the cut, only 10min after that 429.
  auto s = open_settings();
  s.requests = 10;
  rate_limiter rl{s, t0};
  REQUIRE(three_429s(rl, at(1000)));
  CHECK_FALSE(rl.on_signals(0, at(300000), retry_after(0), true));
  CHECK_FALSE(rl.maybe_restore(at(601000)));
  CHECK_FALSE(rl.maybe_restore(at(900000) - 1ns));
  CHECK(rl.maybe_restore(at(900000)));
  CHECK(rl.factor() == 1.0);
}

TEST_CASE("rate_limiter: an untouched throttle has nothing to restore", "[limiter][rate_limiter][throttle]") {
  // maybe_restore at factor 1.0 is a no-op whenever it is called.
  rate_limiter rl{open_settings(), t0};
  CHECK_FALSE(rl.maybe_restore(t0));
  CHECK_FALSE(rl.maybe_restore(at(100000000)));
  CHECK(rl.factor() == 1.0);
}

TEST_CASE("headroom is exactly how many calls try_acquire admits at once; estimate skips its simulation only then") {
  // Random states of window, bucket and concurrency (the rules headroom counts): at each, `h` acquisitions at the
  // same instant succeed and the next one fails, and estimate(now, ahead) is now for every ahead < h.
  std::mt19937 rng{7};
  for (int round = 0; round < 200; ++round) {
    auto s = open_settings();
    s.requests = 1 + static_cast<std::int64_t>(rng() % 20);
    s.per = std::chrono::milliseconds{100 + rng() % 2000};
    s.burst = 1 + static_cast<std::int64_t>(rng() % 8);
    s.concurrency = 1 + static_cast<std::int64_t>(rng() % 6);
    rate_limiter l{s, t0};
    auto now = t0;
    std::vector<std::uint64_t> held;
    for (int step = 0, n = static_cast<int>(rng() % 30); step < n; ++step) {
      now += std::chrono::milliseconds{rng() % 300};
      if (!held.empty() && rng() % 2) {
        l.release(held.back(), now, -1);
        held.pop_back();
      } else if (auto v = l.try_acquire(now, 0); v.admitted) {
        held.push_back(v.permit);
      }
    }
    auto h = l.headroom(now);
    for (std::int64_t ahead = 0; ahead < h; ++ahead)
      CHECK(l.estimate(now, ahead, 0) == now);
    auto copy = l;
    for (std::int64_t i = 0; i < h; ++i)
      REQUIRE(copy.try_acquire(now, 0).admitted);
    CHECK_FALSE(copy.try_acquire(now, 0).admitted);
  }
}

TEST_CASE("headroom is 0 under the rules it does not count (a pause, min_interval, tokens)") {
  auto s = open_settings();
  s.min_interval = std::chrono::milliseconds{10};
  CHECK(rate_limiter{s, t0}.headroom(t0) == 0);
  auto t = open_settings();
  t.tokens = 1000;
  CHECK(rate_limiter{t, t0}.headroom(t0) == 0);
  rate_limiter p{open_settings(), t0};
  p.pause_until(at(500));
  CHECK(p.headroom(at(100)) == 0);
  CHECK(p.headroom(at(500)) > 0);
}

TEST_CASE("rate_limiter: a permit given back unsent frees its slot but leaves the mean hold time alone",
          "[limiter][rate_limiter]") {
  // A call dropped before it went upstream (its client hung up) held its permit for a few microseconds: counting
  // that would make the estimates believe the provider answers almost at once.
  auto s = open_settings();
  s.concurrency = 1;
  rate_limiter rl{s, t0};
  auto a = rl.try_acquire(t0, 0);
  REQUIRE(a.admitted);
  CHECK(rl.release(a.permit, at(400), -1));
  CHECK(rl.mean_hold() == 400ms);
  auto b = rl.try_acquire(at(500), 0);
  REQUIRE(b.admitted);
  CHECK_FALSE(rl.try_acquire(at(500), 0).admitted); // concurrency 1: held
  CHECK(rl.release(b.permit, at(501), -1, false));
  CHECK(rl.mean_hold() == 400ms);             // unchanged
  CHECK(rl.try_acquire(at(501), 0).admitted); // and the slot is free again
}

// ---------------------------------------------------------------------------------------------------------------
// hold prior: concurrency planned from the first call

TEST_CASE("rate_limiter: with a hold prior, a full concurrency is expected back after the prior, not at expiry",
          "[limiter][rate_limiter][concurrency][prior]") {
  // A cold limiter (no release measured yet) with hold_prior 300ms: four permits out at t0, the fifth call is
  // told retry_at t0 + 300ms (it used to be the 10-minute permit expiry, which callers took as "next slot").
  // A permit held past the prior is expected back 1ms from now, never in the past.
  auto s = open_settings();
  s.concurrency = 4;
  s.permit_ttl = 600000ms;
  s.hold_prior = 300ms;
  rate_limiter rl{s, t0};
  for (int i = 0; i < 4; ++i)
    REQUIRE(rl.try_acquire(t0, 0).admitted);
  auto v = rl.try_acquire(at(1), 0);
  CHECK(v.blocked_by == limit_rule::concurrency);
  CHECK(ns(v.retry_at) == ns(at(300)));
  CHECK(ns(rl.probe(at(400), 0).retry_at) == ns(at(401)));
  CHECK(rl.expected_hold() == 300ms);
}

TEST_CASE("rate_limiter: estimate plans concurrency with the prior before the first release, then with the mean",
          "[limiter][rate_limiter][concurrency][prior][estimate]") {
  // 100 calls at once, concurrency 4, prior 300ms: the k-th waits floor(k / 4) rounds of ~300ms, so the last is
  // planned at about 24 rounds (7.2 s), not "now". Once releases measured 200ms, the plan follows them.
  auto s = open_settings();
  s.concurrency = 4;
  s.hold_prior = 300ms;
  rate_limiter rl{s, t0};
  CHECK(ns(rl.estimate(t0, 3, 0)) == 0);
  auto k4 = ns(rl.estimate(t0, 4, 0));
  CHECK(k4 >= ns(at(300)));
  CHECK(k4 <= ns(at(302)));
  auto k99 = ns(rl.estimate(t0, 99, 0));
  CHECK(k99 >= ns(at(24 * 300)));
  CHECK(k99 <= ns(at(24 * 302)));

  std::vector<std::uint64_t> permits;
  for (int i = 0; i < 4; ++i)
    permits.push_back(rl.try_acquire(t0, 0).permit);
  for (auto p : permits)
    REQUIRE(rl.release(p, at(200), -1));
  CHECK(rl.expected_hold() == 200ms);
  auto k8 = ns(rl.estimate(at(200), 8, 0));
  CHECK(k8 >= ns(at(200 + 2 * 200)));
  CHECK(k8 <= ns(at(200 + 2 * 202)));
}

TEST_CASE("rate_limiter: without a prior and before a release, concurrency is left out of estimates as before",
          "[limiter][rate_limiter][concurrency][prior]") {
  // hold_prior 0 keeps the old behaviour: nothing known, so estimate() does not plan concurrency.
  auto s = open_settings();
  s.concurrency = 4;
  rate_limiter rl{s, t0};
  CHECK(ns(rl.estimate(t0, 50, 0)) == 0);
}

TEST_CASE("rate_limiter: a provider's settings take its expected latency, a sim provider's latency, or 1s",
          "[limiter][rate_limiter][prior]") {
  squad::provider_config p;
  p.kind = "openai";
  CHECK(squad::limiter_settings_from(p).hold_prior == 1000ms);
  p.limits.expected_latency = 250ms;
  CHECK(squad::limiter_settings_from(p).hold_prior == 250ms);
  p.limits.expected_latency = 0ms;
  p.kind = "sim";
  p.sim.latency = 100ms;
  p.sim.jitter = 40ms;
  p.sim.per_token = 1ms;
  p.sim.max_tokens = 200;
  CHECK(squad::limiter_settings_from(p).hold_prior == 100ms + 20ms + 100ms);
}

// ---------------------------------------------------------------------------------------------------------------
// confirmed sends: the window counts a call from when it went upstream

TEST_CASE("rate_limiter: with confirm_sends, a window entry counts from its confirmed send, not its admission",
          "[limiter][rate_limiter][window][sent]") {
  // 2 per 1s. Admitted at 0 and 10ms, but the first went upstream only at 300ms (its grant waited in a busy
  // mailbox). The window frees at 300ms + 1s, not at 1s: the provider saw that call arrive at 300ms.
  auto s = open_settings();
  s.requests = 2;
  s.per = 1000ms;
  s.confirm_sends = true;
  rate_limiter rl{s, t0};
  auto a = rl.try_acquire(t0, 0);
  auto b = rl.try_acquire(at(10), 0);
  REQUIRE(a.admitted);
  REQUIRE(b.admitted);
  rl.sent(b.permit, at(10));
  rl.sent(a.permit, at(300));
  auto v = rl.probe(at(1005), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ns(v.retry_at) == ns(at(1010))); // b's entry leaves first now: it went before a
  CHECK(rl.try_acquire(at(1010), 0).admitted);
  CHECK_FALSE(rl.probe(at(1299), 0).admitted);
  CHECK(rl.probe(at(1300), 0).admitted);
}

TEST_CASE("rate_limiter: an unconfirmed entry stays in the window until its send or its release",
          "[limiter][rate_limiter][window][sent]") {
  // 1 per 1s: a call admitted at 0 and never confirmed holds the window past 1s (it may still be about to go);
  // its release at 2s counts as its send, so the window frees at 3s. A second sent() is ignored.
  auto s = open_settings();
  s.requests = 1;
  s.per = 1000ms;
  s.confirm_sends = true;
  rate_limiter rl{s, t0};
  auto a = rl.try_acquire(t0, 0);
  REQUIRE(a.admitted);
  CHECK_FALSE(rl.probe(at(1500), 0).admitted);
  CHECK(rl.headroom(at(1500)) == 0);
  CHECK(rl.release(a.permit, at(2000), -1));
  rl.sent(a.permit, at(2500)); // too late, already counted from the release
  CHECK_FALSE(rl.probe(at(2999), 0).admitted);
  CHECK(rl.probe(at(3000), 0).admitted);
}

TEST_CASE("rate_limiter: a send or release is matched to its entry behind hundreds of newer ones",
          "[limiter][rate_limiter][window][sent]") {
  // The entry is looked for from the newest back to its admission: a (admitted at 0) is confirmed at 600ms behind
  // 500 calls admitted and sent since, and c's release settles its entry behind 200 newer ones. Had either been
  // missed, it would stay pending (in the window until 30s past its time) and the headroom would be one short.
  auto s = open_settings();
  s.requests = 702;
  s.per = 1000ms;
  s.confirm_sends = true;
  rate_limiter rl{s, t0};
  auto a = rl.try_acquire(t0, 0);
  REQUIRE(a.admitted);
  for (int i = 1; i <= 500; ++i) {
    auto b = rl.try_acquire(at(i), 0);
    REQUIRE(b.admitted);
    rl.sent(b.permit, at(i));
  }
  rl.sent(a.permit, at(600));
  auto c = rl.try_acquire(at(601), 0);
  REQUIRE(c.admitted);
  for (int i = 602; i <= 801; ++i)
    REQUIRE(rl.try_acquire(at(i), 0).admitted);
  CHECK(rl.release(c.permit, at(900), -1));
  CHECK(rl.headroom(at(1599)) == 702 - 1 - 1 - 200); // a, c and the 200 are still in the window
  CHECK(rl.headroom(at(1600)) == 702 - 1 - 200);     // a left at 600 + 1s
  CHECK(rl.headroom(at(1900)) == 702 - 200);         // c left at 900 + 1s; the 200 stay pending
}

TEST_CASE("rate_limiter: without confirm_sends, sent() changes nothing", "[limiter][rate_limiter][window][sent]") {
  auto s = open_settings();
  s.requests = 1;
  s.per = 1000ms;
  rate_limiter rl{s, t0};
  auto a = rl.try_acquire(t0, 0);
  rl.sent(a.permit, at(500));
  CHECK(rl.probe(at(1000), 0).admitted);
}

TEST_CASE("rate_limiter: limiter_settings_from takes the throttle from limits.throttle",
          "[limiter][rate_limiter][throttle]") {
  squad::limits_config l;
  l.throttle.after = 2;
  l.throttle.period = 30000ms;
  l.throttle.step = 0.25;
  l.throttle.floor = 0.4;
  l.throttle.quiet = 300000ms;
  auto s = squad::limiter_settings_from(l);
  CHECK(s.throttle_after == 2);
  CHECK(s.throttle_period == 30000ms);
  CHECK(s.throttle_step == Approx(0.25));
  CHECK(s.throttle_floor == Approx(0.4));
  CHECK(s.throttle_quiet == 300000ms);
  // Two 429s now cut the rate by a quarter.
  s.requests = 100;
  s.per = 1000ms;
  rate_limiter rl{s, t0};
  CHECK_FALSE(rl.on_signals(0, t0, retry_after(0), true));
  CHECK(rl.on_signals(0, t0, retry_after(0), true));
  CHECK(rl.factor() == Approx(0.75));
}

TEST_CASE("rate_limiter: an entry never confirmed leaves the window 30s after it would have",
          "[limiter][rate_limiter][window][sent]") {
  // A dispatcher that died holding a grant never confirms it nor releases it: its window slot is not held for the
  // permit's 10 minutes, only for per + 30s.
  auto s = open_settings();
  s.requests = 1;
  s.per = 1000ms;
  s.confirm_sends = true;
  rate_limiter rl{s, t0};
  REQUIRE(rl.try_acquire(t0, 0).admitted);
  CHECK_FALSE(rl.probe(at(30999), 0).admitted);
  CHECK(rl.probe(at(31000), 0).admitted);
}

TEST_CASE("rate_limiter: a lowered announced limit recovers after a whole window of higher announcements",
          "[limiter][rate_limiter][announced]") {
  // Lowered to 4; then 8 and 9 are announced for a whole window (1 s): raised to 8, the lowest of them. A later
  // 20 for a window restores the configured 10, never more. A lower one in between starts the window again.
  auto s = open_settings();
  s.requests = 10;
  s.per = 1000ms;
  rate_limiter rl{s, t0};
  REQUIRE(rl.on_signals(0, t0, announced(4), false));
  CHECK_FALSE(rl.on_signals(0, at(100), announced(9), false));
  CHECK_FALSE(rl.on_signals(0, at(600), announced(8), false));
  CHECK(*rl.announced_limit() == 4);
  CHECK(rl.on_signals(0, at(1100), announced(9), false));
  CHECK(*rl.announced_limit() == 8);
  CHECK_THAT(rl.change_note(), Catch::Contains("announces 8"));
  CHECK_FALSE(rl.on_signals(0, at(1200), announced(20), false));
  CHECK_FALSE(rl.on_signals(0, at(1700), announced(8), false)); // not higher: the window starts again
  CHECK_FALSE(rl.on_signals(0, at(1800), announced(20), false));
  CHECK_FALSE(rl.on_signals(0, at(2700), announced(20), false));
  CHECK(rl.on_signals(0, at(2800), announced(20), false));
  CHECK_FALSE(rl.announced_limit());
  CHECK(rl.effective_window_cap() == 10);
}

TEST_CASE("rate_limiter: a 429 at more calls in flight than succeeded lately teaches a lower concurrency",
          "[limiter][rate_limiter][concurrency]") {
  // Configured 6 at once, ample rates. Three calls in flight answer fine; the fourth and fifth (admitted with 4
  // and 5 in flight) are answered 429: the provider allows 3. The limiter admits 3 at once from then on, and a
  // quiet period (throttle_quiet) gives one permit back at a time until the configured 6.
  auto s = open_settings();
  s.concurrency = 6;
  s.throttle_quiet = 10000ms;
  rate_limiter rl{s, t0};
  std::vector<std::uint64_t> p;
  for (int i = 0; i < 5; ++i)
    p.push_back(rl.try_acquire(at(i), 0).permit);
  for (int i = 0; i < 3; ++i) {
    CHECK_FALSE(rl.on_signals(p[static_cast<std::size_t>(i)], at(100), squad::limit_signals{}, false));
  }
  CHECK(rl.on_signals(p[3], at(101), squad::limit_signals{}, true));
  CHECK(rl.concurrency_now() == 3);
  CHECK_THAT(rl.change_note(), Catch::Contains("allows 3 calls at once"));
  for (auto id : p)
    rl.release(id, at(102), -1);
  for (int i = 0; i < 3; ++i)
    CHECK(rl.try_acquire(at(5000), 0).admitted);
  auto v = rl.try_acquire(at(5000), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == squad::limit_rule::concurrency);
  CHECK_FALSE(rl.maybe_restore(at(9000)));
  CHECK(rl.maybe_restore(at(10200)));
  CHECK(rl.concurrency_now() == 4);
  CHECK(rl.maybe_restore(at(20300)));
  CHECK(rl.maybe_restore(at(30400)));
  CHECK(rl.concurrency_now() == 6);
  CHECK_FALSE(rl.maybe_restore(at(40500)));
}

TEST_CASE("rate_limiter: a 429 storm with nothing answered teaches no concurrency",
          "[limiter][rate_limiter][concurrency]") {
  // Every call refused: nothing shows that fewer at once would pass, so the pause (Retry-After) is the answer,
  // not a smaller concurrency that would outlast the storm.
  auto s = open_settings();
  s.concurrency = 6;
  rate_limiter rl{s, t0};
  std::vector<std::uint64_t> p;
  for (int i = 0; i < 5; ++i)
    p.push_back(rl.try_acquire(at(i), 0).permit);
  for (auto id : p)
    rl.on_signals(id, at(100), squad::limit_signals{}, true);
  CHECK(rl.concurrency_now() == 6);
}

TEST_CASE("rate_limiter: per_day admits that many in 24 h, then waits for the day window's end",
          "[limiter][rate_limiter][day]") {
  auto s = open_settings();
  s.per_day = 3;
  rate_limiter rl{s, t0};
  for (int i = 0; i < 3; ++i) {
    auto v = rl.try_acquire(at(i * 1000), 0);
    REQUIRE(v.admitted);
    rl.release(v.permit, at(i * 1000 + 10), -1);
  }
  auto v = rl.try_acquire(at(5000), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == squad::limit_rule::day);
  CHECK(v.retry_at == t0 + std::chrono::hours{24});
  CHECK(rl.estimate(at(5000), 0, 0) == t0 + std::chrono::hours{24});
  CHECK(rl.try_acquire(t0 + std::chrono::hours{24}, 0).admitted);
}

TEST_CASE("rate_limiter: a day's count with fewer left than the window's binds as the quota",
          "[limiter][rate_limiter][day]") {
  // Cerebras sends both: 50 left this minute, 2 left today (resetting in an hour). Two more are admitted, the
  // third waits for the day's reset, not for our minute window.
  auto s = open_settings();
  rate_limiter rl{s, t0};
  auto first = rl.try_acquire(t0, 0);
  squad::limit_signals sig;
  sig.remaining_requests = 50;
  sig.reset_requests_ms = 60000;
  sig.remaining_requests_day = 2;
  sig.reset_requests_day_ms = 3600000;
  rl.on_signals(first.permit, at(10), sig, false);
  rl.release(first.permit, at(10), -1);
  CHECK(rl.try_acquire(at(20), 0).admitted);
  CHECK(rl.try_acquire(at(30), 0).admitted);
  auto v = rl.try_acquire(at(40), 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == squad::limit_rule::quota);
  CHECK(v.retry_at == at(10) + 3600000ms);
}
