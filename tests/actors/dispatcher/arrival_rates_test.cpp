#include "actors/dispatcher/arrival_rates.hpp"

#include <catch2/catch.hpp>

using squad::arrival_rates;
using squad::steady_time;

namespace {
steady_time at(std::int64_t ms) {
  return steady_time{} + std::chrono::milliseconds{ms};
}
} // namespace

TEST_CASE("arrival rates: higher classes over the last five whole seconds, the current one left out",
          "[dispatcher][arrival_rates]") {
  // 10 P0 and 20 P1 per second for seconds 0..5; at 6.5 s a P2 call sees 30/s ahead of it, a P1 call 10/s,
  // a P0 call nothing. Arrivals in second 6 itself count for nobody yet.
  arrival_rates r;
  for (int s = 0; s < 6; ++s)
    for (int i = 0; i < 30; ++i)
      r.add(i < 10 ? 0 : 1, at(s * 1000 + i * 30));
  for (int i = 0; i < 100; ++i)
    r.add(0, at(6000 + i));
  CHECK(r.rate_above(2, at(6500)) == Approx(30));
  CHECK(r.rate_above(1, at(6500)) == Approx(10));
  CHECK(r.rate_above(0, at(6500)) == 0);
  CHECK(r.rate_above(3, at(7100)) == Approx((4 * 30 + 100 * 1.0) / 5)); // seconds 2..6
  CHECK(r.rate_above(3, at(8100)) == 0);                                // nothing in second 7: stopped
}

TEST_CASE("arrival rates: a one-off burst forecasts nothing while it lasts, and is forgotten after five seconds",
          "[dispatcher][arrival_rates]") {
  arrival_rates r;
  for (int i = 0; i < 300; ++i)
    r.add(1, at(200 + i));
  CHECK(r.rate_above(3, at(900)) == 0);
  CHECK(r.rate_above(3, at(1200)) == Approx(60)); // the second after it: the burst looks like a rate...
  CHECK(r.rate_above(3, at(2200)) == 0);          // ...and once a whole second passes without one, it is not
  CHECK(r.rate_above(3, at(6100)) == 0);
}

TEST_CASE("arrival rates: the forecast stretches a wait by the capacity higher classes take, over a horizon",
          "[dispatcher][arrival_rates]") {
  // Within the 5 s horizon: wait / (1 - share taken); past it only the horizon's arrivals count.
  CHECK(arrival_rates::forecast_wait(2000, 0, 20) == 2000);
  CHECK(arrival_rates::forecast_wait(2000, 25, 20) == 4000);   // half the capacity taken
  CHECK(arrival_rates::forecast_wait(4000, 25, 20) == 6500);   // 8 s would be past 5 s: 4 s + 0.5 x 5 s
  CHECK(arrival_rates::forecast_wait(2000, 100, 20) == 12000); // twice the capacity: 2 s + 2 x 5 s
  CHECK(arrival_rates::forecast_wait(2000, 100, 20, 1000) == 4000);
}
