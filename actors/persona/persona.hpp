#pragma once
// Persona actors: one per persona. A persona gives a call its voice (system prompt), its chain and its
// default priority, then hands it on to the dispatcher (delegated: the dispatcher answers the caller directly).
// It keeps no call in flight, so a restarted persona loses nothing that was already handed on.
//
//   call_request -> call_result | error   (answered by the dispatcher)
//   crash        -> (throws: a test hook for supervision)
#include "actors/messages.hpp"

namespace squad {

using persona_actor = caf::typed_actor<caf::replies_to<call_request>::with<call_result>, caf::reacts_to<atoms::crash>>;

class directory;

/// `chain` is the persona's resolved chain; the dispatcher is found in `dir`.
persona_actor spawn_persona(caf::local_actor* parent, persona_def def, std::vector<chain_target> chain,
                            std::shared_ptr<directory> dir);

} // namespace squad
