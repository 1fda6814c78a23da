#pragma once
// The dispatcher's state and the functions of its call walk, shared by dispatcher_actor.cpp (the behavior:
// admission, the deadline sweep, pressure, stats) and dispatcher_walk.cpp (one call's walk: step, route,
// attempt, send, reply). Internal to actors/dispatcher: nothing else includes it.
#include "actors/budget/budget.hpp"
#include "actors/budget/pressure_inputs.hpp"
#include "actors/budget/shared_budgets.hpp"
#include "actors/dispatcher/arrival_rates.hpp"
#include "actors/dispatcher/dispatcher.hpp"
#include "actors/dispatcher/route_choice.hpp"
#include "actors/registry/directory.hpp"

#include <array>
#include <deque>
#include <map>
#include <optional>
#include <set>

namespace squad::dispatch {

struct pending_call {
  caf::response_promise rp;
  call_request req;
  chain_walker walker;
  std::vector<attempt_info> attempts;
  steady_time started;
  std::optional<std::size_t> last_failed; // target of the last failed attempt
  std::string partial;                    // the longest text a failed stream delivered, if any
  std::size_t partial_target = 0;
  usage_info partial_usage;
  std::string cache_key;                // empty: not to be stored
  std::int64_t sent = 0;                // LLM calls sent for it
  std::int64_t upstream_us = 0;         // time in upstream exchanges
  bool shared_reserved = false;         // holds a reservation on its X-Squad-Run budget until its first send
  std::uint64_t permit = 0, ticket = 0; // of the attempt awaiting its provider's answer (0: none)
  std::string permit_provider;          // the limits domain (provider, or provider/model) that granted the permit
  std::vector<std::size_t> probe_waits; // targets whose half-open probe this call already waited for
  std::string parked_on;       // parked (bound late): the provider its estimate was counted against; "": not parked
  std::uint64_t park_seq = 0;  // its park timer's number (a timer of an earlier park is ignored)
  bool resting = false;        // waiting for its walker's (retry) timer: a breaker that opens may end the wait early
  std::uint64_t rest_seq = 0;  // that timer's number (one of an earlier rest is ignored)
  std::int64_t reopen_ms = -1; // the soonest probe of an open breaker it did not wait for (Retry-After), -1: none
  bool accepted = false;       // judged servable within its class's tolerable wait at arrival: never shed after
};

struct dispatcher_state {
  directory_view dir; // provider actors, limiters and breakers by provider name
  dispatch_options opts;
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, pending_call> calls;
  std::map<std::string, std::int64_t> queued; // by provider: routed there and not yet answered by its limiter
  std::map<std::string, std::array<std::int64_t, 4>> queued_by_class; // the same, by class P0..P3
  // Calls bound late: their earliest slot was past the bind horizon, so they wait here, not in a limiter's queue,
  // and are routed again when a provider of their chain frees a slot (or at their park timer). In arrival order;
  // ids of calls no longer parked are skipped. Counted per class against the provider they would have taken.
  std::deque<std::uint64_t> parked;
  std::map<std::string, std::array<std::int64_t, 4>> parked_by_class;
  std::uint64_t park_seq = 0;
  std::map<std::string, std::int64_t> routed;    // by provider: calls routed there, ever
  std::map<std::string, arrival_rates> arrivals; // calls arriving per class, by their chain's first provider
  std::map<std::string, target_view> seen;
  std::set<std::string> open_breakers; // providers whose breaker's last reported change opened it // by
                                       // "provider/model": latency and success as replies come (strategies)
  // The global cap (opts.global_concurrency): calls upstream now, and admitted calls holding their provider's
  // permit until one of them answers (highest class first, then arrival).
  std::set<std::uint64_t> upstream_now;
  struct held_send {
    std::uint64_t id;
    std::size_t target;
    std::uint64_t permit, ticket;
    std::size_t cls;
    std::string provider; // its limits domain
  };
  std::deque<held_send> held;
  // Pressure: what the dispatcher sees of waits, queues, 429s, breakers and latency.
  pressure_gauge gauge;
  pressure_inputs inputs;                     // the gauge's signals as calls pass (waits, 429s, latencies)
  std::map<std::string, std::int64_t> counts; // events emitted, by type (metrics: fallbacks, sheds, ...)
  std::optional<response_cache> cache;
  std::optional<shared_budgets> shared; // by call_request::budget_id (X-Squad-Run)
  bool sweeping = false;                // a deadline sweep is scheduled
  static inline const char* name = "squad.dispatcher";
};

using dispatcher_self = dispatcher_actor::stateful_pointer<dispatcher_state>;

// -- helpers (dispatcher_actor.cpp) ---------------------------------------------------------------------------

/// The answer goes to the requester, and to the call's sink when the caller is not an actor.
void deliver(pending_call& c, call_result res);
/// A failure; `retry_after_ms` >= 0 tells the sink when trying again could succeed.
void deliver(pending_call& c, squad_errc code, std::string why, std::int64_t retry_after_ms = -1);
/// Provider `name`'s actors as the directory knows them (null handles: not started yet, or restarting: a request
/// to one fails at once with sec::invalid_argument, and the walk goes on as for any unavailable target).
provider_handles handles_of(dispatcher_self self, const std::string& provider);
/// Emits a run event and counts it by type (the dispatcher's metrics).
void note_event(dispatcher_self self, const event_sink_actor& sink, std::string type, const std::string& step_id,
                const std::string& persona, std::string message, std::string data_json = "{}");
std::int64_t ms_between(steady_time a, steady_time b);
std::string target_name(const chain_target& t);
/// Each target once, with its last outcome and how many tries.
std::string attempts_text(const std::vector<attempt_info>& attempts);
/// The call's class P0..P3 (255, the persona's default not filled in: P1).
std::size_t class_of(const call_request& req);
void count_queued(dispatcher_self self, const std::string& provider, std::size_t cls, std::int64_t delta);
/// Calls ahead of one of class `cls` at `provider`: queued there, and (`parked_too`, for a call never parked)
/// parked ones counted against it. A call woken from the park comes from its front: none parked is ahead of it.
std::int64_t queued_ahead(dispatcher_self self, const std::string& provider, std::size_t cls, bool parked_too);
/// Targets that cannot honour the call (a parameter their kind refuses, an embeddings call to Anthropic) are
/// passed over at its arrival, before any limiter is asked: no slot of their window, no LLM call of its budget.
void pass_over_incapable(dispatcher_self self, pending_call& c);
pressure_level observe(dispatcher_self self, const event_sink_actor& events = {});
bool shared_spent(dispatcher_self self, const call_request& req);
void forget_call(dispatcher_self self, std::map<std::uint64_t, pending_call>::iterator i);

// -- one call's walk (dispatcher_walk.cpp; route and the park in dispatcher_route.cpp) -------------------------

void step(dispatcher_self self, std::uint64_t id);
void route(dispatcher_self self, std::uint64_t id, std::vector<std::size_t> ready);
void attempt(dispatcher_self self, std::uint64_t id, std::size_t target, std::int64_t expected_wait_ms = -1);
/// Routing and admission came in one exchange (the limiter's admit): the call goes now with `permit` and `ticket`.
void admitted(dispatcher_self self, std::uint64_t id, std::size_t target, std::uint64_t permit, std::uint64_t ticket);
void send_call(dispatcher_self self, std::uint64_t id, std::size_t target, std::uint64_t permit, std::uint64_t ticket);
void on_reply(dispatcher_self self, std::uint64_t id, std::size_t target, upstream_reply r);
/// `provider`'s breaker opened: calls resting for another try of it are stepped now.
void wake_resting(dispatcher_self self, const std::string& provider);
/// Call `id` no longer holds a slot of the global cap (idempotent): the first held call goes upstream. A call
/// that was held is taken out of the hold, its permit and probe given back unused.
void release_global(dispatcher_self self, std::uint64_t id);
std::int64_t token_estimate(const call_request& req);
/// Refuses a call outside a run that its chain cannot serve within its class's tolerable wait (429, Retry-After).
void shed_waiting(dispatcher_self self, std::map<std::uint64_t, pending_call>::iterator i, std::string why,
                  std::int64_t earliest_ms);
/// Parks a call whose earliest slot (at `provider`, `wait_ms` away) is past the bind horizon.
void park(dispatcher_self self, std::uint64_t id, const std::string& provider, std::int64_t wait_ms);
/// Takes a parked call out of the parked counts (false: it was not parked).
bool unpark(dispatcher_self self, pending_call& c);
/// `provider` freed a slot: routes again the first parked calls whose chain holds it.
void wake_parked(dispatcher_self self, const std::string& provider);

} // namespace squad::dispatch
