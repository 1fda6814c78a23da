// pressure_inputs: what the dispatcher feeds the pressure gauge, with time passed in.
#include "actors/budget/pressure_inputs.hpp"

#include <catch2/catch.hpp>

using namespace squad;
using namespace std::chrono_literals;

TEST_CASE("pressure inputs: 429s count for one minute, the last wait and the queue depth pass through") {
  // Intent: a 429 raises the rate for exactly a minute; wait and depth are what was last said.
  pressure_inputs in;
  steady_time t0{};
  in.on_reply(true, false, 0, t0);
  in.on_reply(true, false, 0, t0 + 30s);
  in.on_wait(1500);
  auto s = in.signals(t0 + 59s, 7);
  CHECK(s.rate_429_per_min == 2);
  CHECK(s.wait_ms == 1500);
  CHECK(s.queue_depth == 7);
  CHECK(s.open_breaker_share == 0);
  CHECK(in.signals(t0 + 60s, 0).rate_429_per_min == 1);
  CHECK(in.signals(t0 + 90s, 0).rate_429_per_min == 0);
}

TEST_CASE("pressure inputs: p95 latency over the last answered calls only") {
  // Intent: failed calls add no latency; the window keeps the newest `latency_window` answers.
  pressure_inputs in{20};
  steady_time t0{};
  for (int i = 1; i <= 20; ++i)
    in.on_reply(false, true, i * 100, t0);
  in.on_reply(false, false, 999999, t0);
  CHECK(in.signals(t0, 0).p95_latency_ms == 2000);
  for (int i = 0; i < 20; ++i) // twenty fast answers push every slow one out
    in.on_reply(false, true, 10, t0);
  CHECK(in.signals(t0, 0).p95_latency_ms == 10);
}
