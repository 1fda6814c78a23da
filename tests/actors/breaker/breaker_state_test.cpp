#include "actors/breaker/breaker_state.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

using namespace std::chrono_literals;
using squad::breaker_phase;
using squad::breaker_settings;
using squad::breaker_state;
using squad::health;
using squad::outcome;
using squad::steady_time;

namespace {

// A fixed epoch far from the clock's zero.
const steady_time t0 = steady_time{} + std::chrono::hours{1000};

steady_time at(std::int64_t ms) {
  return t0 + std::chrono::milliseconds{ms};
}

// Times are compared as nanoseconds since t0, so a failure prints numbers.
std::int64_t ns(steady_time t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - t0).count();
}

// Only the ratio rule can trip (the consecutive rule is out of reach).
breaker_settings ratio_only() {
  breaker_settings s;
  s.consecutive = 1000;
  return s;
}

// Opens a default breaker with 5 consecutive failures at `when`.
void trip(breaker_state& b, steady_time when) {
  for (int i = 0; i < b.settings().consecutive; ++i) {
    REQUIRE(b.allow(when));
    b.record(outcome::server_error, when);
  }
  REQUIRE(b.phase(when) == breaker_phase::open);
}

} // namespace

TEST_CASE("breaker_state: outcomes are classified per the header", "[breaker]") {
  // ok succeeds; the provider-health errors fail; rate_limited is neutral unless configured; bad_request and
  // context_too_long are always neutral.
  CHECK(squad::classify_health(outcome::ok, false) == health::success);
  for (auto o : {outcome::server_error, outcome::overloaded, outcome::timeout, outcome::connect_failed,
                 outcome::bad_response, outcome::stream_cut, outcome::auth_failed, outcome::unavailable}) {
    CHECK(squad::classify_health(o, false) == health::failure);
    CHECK(squad::classify_health(o, true) == health::failure);
  }
  CHECK(squad::classify_health(outcome::rate_limited, false) == health::neutral);
  CHECK(squad::classify_health(outcome::rate_limited, true) == health::failure);
  for (auto o : {outcome::bad_request, outcome::context_too_long}) {
    CHECK(squad::classify_health(o, false) == health::neutral);
    CHECK(squad::classify_health(o, true) == health::neutral);
  }
  CHECK(std::string(squad::to_string(breaker_phase::closed)) == "closed");
  CHECK(std::string(squad::to_string(breaker_phase::open)) == "open");
  CHECK(std::string(squad::to_string(breaker_phase::half_open)) == "half_open");
}

TEST_CASE("breaker_state: a fresh breaker is closed and lets everything through", "[breaker]") {
  // Closed allows without limit and takes no slots.
  breaker_state b;
  CHECK(b.phase(t0) == breaker_phase::closed);
  for (int i = 0; i < 100; ++i)
    CHECK(b.allow(at(i)));
  CHECK(b.consecutive_failures() == 0);
}

TEST_CASE("breaker_state: opens after 5 consecutive failures, not 4", "[breaker]") {
  // Four failures in a row leave it closed (no transition reported); the fifth opens it and record says so.
  breaker_state b;
  for (int i = 0; i < 4; ++i) {
    REQUIRE(b.allow(at(i)));
    CHECK_FALSE(b.record(outcome::timeout, at(i)).has_value());
  }
  CHECK(b.consecutive_failures() == 4);
  CHECK(b.phase(at(4)) == breaker_phase::closed);
  CHECK(b.allow(at(4)));
  auto changed = b.record(outcome::connect_failed, at(4));
  REQUIRE(changed.has_value());
  CHECK(*changed == breaker_phase::open);
  CHECK(b.phase(at(4)) == breaker_phase::open);
  CHECK(ns(b.open_until()) == ns(at(4) + 60000ms));
  CHECK_FALSE(b.allow(at(5)));
}

TEST_CASE("breaker_state: a success resets the consecutive count", "[breaker]") {
  // 4 failures, a success, 4 failures: still closed; the fifth failure after the success opens it.
  breaker_state b;
  for (int i = 0; i < 4; ++i)
    b.record(outcome::server_error, at(i));
  CHECK_FALSE(b.record(outcome::ok, at(4)).has_value());
  CHECK(b.consecutive_failures() == 0);
  for (int i = 5; i < 9; ++i)
    CHECK_FALSE(b.record(outcome::server_error, at(i)).has_value());
  CHECK(b.consecutive_failures() == 4);
  CHECK(b.phase(at(9)) == breaker_phase::closed);
  CHECK(b.record(outcome::server_error, at(9)) == std::optional<breaker_phase>(breaker_phase::open));
}

TEST_CASE("breaker_state: neutral outcomes neither count nor reset", "[breaker]") {
  // bad_request, context_too_long and (by default) rate_limited between failures leave the count alone.
  breaker_state b;
  for (int i = 0; i < 4; ++i)
    b.record(outcome::server_error, at(i));
  CHECK_FALSE(b.record(outcome::bad_request, at(4)).has_value());
  CHECK_FALSE(b.record(outcome::context_too_long, at(5)).has_value());
  CHECK_FALSE(b.record(outcome::rate_limited, at(6)).has_value());
  CHECK(b.consecutive_failures() == 4);
  CHECK(b.phase(at(7)) == breaker_phase::closed);
  CHECK(b.record(outcome::overloaded, at(7)) == std::optional<breaker_phase>(breaker_phase::open));
}

TEST_CASE("breaker_state: rate_limited is neutral by default, a failure when configured", "[breaker]") {
  // Twenty 429s leave a default breaker closed; with rate_limit_is_failure five of them open it.
  breaker_state neutral;
  for (int i = 0; i < 20; ++i)
    CHECK_FALSE(neutral.record(outcome::rate_limited, at(i)).has_value());
  CHECK(neutral.phase(at(20)) == breaker_phase::closed);
  CHECK(neutral.consecutive_failures() == 0);

  breaker_settings s;
  s.rate_limit_is_failure = true;
  breaker_state failing{s};
  for (int i = 0; i < 4; ++i)
    CHECK_FALSE(failing.record(outcome::rate_limited, at(i)).has_value());
  CHECK(failing.record(outcome::rate_limited, at(4)) == std::optional<breaker_phase>(breaker_phase::open));
}

TEST_CASE("breaker_state: bad_request is neutral even with rate_limit_is_failure", "[breaker]") {
  // A malformed request says nothing about the provider: fifty of them never open the breaker.
  breaker_settings s;
  s.rate_limit_is_failure = true;
  breaker_state b{s};
  for (int i = 0; i < 50; ++i)
    CHECK_FALSE(b.record(outcome::bad_request, at(i)).has_value());
  CHECK(b.phase(at(50)) == breaker_phase::closed);
}

TEST_CASE("breaker_state: the ratio rule waits for min_calls", "[breaker][ratio]") {
  // F S F S F S F S F: 5 of 9 failed (>= 50%) but only 9 calls: closed. The 10th call, a failure, opens it.
  breaker_state b{ratio_only()};
  for (int i = 0; i < 9; ++i)
    CHECK_FALSE(b.record(i % 2 == 0 ? outcome::server_error : outcome::ok, at(i)).has_value());
  CHECK(b.phase(at(9)) == breaker_phase::closed);
  CHECK(b.record(outcome::server_error, at(9)) == std::optional<breaker_phase>(breaker_phase::open));
}

TEST_CASE("breaker_state: the ratio rule trips at exactly the ratio, and only on a failure", "[breaker][ratio]") {
  // S F x5: 10 calls, 5 failures, the last a failure: opens. F S x5: the same counts ending in a success:
  // stays closed until the next failure.
  breaker_state exact{ratio_only()};
  for (int i = 0; i < 9; ++i)
    CHECK_FALSE(exact.record(i % 2 == 0 ? outcome::ok : outcome::timeout, at(i)).has_value());
  CHECK(exact.record(outcome::timeout, at(9)) == std::optional<breaker_phase>(breaker_phase::open));

  breaker_state ends_ok{ratio_only()};
  for (int i = 0; i < 10; ++i)
    CHECK_FALSE(ends_ok.record(i % 2 == 0 ? outcome::timeout : outcome::ok, at(i)).has_value());
  CHECK(ends_ok.phase(at(10)) == breaker_phase::closed);
  CHECK(ends_ok.record(outcome::timeout, at(10)) == std::optional<breaker_phase>(breaker_phase::open));
}

TEST_CASE("breaker_state: below the ratio the breaker stays closed", "[breaker][ratio]") {
  // One failure in three, for a long time: never opens.
  breaker_state b{ratio_only()};
  for (int i = 0; i < 300; ++i)
    CHECK_FALSE(b.record(i % 3 == 2 ? outcome::server_error : outcome::ok, at(i)).has_value());
  CHECK(b.phase(at(300)) == breaker_phase::closed);
}

TEST_CASE("breaker_state: calls older than the window leave the ratio", "[breaker][ratio]") {
  // F S F S F S F S F over 0..8s, then a failure at 61s: the calls at 0s and 1s (60s old or more) have left,
  // leaving 8 calls, below min_calls. The same failure at 59.999s would have opened it.
  breaker_state late{ratio_only()};
  breaker_state early{ratio_only()};
  for (int i = 0; i < 9; ++i) {
    auto o = i % 2 == 0 ? outcome::server_error : outcome::ok;
    late.record(o, at(1000 * i));
    early.record(o, at(1000 * i));
  }
  CHECK_FALSE(late.record(outcome::server_error, at(61000)).has_value());
  CHECK(late.phase(at(61000)) == breaker_phase::closed);
  CHECK(early.record(outcome::server_error, at(59999)) == std::optional<breaker_phase>(breaker_phase::open));
}

TEST_CASE("breaker_state: open refuses until the cooldown, then half_open allows exactly `probes` probes",
          "[breaker][half_open]") {
  // Open at t: refused through t + 60s - 1ns; at t + 60s half_open, and with probes = 3 three calls go, no fourth.
  breaker_settings s;
  s.probes = 3;
  breaker_state b{s};
  trip(b, at(100));
  CHECK(ns(b.open_until()) == ns(at(60100)));
  CHECK_FALSE(b.allow(at(30000)));
  CHECK_FALSE(b.allow(at(60100) - 1ns));
  CHECK(b.phase(at(60100) - 1ns) == breaker_phase::open);
  CHECK(b.phase(at(60100)) == breaker_phase::half_open);
  CHECK(b.allow(at(60100)));
  CHECK(b.allow(at(60101)));
  CHECK(b.allow(at(60102)));
  CHECK_FALSE(b.allow(at(60103)));
  CHECK_FALSE(b.allow(at(90000)));
}

TEST_CASE("breaker_state: allow() itself moves an open breaker to half_open after the cooldown",
          "[breaker][half_open]") {
  // No phase() query needed: the first allow() after the cooldown takes the single probe slot.
  breaker_state b;
  trip(b, t0);
  CHECK(b.allow(at(60000)));
  CHECK(b.phase(at(60000)) == breaker_phase::half_open);
  CHECK_FALSE(b.allow(at(60000)));
}

TEST_CASE("breaker_state: a probe success closes the breaker", "[breaker][half_open]") {
  // One probe (the default): its success closes, and record reports the change; the count starts afresh.
  breaker_state b;
  trip(b, t0);
  REQUIRE(b.allow(at(60000)));
  CHECK(b.record(outcome::ok, at(60500)) == std::optional<breaker_phase>(breaker_phase::closed));
  CHECK(b.phase(at(60500)) == breaker_phase::closed);
  CHECK(b.allow(at(60500)));
  CHECK(b.allow(at(60500)));
  for (int i = 0; i < 4; ++i)
    CHECK_FALSE(b.record(outcome::server_error, at(60600 + i)).has_value());
  CHECK(b.phase(at(60700)) == breaker_phase::closed);
}

TEST_CASE("breaker_state: with several probes, all must succeed to close", "[breaker][half_open]") {
  // probes = 3: the first two successes report nothing, the third closes.
  breaker_settings s;
  s.probes = 3;
  breaker_state b{s};
  trip(b, t0);
  for (int i = 0; i < 3; ++i)
    REQUIRE(b.allow(at(60000)));
  CHECK_FALSE(b.record(outcome::ok, at(60100)).has_value());
  CHECK_FALSE(b.record(outcome::ok, at(60200)).has_value());
  CHECK(b.phase(at(60200)) == breaker_phase::half_open);
  CHECK(b.record(outcome::ok, at(60300)) == std::optional<breaker_phase>(breaker_phase::closed));
}

TEST_CASE("breaker_state: a probe failure re-opens with a fresh cooldown", "[breaker][half_open]") {
  // The failure at 61s opens the breaker until 121s, not 60s after the first trip.
  breaker_settings s;
  s.probes = 2;
  breaker_state b{s};
  trip(b, t0);
  REQUIRE(b.allow(at(60000)));
  REQUIRE(b.allow(at(60000)));
  CHECK_FALSE(b.record(outcome::ok, at(60500)).has_value()); // one good probe is not enough
  CHECK(b.record(outcome::stream_cut, at(61000)) == std::optional<breaker_phase>(breaker_phase::open));
  CHECK(ns(b.open_until()) == ns(at(121000)));
  CHECK_FALSE(b.allow(at(121000) - 1ns));
  CHECK(b.phase(at(121000)) == breaker_phase::half_open);
  // The new half_open starts with all its slots and no earlier successes.
  CHECK(b.allow(at(121000)));
  CHECK(b.allow(at(121000)));
  CHECK_FALSE(b.allow(at(121000)));
  CHECK_FALSE(b.record(outcome::ok, at(121100)).has_value());
  CHECK(b.record(outcome::ok, at(121200)) == std::optional<breaker_phase>(breaker_phase::closed));
}

TEST_CASE("breaker_state: a neutral outcome in half_open frees the probe slot", "[breaker][half_open]") {
  // The probe got a 400: it told nothing about the provider, so another probe may go; the phase stays.
  breaker_state b;
  trip(b, t0);
  REQUIRE(b.allow(at(60000)));
  CHECK_FALSE(b.allow(at(60000)));
  CHECK_FALSE(b.record(outcome::bad_request, at(60100)).has_value());
  CHECK(b.phase(at(60100)) == breaker_phase::half_open);
  CHECK(b.allow(at(60100)));
  CHECK_FALSE(b.allow(at(60100)));
  CHECK_FALSE(b.record(outcome::rate_limited, at(60200)).has_value());
  CHECK(b.allow(at(60200)));
  CHECK(b.record(outcome::ok, at(60300)) == std::optional<breaker_phase>(breaker_phase::closed));
}

TEST_CASE("breaker_state: a configured 429 in half_open is a probe failure", "[breaker][half_open]") {
  // With rate_limit_is_failure the probe's 429 re-opens the breaker.
  breaker_settings s;
  s.rate_limit_is_failure = true;
  breaker_state b{s};
  trip(b, t0);
  REQUIRE(b.allow(at(60000)));
  CHECK(b.record(outcome::rate_limited, at(60100)) == std::optional<breaker_phase>(breaker_phase::open));
  CHECK(ns(b.open_until()) == ns(at(120100)));
}

TEST_CASE("breaker_state: replies arriving while open change nothing", "[breaker]") {
  // Late outcomes of calls let through before the trip neither extend the cooldown nor close the breaker.
  breaker_state b;
  trip(b, t0);
  CHECK_FALSE(b.record(outcome::server_error, at(100)).has_value());
  CHECK_FALSE(b.record(outcome::ok, at(200)).has_value());
  CHECK(b.phase(at(300)) == breaker_phase::open);
  CHECK(ns(b.open_until()) == ns(at(60000)));
}

TEST_CASE("breaker_state: a trip forgets the ratio history", "[breaker][ratio]") {
  // After open -> half_open -> closed, the failures before the trip no longer count toward the ratio.
  breaker_state b{ratio_only()};
  for (int i = 0; i < 10; ++i)
    b.record(i % 2 == 0 ? outcome::ok : outcome::server_error, at(i));
  REQUIRE(b.phase(at(10)) == breaker_phase::open);
  REQUIRE(b.allow(at(60009)));
  REQUIRE(b.record(outcome::ok, at(60010)) == std::optional<breaker_phase>(breaker_phase::closed));
  for (int i = 0; i < 9; ++i) // 9 calls, 5 failures: below min_calls since the close
    CHECK_FALSE(b.record(i % 2 == 0 ? outcome::server_error : outcome::ok, at(60020 + i)).has_value());
  CHECK(b.phase(at(60100)) == breaker_phase::closed);
}

TEST_CASE("breaker_state: a late reply from before a trip is not a probe result", "[breaker]") {
  breaker_state b; // 5 consecutive failures, 60s cooldown, 1 probe
  auto late = b.admit(at(0));
  REQUIRE(late);
  for (int i = 0; i < 5; ++i) {
    auto g = b.admit(at(1));
    REQUIRE(g);
    b.record(outcome::server_error, at(1), *g);
  }
  REQUIRE(b.phase(at(2)) == breaker_phase::open);
  CHECK_FALSE(b.admit(at(2)));
  auto probe = b.admit(at(61001)); // half-open: the one probe
  REQUIRE(probe);
  CHECK(*probe != *late);
  // The call let through at 0ms answers now, successfully: it must not close the breaker...
  CHECK_FALSE(b.record(outcome::ok, at(61002), *late));
  CHECK(b.phase(at(61002)) == breaker_phase::half_open);
  CHECK_FALSE(b.admit(at(61002))); // ...nor free the probe slot
  // The probe's own answer does.
  CHECK(b.record(outcome::ok, at(61003), *probe) == breaker_phase::closed);
}
