// The limiter and breaker actors on CAF's deterministic test coordinator: time moves only when a test moves it,
// so grant order, queue deadlines and cooldowns are checked to the millisecond.
#include "actors/limiter/limiter.hpp"
#include "actors/registry/directory.hpp"
#include "tests/actors/actor_fixture.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace squad;
using namespace std::chrono_literals;

namespace {

using grant_answer = std::shared_ptr<test::actor_fixture::answer<limit_grant>>;

bool granted(const grant_answer& a) {
  return a->value && a->value->granted;
}

provider_config provider(limits_config limits, breaker_config breaker = {}) {
  provider_config p;
  p.name = "groq";
  p.kind = "sim";
  p.limits = limits;
  p.breaker = breaker;
  return p;
}

// requests per `per`, with a burst and a concurrency; no minimum interval, no token budget.
limits_config limits(std::int64_t requests, millis per, std::int64_t burst, std::int64_t concurrency) {
  limits_config l;
  l.requests = requests;
  l.per = per;
  l.burst = burst;
  l.concurrency = concurrency;
  return l;
}

/// One `(phase, u8, i64, u64)` the breaker told its limiter.
struct phase_note {
  std::uint8_t phase = 255;
  std::int64_t open_ms = -1;
  std::uint64_t generation = 0;
};

struct phase_notes {
  std::vector<phase_note> phases;
};

/// Stands in for the provider's limiter in the directory: records what the breaker tells it.
caf::behavior limiter_stand_in(caf::event_based_actor*, std::shared_ptr<phase_notes> out) {
  return {
      [out](atoms::phase, std::uint8_t phase, std::int64_t open_ms, std::uint64_t generation) {
        out->phases.push_back({phase, open_ms, generation});
      },
  };
}

} // namespace

namespace {

struct limiter_fixture : test::actor_fixture {
  caf::actor_clock::time_point start = now();

  caf::actor spawn_limiter_for(const provider_config& p, directory_ptr dir = nullptr) {
    caf::scoped_actor self{*sys};
    // no dispatcher confirms sends here: entries count from the grant
    auto a = caf::actor_cast<caf::actor>(spawn_limiter(self.ptr(), p, false, std::move(dir)));
    spawned.push_back(a);
    sched->run();
    start = now();
    return a;
  }

  /// A breaker whose limiter (in its directory) is `limiter`.
  caf::actor spawn_breaker_for(const provider_config& p, caf::actor limiter) {
    auto dir = std::make_shared<directory>();
    dir->announce(p.name, caf::actor_cast<limiter_actor>(limiter));
    caf::scoped_actor self{*sys};
    auto a = caf::actor_cast<caf::actor>(spawn_breaker(self.ptr(), p, dir));
    spawned.push_back(a);
    sched->run();
    start = now();
    return a;
  }

  grant_answer acquire(const caf::actor& lim, std::uint8_t priority, std::int64_t queue_wait_ms,
                       std::int64_t tokens = 0) {
    auto a = ask<limit_grant>(lim, atoms::acquire_v, priority, tokens, queue_wait_ms);
    sched->run(); // one at a time, so the send order is the arrival order
    return a;
  }

  std::shared_ptr<answer<std::string>> release(const caf::actor& lim, std::uint64_t permit, outcome result,
                                               limit_signals signals = {}) {
    auto a = ask<std::string>(lim, atoms::release_v, permit, std::int64_t{-1}, signals, result);
    sched->run();
    return a;
  }

  limit_grant query(const caf::actor& lim, std::int64_t tokens, std::int64_t ahead) {
    auto a = ask<limit_grant>(lim, atoms::query_v, tokens, ahead, std::uint8_t{3}); // P3: behind every waiter
    sched->run();
    REQUIRE(a->value);
    return *a->value;
  }

  limit_grant admit(const caf::actor& lim, std::int64_t ahead = 0) {
    auto a = ask<limit_grant>(lim, atoms::admit_v, std::int64_t{0}, ahead, std::uint8_t{1});
    sched->run();
    REQUIRE(a->value);
    return *a->value;
  }

  nlohmann::json stats(const caf::actor& a) {
    auto s = ask<std::string>(a, atoms::stats_v);
    sched->run();
    REQUIRE(s->value);
    return nlohmann::json::parse(*s->value);
  }

  bool allow(const caf::actor& breaker) {
    auto a = ask<bool>(breaker, atoms::allow_v);
    sched->run();
    REQUIRE(a->value);
    return *a->value;
  }

  std::string report(const caf::actor& breaker, outcome o) {
    auto a = ask<std::string>(breaker, atoms::report_v, o);
    sched->run();
    REQUIRE(a->value);
    return *a->value;
  }

  /// Moves the clock by `d`, delivering every delayed message that falls due on the way (and at the end).
  void advance(caf::timespan d) {
    sched->clock().advance_time(d);
    do
      sched->run();
    while (sched->clock().advance_time(caf::timespan{0}) > 0);
  }

  std::int64_t elapsed_ms() { return std::chrono::duration_cast<millis>(now() - start).count(); }
};

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// limiter: acquire

TEST_CASE_METHOD(limiter_fixture, "limiter: queued acquires are granted P0 first, then FIFO within a class",
                 "[limiter][limiter_actor]") {
  // Intent: with 1 per 10s (margin 100ms) and the slot taken, acquires sent as P3, P1, P0, P1 are granted one per
  // window in the order P0, P1 (first sent), P1 (second sent), P3.
  auto lim = spawn_limiter_for(provider(limits(1, 10000ms, 1, 10)));
  auto first = acquire(lim, 0, 600000);
  REQUIRE(granted(first));

  const std::uint8_t priorities[] = {3, 1, 0, 1};
  std::vector<grant_answer> waiting;
  for (auto p : priorities)
    waiting.push_back(acquire(lim, p, 600000));
  for (auto& w : waiting)
    CHECK_FALSE(w->value); // all queued, none refused
  CHECK(stats(lim)["queue_depth"] == 4);

  std::vector<std::size_t> order;
  std::vector<std::int64_t> granted_at;
  auto answered = [&] {
    return static_cast<std::size_t>(std::count_if(waiting.begin(), waiting.end(), [](auto& w) { return !!w->value; }));
  };
  for (int window = 0; window < 4; ++window) {
    advance(10099ms); // a window, less 1ms: nothing yet
    CHECK(answered() == static_cast<std::size_t>(window));
    advance(1ms); // the next slot: the last admission + 10s + 100ms
    for (std::size_t i = 0; i < waiting.size(); ++i)
      if (waiting[i]->value && std::find(order.begin(), order.end(), i) == order.end()) {
        order.push_back(i);
        granted_at.push_back(elapsed_ms());
      }
    CHECK(order.size() == static_cast<std::size_t>(window + 1)); // exactly one grant per window
  }
  REQUIRE(order == std::vector<std::size_t>{2, 1, 3, 0});
  CHECK(granted_at == std::vector<std::int64_t>{10100, 20200, 30300, 40400});
  std::vector<std::uint64_t> permits{first->value->permit};
  for (std::size_t k = 0; k < order.size(); ++k) {
    auto& g = *waiting[order[k]]->value;
    CHECK(g.granted);
    CHECK(g.waited_ms == granted_at[k]);
    CHECK(std::find(permits.begin(), permits.end(), g.permit) == permits.end());
    permits.push_back(g.permit);
  }
  CHECK(stats(lim)["granted"] == 5);
  CHECK(stats(lim)["queue_depth"] == 0);
}

TEST_CASE_METHOD(limiter_fixture, "limiter: an acquire whose queue wait cannot be met is refused at once",
                 "[limiter][limiter_actor]") {
  // Intent: 1 per 10s, slot taken at t0: the next slot is at 10.1s (window: 10s + 1% margin), so an acquire
  // willing to wait 500ms is refused without the clock moving, naming the rule and the remaining time.
  auto lim = spawn_limiter_for(provider(limits(1, 10000ms, 1, 10)));
  REQUIRE(granted(acquire(lim, 1, 60000)));
  advance(2000ms);
  auto a = acquire(lim, 1, 500);
  REQUIRE(a->value);
  CHECK_FALSE(a->value->granted);
  CHECK(a->value->rule == "window");
  CHECK(a->value->wait_ms == 8100);
  CHECK(a->value->waited_ms == 0);
  CHECK(elapsed_ms() == 2000);
  auto st = stats(lim);
  CHECK(st["refused"] == 1);
  CHECK(st["queue_depth"] == 0);

  // One that can wait long enough is queued instead, and granted at 10.1s.
  auto b = acquire(lim, 1, 9000);
  CHECK_FALSE(b->value);
  advance(8099ms);
  CHECK_FALSE(b->value);
  advance(1ms);
  REQUIRE(b->value);
  CHECK(b->value->granted);
  CHECK(b->value->waited_ms == 8100);
}

TEST_CASE_METHOD(limiter_fixture, "limiter: a queued acquire is refused at its deadline, the ones ahead wait on",
                 "[limiter][limiter_actor]") {
  // Intent: concurrency 1 with the permit held: A (60s) and then B (500ms) queue; at 500ms B is refused with
  // waited_ms 500 while A stays queued; the release then goes to A.
  auto lim = spawn_limiter_for(provider(limits(1000, 1000ms, 1000, 1)));
  auto held = acquire(lim, 0, 60000);
  REQUIRE(granted(held));
  auto a = acquire(lim, 1, 60000);
  auto b = acquire(lim, 1, 500);
  CHECK_FALSE(a->value);
  CHECK_FALSE(b->value);

  advance(499ms);
  CHECK_FALSE(b->value);
  advance(1ms);
  REQUIRE(b->value);
  CHECK_FALSE(b->value->granted);
  CHECK(b->value->waited_ms == 500);
  CHECK(b->value->rule == "concurrency");
  CHECK(b->value->wait_ms > 0);
  CHECK_FALSE(a->value);
  CHECK(stats(lim)["queue_depth"] == 1);

  auto r = release(lim, held->value->permit, outcome::ok);
  REQUIRE(r->value);
  CHECK(*r->value == "");
  REQUIRE(a->value);
  CHECK(a->value->granted);
  CHECK(a->value->waited_ms == 500);
}

TEST_CASE_METHOD(limiter_fixture, "limiter: a free slot is granted whatever the queue wait, 0 included",
                 "[limiter][limiter_actor]") {
  // Intent: queue_wait 0 means "do not queue", not "refuse": an idle limiter grants it at once.
  auto lim = spawn_limiter_for(provider(limits(1, 10000ms, 1, 10)));
  auto a = acquire(lim, 1, 0);
  REQUIRE(a->value);
  CHECK(a->value->granted);
  CHECK(a->value->rule == "");
  CHECK(stats(lim)["granted"] == 1);
}

TEST_CASE_METHOD(limiter_fixture, "limiter: a slot that comes exactly at a waiter's queue deadline is its",
                 "[limiter][limiter_actor]") {
  // Intent: the acquire check queues a call whose slot is due at its deadline (retry_at == deadline), and
  // feasible() counts it in time; at that moment it must be granted, not refused with "retry in 1ms".
  auto lim = spawn_limiter_for(provider(limits(1, 10000ms, 1, 10)));
  REQUIRE(granted(acquire(lim, 1, 60000)));
  auto b = acquire(lim, 1, 10100); // the next slot is at 10.1s exactly
  CHECK_FALSE(b->value);
  advance(10099ms);
  CHECK_FALSE(b->value);
  advance(1ms);
  REQUIRE(b->value);
  CHECK(b->value->granted);
  CHECK(b->value->waited_ms == 10100);
}

// ---------------------------------------------------------------------------------------------------------------
// limiter: release

TEST_CASE_METHOD(limiter_fixture, "limiter: a release frees the permit and admits the next waiter",
                 "[limiter][limiter_actor]") {
  // Intent: concurrency 1: a waiter is not admitted while the permit is out, however long, and is the moment the
  // permit comes back; a second release of the same permit admits nothing more.
  auto lim = spawn_limiter_for(provider(limits(1000, 1000ms, 1000, 1)));
  auto held = acquire(lim, 0, 60000);
  REQUIRE(granted(held));
  auto w = acquire(lim, 2, 60000);
  auto w2 = acquire(lim, 2, 60000);
  advance(1000ms);
  CHECK_FALSE(w->value);
  CHECK(stats(lim)["in_flight"] == 1);

  auto r = release(lim, held->value->permit, outcome::ok);
  REQUIRE(r->value);
  CHECK(*r->value == "");
  REQUIRE(w->value);
  CHECK(w->value->granted);
  CHECK(w->value->waited_ms == 1000);
  CHECK(w->value->permit != held->value->permit);
  CHECK(stats(lim)["in_flight"] == 1);

  release(lim, held->value->permit, outcome::ok); // already released: frees nothing
  CHECK_FALSE(w2->value);
  release(lim, w->value->permit, outcome::ok);
  REQUIRE(w2->value);
  CHECK(w2->value->granted);
}

TEST_CASE_METHOD(limiter_fixture, "limiter: a release with a 429 pauses admission for its Retry-After",
                 "[limiter][limiter_actor]") {
  // Intent: the permit comes back with a 429 and Retry-After 3s at t0+1s: the waiter that can wait is granted only
  // at t0+4s; the one whose queue wait ends at t0+2s is refused at the release ("reassessed"), not at its deadline.
  auto lim = spawn_limiter_for(provider(limits(1000, 1000ms, 1000, 1)));
  auto held = acquire(lim, 0, 60000);
  REQUIRE(granted(held));
  auto w = acquire(lim, 1, 60000);
  auto short_wait = acquire(lim, 1, 2000);
  advance(1000ms);

  limit_signals sig;
  sig.retry_after_ms = 3000;
  auto r = release(lim, held->value->permit, outcome::rate_limited, sig);
  REQUIRE(r->value);
  CHECK(*r->value == ""); // one 429 does not throttle
  CHECK_FALSE(w->value);
  REQUIRE(short_wait->value);
  CHECK_FALSE(short_wait->value->granted);
  CHECK(short_wait->value->rule == "reassessed");
  CHECK(short_wait->value->waited_ms == 1000);
  CHECK(short_wait->value->wait_ms >= 3000);

  auto q = query(lim, 0, 0);
  CHECK(q.rule == "pause");
  // The queued waiter goes first at +3000ms and, with one permit and a measured hold of 1000ms, keeps it until
  // about +4001ms (the estimate models permits coming back after the mean hold, rounded up by 1ms).
  CHECK(q.wait_ms == 4001);
  CHECK(stats(lim)["paused_ms"] == 3000);

  advance(2999ms);
  CHECK_FALSE(w->value);
  advance(1ms);
  REQUIRE(w->value);
  CHECK(w->value->granted);
  CHECK(w->value->waited_ms == 4000);
}

// ---------------------------------------------------------------------------------------------------------------
// limiter: query

TEST_CASE_METHOD(limiter_fixture, "limiter: query estimates the wait without admitting", "[limiter][limiter_actor]") {
  // Intent: 4 per 1s, burst 4 (margin 10ms, slot 250ms): 0 when free, growing with `ahead` window by window,
  // > 0 once full; a call over the token budget never goes (-1); an open breaker lengthens the wait.
  auto l = limits(4, 1000ms, 4, 10);
  l.tokens = 10000;
  auto lim = spawn_limiter_for(provider(l));

  auto q = query(lim, 0, 0);
  CHECK(q.granted);
  CHECK(q.wait_ms == 0);
  CHECK(q.rule == "none");
  CHECK(q.slot_ms == 250);
  CHECK(query(lim, 0, 3).wait_ms == 0);
  CHECK_FALSE(query(lim, 0, 3).granted);
  CHECK(query(lim, 0, 4).wait_ms == 1010);
  CHECK(query(lim, 0, 8).wait_ms == 2020);
  CHECK(stats(lim)["window_occupancy"] == 0); // nothing admitted by asking

  q = query(lim, 20000, 0);
  CHECK(q.wait_ms == -1);
  CHECK(q.rule == "too_big");

  for (int i = 0; i < 4; ++i)
    REQUIRE(granted(acquire(lim, 1, 60000)));
  advance(10ms);
  q = query(lim, 0, 0);
  CHECK_FALSE(q.granted);
  CHECK(q.rule == "window");
  CHECK(q.wait_ms == 1000);
  CHECK(query(lim, 0, 4).wait_ms == 2010);

  caf::anon_send(lim, atoms::phase_v, static_cast<std::uint8_t>(breaker_phase::open), std::int64_t{30000},
                 std::uint64_t{1});
  sched->run();
  q = query(lim, 0, 0);
  CHECK(q.breaker == static_cast<std::uint8_t>(breaker_phase::open));
  CHECK(q.wait_ms == 30000);
}

TEST_CASE_METHOD(limiter_fixture, "limiter: an announced lower limit slows query's slot and says so on release",
                 "[limiter][limiter_actor]") {
  // Intent: 10 per 1s configured (slot 100ms); a reply announcing x-ratelimit-limit-requests 5 makes the slot
  // 200ms, and the release answers a note naming the announcement.
  auto lim = spawn_limiter_for(provider(limits(10, 1000ms, 10, 10)));
  CHECK(query(lim, 0, 0).slot_ms == 100);
  auto g = acquire(lim, 1, 60000);
  REQUIRE(granted(g));
  limit_signals sig;
  sig.limit_requests = 5;
  auto r = release(lim, g->value->permit, outcome::ok, sig);
  REQUIRE(r->value);
  CHECK(r->value->find("announces 5 requests") != std::string::npos);
  CHECK(query(lim, 0, 0).slot_ms == 200);
  CHECK(stats(lim)["window_cap"] == 5);
}

// ---------------------------------------------------------------------------------------------------------------
// breaker

TEST_CASE_METHOD(limiter_fixture,
                 "breaker: opens after 5 failures, lets one probe through after the cooldown, "
                 "closes on its success, and tells the limiter each phase",
                 "[breaker][breaker_actor]") {
  // Intent: the closed -> open -> half_open -> closed cycle as callers see it (allow / report), and the
  // (phase, u8, i64, generation) notes its limiter receives straight from it: at its start and for each phase.
  auto seen = std::make_shared<phase_notes>();
  auto root = sys->spawn(limiter_stand_in, seen);
  spawned.push_back(root);
  breaker_config bc;
  bc.failures = 5;
  bc.cooldown = 30000ms;
  bc.probes = 1;
  auto brk = spawn_breaker_for(provider(limits(60, 60000ms, 1, 4), bc), root);

  for (int i = 0; i < 4; ++i) {
    CHECK(allow(brk));
    CHECK(report(brk, outcome::server_error) == "");
  }
  CHECK(allow(brk));
  CHECK(report(brk, outcome::server_error) == "closed->open");
  CHECK_FALSE(allow(brk));
  REQUIRE(seen->phases.size() == 2);
  CHECK(seen->phases[0].phase == static_cast<std::uint8_t>(breaker_phase::closed)); // its start
  CHECK(seen->phases[0].generation == 0);
  CHECK(seen->phases[1].phase == static_cast<std::uint8_t>(breaker_phase::open));
  CHECK(seen->phases[1].open_ms == 30000);
  CHECK(seen->phases[1].generation == 1);

  advance(29999ms);
  CHECK_FALSE(allow(brk));
  CHECK(seen->phases.size() == 2);
  advance(1ms); // the cooldown is over: the breaker's own tick tells the limiter half_open
  REQUIRE(seen->phases.size() == 3);
  CHECK(seen->phases[2].phase == static_cast<std::uint8_t>(breaker_phase::half_open));
  CHECK(seen->phases[2].open_ms == 0);

  CHECK(allow(brk));       // the probe
  CHECK_FALSE(allow(brk)); // a second caller while the probe is out
  CHECK(report(brk, outcome::ok) == "half_open->closed");
  CHECK(allow(brk));
  REQUIRE(seen->phases.size() == 4);
  CHECK(seen->phases[3].phase == static_cast<std::uint8_t>(breaker_phase::closed));
  CHECK(seen->phases[3].generation > seen->phases[1].generation); // reports of calls let through before are stale

  auto st = stats(brk);
  CHECK(st["phase"] == "closed");
  CHECK(st["opens"] == 1);
  CHECK(st["refusals"] == 3);
}

TEST_CASE_METHOD(limiter_fixture,
                 "breaker: a failed probe reopens it for a fresh cooldown; a cancelled one frees "
                 "the slot",
                 "[breaker][breaker_actor]") {
  // Intent: half_open -> open on a probe failure (the limiter is told open again, with the full cooldown); a
  // probe that never went (cancel) lets the next caller probe instead.
  auto seen = std::make_shared<phase_notes>();
  auto root = sys->spawn(limiter_stand_in, seen);
  spawned.push_back(root);
  breaker_config bc;
  bc.failures = 2;
  bc.cooldown = 10000ms;
  auto brk = spawn_breaker_for(provider(limits(60, 60000ms, 1, 4), bc), root);
  CHECK(report(brk, outcome::timeout) == "");
  CHECK(report(brk, outcome::connect_failed) == "closed->open");
  advance(10000ms);
  REQUIRE(allow(brk));
  CHECK_FALSE(allow(brk));
  caf::anon_send(brk, atoms::cancel_v);
  sched->run();
  REQUIRE(allow(brk)); // the cancelled probe's slot
  CHECK(report(brk, outcome::server_error) == "half_open->open");
  CHECK_FALSE(allow(brk));
  REQUIRE(seen->phases.size() == 4); // after the closed one told at its start
  CHECK(seen->phases[1].phase == static_cast<std::uint8_t>(breaker_phase::open));
  CHECK(seen->phases[2].phase == static_cast<std::uint8_t>(breaker_phase::half_open));
  CHECK(seen->phases[3].phase == static_cast<std::uint8_t>(breaker_phase::open));
  CHECK(seen->phases[3].open_ms == 10000);
  advance(10000ms);
  REQUIRE(seen->phases.size() == 5);
  CHECK(seen->phases[4].phase == static_cast<std::uint8_t>(breaker_phase::half_open));
  CHECK(stats(brk)["opens"] == 2);
}

// ---------------------------------------------------------------------------------------------------------------
// admit: routing and admission in one exchange

TEST_CASE_METHOD(limiter_fixture, "admit takes a free slot under a closed breaker and hands out the breaker's ticket",
                 "[limiter][admit]") {
  // Intent: the common call costs one exchange with its limiter: granted at once, with the breaker's generation + 1
  // as its report ticket, and counted in the window like any grant.
  auto lim = spawn_limiter_for(provider(limits(2, 10000ms, 2, 4)));
  auto a = admit(lim);
  CHECK(a.granted);
  CHECK(a.permit != 0);
  CHECK(a.ticket == 1);
  CHECK(admit(lim).granted);
  auto full = admit(lim); // the window is full: an estimate, nothing taken
  CHECK_FALSE(full.granted);
  CHECK(full.permit == 0);
  CHECK(full.wait_ms > 0);
  CHECK(stats(lim)["granted"] == 2);
}

TEST_CASE_METHOD(limiter_fixture, "admit grants nothing with calls ahead, a queue, or a breaker that is not closed",
                 "[limiter][admit]") {
  // Intent: the fast path never jumps a queue (the dispatcher's count of calls ahead, or the limiter's own) and never
  // lets a call past an open or half-open breaker without asking it; the answer is then the query's estimate.
  auto lim = spawn_limiter_for(provider(limits(10, 1000ms, 10, 1)));
  CHECK_FALSE(admit(lim, 1).granted); // one routed there first
  auto held = acquire(lim, 1, 0);
  REQUIRE(granted(held));
  auto queued = ask<limit_grant>(lim, atoms::acquire_v, std::uint8_t{1}, std::int64_t{0}, std::int64_t{5000});
  sched->run();
  CHECK_FALSE(queued->value); // waiting for the concurrency slot
  release(lim, held->value->permit, outcome::ok);
  REQUIRE(queued->value);
  REQUIRE(queued->value->granted);
  release(lim, queued->value->permit, outcome::ok);
  caf::anon_send(lim, atoms::phase_v, static_cast<std::uint8_t>(breaker_phase::half_open), std::int64_t{0},
                 std::uint64_t{2});
  sched->run();
  auto half = admit(lim);
  CHECK_FALSE(half.granted);
  CHECK(half.breaker == static_cast<std::uint8_t>(breaker_phase::half_open));
  caf::anon_send(lim, atoms::phase_v, static_cast<std::uint8_t>(breaker_phase::closed), std::int64_t{0},
                 std::uint64_t{3});
  sched->run();
  auto closed = admit(lim);
  CHECK(closed.granted);
  CHECK(closed.ticket == 4);
}

TEST_CASE_METHOD(limiter_fixture, "a limiter started beside a running breaker admits on the fast path only once told",
                 "[limiter][admit]") {
  // Intent: a restarted limiter does not assume a closed breaker: it asks its breaker (found in the directory) for the
  // phase, and until the answer comes every call takes the slow path (the breaker is asked).
  auto dir = std::make_shared<directory>();
  auto seen = std::make_shared<phase_notes>();
  auto fake_breaker = sys->spawn([](caf::event_based_actor*) -> caf::behavior { return {[](atoms::phase) {}}; });
  spawned.push_back(fake_breaker);
  dir->announce("groq", caf::actor_cast<breaker_actor>(fake_breaker));
  auto lim = spawn_limiter_for(provider(limits(10, 1000ms, 10, 4)), dir);
  CHECK_FALSE(admit(lim).granted);
  caf::anon_send(lim, atoms::phase_v, static_cast<std::uint8_t>(breaker_phase::closed), std::int64_t{0},
                 std::uint64_t{0});
  sched->run();
  CHECK(admit(lim).granted);
}
