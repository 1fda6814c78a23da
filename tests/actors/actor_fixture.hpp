#pragma once
// A Catch2 fixture around CAF's deterministic test coordinator: jobs run only when the test says so and
// time moves only to the next pending timeout, so every actor test is exact and instant.
#include "actors/messages.hpp"

#include <caf/scheduler/test_coordinator.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace squad::test {

struct actor_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::vector<caf::actor> spawned; ///< stopped before the system goes away

  actor_fixture() {
    register_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
  }

  ~actor_fixture() {
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched->run();
    while (sched->clock().trigger_timeout()) // drain delayed messages so teardown cannot hang
      sched->run();
  }

  /// Runs jobs and jumps the clock from timeout to timeout until `done()` or nothing is left to do.
  /// Returns whether `done()` became true.
  bool run_until(const std::function<bool()>& done, std::size_t max_timeouts = 100000) {
    for (std::size_t i = 0; i < max_timeouts; ++i) {
      sched->run();
      if (done())
        return true;
      if (!sched->clock().trigger_timeout())
        return done();
    }
    return done();
  }

  caf::actor_clock::time_point now() { return sched->clock().now(); }

  /// The answer to a request, once the scheduler has run.
  template <class R> struct answer {
    std::optional<R> value;
    caf::error error;
  };

  /// Sends a request from a throwaway actor; the answer fills in as the scheduler runs.
  template <class R, class... Ts> std::shared_ptr<answer<R>> ask(caf::actor dest, Ts... xs) {
    auto out = std::make_shared<answer<R>>();
    sys->spawn([out, dest, xs...](caf::event_based_actor* self) {
      self->request(dest, caf::infinite, xs...)
          .then([out](R& r) { out->value = std::move(r); }, [out](caf::error& e) { out->error = std::move(e); });
    });
    return out;
  }
};

/// What a recorder actor has received, for assertions.
struct recorded {
  std::vector<run_event> events;
  std::vector<child_event> children;
  std::vector<caf::down_msg> downs;

  std::size_t count(const std::string& type) const {
    std::size_t n = 0;
    for (auto& e : events)
      n += e.type == type;
    return n;
  }
  const run_event* find(const std::string& type, const std::string& step = {}) const {
    for (auto& e : events)
      if (e.type == type && (step.empty() || e.step_id == step))
        return &e;
    return nullptr;
  }
  bool ended() const { return find("run.completed") || find("run.failed"); }
};

/// An actor that records run events, supervisor reports and down messages of what it monitors.
inline caf::behavior recorder(caf::event_based_actor* self, std::shared_ptr<recorded> out) {
  self->set_down_handler([out](caf::down_msg& msg) { out->downs.push_back(msg); });
  return {
      [out](run_event& ev) { out->events.push_back(std::move(ev)); },
      [out](child_event& ev) { out->children.push_back(std::move(ev)); },
      [self](atoms::start, const caf::actor& who) { self->monitor(who); }, // monitor `who`
  };
}

} // namespace squad::test
