#pragma once
// A long-lived actor outlives an error message it did not ask for. CAF's default on one is to quit: an actor that
// `send`s a call (rather than `request`s it) and has no handler for the answer replies to it with
// unexpected_message, which used to end the dispatcher and drop every call it held. Errors that answer our own
// requests have their own handlers and never reach this one. Counted in squad_actor_stray_errors_total.
#include "runtime/metrics/registry.hpp"

#include <caf/scheduled_actor.hpp>

#include <string>

namespace squad {

inline void survive_stray_errors(caf::scheduled_actor* self, const std::string& actor) {
  static const metrics::counter_family family{
      "squad_actor_stray_errors_total",
      "error messages an actor received without asking (a peer's mistake), survived and dropped, by actor"};
  self->set_error_handler([c = family.with({{"actor", actor}})](caf::scheduled_actor*, caf::error&) { c.inc(); });
}

} // namespace squad
