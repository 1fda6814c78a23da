#include "actors/dispatcher/arrival_rates.hpp"

#include <catch2/catch.hpp>

using squad::arrival_rates;
using squad::steady_time;

namespace {
steady_time at(std::int64_t ms) {
  return steady_time{} + std::chrono::milliseconds{ms};
}
} // namespace

// Calls of class `cls` at `per_s` a second, evenly, from `from_ms` up to (not including) `to_ms`.
void stream(arrival_rates& r, std::size_t cls, double per_s, std::int64_t from_ms, std::int64_t to_ms) {
  for (double t = static_cast<double>(from_ms); t < static_cast<double>(to_ms); t += 1000.0 / per_s)
    r.add(cls, at(static_cast<std::int64_t>(t)));
}

TEST_CASE("arrival rates: higher classes over the last five seconds, the current quarter second left out",
          "[dispatcher][arrival_rates]") {
  // 10 P0 and 20 P1 a second from 0 to 8 s: a P2 call sees 30/s ahead of it, a P1 call 10/s, a P0 call nothing.
  arrival_rates r;
  for (std::int64_t t = 0; t < 8000; t += 100) { // in time order: the ring keeps only the last five seconds
    stream(r, 0, 10, t, t + 100);
    stream(r, 1, 20, t, t + 100);
  }
  CHECK(r.rate_above(2, at(8000)) == Approx(30).epsilon(0.02));
  CHECK(r.rate_above(1, at(8000)) == Approx(10).epsilon(0.02));
  CHECK(r.rate_above(0, at(8000)) == 0);
  CHECK(r.rate_above(2, at(8100)) == Approx(30).epsilon(0.02)); // 8.0-8.25 s is not whole yet
  CHECK(r.rate_above(2, at(8500)) == 0);                        // two quarter seconds without one: stopped
}

TEST_CASE("arrival rates: a rate is seen after two whole quarter seconds, averaged since it began",
          "[dispatcher][arrival_rates]") {
  arrival_rates r;
  stream(r, 0, 40, 1000, 1100);
  CHECK(r.rate_above(1, at(1100)) == 0);
  stream(r, 0, 40, 1100, 1250);
  CHECK(r.rate_above(1, at(1250)) == 0); // one whole bucket: not yet a rate
  stream(r, 0, 40, 1250, 1500);
  CHECK(r.rate_above(1, at(1500)) == Approx(40).epsilon(0.05));
  stream(r, 0, 40, 1500, 3000);
  CHECK(r.rate_above(1, at(3000)) == Approx(40).epsilon(0.05)); // over 2 s, not diluted over 5
}

TEST_CASE("arrival rates: a rate that drops is followed within a second", "[dispatcher][arrival_rates]") {
  arrival_rates r;
  stream(r, 0, 40, 0, 4000);
  stream(r, 0, 4, 4000, 8000);
  CHECK(r.rate_above(1, at(4000)) == Approx(40).epsilon(0.05));
  CHECK(r.rate_above(1, at(5000)) == Approx(4).epsilon(0.05)); // the last second, below the 5 s average
}

TEST_CASE("arrival rates: a one-off burst forecasts nothing while it lands, and is forgotten once it stopped",
          "[dispatcher][arrival_rates]") {
  arrival_rates r;
  for (int i = 0; i < 300; ++i) // 300 ms of calls, straddling two buckets
    r.add(1, at(200 + i));
  for (int t = 200; t < 500; t += 10)
    CHECK(r.rate_above(3, at(t)) == 0);
  CHECK(r.rate_above(3, at(600)) > 0);  // the quarter second after it: the burst looks like a rate...
  CHECK(r.rate_above(3, at(750)) == 0); // ...and once a whole bucket passes without one, it is not
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
