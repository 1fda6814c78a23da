#include "actors/supervisor/restart_policy.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>

using namespace std::chrono_literals;
using squad::restart_intensity;
using squad::restart_kind;
using squad::should_restart;

namespace {

using steady_time = std::chrono::steady_clock::time_point;
using intensity = restart_intensity<steady_time>;

steady_time at(std::int64_t ms) {
  return steady_time{} + std::chrono::milliseconds{ms};
}

} // namespace

TEST_CASE("should_restart: permanent children always restart", "[supervisor][restart_policy]") {
  // A permanent child comes back after a normal exit and after a crash.
  CHECK(should_restart(restart_kind::permanent, false));
  CHECK(should_restart(restart_kind::permanent, true));
}

TEST_CASE("should_restart: transient children restart only after an abnormal exit", "[supervisor][restart_policy]") {
  // A transient child that finished normally stays down; one that crashed is restarted.
  CHECK_FALSE(should_restart(restart_kind::transient, false));
  CHECK(should_restart(restart_kind::transient, true));
}

TEST_CASE("should_restart: temporary children never restart", "[supervisor][restart_policy]") {
  // A temporary child stays down whatever the exit.
  CHECK_FALSE(should_restart(restart_kind::temporary, false));
  CHECK_FALSE(should_restart(restart_kind::temporary, true));
}

TEST_CASE("should_restart: the full table, usable at compile time", "[supervisor][restart_policy]") {
  // The whole kind x abnormal table matches OTP, and the function is a constant expression.
  struct row {
    restart_kind kind;
    bool abnormal;
    bool expected;
  };
  constexpr row table[] = {
      {restart_kind::permanent, false, true},  {restart_kind::permanent, true, true},
      {restart_kind::transient, false, false}, {restart_kind::transient, true, true},
      {restart_kind::temporary, false, false}, {restart_kind::temporary, true, false},
  };
  for (auto& r : table) {
    INFO("kind " << static_cast<int>(r.kind) << " abnormal " << r.abnormal);
    CHECK(should_restart(r.kind, r.abnormal) == r.expected);
  }
  static_assert(should_restart(restart_kind::permanent, false));
  static_assert(should_restart(restart_kind::transient, true));
  static_assert(!should_restart(restart_kind::transient, false));
  static_assert(!should_restart(restart_kind::temporary, true));
}

TEST_CASE("restart_intensity: starts with no restarts counted", "[supervisor][restart_policy]") {
  // A fresh limiter has counted nothing.
  intensity r{3, 10s};
  CHECK(r.recent() == 0);
}

TEST_CASE("restart_intensity: N restarts in the period are allowed, the N+1th is refused",
          "[supervisor][restart_policy]") {
  // max_restarts = 3 within 10s: three restarts pass, the fourth inside the period escalates.
  intensity r{3, 10s};
  CHECK(r.try_restart(at(0)));
  CHECK(r.try_restart(at(1000)));
  CHECK(r.try_restart(at(2000)));
  CHECK(r.recent() == 3);
  CHECK_FALSE(r.try_restart(at(3000)));
  CHECK(r.recent() == 3);
}

TEST_CASE("restart_intensity: N restarts at the same instant are allowed", "[supervisor][restart_policy]") {
  // Simultaneous restarts count one each; the N+1th at that instant is refused.
  intensity r{5, 10s};
  for (int i = 0; i < 5; ++i)
    CHECK(r.try_restart(at(42)));
  CHECK_FALSE(r.try_restart(at(42)));
  CHECK(r.recent() == 5);
}

TEST_CASE("restart_intensity: a restart ages out exactly at period", "[supervisor][restart_policy]") {
  // A restart at t no longer counts at t + period, but still counts one tick before.
  intensity r{1, 10s};
  REQUIRE(r.try_restart(at(0)));
  CHECK_FALSE(r.try_restart(at(10000) - 1ns));
  CHECK(r.try_restart(at(10000)));
  CHECK(r.recent() == 1);
}

TEST_CASE("restart_intensity: old restarts age out one by one", "[supervisor][restart_policy]") {
  // Each restart frees its slot exactly one period after it was recorded.
  intensity r{3, 10s};
  REQUIRE(r.try_restart(at(0)));
  REQUIRE(r.try_restart(at(4000)));
  REQUIRE(r.try_restart(at(8000)));
  CHECK_FALSE(r.try_restart(at(9999)));
  CHECK(r.try_restart(at(10000))); // the one at 0 aged out; now {4000, 8000, 10000}
  CHECK(r.recent() == 3);
  CHECK_FALSE(r.try_restart(at(13999)));
  CHECK(r.try_restart(at(14000))); // the one at 4000 aged out; now {8000, 10000, 14000}
  CHECK(r.recent() == 3);
}

TEST_CASE("restart_intensity: a refused restart records nothing", "[supervisor][restart_policy]") {
  // Refusals do not extend the penalty: after many refusals the limit reopens when the recorded ones age out.
  intensity r{2, 10s};
  REQUIRE(r.try_restart(at(0)));
  REQUIRE(r.try_restart(at(1000)));
  for (int i = 0; i < 20; ++i)
    CHECK_FALSE(r.try_restart(at(2000 + i * 100)));
  CHECK(r.recent() == 2);
  CHECK(r.try_restart(at(10000)));
  CHECK(r.recent() == 2); // {1000, 10000}: none of the refused attempts was kept
  CHECK(r.try_restart(at(11000)));
}

TEST_CASE("restart_intensity: recent() reports the count as of the last call", "[supervisor][restart_policy]") {
  // recent() does not age entries itself; the count drops when the next try_restart prunes old ones.
  intensity r{3, 10s};
  REQUIRE(r.try_restart(at(0)));
  REQUIRE(r.try_restart(at(1000)));
  CHECK(r.recent() == 2);
  CHECK(r.try_restart(at(50000))); // both aged out, this one recorded
  CHECK(r.recent() == 1);
}

TEST_CASE("restart_intensity: a zero limit refuses every restart", "[supervisor][restart_policy]") {
  // max_restarts = 0 means escalate on the first crash.
  intensity r{0, 10s};
  CHECK_FALSE(r.try_restart(at(0)));
  CHECK_FALSE(r.try_restart(at(100000)));
  CHECK(r.recent() == 0);
}

TEST_CASE("restart_intensity: a steady crash rate below the limit is tolerated forever",
          "[supervisor][restart_policy]") {
  // One crash every 2.5s with 5 allowed per 10s never reaches the limit (at most 4 in any period).
  intensity r{5, 10s};
  for (int i = 0; i < 200; ++i) {
    CHECK(r.try_restart(at(i * 2500)));
    CHECK(r.recent() <= 4);
  }
}

TEST_CASE("restart_intensity: a crash rate above the limit escalates", "[supervisor][restart_policy]") {
  // One crash every second with 5 allowed per 10s: the sixth crash (at 5s) is refused.
  intensity r{5, 10s};
  int allowed = 0;
  int first_refused = -1;
  for (int i = 0; i < 10; ++i) {
    if (r.try_restart(at(i * 1000)))
      ++allowed;
    else if (first_refused < 0)
      first_refused = i;
  }
  CHECK(first_refused == 5);
  CHECK(allowed == 5);
}

TEST_CASE("restart_intensity: works with other time point types", "[supervisor][restart_policy]") {
  // The template takes any clock's time point; the rules are the same on system_clock.
  using sys = std::chrono::system_clock::time_point;
  restart_intensity<sys> r{2, std::chrono::duration_cast<sys::duration>(1s)};
  sys t0{};
  CHECK(r.try_restart(t0));
  CHECK(r.try_restart(t0 + 500ms));
  CHECK_FALSE(r.try_restart(t0 + 999ms));
  CHECK(r.try_restart(t0 + 1s));
  CHECK(r.recent() == 2);
}
