#include "actors/dispatcher/route_choice.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using squad::choose_route;
using squad::past_tolerable_wait;
using squad::route_option;

TEST_CASE("route_choice: the preferred target keeps the call unless another is sooner by more than the slack",
          "[dispatcher][route_choice]") {
  // Chain order a, b: a waits 900ms, b 500ms. With 250ms slack b wins (400ms sooner); with 500ms slack a keeps it.
  std::vector<route_option> o{{900, false}, {500, false}};
  auto p = choose_route(o, 250);
  CHECK(*p.preferred == 0);
  CHECK(*p.best == 1);
  CHECK(*p.chosen == 1);
  CHECK(*choose_route(o, 500).chosen == 0);
  CHECK(*choose_route(o, 400).chosen == 0); // sooner by exactly the slack is not enough
}

TEST_CASE("route_choice: open breakers and targets that can never admit are passed over",
          "[dispatcher][route_choice]") {
  // a is open, b can never admit (too big), c is the first usable target: preferred and chosen.
  std::vector<route_option> o{{0, true}, {-1, false}, {3000, false}, {2000, false}};
  auto p = choose_route(o, 250);
  CHECK(*p.preferred == 2);
  CHECK(*p.best == 3);
  CHECK(*p.chosen == 3);
}

TEST_CASE("route_choice: with no usable target the choice is empty", "[dispatcher][route_choice]") {
  auto p = choose_route({{10, true}, {-1, false}}, 250);
  CHECK_FALSE(p.preferred);
  CHECK_FALSE(p.best);
  CHECK_FALSE(p.chosen);
  CHECK_FALSE(choose_route({}, 250).chosen);
}

TEST_CASE("route_choice: a call is past its tolerable wait when waited plus earliest slot exceed it",
          "[dispatcher][route_choice][tolerable]") {
  // P3 tolerates 10s: an earliest slot 9s away after 0s waited is fine, after 2s waited it is not; exactly 10s
  // is still tolerated. P0 (max) is never past.
  CHECK_FALSE(past_tolerable_wait(0, 9000, 10000ms));
  CHECK(past_tolerable_wait(2000, 9000, 10000ms));
  CHECK_FALSE(past_tolerable_wait(1000, 9000, 10000ms));
  CHECK_FALSE(past_tolerable_wait(1000000, 1000000, std::chrono::milliseconds::max()));
}

namespace {
squad::target_view seen(double latency_ms, double success, std::int64_t samples = 10, double cost = 0) {
  squad::target_view v;
  v.latency_ms = latency_ms;
  v.success = success;
  v.samples = samples;
  v.cost = cost;
  return v;
}
using squad::order_targets;
using squad::route_strategy;
using order = std::vector<std::size_t>;
} // namespace

TEST_CASE("strategies: preference keeps the chain's order whatever was observed", "[dispatcher][strategy]") {
  CHECK(order_targets(route_strategy::preference, {seen(900, 0.1), seen(10, 1), seen(50, 1)}) == order{0, 1, 2});
}

TEST_CASE("strategies: latency puts the fastest EMA first, and a target never observed before all",
          "[dispatcher][strategy]") {
  CHECK(order_targets(route_strategy::latency, {seen(450, 1), seen(120, 1), seen(300, 0.2)}) == order{1, 2, 0});
  CHECK(order_targets(route_strategy::latency, {seen(450, 1), seen(0, 1, 0), seen(120, 1)}) == order{1, 2, 0});
  CHECK(order_targets(route_strategy::latency, {seen(100, 1), seen(100, 1)}) == order{0, 1}); // ties: chain order
}

TEST_CASE("strategies: cost puts the cheapest estimate first; equal prices keep the chain's order",
          "[dispatcher][strategy]") {
  CHECK(order_targets(route_strategy::cost,
                      {seen(10, 1, 10, 0.002), seen(900, 1, 10, 0.0001), seen(50, 1, 10, 0.0005)}) == order{1, 2, 0});
  CHECK(order_targets(route_strategy::cost, {seen(10, 1, 10, 0), seen(900, 1, 10, 0)}) == order{0, 1});
}

TEST_CASE("strategies: adaptive weighs success against latency", "[dispatcher][strategy]") {
  // 100 ms at 40% ok (250 ms per success) loses to 200 ms at 100% (200); 150 ms at 90% (167) beats both.
  CHECK(order_targets(route_strategy::adaptive, {seen(100, 0.4), seen(200, 1.0), seen(150, 0.9)}) == order{2, 1, 0});
  // A target with no success at all sorts last, not divided by zero.
  CHECK(order_targets(route_strategy::adaptive, {seen(10, 0.0), seen(5000, 1.0)}) == order{1, 0});
}

TEST_CASE("strategies: the EMA follows replies with weight 0.2, the first reply sets it", "[dispatcher][strategy]") {
  squad::target_view v;
  squad::observe_target(v, true, 100);
  CHECK(v.latency_ms == 100);
  CHECK(v.success == 1);
  squad::observe_target(v, false, 200);
  CHECK(v.latency_ms == Approx(120));
  CHECK(v.success == Approx(0.8));
  CHECK(v.samples == 2);
}

TEST_CASE("strategies: names parse both ways", "[dispatcher][strategy]") {
  for (auto s : {route_strategy::preference, route_strategy::latency, route_strategy::cost, route_strategy::adaptive})
    CHECK(squad::parse_route_strategy(squad::to_string(s)) == s);
  CHECK_FALSE(squad::parse_route_strategy("fastest"));
}
