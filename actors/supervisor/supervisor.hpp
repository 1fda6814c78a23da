#pragma once
// Supervisor actor (one_for_one): starts children from specs, restarts them by restart kind within an
// intensity limit, and past the limit stops every child and exits with `intensity_exceeded`, so that its
// own supervisor decides (escalation).
//
//   (whereis, name)               -> caf::actor | error(no_such_child | child_unavailable)
//   (start_child, child_spec)     -> caf::actor (dynamic children, e.g. a run's workers)
//   (subscribe | unsubscribe, actor) -> (); subscribers receive child_event on restart, stop, escalation
//   (children)                    -> std::vector<std::string> "name state restarts"
// Children are reached by handle (the directory, or the handle start_child answers), never by a path through
// their supervisors. Child specs carry factories (closures), so they never leave the process: a supervisor is
// steered only from its own node.
#include "actors/messages.hpp"
#include "actors/supervisor/restart_policy.hpp"

#include <functional>

namespace squad {

struct child_spec;

using supervisor_actor =
    caf::typed_actor<caf::replies_to<atoms::whereis, std::string>::with<caf::actor>,
                     caf::replies_to<atoms::start_child, child_spec>::with<caf::actor>,
                     caf::reacts_to<atoms::subscribe, caf::actor>, caf::reacts_to<atoms::unsubscribe, caf::actor>,
                     caf::replies_to<atoms::children>::with<std::vector<std::string>>>;

struct child_spec {
  std::string name;
  restart_kind restart = restart_kind::permanent;
  /// Spawns the child (and announces it where it must be found); the supervisor monitors what it returns.
  std::function<caf::actor(caf::local_actor* parent)> start;
};

struct supervisor_options {
  std::string name;
  std::size_t max_restarts = 5;
  caf::timespan period = std::chrono::seconds(10);
};

/// Spawns a supervisor with its initial children (started in order).
supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_options opts, std::vector<child_spec> children);

/// A child spec whose child is itself a supervisor; `started` (if set) learns each new handle (first start and
/// restarts), e.g. to announce it in the directory.
child_spec supervisor_child(supervisor_options opts, std::vector<child_spec> children,
                            restart_kind restart = restart_kind::permanent,
                            std::function<void(const supervisor_actor&)> started = {});

/// Spawns a supervisor as a child of `parent` (a boss's worker supervisor).
supervisor_actor spawn_child_supervisor(caf::local_actor* parent, supervisor_options opts,
                                        std::vector<child_spec> children);

} // namespace squad

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(squad::child_spec)
