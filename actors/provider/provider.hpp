#pragma once
// Provider actors: one per configured provider, the only place that talks to an upstream.
//
// Protocol (untyped):
//   provider_call -> upstream_reply   (errors are values: upstream_reply::result says how it ended)
//   crash         -> (the actor throws: a test hook for supervision)
#include "actors/messages.hpp"

namespace squad {

/// Spawns the actor for `cfg.kind`; nullptr with `why` set when that kind cannot run in this build.
caf::actor spawn_provider(caf::local_actor* parent, const provider_config& cfg, std::string& why);

/// The simulated provider (kind: sim): enforces its own limits at arrival the way a strict upstream does
/// (a sliding window of `requests` per `per` and a concurrency cap, answering rate_limited with a
/// retry-after), then answers deterministically after the configured latency.
caf::actor spawn_sim_provider(caf::local_actor* parent, const provider_config& cfg);

} // namespace squad
