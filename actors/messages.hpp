#pragma once
// Squad's messages: the call request (it carries an actor handle and, in-process, a sink), the 0.17-style inspect
// of every struct that travels between actors (and between nodes), the one project-wide CAF type-ID block and
// the atoms. The structs themselves, free of CAF, are in actors/vocabulary.hpp.
#include "actors/vocabulary.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace squad {

class call_sink;

/// Where a run's partial events go (a run's boss, which stamps and publishes them, or a run's listener).
using event_sink_actor = caf::typed_actor<caf::reacts_to<run_event>>;

/// A call as a persona (or an API client) asks for it.
struct call_request {
  std::string trace_id;
  std::string run_id;    ///< empty outside a run
  std::string step_id;   ///< empty outside a run
  std::string persona;   ///< empty for a direct provider/model call
  std::string budget_id; ///< outside a run: calls with the same id share one budget of LLM calls (X-Squad-Run)
  std::vector<chat_message> messages;
  std::uint8_t priority = 255; ///< priority_class as a number (0 = P0); 255: the persona's default
  std::int64_t max_tokens = 0; ///< completion token cap; 0: not set by the caller (nothing is sent upstream)
  /// Below 0: not set (nothing is sent upstream). Not NaN: CAF 0.17's binary serializer does not carry NaN
  /// across (measured: the round trip test in tests/actors/messages_test.cpp).
  double temperature = temperature_unset;
  /// Every other chat parameter the caller set (tools, tool_choice, stop, seed, ...), as a JSON object in OpenAI
  /// form, already checked by the gateway; "" when none. Adapters pass, translate or refuse each (chat_params).
  std::string params_json;
  std::vector<chain_target> chain; ///< filled by the persona actor when empty
  std::int64_t timeout_ms = 60000; ///< the whole call's deadline, relative to its arrival
  /// Set by the dispatcher per attempt: the response head must come within this, so that a fallback left in the
  /// chain keeps time to be tried (0: the provider's own timeouts.first_byte).
  std::int64_t head_ms = 0;
  std::uint8_t strategy = 255;     ///< route_strategy as a number; 255: the persona's (preference outside a persona)
  bool stream = false;             ///< stream from the upstream (SSE) rather than wait for a whole reply
  bool prefer_worker = false;      ///< degraded: route to worker-tier targets first, whatever the chain's order
  std::uint8_t cache_mode = 0;     ///< cache_use: cache, then LLM; cache_only: cache or shed; cache_bypass: neither
  event_sink_actor events;         ///< where wait/retry/fallback events go (run_event); may be null
  std::shared_ptr<call_sink> sink; ///< the answer's destination when the caller is not an actor (in-process only)
  /// Set by the dispatcher on a first attempt with a sink: a good upstream answer goes to the sink straight from the
  /// io thread that received it (one crossing each way); the actors learn of it afterwards. Not serialized.
  bool answer_direct = false;
  /// An embeddings call (POST /v1/embeddings): its `input` as JSON (a string, or an array of strings or of token
  /// arrays); "" for a chat call. params_json then holds the embeddings parameters (dimensions, ...).
  std::string embed_input_json;
};

/// What a failed call's upstream attempts add up to, as one typed value: an API answer picks its HTTP status from it
/// (and from squad_errc), never from the failure's text.
enum class failure_class : std::uint8_t {
  unknown,         ///< not classified (a failure that is not about upstream attempts)
  request_refused, ///< an upstream refused the request itself (bad_request, context_too_long), no target failed
                   ///< otherwise
  unavailable,     ///< no target could serve it now (rate limits, server errors, timeouts, limiters, open breakers)
  rate_limited,    ///< every attempt was refused by a rate limit (an upstream 429, or no slot at a limiter in time)
};
const char* to_string(failure_class c);

/// A failed call as its sink receives it.
struct call_failure {
  squad_errc code{};
  std::string detail;               ///< for humans; never parsed
  std::int64_t retry_after_ms = -1; ///< when trying again could succeed (a shed call's earliest slot); -1: not said
  failure_class upstream = failure_class::unknown;
  std::vector<attempt_info> attempts; ///< every try of the chain, as a call_result lists them (the audit trail)
};

/// The class of an exhausted chain from its attempts (attempt_info::outcome is to_string(outcome), or a not-sent
/// reason such as limited or breaker_open): request_refused when some upstream refused the request and no attempt
/// ended for a reason another try could cure; rate_limited when every attempt met a rate limit.
failure_class classify_attempts(const std::vector<attempt_info>& attempts);

/// Where a call's answer goes when the caller is not an actor (the gateway's io side): one message crosses from
/// the io thread to the actors, and the answer comes back through the sink, not through another actor.
/// The dispatcher calls exactly one of done / failed. Streamed text reaches delta() straight from the provider's
/// io handler as it arrives. A sink released without done or failed (its message was lost) must answer itself.
/// Not serialized: a call with a sink stays in its process.
class call_sink {
public:
  virtual ~call_sink() = default;
  /// A piece of streamed completion text (on an io thread), when the call asked to stream.
  virtual void delta(std::string_view text) = 0;
  /// Streamed tool-call fragments (on an io thread): a JSON array of OpenAI `delta.tool_calls` entries
  /// ({index, id?, type?, function: {name?, arguments?}}). Sinks that never ask for tools may ignore them.
  virtual void tool_delta(std::string_view tool_calls_json) { (void)tool_calls_json; }
  /// Whether any of the answer already reached the client: a failure after that cannot fall back.
  virtual bool committed() const = 0;
  virtual void done(call_result r) = 0;
  /// The call failed; its typed class (with squad_errc) picks an API's status, never the detail's text.
  virtual void failed(call_failure f) = 0;
  /// Whether nobody waits for the answer any more (the API client closed its connection): a call not yet sent
  /// upstream is then dropped. Thread-safe.
  virtual bool abandoned() const { return false; }
};

/// Ask one provider actor to run `request` on `target`.
struct provider_call {
  chain_target target;
  call_request request;
};

// -- inspect (CAF 0.17 style) ----------------------------------------------

template <class I> typename I::result_type inspect(I& f, chain_target& x) {
  return f(caf::meta::type_name("chain_target"), x.provider, x.model, x.model_id, x.tier, x.input_price, x.output_price,
           x.limits, x.kind);
}
template <class I> typename I::result_type inspect(I& f, chat_message& x) {
  return f(caf::meta::type_name("chat_message"), x.role, x.content, x.tool_calls_json, x.tool_call_id, x.name);
}
template <class I> typename I::result_type inspect(I& f, call_request& x) {
  return f(caf::meta::type_name("call_request"), x.trace_id, x.run_id, x.step_id, x.persona, x.budget_id, x.messages,
           x.priority, x.max_tokens, x.temperature, x.params_json, x.chain, x.timeout_ms, x.stream, x.prefer_worker,
           x.cache_mode, x.events, x.head_ms, x.strategy, x.embed_input_json);
}
template <class I> typename I::result_type inspect(I& f, usage_info& x) {
  return f(caf::meta::type_name("usage_info"), x.prompt_tokens, x.completion_tokens);
}
template <class I> typename I::result_type inspect(I& f, limit_signals& x) {
  return f(caf::meta::type_name("limit_signals"), x.retry_after_ms, x.remaining_requests, x.remaining_tokens,
           x.reset_requests_ms, x.reset_tokens_ms, x.limit_requests, x.remaining_requests_day, x.reset_requests_day_ms);
}
template <class I> typename I::result_type inspect(I& f, upstream_reply& x) {
  return f(caf::meta::type_name("upstream_reply"), x.result, x.detail, x.text, x.finish_reason, x.usage, x.simulated,
           x.latency_ms, x.latency_us, x.signals, x.partial_text, x.tool_calls_json, x.system_fingerprint,
           x.logprobs_json, x.embeddings_json);
}
template <class I> typename I::result_type inspect(I& f, provider_call& x) {
  return f(caf::meta::type_name("provider_call"), x.target, x.request);
}
template <class I> typename I::result_type inspect(I& f, limit_grant& x) {
  return f(caf::meta::type_name("limit_grant"), x.granted, x.permit, x.wait_ms, x.waited_ms, x.rule, x.breaker,
           x.slot_ms, x.ticket, x.sure_slot_ms);
}
template <class I> typename I::result_type inspect(I& f, budget_grant& x) {
  return f(caf::meta::type_name("budget_grant"), x.granted, x.id, x.action, x.reason, x.pressure, x.max_tokens,
           x.temperature, x.prefer_worker, x.degraded);
}
template <class I> typename I::result_type inspect(I& f, attempt_info& x) {
  return f(caf::meta::type_name("attempt_info"), x.provider, x.model, x.outcome, x.detail, x.latency_ms, x.sent);
}
template <class I> typename I::result_type inspect(I& f, call_result& x) {
  return f(caf::meta::type_name("call_result"), x.text, x.finish_reason, x.served_by, x.usage, x.simulated,
           x.latency_ms, x.attempts, x.partial, x.cached, x.upstream_us, x.tool_calls_json, x.system_fingerprint,
           x.logprobs_json, x.embeddings_json);
}
template <class I> typename I::result_type inspect(I& f, call_failure& x) {
  return f(caf::meta::type_name("call_failure"), x.code, x.detail, x.retry_after_ms, x.upstream, x.attempts);
}
template <class I> typename I::result_type inspect(I& f, run_event& x) {
  return f(caf::meta::type_name("run_event"), x.seq, x.at_ms, x.type, x.run_id, x.step_id, x.persona, x.message,
           x.data_json);
}
template <class I> typename I::result_type inspect(I& f, step_output& x) {
  return f(caf::meta::type_name("step_output"), x.persona, x.ok, x.text, x.error, x.served_by, x.usage, x.simulated,
           x.latency_ms, x.attempts, x.partial);
}
template <class I> typename I::result_type inspect(I& f, step_result& x) {
  return f(caf::meta::type_name("step_result"), x.step_id, x.status, x.text, x.error, x.outputs);
}
template <class I> typename I::result_type inspect(I& f, child_event& x) {
  return f(caf::meta::type_name("child_event"), x.supervisor, x.child, x.what, x.reason, x.restarts);
}

/// Builds an error with a human-readable detail as its context.
caf::error make_squad_error(squad_errc code, std::string detail);
/// The detail of an error made by make_squad_error, else CAF's rendering of the error.
std::string error_detail(const caf::actor_system& sys, const caf::error& err);

} // namespace squad

CAF_ERROR_CODE_ENUM(squad::squad_errc, "squad")

CAF_BEGIN_TYPE_ID_BLOCK(squad, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(squad, (squad::chain_target))
CAF_ADD_TYPE_ID(squad, (squad::chat_message))
CAF_ADD_TYPE_ID(squad, (squad::call_request))
CAF_ADD_TYPE_ID(squad, (squad::usage_info))
CAF_ADD_TYPE_ID(squad, (squad::limit_signals))
CAF_ADD_TYPE_ID(squad, (squad::upstream_reply))
CAF_ADD_TYPE_ID(squad, (squad::provider_call))
CAF_ADD_TYPE_ID(squad, (squad::attempt_info))
CAF_ADD_TYPE_ID(squad, (squad::call_result))
CAF_ADD_TYPE_ID(squad, (squad::run_event))
CAF_ADD_TYPE_ID(squad, (squad::step_output))
CAF_ADD_TYPE_ID(squad, (squad::step_result))
CAF_ADD_TYPE_ID(squad, (squad::child_event))
CAF_ADD_TYPE_ID(squad, (squad::limit_grant))
CAF_ADD_TYPE_ID(squad, (squad::budget_grant))
CAF_END_TYPE_ID_BLOCK(squad)

// Atoms (text <= 10 characters).
CAF_ADD_ATOM(squad, squad::atoms, admit, "admit")
CAF_ADD_ATOM(squad, squad::atoms, whereis, "whereis")
CAF_ADD_ATOM(squad, squad::atoms, start_child, "startchild")
CAF_ADD_ATOM(squad, squad::atoms, subscribe, "subscribe")
CAF_ADD_ATOM(squad, squad::atoms, unsubscribe, "unsubscr")
CAF_ADD_ATOM(squad, squad::atoms, children, "children")
CAF_ADD_ATOM(squad, squad::atoms, tick, "tick")
CAF_ADD_ATOM(squad, squad::atoms, done, "done")
CAF_ADD_ATOM(squad, squad::atoms, start, "start")
CAF_ADD_ATOM(squad, squad::atoms, cancel, "cancel")
CAF_ADD_ATOM(squad, squad::atoms, retry, "retry")
CAF_ADD_ATOM(squad, squad::atoms, crash, "crash")
CAF_ADD_ATOM(squad, squad::atoms, acquire, "acquire")
CAF_ADD_ATOM(squad, squad::atoms, release, "release")
CAF_ADD_ATOM(squad, squad::atoms, query, "query")
CAF_ADD_ATOM(squad, squad::atoms, allow, "allow")
CAF_ADD_ATOM(squad, squad::atoms, report, "report")
CAF_ADD_ATOM(squad, squad::atoms, stats, "stats")
CAF_ADD_ATOM(squad, squad::atoms, phase, "phase")
CAF_ADD_ATOM(squad, squad::atoms, feedback, "feedback")
CAF_ADD_ATOM(squad, squad::atoms, save, "save")

namespace squad {
/// Registers Squad's message types; call on every actor_system_config (main, tests, other nodes).
void register_message_types(caf::actor_system_config& cfg);
} // namespace squad
