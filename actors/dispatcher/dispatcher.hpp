#pragma once
// The dispatcher: where a call meets governance. For each call it walks the chain (chain_walker):
// picks a target, sends it to that provider actor, and on failure falls back, retries or waits, emitting
// an event for each. This is the seam where budget -> limiter -> breaker plug in before the provider.
//
// Protocol (untyped):
//   call_request -> call_result | error(chain_exhausted, "every attempt and why it failed")
//   (retry, id)  -> internal tick after a wait
#include "actors/dispatcher/chain_walker.hpp"

namespace squad {

/// `root` is the root supervisor: provider actors are reached as root/providers/<name>.
caf::actor spawn_dispatcher(caf::local_actor* parent, caf::actor root, walker_options opts = {});

/// Sends a partial run event (the boss stamps seq, time and run id) to `sink`, if any.
void emit_event(caf::event_based_actor* self, const caf::actor& sink, std::string type, const std::string& step_id,
                const std::string& persona, std::string message, std::string data_json = "{}");

} // namespace squad
