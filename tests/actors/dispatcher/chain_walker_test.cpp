#include "actors/dispatcher/chain_walker.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using squad::chain_walker;
using squad::outcome;
using squad::steady_time;
using squad::walker_options;

namespace {

using action = chain_walker::action;

steady_time at(std::int64_t ms) {
  return steady_time{} + std::chrono::milliseconds{ms};
}

// Options with room to spare, so a test only meets the limit it is about.
walker_options roomy() {
  walker_options o;
  o.max_attempts = 1000;
  return o;
}

// The target next(now) says to try; fails the test if the decision is anything else.
std::size_t tries(const chain_walker& w, steady_time now) {
  auto d = w.next(now);
  REQUIRE(d.what == action::try_target);
  return d.target;
}

// The instant next(now) says to wait until; fails the test if the decision is anything else.
steady_time waits(const chain_walker& w, steady_time now) {
  auto d = w.next(now);
  REQUIRE(d.what == action::wait);
  return d.until;
}

bool exhausted(const chain_walker& w, steady_time now) {
  return w.next(now).what == action::exhausted;
}

std::string reason(const chain_walker& w, steady_time now) {
  return w.exhausted_reason(now);
}

} // namespace

TEST_CASE("chain_walker: default options", "[dispatcher][chain_walker]") {
  // The defaults the dispatcher relies on when a call names none.
  walker_options o;
  CHECK(o.max_attempts == 8);
  CHECK(o.retry.base == 200ms);
  CHECK(o.retry.cap == 5000ms);
  CHECK(o.retry.retries == -1);
  CHECK(o.retry.jitter == 0);
  CHECK(o.default_retry_after == 1000ms);
}

TEST_CASE("chain_walker: a fresh walk tries the first target", "[dispatcher][chain_walker]") {
  // Before any attempt, the head of the chain is tried and nothing has been counted.
  chain_walker w{3, at(10000)};
  CHECK(w.attempts() == 0);
  CHECK(tries(w, at(0)) == 0);
  CHECK(tries(w, at(9999)) == 0);
}

TEST_CASE("chain_walker: next() does not change the walk", "[dispatcher][chain_walker]") {
  // Asking what to do is a pure query; only record() moves the walk on.
  chain_walker w{2, at(10000)};
  for (int i = 0; i < 5; ++i)
    CHECK(tries(w, at(0)) == 0);
  CHECK(w.attempts() == 0);
}

TEST_CASE("chain_walker: targets are taken in chain order", "[dispatcher][chain_walker]") {
  // Removing the head each time walks the chain 0, 1, 2, 3 in order.
  chain_walker w{4, at(10000)};
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(tries(w, at(0)) == i);
    w.record(i, outcome::auth_failed, at(0), 0ms);
  }
  CHECK(exhausted(w, at(0)));
}

TEST_CASE("chain_walker: the earliest ready target in chain order wins", "[dispatcher][chain_walker]") {
  // When several targets are ready, the one nearest the head of the chain is tried, even if it rested.
  chain_walker w{3, at(100000), roomy()};
  w.record(0, outcome::rate_limited, at(0), 3000ms);
  CHECK(tries(w, at(0)) == 1);
  w.record(1, outcome::rate_limited, at(0), 1000ms);
  CHECK(tries(w, at(0)) == 2);
  CHECK(tries(w, at(1000)) == 1);
  CHECK(tries(w, at(3000)) == 0);
}

TEST_CASE("chain_walker: a success does not rest the target", "[dispatcher][chain_walker]") {
  // After an ok the same target stays at the head and the attempt is counted.
  chain_walker w{2, at(10000)};
  w.record(0, outcome::ok, at(0), 0ms);
  CHECK(w.attempts() == 1);
  CHECK(tries(w, at(0)) == 0);
}

TEST_CASE("chain_walker: rate_limited rests a target until its retry-after", "[dispatcher][chain_walker]") {
  // A rate-limited target is skipped until exactly now + retry_after, and the walker moves to the next one.
  chain_walker w{2, at(100000), roomy()};
  w.record(0, outcome::rate_limited, at(100), 2500ms);
  CHECK(tries(w, at(100)) == 1);
  CHECK(tries(w, at(2599)) == 1);
  CHECK(tries(w, at(2600) - 1ns) == 1);
  CHECK(tries(w, at(2600)) == 0);
}

TEST_CASE("chain_walker: a later shorter retry-after never shortens the rest", "[dispatcher][chain_walker]") {
  // Two rate-limit replies: the longer rest stands; a later, longer one extends it.
  chain_walker w{1, at(100000), roomy()};
  w.record(0, outcome::rate_limited, at(0), 5000ms);
  w.record(0, outcome::rate_limited, at(100), 1000ms);
  CHECK(waits(w, at(200)) == at(5000));
  w.record(0, outcome::rate_limited, at(300), 1ms);
  CHECK(waits(w, at(300)) == at(5000));
  w.record(0, outcome::rate_limited, at(400), 8000ms);
  CHECK(waits(w, at(400)) == at(8400));
}

TEST_CASE("chain_walker: a retry-after of 0 uses the default", "[dispatcher][chain_walker]") {
  // A rate-limit reply that names no wait rests the target for default_retry_after.
  chain_walker w{1, at(100000), roomy()};
  w.record(0, outcome::rate_limited, at(50), 0ms);
  CHECK(waits(w, at(50)) == at(1050));
  CHECK(tries(w, at(1050)) == 0);
}

TEST_CASE("chain_walker: a negative retry-after uses the default", "[dispatcher][chain_walker]") {
  // -1 ("not said" in limit_signals) is treated like 0, never as a rest in the past.
  chain_walker w{1, at(100000), roomy()};
  w.record(0, outcome::rate_limited, at(0), -1ms);
  CHECK(waits(w, at(0)) == at(1000));
}

TEST_CASE("chain_walker: the default retry-after is configurable", "[dispatcher][chain_walker]") {
  // walker_options::default_retry_after sets the rest for a rate-limit reply without a wait.
  auto o = roomy();
  o.default_retry_after = 250ms;
  chain_walker w{1, at(100000), o};
  w.record(0, outcome::rate_limited, at(0), 0ms);
  CHECK(waits(w, at(0)) == at(250));
}

TEST_CASE("chain_walker: retryable failures back off exponentially up to the cap", "[dispatcher][chain_walker]") {
  // Consecutive server errors rest the target base, 2x, 4x, ... times base, never more than the cap.
  chain_walker w{1, at(1000000), roomy()};
  const std::int64_t expected[] = {200, 400, 800, 1600, 3200, 5000, 5000, 5000};
  std::int64_t now = 0;
  for (auto rest : expected) {
    REQUIRE(tries(w, at(now)) == 0);
    w.record(0, outcome::server_error, at(now), 0ms);
    INFO("rest after a failure at " << now);
    CHECK(waits(w, at(now)) == at(now + rest));
    CHECK(waits(w, at(now + rest) - 1ns) == at(now + rest));
    now += rest;
  }
}

TEST_CASE("chain_walker: backoff base and cap are configurable", "[dispatcher][chain_walker]") {
  // With base 50ms and cap 300ms the rests are 50, 100, 200, 300, 300.
  auto o = roomy();
  o.retry.base = 50ms;
  o.retry.cap = 300ms;
  chain_walker w{1, at(1000000), o};
  const std::int64_t expected[] = {50, 100, 200, 300, 300};
  std::int64_t now = 0;
  for (auto rest : expected) {
    w.record(0, outcome::timeout, at(now), 0ms);
    CHECK(waits(w, at(now)) == at(now + rest));
    now += rest;
  }
}

TEST_CASE("chain_walker: the backoff exponent stops growing", "[dispatcher][chain_walker]") {
  // With a huge cap, the doubling stops at 2^20 times base instead of overflowing.
  auto o = roomy();
  o.retry.base = 1ms;
  o.retry.cap = std::chrono::milliseconds{std::int64_t{1} << 40};
  chain_walker w{1, at(std::int64_t{1} << 40), o};
  std::int64_t now = 0;
  for (int i = 0; i < 40; ++i) {
    w.record(0, outcome::server_error, at(now), 0ms);
    auto rest = (waits(w, at(now)) - at(now)) / 1ms;
    CHECK(rest == (std::int64_t{1} << std::min(i, 20)));
    now += rest;
  }
}

TEST_CASE("chain_walker: a success resets the backoff", "[dispatcher][chain_walker]") {
  // After an ok, the next failure backs off from base again.
  chain_walker w{1, at(1000000), roomy()};
  w.record(0, outcome::server_error, at(0), 0ms);
  w.record(0, outcome::server_error, at(200), 0ms);
  CHECK(waits(w, at(200)) == at(600));
  w.record(0, outcome::ok, at(600), 0ms);
  w.record(0, outcome::server_error, at(700), 0ms);
  CHECK(waits(w, at(700)) == at(900));
}

TEST_CASE("chain_walker: every retryable non-rate-limit failure backs off", "[dispatcher][chain_walker]") {
  // Overload, server errors, timeouts, connection failures, bad responses, cut streams and unavailability
  // all rest the target for the backoff and keep it in the chain.
  const outcome retryable[] = {outcome::overloaded,     outcome::server_error, outcome::timeout,
                               outcome::connect_failed, outcome::bad_response, outcome::stream_cut,
                               outcome::unavailable};
  for (auto o : retryable) {
    INFO("outcome " << squad::to_string(o));
    chain_walker w{1, at(100000)};
    w.record(0, o, at(0), 0ms);
    CHECK(waits(w, at(0)) == at(200));
    CHECK(tries(w, at(200)) == 0);
  }
}

TEST_CASE("chain_walker: a backoff ignores the retry-after argument", "[dispatcher][chain_walker]") {
  // Only rate_limited honours retry_after; other failures use the backoff.
  chain_walker w{1, at(100000)};
  w.record(0, outcome::server_error, at(0), 9000ms);
  CHECK(waits(w, at(0)) == at(200));
}

TEST_CASE("chain_walker: a backoff never shortens a longer rest", "[dispatcher][chain_walker]") {
  // A server error after a long rate-limit rest keeps the target resting until the rate limit ends.
  chain_walker w{1, at(100000), roomy()};
  w.record(0, outcome::rate_limited, at(0), 4000ms);
  w.record(0, outcome::server_error, at(10), 0ms);
  CHECK(waits(w, at(10)) == at(4000));
}

TEST_CASE("chain_walker: non-retryable failures remove the target", "[dispatcher][chain_walker]") {
  // Auth failures, bad requests and oversized contexts take the target out of the walk for good.
  const outcome fatal[] = {outcome::auth_failed, outcome::bad_request, outcome::context_too_long};
  for (auto o : fatal) {
    INFO("outcome " << squad::to_string(o));
    chain_walker w{2, at(100000)};
    w.record(0, o, at(0), 0ms);
    CHECK(tries(w, at(0)) == 1);
    CHECK(tries(w, at(99999)) == 1); // never comes back, however long we wait
  }
}

TEST_CASE("chain_walker: removed targets do not count as resting", "[dispatcher][chain_walker]") {
  // The wait is for the earliest target still in the walk, not a removed one.
  chain_walker w{3, at(100000), roomy()};
  w.record(0, outcome::auth_failed, at(0), 0ms);
  w.record(1, outcome::rate_limited, at(0), 700ms);
  w.record(2, outcome::rate_limited, at(0), 900ms);
  CHECK(waits(w, at(0)) == at(700));
  CHECK(tries(w, at(700)) == 1);
}

TEST_CASE("chain_walker: all targets resting means wait until the earliest", "[dispatcher][chain_walker]") {
  // No target ready: wait for whichever comes back first, then try it.
  chain_walker w{3, at(100000), roomy()};
  w.record(0, outcome::rate_limited, at(0), 3000ms);
  w.record(1, outcome::rate_limited, at(0), 1200ms);
  w.record(2, outcome::server_error, at(0), 0ms); // 200ms
  CHECK(waits(w, at(0)) == at(200));
  CHECK(waits(w, at(199)) == at(200));
  CHECK(tries(w, at(200)) == 2);
  w.record(2, outcome::server_error, at(200), 0ms); // 400ms -> 600
  CHECK(waits(w, at(200)) == at(600));
  w.record(2, outcome::auth_failed, at(600), 0ms);
  CHECK(waits(w, at(600)) == at(1200));
  CHECK(tries(w, at(1200)) == 1);
}

TEST_CASE("chain_walker: a wait past the deadline exhausts the walk", "[dispatcher][chain_walker]") {
  // If the earliest target comes back after the deadline, the walk ends now with reason "deadline".
  chain_walker w{2, at(2000), roomy()};
  w.record(0, outcome::rate_limited, at(0), 3000ms);
  w.record(1, outcome::rate_limited, at(0), 2500ms);
  CHECK(exhausted(w, at(0)));
  CHECK(reason(w, at(0)) == "deadline");
}

TEST_CASE("chain_walker: a wait ending exactly at the deadline exhausts the walk", "[dispatcher][chain_walker]") {
  // Waiting until the deadline itself is pointless: at the deadline the walk is over anyway.
  chain_walker w{1, at(2000), roomy()};
  w.record(0, outcome::rate_limited, at(0), 2000ms);
  CHECK(exhausted(w, at(0)));
  CHECK(reason(w, at(0)) == "deadline");
}

TEST_CASE("chain_walker: a wait ending just before the deadline is taken", "[dispatcher][chain_walker]") {
  // A target back one millisecond before the deadline is still worth waiting for.
  chain_walker w{1, at(2000), roomy()};
  w.record(0, outcome::rate_limited, at(0), 1999ms);
  CHECK(waits(w, at(0)) == at(1999));
  CHECK(tries(w, at(1999)) == 0);
}

TEST_CASE("chain_walker: nothing is tried at or after the deadline", "[dispatcher][chain_walker]") {
  // Even a ready target is not tried once the deadline has come.
  chain_walker w{2, at(1000)};
  CHECK(tries(w, at(999)) == 0);
  CHECK(exhausted(w, at(1000)));
  CHECK(reason(w, at(1000)) == "deadline");
  CHECK(exhausted(w, at(5000)));
  CHECK(reason(w, at(5000)) == "deadline");
}

TEST_CASE("chain_walker: max_attempts ends the walk", "[dispatcher][chain_walker]") {
  // After max_attempts recorded attempts, the walk is exhausted with reason "attempts".
  walker_options o;
  o.max_attempts = 3;
  chain_walker w{5, at(100000), o};
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(tries(w, at(0)) == i);
    w.record(i, outcome::rate_limited, at(0), 100ms);
    CHECK(w.attempts() == static_cast<std::int64_t>(i + 1));
  }
  CHECK(exhausted(w, at(0)));
  CHECK(exhausted(w, at(500))); // targets are ready again, but the budget of attempts is spent
  CHECK(reason(w, at(500)) == "attempts");
}

TEST_CASE("chain_walker: every outcome counts as an attempt", "[dispatcher][chain_walker]") {
  // Successes, retryable and fatal failures all count towards max_attempts.
  chain_walker w{3, at(100000), roomy()};
  w.record(0, outcome::ok, at(0), 0ms);
  w.record(0, outcome::rate_limited, at(0), 0ms);
  w.record(1, outcome::timeout, at(0), 0ms);
  w.record(2, outcome::bad_request, at(0), 0ms);
  CHECK(w.attempts() == 4);
}

TEST_CASE("chain_walker: the default allows eight attempts", "[dispatcher][chain_walker]") {
  // With default options and a single flaky target, the ninth attempt is refused.
  chain_walker w{1, at(1000000)};
  std::int64_t now = 0;
  int tried = 0;
  for (;;) {
    auto d = w.next(at(now));
    if (d.what == action::exhausted)
      break;
    if (d.what == action::wait) {
      now = (d.until - at(0)) / 1ms;
      continue;
    }
    ++tried;
    w.record(d.target, outcome::server_error, at(now), 0ms);
  }
  CHECK(tried == 8);
  CHECK(reason(w, at(now)) == "attempts");
}

TEST_CASE("chain_walker: attempts is reported before deadline", "[dispatcher][chain_walker]") {
  // When both limits are hit, exhausted_reason names the attempts.
  walker_options o;
  o.max_attempts = 1;
  chain_walker w{1, at(1000), o};
  w.record(0, outcome::server_error, at(0), 0ms);
  CHECK(reason(w, at(2000)) == "attempts");
}

TEST_CASE("chain_walker: all targets removed ends the walk with reason targets", "[dispatcher][chain_walker]") {
  // With every target removed by non-retryable failures, there is nothing to wait for.
  chain_walker w{3, at(100000)};
  w.record(0, outcome::auth_failed, at(0), 0ms);
  w.record(1, outcome::bad_request, at(0), 0ms);
  CHECK(tries(w, at(0)) == 2);
  w.record(2, outcome::context_too_long, at(0), 0ms);
  CHECK(exhausted(w, at(0)));
  CHECK(reason(w, at(0)) == "targets");
}

TEST_CASE("chain_walker: an empty chain is exhausted at once", "[dispatcher][chain_walker]") {
  // No targets at all: nothing to try, reason "targets".
  chain_walker w{0, at(100000)};
  CHECK(exhausted(w, at(0)));
  CHECK(reason(w, at(0)) == "targets");
}

TEST_CASE("chain_walker: recording an unknown target throws", "[dispatcher][chain_walker]") {
  // An index past the chain is a broken invariant, not a silent no-op.
  chain_walker w{2, at(100000)};
  CHECK_THROWS_AS(w.record(2, outcome::ok, at(0), 0ms), std::out_of_range);
}

TEST_CASE("chain_walker: a full walk over a three-target chain", "[dispatcher][chain_walker]") {
  // Driving the walker like the dispatcher does: rate limit on the head, a crash on the second,
  // a fatal error on the third, then the head answers after its rest.
  chain_walker w{3, at(10000)};
  std::vector<std::string> log;
  std::int64_t now = 0;
  auto answer = [&](std::size_t target) {
    if (target == 0)
      return log.size() == 0 ? outcome::rate_limited : outcome::ok;
    if (target == 1)
      return outcome::server_error;
    return outcome::auth_failed;
  };
  for (int guard = 0; guard < 20; ++guard) {
    auto d = w.next(at(now));
    if (d.what == action::exhausted) {
      log.push_back("exhausted");
      break;
    }
    if (d.what == action::wait) {
      now = (d.until - at(0)) / 1ms;
      log.push_back("wait " + std::to_string(now));
      continue;
    }
    auto o = answer(d.target);
    log.push_back("try " + std::to_string(d.target) + " at " + std::to_string(now) + ": " + squad::to_string(o));
    w.record(d.target, o, at(now), 1500ms);
    if (o == outcome::ok)
      break;
  }
  const std::vector<std::string> expected = {
      "try 0 at 0: rate_limited",    "try 1 at 0: server_error",
      "try 2 at 0: auth_failed",     "wait 200",
      "try 1 at 200: server_error",  "wait 600",
      "try 1 at 600: server_error",  "wait 1400",
      "try 1 at 1400: server_error", "wait 1500",
      "try 0 at 1500: ok",
  };
  CHECK(log == expected);
  CHECK(w.attempts() == 7);
}

TEST_CASE("chain_walker: a target leaves the walk once its retries are spent", "[dispatcher][chain_walker]") {
  // retries 2: the first failure and two more are tried (rests 1s, 2s); the fourth try never comes, and the
  // walk goes on with the next target at once.
  squad::retry_policy p{2, 1000ms, 30000ms, 0};
  chain_walker w{2, at(1000000), roomy(), {p, {}}};
  w.record(0, outcome::server_error, at(0), 0ms);
  CHECK(tries(w, at(0)) == 1);
  w.record(1, outcome::auth_failed, at(0), 0ms);
  CHECK(waits(w, at(0)) == at(1000));
  w.record(0, outcome::timeout, at(1000), 0ms);
  CHECK(waits(w, at(1000)) == at(3000));
  CHECK_FALSE(w.retries_spent(0));
  w.record(0, outcome::server_error, at(3000), 0ms);
  CHECK(w.retries_spent(0));
  CHECK_FALSE(w.usable(0));
  CHECK(exhausted(w, at(3000)));
  CHECK(reason(w, at(3000)) == "targets");
}

TEST_CASE("chain_walker: 429s do not spend retries", "[dispatcher][chain_walker]") {
  // A rate-limited reply rests the target by its Retry-After and leaves the retry count alone.
  squad::retry_policy p{1, 1000ms, 30000ms, 0};
  chain_walker w{1, at(1000000), roomy(), {p}};
  for (int i = 0; i < 5; ++i)
    w.record(0, outcome::rate_limited, at(i * 1000), 500ms);
  CHECK(w.usable(0));
  w.record(0, outcome::server_error, at(5000), 0ms);
  CHECK(waits(w, at(5000)) == at(6000));
}

TEST_CASE("chain_walker: the product's default policy rests 1, 2, 4, 8s within +-20%", "[dispatcher][chain_walker]") {
  // Jittered rests stay within [0.8, 1.2] of base * 2^(n-1), and they do vary across seeds.
  squad::retry_policy p{4, 1000ms, 30000ms, 0.2};
  std::set<std::int64_t> seen;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    auto o = roomy();
    o.seed = seed;
    chain_walker w{1, at(10000000), o, {p}};
    std::int64_t now = 0;
    for (std::int64_t nominal : {1000, 2000, 4000, 8000}) {
      w.record(0, outcome::server_error, at(now), 0ms);
      auto rest = (waits(w, at(now)) - at(now)) / 1ms;
      CHECK(rest >= nominal * 8 / 10);
      CHECK(rest <= nominal * 12 / 10);
      if (nominal == 1000)
        seen.insert(rest);
      now += rest;
    }
    w.record(0, outcome::server_error, at(now), 0ms);
    CHECK(w.retries_spent(0));
  }
  CHECK(seen.size() > 10);
}

TEST_CASE("chain_walker: each target has its own policy", "[dispatcher][chain_walker]") {
  // Target 0 rests 5s after a failure, target 1 50ms.
  squad::retry_policy slow{3, 5000ms, 30000ms, 0}, quick{3, 50ms, 1000ms, 0};
  chain_walker w{2, at(1000000), roomy(), {slow, quick}};
  w.record(0, outcome::server_error, at(0), 0ms);
  w.record(1, outcome::server_error, at(0), 0ms);
  CHECK(waits(w, at(0)) == at(50));
  CHECK(tries(w, at(50)) == 1);
  CHECK(tries(w, at(5000)) == 0);
}
