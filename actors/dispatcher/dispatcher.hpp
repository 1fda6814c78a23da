#pragma once
// The dispatcher: where a call meets governance. For each call it walks the chain (chain_walker): routes among
// the ready targets by their limiters' estimates (capacity-aware routing), asks the target's breaker, queues at
// its limiter (by priority, with a queue-wait deadline), sends the call to the provider actor, and tells limiter
// and breaker how it went. On failure it falls back, retries or waits, emitting an event for each.
//
// Protocol (untyped):
//   call_request -> call_result | error(chain_exhausted, "every attempt and why it failed")
//   (retry, id)  -> internal tick after a wait
#include "actors/dispatcher/chain_walker.hpp"

namespace squad {

struct dispatch_options {
  walker_options walker;
  millis queue_wait{30000}; ///< longest wait in one limiter's queue before trying another target
  millis route_slack{250};  ///< another target must be sooner than the preferred one by more than this
};

/// `root` is the root supervisor: provider actors are reached as root/providers/<name>, their limiter and breaker
/// as root/providers/<name>:limiter and root/providers/<name>:breaker.
caf::actor spawn_dispatcher(caf::local_actor* parent, caf::actor root, dispatch_options opts = {});

/// Sends a partial run event (the boss stamps seq, time and run id) to `sink`, if any.
void emit_event(caf::event_based_actor* self, const caf::actor& sink, std::string type, const std::string& step_id,
                const std::string& persona, std::string message, std::string data_json = "{}");

} // namespace squad
