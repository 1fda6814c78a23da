#include "actors/supervisor/supervisor.hpp"
#include "tests/actors/actor_fixture.hpp"

#include <catch2/catch.hpp>

using namespace squad;
using namespace std::chrono_literals;

namespace {

// A child that crashes, stops or answers on request.
caf::behavior crashable(caf::event_based_actor* self) {
  return {
      [](atoms::crash) { throw std::runtime_error("boom"); },
      [self](atoms::done) { self->quit(); },
      [](atoms::tick) { return std::string{"tock"}; },
  };
}

child_spec crashable_child(std::string name, restart_kind kind) {
  return {std::move(name), kind, [](caf::local_actor* parent) { return parent->spawn(crashable); }};
}

struct supervisor_fixture : test::actor_fixture {
  std::shared_ptr<test::recorded> seen = std::make_shared<test::recorded>();
  caf::actor rec = sys->spawn(test::recorder, seen);
  caf::actor sup;

  void start(std::vector<child_spec> children, std::size_t max_restarts = 3, caf::timespan period = 10s) {
    sup = caf::actor_cast<caf::actor>(spawn_supervisor(*sys, {"sup", max_restarts, period}, std::move(children)));
    spawned = {sup, rec};
    caf::anon_send(sup, atoms::subscribe_v, rec);
    caf::anon_send(rec, atoms::start_v, sup);
    sched->run();
  }

  caf::actor child(const std::string& name) {
    auto a = ask<caf::actor>(sup, atoms::whereis_v, name);
    sched->run();
    return a->value ? *a->value : caf::actor{};
  }
};

} // namespace

TEST_CASE_METHOD(supervisor_fixture, "a crashed permanent child is restarted under a new handle and reported") {
  // Intent: one_for_one restart of a permanent child, visible to subscribers.
  start({crashable_child("a", restart_kind::permanent)});
  auto before = child("a");
  REQUIRE(before);
  caf::anon_send(before, atoms::crash_v);
  sched->run();
  auto after = child("a");
  REQUIRE(after);
  CHECK(after != before);
  REQUIRE(seen->children.size() == 1);
  CHECK(seen->children[0].what == "restarted");
  CHECK(seen->children[0].child == "a");
  CHECK(seen->children[0].restarts == 1);
}

TEST_CASE_METHOD(supervisor_fixture, "restart kinds: transient restarts only after a crash, temporary never") {
  // Intent: the restart kind decides, as in OTP.
  start({crashable_child("t", restart_kind::transient), crashable_child("n", restart_kind::transient),
         crashable_child("tmp", restart_kind::temporary)});
  caf::anon_send(child("t"), atoms::crash_v);
  caf::anon_send(child("n"), atoms::done_v);
  caf::anon_send(child("tmp"), atoms::crash_v);
  sched->run();
  CHECK(child("t"));
  auto n = ask<caf::actor>(sup, atoms::whereis_v, std::string{"n"});
  auto tmp = ask<caf::actor>(sup, atoms::whereis_v, std::string{"tmp"});
  sched->run();
  CHECK(n->error == squad_errc::no_such_child);
  CHECK(tmp->error == squad_errc::no_such_child);
  CHECK(seen->downs.empty()); // the supervisor itself lives on
}

TEST_CASE_METHOD(supervisor_fixture, "past the intensity limit the supervisor stops its children and escalates") {
  // Intent: at most N restarts in T; the N+1th crash inside T ends the supervisor with intensity_exceeded.
  start({crashable_child("a", restart_kind::permanent), crashable_child("b", restart_kind::permanent)}, 3, 10s);
  auto b = child("b");
  auto rec_b = std::make_shared<test::recorded>();
  auto watcher = sys->spawn(test::recorder, rec_b);
  spawned.push_back(watcher);
  caf::anon_send(watcher, atoms::start_v, b);
  for (int i = 0; i < 3; ++i) {
    caf::anon_send(child("a"), atoms::crash_v);
    sched->run();
    sched->clock().advance_time(1s);
  }
  CHECK(seen->downs.empty());
  caf::anon_send(child("a"), atoms::crash_v);
  sched->run();
  REQUIRE(seen->downs.size() == 1);
  CHECK(seen->downs[0].reason == squad_errc::intensity_exceeded);
  CHECK(seen->children.back().what == "escalated");
  REQUIRE(rec_b->downs.size() == 1); // the healthy sibling was stopped with its supervisor
}

TEST_CASE_METHOD(supervisor_fixture, "restarts older than the period no longer count") {
  // Intent: the intensity window slides; a crash every period/2 with max 2 never escalates.
  start({crashable_child("a", restart_kind::permanent)}, 2, 10s);
  for (int i = 0; i < 10; ++i) {
    caf::anon_send(child("a"), atoms::crash_v);
    sched->run();
    sched->clock().advance_time(5s);
  }
  CHECK(seen->downs.empty());
  CHECK(seen->children.size() == 10);
}

TEST_CASE_METHOD(supervisor_fixture, "a nested supervisor's handle is announced at its start and at every restart") {
  // Intent: children are reached by handle, never by path: the `started` hook of supervisor_child sees each new
  // handle (what the tree uses to keep its directory current), and the new handle answers for its children.
  auto seen_handles = std::make_shared<std::vector<supervisor_actor>>();
  start({supervisor_child({"sub", 3, 10s}, {crashable_child("leaf", restart_kind::permanent)}, restart_kind::permanent,
                          [seen_handles](const supervisor_actor& h) { seen_handles->push_back(h); })});
  REQUIRE(seen_handles->size() == 1);
  auto leaf = ask<caf::actor>(caf::actor_cast<caf::actor>(seen_handles->back()), atoms::whereis_v, std::string{"leaf"});
  sched->run();
  REQUIRE(leaf->value);
  caf::anon_send_exit(seen_handles->back(), caf::exit_reason::kill);
  sched->run();
  REQUIRE(seen_handles->size() == 2);
  CHECK(seen_handles->at(1) != seen_handles->at(0));
  auto again =
      ask<caf::actor>(caf::actor_cast<caf::actor>(seen_handles->back()), atoms::whereis_v, std::string{"leaf"});
  sched->run();
  CHECK(again->value);
}

TEST_CASE_METHOD(supervisor_fixture, "a child killed with exit_reason::kill is restarted, not propagated") {
  // Intent: supervisors monitor rather than link, so an untrappable kill stays with the child.
  start({crashable_child("a", restart_kind::permanent)});
  auto a = child("a");
  caf::anon_send_exit(a, caf::exit_reason::kill);
  sched->run();
  CHECK(seen->downs.empty());
  CHECK(child("a"));
  CHECK(child("a") != a);
}
