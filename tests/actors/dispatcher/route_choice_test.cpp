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

TEST_CASE("route_choice: open breakers and targets that can never admit are passed over", "[dispatcher][route_choice]") {
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
