#pragma once
// Supervisor actor (one_for_one): starts children from specs, restarts them by restart kind within an
// intensity limit, and past the limit stops every child and exits with `intensity_exceeded`, so that its
// own supervisor decides (escalation).
//
// Protocol (untyped):
//   (whereis, name)               -> caf::actor | error(no_such_child | child_unavailable)
//   (forward, "a/b", message)     -> delegated to child a (then to its child b): the answer comes from there
//   (start_child, child_spec)     -> caf::actor (dynamic children, e.g. a run's workers)
//   (subscribe | unsubscribe, actor) -> (); subscribers receive child_event on restart, stop, escalation
//   (children)                    -> std::vector<std::string> "name state restarts"
// Child specs carry factories (closures), so they never leave the process.
#include "actors/messages.hpp"
#include "actors/supervisor/restart_policy.hpp"

#include <functional>

namespace squad {

struct child_spec {
  std::string name;
  restart_kind restart = restart_kind::permanent;
  /// Spawns the child; the supervisor monitors what it returns.
  std::function<caf::actor(caf::local_actor* parent)> start;
};

struct supervisor_options {
  std::string name;
  std::size_t max_restarts = 5;
  caf::timespan period = std::chrono::seconds(10);
};

/// Spawns a supervisor with its initial children (started in order).
caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_options opts, std::vector<child_spec> children);

/// A child spec whose child is itself a supervisor.
child_spec supervisor_child(supervisor_options opts, std::vector<child_spec> children,
                            restart_kind restart = restart_kind::permanent);

} // namespace squad

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(squad::child_spec)
