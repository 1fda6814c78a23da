#pragma once
// Persona actors: one per persona. A persona gives a call its voice (system prompt), its chain and its
// default priority, then hands it on to the dispatcher. It keeps no call in flight, so a restarted persona
// loses nothing that was already handed on.
//
// Protocol (untyped):
//   call_request -> call_result | error   (answered by the dispatcher)
//   crash        -> (throws: a test hook for supervision)
#include "actors/messages.hpp"

namespace squad {

/// `chain` is the persona's resolved chain; `root` reaches the dispatcher as root/dispatcher.
caf::actor spawn_persona(caf::local_actor* parent, persona_def def, std::vector<chain_target> chain, caf::actor root);

} // namespace squad
