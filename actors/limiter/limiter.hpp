#pragma once
// The limiter actor: one per provider, beside its breaker and provider actor. A thin adapter around rate_limiter;
// time comes from the actor clock (the test coordinator's in tests).
//
//   (admit, tokens i64, ahead i64, priority u8) -> limit_grant   routing and admission in one exchange: when the
//        call can go now (a free slot, nothing queued, `ahead` 0, the breaker closed as last told) it is granted
//        (permit, and `ticket` for the breaker's report: its generation + 1, so the breaker is not asked);
//        otherwise the answer is (query)'s estimate, with nothing taken.
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
//   (phase, u8 breaker_phase, i64 open_ms, u64 generation)  the breaker tells its phase (for admit and query)
//   (tick)                        internal: a queued waiter's slot or deadline is due
//   (stats)                       -> std::string   JSON: effective rate, queue depth, in flight, paused, throttle
//   (save)                        internal: the checkpoint timer (with a limiter_memory: see spawn_limiter)
//   (done)                        -> bool   saves a checkpoint now if anything changed since the last (a clean stop);
//                                 true when the memory has the limiter's current state (false: no memory)
//   (crash)                       a test hook: the actor throws
// Every argument is serialisable: a limiter can be the cluster's authority for its provider, asked from other nodes.
#include "actors/breaker/breaker.hpp"
#include "actors/limiter/rate_limiter.hpp"
#include "actors/messages.hpp"

namespace squad {

using limiter_actor = caf::typed_actor<
    caf::replies_to<atoms::admit, std::int64_t, std::int64_t, std::uint8_t>::with<limit_grant>,
    caf::replies_to<atoms::acquire, std::uint8_t, std::int64_t, std::int64_t>::with<limit_grant>,
    caf::replies_to<atoms::query, std::int64_t, std::int64_t, std::uint8_t>::with<limit_grant>,
    caf::replies_to<atoms::release, std::uint64_t, std::int64_t, limit_signals, outcome>::with<std::string>,
    caf::reacts_to<atoms::start, std::uint64_t, std::int64_t>,
    caf::reacts_to<atoms::phase, std::uint8_t, std::int64_t, std::uint64_t>, caf::reacts_to<atoms::tick>,
    caf::replies_to<atoms::stats>::with<std::string>, caf::reacts_to<atoms::crash>, caf::reacts_to<atoms::save>,
    caf::replies_to<atoms::done>::with<bool>>;

/// `confirm_sends`: the caller tells (start, permit, at) for each granted call (the dispatcher does); false for
/// tests of the queue alone, where a window entry counts from its grant. With `dir`, a restarted limiter asks its
/// provider's breaker for the phase (until told, it admits nothing on the fast path). With `memory`, it starts from
/// the latest checkpoint there of its limits domain (`cfg.name`), and saves one there at most every
/// memory->interval() while its state changes (a timer armed by the first change, not work per admission); without,
/// it starts empty and keeps nothing.
limiter_actor spawn_limiter(caf::local_actor* parent, const provider_config& cfg, bool confirm_sends = true,
                            std::shared_ptr<directory> dir = nullptr, std::shared_ptr<limiter_memory> memory = nullptr);

} // namespace squad
