#include "actors/limiter/sliding_window.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

using namespace std::chrono_literals;
using squad::sliding_window;
using squad::steady_time;

namespace {

steady_time at(std::int64_t ms) {
  return steady_time{} + std::chrono::milliseconds{ms};
}

} // namespace

TEST_CASE("sliding_window: a fresh window is empty and admits at once", "[limiter][sliding_window]") {
  // A window that has seen nothing reports zero occupancy and lets the first call through immediately.
  sliding_window w{3, 1000ms};
  CHECK(w.limit() == 3);
  CHECK(w.occupancy(at(0)) == 0);
  CHECK(w.earliest_admit(at(0)) == at(0));
  CHECK(w.earliest_admit(at(12345)) == at(12345));
  CHECK(w.try_admit(at(0)));
  CHECK(w.occupancy(at(0)) == 1);
}

TEST_CASE("sliding_window: admits exactly limit calls then refuses", "[limiter][sliding_window]") {
  // With limit N, calls spread inside one window are admitted N times and the N+1th is refused.
  sliding_window w{3, 1000ms};
  CHECK(w.try_admit(at(0)));
  CHECK(w.try_admit(at(100)));
  CHECK(w.try_admit(at(200)));
  CHECK_FALSE(w.try_admit(at(300)));
  CHECK_FALSE(w.try_admit(at(999)));
  CHECK(w.occupancy(at(999)) == 3);
}

TEST_CASE("sliding_window: a refused call is not recorded", "[limiter][sliding_window]") {
  // Refusals do not occupy the window, so they never push the next admission further out.
  sliding_window w{2, 1000ms};
  REQUIRE(w.try_admit(at(0)));
  REQUIRE(w.try_admit(at(500)));
  for (int i = 0; i < 10; ++i)
    CHECK_FALSE(w.try_admit(at(600 + i * 10)));
  CHECK(w.occupancy(at(900)) == 2);
  CHECK(w.earliest_admit(at(900)) == at(1000));
  CHECK(w.try_admit(at(1000)));
}

TEST_CASE("sliding_window: an admission exactly window ago has expired", "[limiter][sliding_window]") {
  // The window is (now - window, now]: at now = t + window the admission at t no longer counts.
  sliding_window w{1, 1000ms};
  REQUIRE(w.try_admit(at(0)));
  CHECK(w.occupancy(at(999)) == 1);
  CHECK_FALSE(w.try_admit(at(999)));
  CHECK(w.occupancy(at(1000)) == 0);
  CHECK(w.try_admit(at(1000)));
}

TEST_CASE("sliding_window: one nanosecond before the boundary still counts", "[limiter][sliding_window]") {
  // The boundary is exact to the clock's resolution, not rounded to milliseconds.
  sliding_window w{1, 1000ms};
  REQUIRE(w.try_admit(at(0)));
  CHECK_FALSE(w.try_admit(at(1000) - 1ns));
  CHECK(w.occupancy(at(1000) - 1ns) == 1);
  CHECK(w.try_admit(at(1000)));
}

TEST_CASE("sliding_window: earliest_admit is now while below the limit", "[limiter][sliding_window]") {
  // Below the cap there is nothing to wait for.
  sliding_window w{3, 1000ms};
  REQUIRE(w.try_admit(at(0)));
  REQUIRE(w.try_admit(at(10)));
  CHECK(w.earliest_admit(at(20)) == at(20));
}

TEST_CASE("sliding_window: earliest_admit is when the oldest blocking admission expires", "[limiter][sliding_window]") {
  // At the cap, the next slot opens exactly when the oldest admission in the window leaves it.
  sliding_window w{3, 1000ms};
  REQUIRE(w.try_admit(at(0)));
  REQUIRE(w.try_admit(at(300)));
  REQUIRE(w.try_admit(at(700)));
  CHECK(w.earliest_admit(at(800)) == at(1000));
  // Exactness: refused one nanosecond before, admitted at that instant.
  CHECK_FALSE(w.try_admit(at(1000) - 1ns));
  CHECK(w.try_admit(at(1000)));
  // Now the log is {300, 700, 1000}; the next slot is at 1300.
  CHECK(w.earliest_admit(at(1000)) == at(1300));
  CHECK_FALSE(w.try_admit(at(1299)));
  CHECK(w.try_admit(at(1300)));
}

TEST_CASE("sliding_window: earliest_admit does not change with the asking time", "[limiter][sliding_window]") {
  // Asking earlier or later within the blocked span gives the same answer, and asking does not admit.
  sliding_window w{2, 500ms};
  REQUIRE(w.try_admit(at(100)));
  REQUIRE(w.try_admit(at(200)));
  CHECK(w.earliest_admit(at(200)) == at(600));
  CHECK(w.earliest_admit(at(400)) == at(600));
  CHECK(w.earliest_admit(at(599)) == at(600));
  CHECK(w.occupancy(at(599)) == 2);
  // At or after the answer, it is `now` itself.
  CHECK(w.earliest_admit(at(600)) == at(600));
  CHECK(w.earliest_admit(at(650)) == at(650));
}

TEST_CASE("sliding_window: a burst at one instant fills the window at once", "[limiter][sliding_window]") {
  // N admissions at the same instant all count; the next slot opens a full window later, for all N at once.
  sliding_window w{4, 1000ms};
  for (int i = 0; i < 4; ++i)
    CHECK(w.try_admit(at(50)));
  CHECK_FALSE(w.try_admit(at(50)));
  CHECK(w.occupancy(at(50)) == 4);
  CHECK(w.earliest_admit(at(50)) == at(1050));
  CHECK(w.occupancy(at(1049)) == 4);
  CHECK(w.occupancy(at(1050)) == 0);
  for (int i = 0; i < 4; ++i)
    CHECK(w.try_admit(at(1050)));
  CHECK_FALSE(w.try_admit(at(1050)));
}

TEST_CASE("sliding_window: a burst after spread admissions waits for the right one", "[limiter][sliding_window]") {
  // With duplicates in the log, earliest_admit names the admission whose expiry brings the count below N.
  sliding_window w{3, 1000ms};
  REQUIRE(w.try_admit(at(0)));
  REQUIRE(w.try_admit(at(200)));
  REQUIRE(w.try_admit(at(200)));
  CHECK(w.earliest_admit(at(300)) == at(1000));
  REQUIRE(w.try_admit(at(1000))); // log {200, 200, 1000}
  // One admission must leave to get below 3; the oldest ones (both at 200) leave together at 1200.
  CHECK(w.earliest_admit(at(1100)) == at(1200));
  CHECK(w.occupancy(at(1200)) == 1);
}

TEST_CASE("sliding_window: occupancy drops one by one as admissions age out", "[limiter][sliding_window]") {
  // Occupancy counts exactly the admissions in (now - window, now].
  sliding_window w{10, 1000ms};
  REQUIRE(w.try_admit(at(0)));
  REQUIRE(w.try_admit(at(100)));
  REQUIRE(w.try_admit(at(200)));
  CHECK(w.occupancy(at(200)) == 3);
  CHECK(w.occupancy(at(999)) == 3);
  CHECK(w.occupancy(at(1000)) == 2);
  CHECK(w.occupancy(at(1099)) == 2);
  CHECK(w.occupancy(at(1100)) == 1);
  CHECK(w.occupancy(at(1200)) == 0);
  CHECK(w.occupancy(at(99999)) == 0);
}

TEST_CASE("sliding_window: a limit of one spaces admissions a window apart", "[limiter][sliding_window]") {
  // With N = 1 each admission blocks the next for exactly one window.
  sliding_window w{1, 250ms};
  steady_time t = at(0);
  for (int i = 0; i < 5; ++i) {
    CHECK(w.try_admit(t));
    CHECK_FALSE(w.try_admit(t + 249ms));
    CHECK(w.earliest_admit(t + 1ms) == t + 250ms);
    t += 250ms;
  }
}

TEST_CASE("sliding_window: the cap holds in every window over a long greedy run", "[limiter][sliding_window]") {
  // Calling try_admit every millisecond, no window of length W ever holds more than N admissions,
  // and the windows that start at an admission are full (the limiter is not stricter than it must be).
  constexpr std::int64_t limit = 5;
  constexpr std::int64_t window_ms = 100;
  sliding_window w{limit, std::chrono::milliseconds{window_ms}};
  std::vector<std::int64_t> admitted;
  for (std::int64_t t = 0; t < 2000; ++t) {
    auto predicted = w.earliest_admit(at(t));
    bool ok = w.try_admit(at(t));
    // earliest_admit agrees with try_admit at every instant.
    CHECK(ok == (predicted == at(t)));
    if (ok)
      admitted.push_back(t);
  }
  // Greedy, one call a millisecond: t = 0..4 admitted, then each slot reopens exactly W after it was taken.
  REQUIRE(admitted.size() == 100);
  for (std::size_t i = 0; i < admitted.size(); ++i)
    CHECK(admitted[i] == static_cast<std::int64_t>(i / limit) * window_ms + static_cast<std::int64_t>(i % limit));
  // Hard cap: for every instant s, admissions in (s - W, s] <= N.
  for (std::int64_t s = 0; s < 2100; ++s) {
    std::int64_t in = 0;
    for (auto a : admitted)
      if (a > s - window_ms && a <= s)
        ++in;
    CHECK(in <= limit);
  }
}

TEST_CASE("sliding_window: the cap holds with irregular arrivals", "[limiter][sliding_window]") {
  // With arrivals at uneven gaps, every window of length W holds at most N admissions, and a refused
  // call always had N admissions in its window.
  constexpr std::int64_t limit = 3;
  constexpr std::int64_t window_ms = 1000;
  sliding_window w{limit, std::chrono::milliseconds{window_ms}};
  std::vector<std::int64_t> admitted;
  std::int64_t t = 0;
  const std::int64_t gaps[] = {0, 1, 0, 250, 400, 349, 1, 0, 999, 1000, 3, 7, 500, 500, 0, 0, 0, 1200, 13, 600};
  for (int round = 0; round < 5; ++round) {
    for (auto g : gaps) {
      t += g;
      std::int64_t in_window = 0;
      for (auto a : admitted)
        if (a > t - window_ms)
          ++in_window;
      bool ok = w.try_admit(at(t));
      CHECK(ok == (in_window < limit));
      if (ok)
        admitted.push_back(t);
    }
  }
  for (auto s : admitted) {
    std::int64_t in = 0;
    for (auto a : admitted)
      if (a > s - window_ms && a <= s)
        ++in;
    CHECK(in <= limit);
  }
}

TEST_CASE("sliding_window: nanosecond windows work", "[limiter][sliding_window]") {
  // The window length is not limited to whole milliseconds.
  sliding_window w{2, 1500us};
  REQUIRE(w.try_admit(at(0)));
  REQUIRE(w.try_admit(at(1)));
  CHECK_FALSE(w.try_admit(at(1)));
  CHECK(w.earliest_admit(at(1)) == at(0) + 1500us);
  CHECK(w.try_admit(at(0) + 1500us));
}
