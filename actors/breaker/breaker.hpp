#pragma once
// The breaker actor: one per provider, beside its limiter and provider actor. A thin adapter around breaker_state;
// time comes from the actor clock (the test coordinator's in tests). It tells its limiter directly (by handle,
// from the directory) whenever its phase changes, so the limiter can admit a call under a closed breaker without
// asking it, and answer routing estimates with the phase.
//
//   (allow)                    -> bool          may a call go now (takes a probe slot when half-open)
//   (report, outcome)          -> std::string   records an allowed call's outcome; the transition as "closed->open"
//                                               etc., "" when none
//   (cancel)                                    an allowed call never went (frees a probe slot)
//   (allow, report)            -> u64           the same as (allow) with a ticket: 0 refused, else the phase
//                                               generation + 1; pass it to
//   (report, outcome, ticket)  -> std::string   ignored when the phase changed since the ticket (a late reply of
//   (cancel, ticket)                            a call let through before a trip is no probe result)
//   (phase)                                     tell the limiter the phase now, changed or not (a restarted limiter
//                                               asks for it)
//   (tick)                                      internal: an open phase's cooldown is over
//   (stats)                    -> std::string   JSON: phase, consecutive failures, opens
//   (crash)                                     a test hook: the actor throws
// In-process and remote alike: every argument is serialisable.
#include "actors/breaker/breaker_state.hpp"
#include "actors/messages.hpp"

namespace squad {

using breaker_actor = caf::typed_actor<
    caf::replies_to<atoms::allow>::with<bool>, caf::replies_to<atoms::report, outcome>::with<std::string>,
    caf::reacts_to<atoms::cancel>, caf::replies_to<atoms::allow, atoms::report>::with<std::uint64_t>,
    caf::replies_to<atoms::report, outcome, std::uint64_t>::with<std::string>,
    caf::reacts_to<atoms::cancel, std::uint64_t>, caf::reacts_to<atoms::phase>, caf::reacts_to<atoms::tick>,
    caf::replies_to<atoms::stats>::with<std::string>, caf::reacts_to<atoms::crash>>;

class directory;

/// The breaker of `cfg.name`; its limiter is found in `dir` (null: no limiter is told, e.g. in a unit test).
breaker_actor spawn_breaker(caf::local_actor* parent, const provider_config& cfg, std::shared_ptr<directory> dir);

/// The settings a provider config implies.
breaker_settings breaker_settings_from(const provider_config& cfg);

} // namespace squad
