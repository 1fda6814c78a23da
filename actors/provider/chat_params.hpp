#pragma once
// What each provider kind does with the OpenAI chat parameters of a call (call_request::params_json and the
// message fields), as pure logic: the upstream request bodies, and the refusals. docs/api.md has the table.
//
// One rule for every parameter, known or not: it reaches the upstream as the caller wrote it (openai kind),
// or translated (anthropic: tools, tool_choice, parallel_tool_calls, stop, top_p, user, tool messages), or the
// call is refused with a 400 naming the parameter and the provider. Nothing is dropped in silence; the sim
// kind (a simulator, no sampling) accepts the sampling parameters and documents that they have no effect.
// A value that asks for nothing (null, n 1, logprobs false, a penalty of 0, response_format text, {}) is
// accepted everywhere.
#include "actors/messages.hpp"

#include <optional>
#include <string>

namespace squad {

enum class provider_family : std::uint8_t { openai, anthropic, sim };

/// The family of a provider's `kind` from the config: anthropic, sim, else openai (every compatible API).
provider_family family_of(const std::string& kind);
const char* to_string(provider_family f);

/// Why a provider cannot take a call: the parameter (OpenAI's name, as in a 400 body's `param`) and a sentence.
struct param_refusal {
  std::string param;
  std::string message;
};

/// The first thing in `req` that `family` cannot honour; nullopt when it can honour all of it.
std::optional<param_refusal> refuse_params(provider_family family, const call_request& req);

/// The anthropic kind's max_tokens when the caller set none (its API requires one). Documented in docs/api.md.
inline constexpr std::int64_t anthropic_default_max_tokens = 4096;

/// A /chat/completions body: model, messages (with tool_calls, tool_call_id and name as given), every
/// parameter of params_json verbatim, max_tokens (under the name the caller used: max_tokens or
/// max_completion_tokens) and temperature only when set, stream, and stream_options.include_usage when streaming.
std::string openai_request_body(const call_request& req, const std::string& model_id, bool stream);

/// A /v1/messages body: system messages joined into "system"; tool messages become tool_result blocks of a user
/// turn; assistant tool_calls become tool_use blocks; consecutive turns of one role merged; tools, tool_choice,
/// stop, top_p and user translated; max_tokens always present (anthropic_default_max_tokens when not set).
/// Assumes refuse_params found nothing (which checks that tool call arguments are JSON objects).
std::string anthropic_request_body(const call_request& req, const std::string& model_id, bool stream);

} // namespace squad
