#pragma once
// The dispatcher: where a call meets governance. For each call it walks the chain (chain_walker): routes among
// the ready targets by their limiters' estimates (capacity-aware routing), asks the target's breaker, queues at
// its limiter (by priority, with a queue-wait deadline), sends the call to the provider actor, and tells limiter
// and breaker how it went. On failure it falls back, retries or waits, emitting an event for each.
//
//   call_request -> call_result | error(chain_exhausted, "every attempt and why it failed") | error(shed, why)
//        Below P0 a call is first looked up in the response cache (cache_mode cache_use, the default): a hit answers
//        at once (`cached`, event call.cached) and makes no LLM call; cache_only answers a miss with error(shed).
//        Every complete answer is stored (cache_bypass: neither looked up nor stored).
//        A call outside a run (no run_id) is its own budget: shed by class and pressure like a run's step, and
//        allowed `request_calls` LLM calls, retries and fallbacks included.
//   (retry, id)       internal: step the call now
//   (retry, id, seq)  internal: a rest's or a parked call's timer (seq: which one; a stale timer is ignored)
//   (tick)            internal: the deadline sweep
//   (stats)      -> JSON string: pressure, calls in flight, events by type, cache hits/misses/size
//   (phase)      -> (u8 pressure level, why)   asked by budget allocators
// Limiters, breakers and provider actors are reached by handle through the directory, never by path.
#include "actors/cache/response_cache.hpp"
#include "actors/dispatcher/chain_walker.hpp"

#include <array>
#include <map>
#include <string>

namespace squad {

struct dispatch_options {
  walker_options walker;
  millis queue_wait{30000};       ///< longest wait in one limiter's queue before trying another target
  millis route_slack{250};        ///< another target must be sooner than the preferred one by more than this
  cache_settings cache;           ///< the response cache, shared by every call through this dispatcher
  std::int64_t request_calls = 3; ///< a call outside a run may make at most this many LLM calls (attempts sent)
  std::int64_t shared_calls = 16; ///< calls with one budget_id (X-Squad-Run) may make this many LLM calls together
  millis shared_ttl{3600000};     ///< a budget_id unused this long is forgotten (its budget starts afresh)
  /// How long a call of each class (P0..P3) may wait, from its start, for a slot that is not there yet (an open
  /// breaker's next probe); P0 waits as long as its deadline allows.
  std::array<millis, 4> tolerable_wait{millis::max(), millis{60000}, millis{30000}, millis{10000}};
  /// Late binding: a call whose earliest slot on its chain is further away than this waits in the dispatcher,
  /// not in one limiter's queue, and is routed again when a provider of its chain frees a slot (so it takes
  /// whichever frees first, with what replies have taught the limiters since). 0: every call binds at once.
  millis bind_horizon{1000};
  /// How each provider is retried (providers.<name>.retry); a provider not named uses walker.retry.
  std::map<std::string, retry_policy> retry;
  /// The longest a call waits for an open breaker's half-open probe (also within its deadline and tolerable
  /// wait): a chain whose every target is open for longer answers at once, naming the breakers.
  millis probe_wait{2000};
  /// Upstream calls in flight across every provider at once; 0: no global cap.
  std::int64_t global_concurrency = 0;
};

using dispatcher_actor =
    caf::typed_actor<caf::replies_to<call_request>::with<call_result>, caf::reacts_to<atoms::retry, std::uint64_t>,
                     caf::reacts_to<atoms::retry, std::uint64_t, std::uint64_t>, caf::reacts_to<atoms::tick>,
                     caf::replies_to<atoms::stats>::with<std::string>,
                     caf::replies_to<atoms::phase>::with<std::uint8_t, std::string>>;

class directory;

/// Provider actors, their limiters and breakers are found in `dir` (by provider name).
dispatcher_actor spawn_dispatcher(caf::local_actor* parent, std::shared_ptr<directory> dir, dispatch_options opts = {});

/// Sends a partial run event (the boss stamps seq, time and run id) to `sink`, if any.
void emit_event(const event_sink_actor& sink, std::string type, const std::string& step_id, const std::string& persona,
                std::string message, std::string data_json = "{}");

} // namespace squad
