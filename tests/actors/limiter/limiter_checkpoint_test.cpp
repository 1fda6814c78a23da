// A limiter's state across a restart, as pure logic: checkpoint() in one process (one steady clock), restore() in the
// next (another steady clock: its epoch is unrelated), linked only by the wall clock. Every case moves the wall clock
// and the steady clock of the second process by hand.
#include "actors/limiter/rate_limiter.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

using namespace std::chrono_literals;
using squad::limit_rule;
using squad::limit_signals;
using squad::limiter_checkpoint;
using squad::limiter_memory;
using squad::limiter_settings;
using squad::rate_limiter;
using squad::steady_time;

namespace {

// The first process's steady clock, and the second's: unrelated epochs, both far from zero.
const steady_time first = steady_time{} + std::chrono::hours{1000};
const steady_time second = steady_time{} + std::chrono::hours{7};
// The wall clock at `first` (unix ms).
constexpr std::int64_t wall0 = 1'765'000'000'000;

steady_time at(std::int64_t ms) {
  return first + std::chrono::milliseconds{ms};
}
steady_time later_at(std::int64_t ms) {
  return second + std::chrono::milliseconds{ms};
}
std::int64_t ms_after(steady_time base, steady_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - base).count();
}

// 3 per 60 s with the whole window as burst; no margin, no other rule in the way.
limiter_settings three_per_minute() {
  limiter_settings s;
  s.requests = 3;
  s.per = 60000ms;
  s.burst = 3;
  s.concurrency = std::numeric_limits<std::int64_t>::max();
  s.window_margin = 0ms;
  return s;
}

limiter_settings open_settings() {
  auto s = three_per_minute();
  s.requests = 1000000;
  s.burst = 1000000;
  s.per = 1000ms;
  return s;
}

limit_signals retry_after(std::int64_t ms) {
  limit_signals s;
  s.retry_after_ms = ms;
  return s;
}

// A checkpoint taken at `now_ms` after `first`, restored into a fresh limiter at `second` + `restore_ms` with the wall
// clock moved on by `wall_gap_ms`.
rate_limiter restored(const rate_limiter& from, std::int64_t now_ms, std::int64_t wall_gap_ms,
                      const limiter_settings& s, squad::limiter_restore_report* report = nullptr) {
  auto cp = from.checkpoint(at(now_ms), wall0 + now_ms);
  rate_limiter next{s, second};
  auto r = next.restore(cp, second, wall0 + now_ms + wall_gap_ms);
  if (report)
    *report = r;
  return next;
}

} // namespace

TEST_CASE("limiter checkpoint: a full window restored 10 s later admits nothing until its oldest entry is 60 s old",
          "[limiter][checkpoint]") {
  // 3 of 3 admitted at 0, 1 and 2 s; the process dies at 2 s and the next starts 10 s later (12 s after the first
  // admission). An empty limiter would admit 3 at once; the restored one admits the 4th call at 60 s after the
  // first, the 5th at 61 s.
  auto s = three_per_minute();
  rate_limiter rl{s, first};
  for (int i = 0; i < 3; ++i)
    REQUIRE(rl.try_acquire(at(i * 1000), 0).admitted);
  squad::limiter_restore_report report;
  auto next = restored(rl, 2000, 10000, s, &report);
  CHECK(report.in_window == 3);
  CHECK(report.stale == 0);
  CHECK(report.age_ms == 10000);
  CHECK(next.window_occupancy(second) == 3);
  auto v = next.probe(second, 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ms_after(second, v.retry_at) == 48000); // 60 s after the first admission
  CHECK_FALSE(next.try_acquire(later_at(47999), 0).admitted);
  CHECK(next.try_acquire(later_at(48000), 0).admitted);
  CHECK_FALSE(next.try_acquire(later_at(48999), 0).admitted);
  CHECK(next.try_acquire(later_at(49000), 0).admitted);
  rate_limiter empty{s, second}; // what a restart did before checkpoints
  CHECK(empty.try_acquire(second, 0).admitted);
}

TEST_CASE("limiter checkpoint: entries older than the window are dropped, the rest restored", "[limiter][checkpoint]") {
  auto s = three_per_minute();
  rate_limiter rl{s, first};
  REQUIRE(rl.try_acquire(at(0), 0).admitted);
  REQUIRE(rl.try_acquire(at(30000), 0).admitted);
  squad::limiter_restore_report report;
  auto next = restored(rl, 30000, 40000, s, &report); // restored 70 s after the first entry, 40 s after the second
  CHECK(report.in_window == 1);
  CHECK(report.stale == 1);
  CHECK(next.window_occupancy(second) == 1);
  CHECK(next.try_acquire(second, 0).admitted);
  CHECK(next.try_acquire(second, 0).admitted);
  CHECK_FALSE(next.try_acquire(second, 0).admitted);  // the restored one still counts
  auto gone = restored(rl, 30000, 90000, s, &report); // long after both
  CHECK(report.in_window == 0);
  CHECK(report.stale == 2);
  CHECK(gone.headroom(second) == 3);
}

TEST_CASE("limiter checkpoint: a call granted but not yet sent is dated at the checkpoint", "[limiter][checkpoint]") {
  // With confirm_sends, a granted call counts from its send. One granted at 0 and not confirmed by the checkpoint
  // at 5 s went at 5 s at the earliest: it is restored as sent then, not at its grant.
  auto s = three_per_minute();
  s.confirm_sends = true;
  rate_limiter rl{s, first};
  for (int i = 0; i < 3; ++i)
    REQUIRE(rl.try_acquire(at(0), 0).admitted);
  auto next = restored(rl, 5000, 0, s);
  auto v = next.probe(second, 0);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ms_after(second, v.retry_at) == 60000);
}

TEST_CASE("limiter checkpoint: a Retry-After pause survives the restart", "[limiter][checkpoint][pause]") {
  // A 429 at 0 with Retry-After 30 s; checkpoint at 5 s; the next process starts 10 s later: 15 s of pause left.
  auto s = open_settings();
  rate_limiter rl{s, first};
  auto p = rl.try_acquire(at(0), 0).permit;
  rl.on_signals(p, at(0), retry_after(30000), true);
  squad::limiter_restore_report report;
  auto next = restored(rl, 5000, 10000, s, &report);
  CHECK(report.paused_ms == 15000);
  CHECK(report.paused_until_ms == wall0 + 30000);
  auto v = next.probe(second, 0);
  CHECK(v.blocked_by == limit_rule::pause);
  CHECK(ms_after(second, v.retry_at) == 15000);
  CHECK(next.try_acquire(later_at(15000), 0).admitted);
  auto over = restored(rl, 5000, 40000, s, &report); // started after the pause's end
  CHECK(report.paused_ms == 0);
  CHECK(over.try_acquire(second, 0).admitted);
}

TEST_CASE("limiter checkpoint: a learned concurrency survives; a lower configured one still applies",
          "[limiter][checkpoint][concurrency]") {
  // As in the rate_limiter case: configured 6, three answered together, the 4th in flight refused: it allows 3.
  auto s = open_settings();
  s.concurrency = 6;
  s.throttle_quiet = 10000ms;
  rate_limiter rl{s, first};
  std::vector<std::uint64_t> p;
  for (int i = 0; i < 5; ++i)
    p.push_back(rl.try_acquire(at(i), 0).permit);
  for (int i = 0; i < 3; ++i)
    rl.on_signals(p[static_cast<std::size_t>(i)], at(100), limit_signals{}, false);
  REQUIRE(rl.on_signals(p[3], at(101), limit_signals{}, true));
  REQUIRE(rl.concurrency_now() == 3);
  // Restored 4 s later: still 3 at once (the calls in flight died with the process: their permits are not kept).
  auto next = restored(rl, 1000, 4000, s);
  CHECK(next.concurrency_now() == 3);
  for (int i = 0; i < 3; ++i)
    CHECK(next.try_acquire(second, 0).admitted);
  CHECK(next.try_acquire(second, 0).blocked_by == limit_rule::concurrency);
  // Its quiet period counts from the 429 (at 101 ms, 4.9 s before the restart), not from the restart: one permit
  // back 10 s after it.
  CHECK_FALSE(next.maybe_restore(later_at(5100)));
  CHECK(next.maybe_restore(later_at(5102)));
  CHECK(next.concurrency_now() == 4);
  auto tighter = s;
  tighter.concurrency = 2;
  CHECK(restored(rl, 1000, 4000, tighter).concurrency_now() == 2);
}

TEST_CASE("limiter checkpoint: the throttle and its quiet period survive; the configured floor bounds it",
          "[limiter][checkpoint][throttle]") {
  auto s = open_settings();
  s.throttle_quiet = 60000ms;
  rate_limiter rl{s, first};
  for (int i = 0; i < 3; ++i)
    rl.on_signals(0, at(0), retry_after(0), true);
  REQUIRE(rl.factor() == Approx(0.8));
  squad::limiter_restore_report report;
  auto next = restored(rl, 1000, 9000, s, &report); // 10 s after the throttle
  CHECK(report.factor == Approx(0.8));
  CHECK(next.factor() == Approx(0.8));
  CHECK(next.effective_rate_per_s() == Approx(rl.effective_rate_per_s()));
  CHECK_FALSE(next.maybe_restore(later_at(49000)));
  CHECK(next.maybe_restore(later_at(50001))); // 60 s after the throttle
  CHECK(next.factor() == Approx(1.0));
  auto floor = s;
  floor.throttle_floor = 0.9;
  CHECK(restored(rl, 1000, 9000, floor).factor() == Approx(0.9));
}

TEST_CASE("limiter checkpoint: limits the provider announced and its own quota survive", "[limiter][checkpoint]") {
  auto s = open_settings();
  s.per = 60000ms;
  s.requests = 100;
  s.burst = 100;
  rate_limiter rl{s, first};
  auto p = rl.try_acquire(at(0), 0).permit;
  limit_signals sig;
  sig.limit_requests = 20;    // it really allows 20 a window
  sig.remaining_requests = 2; // and has 2 left
  sig.reset_requests_ms = 30000;
  rl.on_signals(p, at(10), sig, false);
  rl.try_acquire(at(20), 0); // one of the two
  auto next = restored(rl, 100, 1000, s);
  CHECK(next.announced_limit() == 20);
  CHECK(next.effective_window_cap() == 20);
  CHECK(next.try_acquire(second, 0).admitted); // the last one the provider's count left
  auto v = next.try_acquire(second, 0);
  CHECK_FALSE(v.admitted);
  CHECK(v.blocked_by == limit_rule::quota);
}

TEST_CASE("limiter checkpoint: the day's count survives until its 24 h window ends", "[limiter][checkpoint][day]") {
  auto s = open_settings();
  s.per_day = 3;
  rate_limiter rl{s, first};
  for (int i = 0; i < 3; ++i)
    REQUIRE(rl.try_acquire(at(i * 1000), 0).admitted);
  auto next = restored(rl, 3000, 3600000, s); // an hour later
  CHECK(next.day_used(second) == 3);
  auto v = next.probe(second, 0);
  CHECK(v.blocked_by == limit_rule::day);
  CHECK(ms_after(second, v.retry_at) == 24 * 3600000 - 3600000 - 3000);
  auto tomorrow = restored(rl, 3000, 24 * 3600000, s);
  CHECK(tomorrow.try_acquire(second, 0).admitted);
}

TEST_CASE("limiter checkpoint: token reservations in the window survive", "[limiter][checkpoint][tokens]") {
  auto s = open_settings();
  s.per = 60000ms;
  s.tokens = 1000;
  rate_limiter rl{s, first};
  REQUIRE(rl.try_acquire(at(0), 800).admitted);
  auto next = restored(rl, 1000, 1000, s);
  auto v = next.probe(second, 400);
  CHECK(v.blocked_by == limit_rule::tokens);
  CHECK(ms_after(second, v.retry_at) == 58000);
  CHECK(next.try_acquire(second, 200).admitted);
}

TEST_CASE("limiter checkpoint: a wall clock set back between the processes dates no entry after now",
          "[limiter][checkpoint]") {
  auto s = three_per_minute();
  rate_limiter rl{s, first};
  for (int i = 0; i < 3; ++i)
    REQUIRE(rl.try_acquire(at(0), 0).admitted);
  auto next = restored(rl, 0, -3600000, s); // the next process's clock reads an hour earlier
  auto v = next.probe(second, 0);
  CHECK(v.blocked_by == limit_rule::window);
  CHECK(ms_after(second, v.retry_at) == 60000); // a window from now, not an hour and a window
}

TEST_CASE("limiter checkpoint: a restored limiter never admits where an empty one would refuse",
          "[limiter][checkpoint][property]") {
  // Random histories (admissions, 429s with and without Retry-After, quota and announced limits, releases, token
  // reservations), checkpointed at a random moment and restored at random gaps: at every 100 ms of the next two
  // minutes, whatever the restored limiter admits the empty one admits too.
  std::mt19937_64 rng{20261210};
  for (int round = 0; round < 200; ++round) {
    limiter_settings s;
    s.requests = std::uniform_int_distribution<std::int64_t>{1, 20}(rng);
    s.per = std::chrono::milliseconds{std::uniform_int_distribution<std::int64_t>{1000, 60000}(rng)};
    s.burst = std::uniform_int_distribution<std::int64_t>{1, s.requests}(rng);
    s.concurrency = std::uniform_int_distribution<std::int64_t>{1, 8}(rng);
    s.tokens = round % 3 == 0 ? 5000 : 0;
    s.per_day = round % 4 == 0 ? 30 : 0;
    s.window_margin = std::chrono::milliseconds{s.per.count() / 100};
    s.throttle_after = 2;
    s.confirm_sends = round % 2 == 0;
    rate_limiter rl{s, first};
    std::vector<std::uint64_t> live;
    std::int64_t t = 0;
    for (int op = 0; op < 60; ++op) {
      t += std::uniform_int_distribution<std::int64_t>{0, 2000}(rng);
      auto pick = std::uniform_int_distribution<int>{0, 9}(rng);
      if (pick < 5) {
        if (auto v = rl.try_acquire(at(t), std::uniform_int_distribution<std::int64_t>{0, 800}(rng)); v.admitted) {
          live.push_back(v.permit);
          if (s.confirm_sends && pick < 4)
            rl.sent(v.permit, at(t + 3));
        }
      } else if (!live.empty()) {
        auto k = std::uniform_int_distribution<std::size_t>{0, live.size() - 1}(rng);
        limit_signals sig;
        if (pick == 5)
          sig.retry_after_ms = std::uniform_int_distribution<std::int64_t>{0, 20000}(rng);
        if (pick == 6)
          sig.remaining_requests = std::uniform_int_distribution<std::int64_t>{0, 3}(rng), sig.reset_requests_ms = 5000;
        if (pick == 7)
          sig.limit_requests = std::uniform_int_distribution<std::int64_t>{1, 20}(rng);
        rl.on_signals(live[k], at(t), sig, pick == 5 || pick == 8);
        rl.release(live[k], at(t + 1), std::uniform_int_distribution<std::int64_t>{0, 800}(rng));
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
      }
    }
    auto gap = std::uniform_int_distribution<std::int64_t>{0, 30000}(rng);
    auto next = restored(rl, t, gap, s);
    rate_limiter empty{s, second};
    for (std::int64_t u = 0; u <= 120000; u += 100) {
      auto tokens = (u / 100) % 3 == 0 ? std::int64_t{900} : std::int64_t{0};
      auto a = next.probe(later_at(u), tokens), b = empty.probe(later_at(u), tokens);
      INFO("round " << round << " at +" << u << "ms: restored by " << squad::to_string(a.blocked_by));
      CHECK((!a.admitted || b.admitted));
      if (a.admitted && !b.admitted)
        break;
    }
  }
}

TEST_CASE("limiter checkpoint: JSON keeps every field; other versions and broken text are not read",
          "[limiter][checkpoint][json]") {
  limiter_checkpoint cp;
  cp.saved_ms = wall0;
  cp.requests = 3;
  cp.per_ms = 60000;
  cp.window = {wall0 - 59000, wall0 - 59000, wall0 - 10, wall0};
  cp.tokens = {{wall0 - 500, 700}, {wall0 - 20, 30}};
  cp.paused_until_ms = wall0 + 15000;
  cp.factor = 0.64;
  cp.recent_429_ms = {wall0 - 2000, wall0 - 1000};
  cp.last_429_ms = wall0 - 1000;
  cp.last_throttle_change_ms = wall0 - 900;
  cp.learned_concurrency = 3;
  cp.learned_at_ms = wall0 - 800;
  cp.announced_limit = 20;
  cp.day_count = 7;
  cp.day_start_ms = wall0 - 3600000;
  cp.quota_left = 2;
  cp.quota_reset_ms = wall0 + 4000;
  cp.bucket = 1.5;
  cp.hold_ns = 2.5e8;
  auto text = squad::to_json(cp);
  auto back = squad::limiter_checkpoint_from_json(text);
  REQUIRE(back);
  CHECK(back->saved_ms == cp.saved_ms);
  CHECK(back->requests == 3);
  CHECK(back->per_ms == 60000);
  CHECK(back->window == cp.window);
  CHECK(back->tokens == cp.tokens);
  CHECK(back->paused_until_ms == cp.paused_until_ms);
  CHECK(back->factor == cp.factor);
  CHECK(back->recent_429_ms == cp.recent_429_ms);
  CHECK(back->last_429_ms == cp.last_429_ms);
  CHECK(back->last_throttle_change_ms == cp.last_throttle_change_ms);
  CHECK(back->learned_concurrency == 3);
  CHECK(back->learned_at_ms == cp.learned_at_ms);
  CHECK(back->announced_limit == 20);
  CHECK(back->day_count == 7);
  CHECK(back->day_start_ms == cp.day_start_ms);
  CHECK(back->quota_left == 2);
  CHECK(back->quota_reset_ms == cp.quota_reset_ms);
  CHECK(back->bucket == 1.5);
  CHECK(back->hold_ns == 2.5e8);
  CHECK(text.find("\"window\":[59000,0,58990,10]") != std::string::npos); // an age, then gaps: small numbers
  CHECK_FALSE(squad::limiter_checkpoint_from_json("not json"));
  CHECK_FALSE(squad::limiter_checkpoint_from_json(R"({"v":2,"saved_ms":1,"window":[]})"));
  CHECK_FALSE(squad::limiter_checkpoint_from_json(R"({"v":1,"saved_ms":1,"window":[5,-1]})"));
  CHECK_FALSE(squad::limiter_checkpoint_from_json(R"({"v":1,"saved_ms":"x","window":[]})"));
}

TEST_CASE("limiter memory: the latest checkpoint per domain; saves reach the sink, those before it once it is set",
          "[limiter][checkpoint][memory]") {
  std::vector<std::string> lines;
  limiter_memory::options o;
  o.wall_ms = [] { return wall0; };
  o.log = [&lines](std::string l) { lines.push_back(std::move(l)); };
  limiter_memory m{o};
  CHECK(m.wall_ms() == wall0);
  CHECK(m.interval() == 250ms);
  CHECK_FALSE(m.latest("groq"));
  limiter_checkpoint a;
  a.saved_ms = 1;
  m.seed("groq", a);
  REQUIRE(m.latest("groq"));
  CHECK(m.latest("groq")->saved_ms == 1);
  a.saved_ms = 2;
  m.save("groq", a); // no sink yet: kept, sent once one is set
  a.saved_ms = 3;
  m.save("cerebras/llama", a);
  std::vector<std::pair<std::string, std::int64_t>> sunk;
  m.set_sink([&sunk](const std::string& d, const limiter_checkpoint& cp) { sunk.emplace_back(d, cp.saved_ms); });
  REQUIRE(sunk.size() == 2);
  CHECK(sunk[0] == std::make_pair(std::string("cerebras/llama"), std::int64_t{3}));
  CHECK(sunk[1] == std::make_pair(std::string("groq"), std::int64_t{2}));
  a.saved_ms = 4;
  m.save("groq", a);
  CHECK(sunk.size() == 3);
  CHECK(m.latest("groq")->saved_ms == 4);
  m.log("a line");
  CHECK(lines.size() == 1);
}
