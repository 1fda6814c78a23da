#pragma once
// Squad's vocabulary: the structs and enums that actors exchange, with no CAF in sight, so that pure logic
// (rate_limiter, breaker_state, chain_walker, limit_headers, reply_assembler, ...) and its tests compile without
// the actor framework. actors/messages.hpp adds what needs CAF: the call request (it carries an actor handle),
// every struct's inspect, the type-ID block and the atoms.
#include "runtime/config/persona_def.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace squad {

/// One chat message in OpenAI form.
struct chat_message {
  chat_message() = default;
  /// A message with text only, or with the tool fields too ({"user", "hi"} reads as before).
  chat_message(std::string role_, std::string content_, std::string tool_calls_json_ = {},
               std::string tool_call_id_ = {}, std::string name_ = {})
      : role(std::move(role_)), content(std::move(content_)), tool_calls_json(std::move(tool_calls_json_)),
        tool_call_id(std::move(tool_call_id_)), name(std::move(name_)) {}
  std::string role; ///< system | user | assistant | tool
  std::string content;
  std::string tool_calls_json; ///< assistant: its `tool_calls` as a JSON array in OpenAI form; "" when none
  std::string tool_call_id;    ///< tool: the call this message answers
  std::string name;            ///< the optional participant name; "" when not given
};

/// call_request::temperature when the caller set none.
inline constexpr double temperature_unset = -1;

/// call_request::cache_mode values.
inline constexpr std::uint8_t cache_use = 0, cache_only = 1, cache_bypass = 2;

/// Token counts of one call.
struct usage_info {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

/// How one upstream attempt ended. Errors are values: only `ok` carries text.
enum class outcome : std::uint8_t {
  ok,
  rate_limited,
  overloaded,
  server_error,
  timeout,
  connect_failed,
  bad_response,
  stream_cut,
  auth_failed,
  bad_request,
  context_too_long,
  unavailable,
};
const char* to_string(outcome o);
/// Whether another attempt at the same target can succeed (auth and bad requests cannot).
bool is_retryable(outcome o);

/// What a provider said about its limits, with every reply (-1 = not said).
struct limit_signals {
  std::int64_t retry_after_ms = -1;
  std::int64_t remaining_requests = -1;
  std::int64_t remaining_tokens = -1;
  std::int64_t reset_requests_ms = -1;
  std::int64_t reset_tokens_ms = -1;
  std::int64_t limit_requests = -1;         ///< the request limit the provider announces (x-ratelimit-limit-requests)
  std::int64_t remaining_requests_day = -1; ///< a daily count beside the window's (Cerebras' *-requests-day)
  std::int64_t reset_requests_day_ms = -1;
};

/// A provider actor's answer to one `provider_call`, success or not.
struct upstream_reply {
  outcome result = outcome::ok;
  std::string detail; ///< the error, for humans; empty on success
  std::string text;
  std::string finish_reason; ///< stop | length | ...
  usage_info usage;
  bool simulated = false;
  std::int64_t latency_ms = 0;
  std::int64_t latency_us = 0; ///< the same, in microseconds (overhead metrics)
  limit_signals signals;
  std::string partial_text;       ///< what a failed stream delivered before it failed (text stays empty)
  std::string tool_calls_json;    ///< the answer's tool calls, a JSON array in OpenAI form; "" when none
  std::string system_fingerprint; ///< as the upstream said it; "" when not
  std::string logprobs_json;      ///< choices[0].logprobs as the upstream sent it; "" when none
  std::string embeddings_json;    ///< an embeddings call's `data` array as the upstream sent it; "" otherwise
};

/// A limiter's answer to acquire (a permit, or `limited` with when to come back) and to query.
struct limit_grant {
  bool granted = false;
  std::uint64_t permit = 0;   ///< when granted
  std::int64_t wait_ms = 0;   ///< query: estimated wait; acquire refused: retry in this many ms
  std::int64_t waited_ms = 0; ///< acquire: time spent queued
  std::string rule;           ///< what held it back: pause, quota, window, bucket, concurrency, ..., breaker_open
  std::uint8_t breaker = 0;   ///< the provider's breaker phase as last told (0 closed, 1 open, 2 half_open)
  std::int64_t slot_ms = 0;   ///< query: what one more call ahead adds to the wait, at the effective rate
  std::uint64_t ticket = 0;   ///< admit granted: the breaker ticket (its generation + 1) the call reports with
  /// query: slot_ms from what is known for sure, the rate and a measured hold time (the prior left out): what a
  /// refusal may count on (a call is not refused on a hold time no reply has shown)
  std::int64_t sure_slot_ms = 0;
};

/// A budget allocator's answer for one call.
struct budget_grant {
  bool granted = false;        ///< call (true) or skip (false)
  std::uint64_t id = 0;        ///< settle or cancel with it
  std::string action;          ///< call | cache (the response cache only) | skip
  std::string reason;          ///< why (always set for skip; "P0 runs beyond the budget" and the like for call)
  std::string pressure;        ///< normal | elevated | critical, when decided
  std::int64_t max_tokens = 0; ///< the call's parameters after degradation
  double temperature = 0;
  bool prefer_worker = false;
  std::vector<std::string> degraded; ///< one human line per change ("max_tokens 1024 -> 256 (pressure critical)")
};

/// One attempt in a call's history.
struct attempt_info {
  std::string provider;
  std::string model;
  std::string outcome; ///< to_string(outcome)
  std::string detail;
  std::int64_t latency_ms = 0;
  bool sent = true; ///< false: passed over (breaker open, no slot in time, a parameter it cannot take), never sent
};

/// The answer to a call_request.
struct call_result {
  std::string text;
  std::string finish_reason;
  chain_target served_by;
  usage_info usage;
  bool simulated = false;
  std::int64_t latency_ms = 0; ///< from the call's arrival at the dispatcher to its answer
  std::vector<attempt_info> attempts;
  bool partial = false;           ///< every target failed; `text` is what one failed stream delivered before it was cut
  bool cached = false;            ///< answered from the response cache: no LLM call was made
  std::int64_t upstream_us = 0;   ///< time spent in upstream exchanges, all attempts (the rest is Squad's overhead)
  std::string tool_calls_json;    ///< the answer's tool calls, a JSON array in OpenAI form; "" when none
  std::string system_fingerprint; ///< the upstream's, when it sent one
  std::string logprobs_json;      ///< the upstream's choices[0].logprobs; "" when none
  std::string embeddings_json;    ///< an embeddings call's `data` array ({object, index, embedding}...); "" otherwise
};

/// One event on a run's event stream (also written to run.json). `data_json` is a JSON object.
struct run_event {
  std::int64_t seq = 0;   ///< position in the run's stream, from 1
  std::int64_t at_ms = 0; ///< milliseconds since the run started
  std::string type;       ///< run.started, step.started, step.completed, step.fallback, ...
  std::string run_id;
  std::string step_id;
  std::string persona;
  std::string message; ///< one human line
  std::string data_json = "{}";
};

/// One persona's share of a step.
struct step_output {
  std::string persona;
  bool ok = false;
  std::string text;  ///< the answer (empty when !ok)
  std::string error; ///< why it failed (empty when ok)
  chain_target served_by;
  usage_info usage;
  bool simulated = false;
  std::int64_t latency_ms = 0;
  std::vector<attempt_info> attempts;
  bool partial = false; ///< ok, but `text` is a failed stream's partial output
};

/// A worker's report of one workflow step to its boss.
struct step_result {
  std::string step_id;
  std::string status; ///< completed | failed | skipped
  std::string text;   ///< the step's output (merged for parallel, last draft for cascade)
  std::string error;  ///< why it failed or was skipped
  std::vector<step_output> outputs;
};

/// A supervisor's report about one of its children.
struct child_event {
  std::string supervisor;
  std::string child;
  std::string what;   ///< restarted | stopped | escalated
  std::string reason; ///< to_string of the exit reason
  std::int64_t restarts = 0;
};

/// Errors that answer a request (domain errors are values, not exceptions).
enum class squad_errc : std::uint8_t {
  none = 0,
  no_such_child,      ///< a supervisor has no child of that name
  child_unavailable,  ///< the child is between a crash and its restart
  intensity_exceeded, ///< a supervisor gave up: too many restarts in its period
  chain_exhausted,    ///< every target of a chain failed; the context lists the attempts
  unknown_persona,
  deadline_exceeded,
  cancelled,
  shed,         ///< skipped by priority shedding or a spent budget; the context says why
  budget_spent, ///< an API call's shared budget (X-Squad-Run) is spent: waiting a little does not help
};
const char* to_string(squad_errc e);

} // namespace squad
