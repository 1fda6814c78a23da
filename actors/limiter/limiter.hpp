#pragma once
// Limiter and breaker actors: one of each per provider, beside the provider actor in the `providers`
// supervisor, named "<provider>:limiter" and "<provider>:breaker". Thin adapters around rate_limiter and
// breaker_state; time comes from the actor clock (the test coordinator's in tests).
//
// Limiter protocol (untyped):
//   (acquire, priority u8, tokens i64, queue_wait_ms i64) -> limit_grant   granted, or refused with retry-in once
//        queued longer than queue_wait_ms. Waiters queue by priority (0 = P0 first), FIFO within a class.
//   (query, tokens i64, ahead i64, priority u8) -> limit_grant  the estimated wait of a call of class `priority`
//        if `ahead` calls (at least those queued here of its class or higher) go first; no admission; wait_ms -1:
//        never. An open breaker whose cooldown is over is answered as half_open (its probe is due).
//   (release, permit u64, tokens i64, limit_signals, outcome) -> std::string
//        the call ended: frees the permit, reconciles tokens, applies Retry-After / remaining headers and the
//        throttle; answers a human note when the throttle changed ("" otherwise)
//   (start, permit u64, sent_at_ns i64)  the granted call went upstream at that time (the actor clock's, in ns
//        since its epoch): its window entry counts from then; until then (or its release) it stays in the window
//   (phase, u8 breaker_phase, i64 open_ms)  the breaker tells its phase (for query answers)
//   (stats)                       -> std::string   JSON: effective rate, queue depth, in flight, paused, throttle
//
// Breaker protocol (untyped):
//   (allow)                       -> bool          may a call go now (takes a probe slot when half-open)
//   (report, outcome)             -> std::string   records an allowed call's outcome; the transition as
//                                                  "closed->open" etc., "" when none
//   (cancel)                      -> void          an allowed call never went (frees a probe slot)
//   (allow, report)               -> u64           the same as (allow) with a ticket: 0 refused, else the
//                                                  phase generation + 1; pass it to
//   (report, outcome, ticket)     -> std::string   ignored when the phase changed since the ticket (a late
//   (cancel, ticket)              -> void          reply of a call let through before a trip is no probe result)
//   (stats)                       -> std::string   JSON: phase, consecutive failures, opens
#include "actors/breaker/breaker_state.hpp"
#include "actors/limiter/rate_limiter.hpp"

namespace squad {

/// `confirm_sends`: the caller tells (start, permit, at) for each granted call (the dispatcher does); false for
/// tests of the queue alone, where a window entry counts from its grant.
caf::actor spawn_limiter(caf::local_actor* parent, const provider_config& cfg, bool confirm_sends = true);

/// `limiter_path` is how `root` reaches this provider's limiter ("providers/<name>:limiter").
caf::actor spawn_breaker(caf::local_actor* parent, const provider_config& cfg, caf::actor root);

/// The settings a provider config implies.
breaker_settings breaker_settings_from(const provider_config& cfg);

} // namespace squad
