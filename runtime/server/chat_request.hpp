#pragma once
// POST /v1/chat/completions read into a call_request: pure logic, no sockets, no actors. The body's model, every
// field and Squad's own headers are checked here, on the io thread, so a bad one is an api_error naming it
// (`param`) before any actor sees the call. What each provider kind then does with the parameters is
// actors/provider/chat_params.hpp.
#include "actors/messages.hpp"
#include "actors/provider/chat_params.hpp"
#include "runtime/server/api_error.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace squad::server {

/// What a `model` name of the API resolves to.
struct api_model {
  std::string name;                ///< as the client writes it
  std::string persona;             ///< set for persona/<id> (and aliases of one)
  std::vector<chain_target> chain; ///< the persona's chain, or the one direct target
  priority_class priority = priority_class::p1;
  std::string kind;   ///< persona | model | alias
  std::string target; ///< for an alias: what it names
};

/// Squad's own request headers of a chat call, trimmed ("" : not sent).
struct chat_headers {
  std::string_view priority; ///< X-Squad-Priority: P0..P3 (any case of the P)
  std::string_view cache;    ///< X-Squad-Cache: use | only | bypass
  std::string_view run;      ///< X-Squad-Run: calls with one id share one budget of LLM calls
  std::string_view timeout;  ///< X-Squad-Timeout: ms or a duration, up to call_timeout
};

/// What a chat request is checked against besides itself.
struct chat_context {
  const std::map<std::string, api_model>& models;
  const std::vector<std::string>& allowed_models;          ///< the API key's models; empty: every model
  const std::map<std::string, provider_family>& providers; ///< by name (an unknown one counts as openai)
  std::chrono::milliseconds call_timeout{60000};           ///< server.call_timeout
};

/// The refusals parse_chat_request can give, as their api_error::code (403s count in squad_auth_refusals_total).
inline constexpr std::string_view model_not_allowed = "model_not_allowed";

/// What the client asked for about the answer itself (not sent upstream as such).
struct chat_flags {
  bool stream = false;
  bool include_usage = false; ///< stream_options.include_usage
};

/// A chat request the gateway may send: call has messages, parameters, chain, priority, cache mode, budget id,
/// timeout and stream set; trace_id and sink are the caller's.
struct parsed_chat {
  call_request call;
  chat_flags flags;
  const api_model* model = nullptr; ///< into chat_context::models
};

/// A field the gateway refuses: its name as in a 400 body's `param`, and what is wrong.
struct chat_refusal {
  std::string param;
  std::string message;
};

/// Reads messages (roles system, developer (sent as system), user, assistant with optional tool_calls, tool
/// with its tool_call_id), max_tokens / max_completion_tokens, temperature, stream and stream_options into
/// `call` and `flags`; checks the types and ranges of the other known parameters (tools, tool_choice, stop,
/// seed, ...) and keeps every other field the client sent in call.params_json, verbatim. `model` is the
/// caller's to resolve. nullopt when the body is acceptable.
std::optional<chat_refusal> read_chat_body(const nlohmann::json& body, call_request& call, chat_flags& flags);

/// The body's `model`: 400 when it is missing or not a string, 404 when unknown, 403 when not this key's.
std::variant<const api_model*, api_error> find_api_model(const nlohmann::json& body, const chat_context& ctx);

/// X-Squad-Priority, X-Squad-Cache, X-Squad-Run and X-Squad-Timeout into `call` (400 naming a bad one).
std::optional<api_error> read_headers(const chat_headers& h, std::chrono::milliseconds call_timeout,
                                      call_request& call);

/// Checks in the order a client fixes them: the body is an object, model (400 missing, 404 unknown, 403 not this
/// key's), the fields (read_chat_body), parameters no target of the chain can honour (400 unsupported_parameter;
/// when only some cannot, those targets refuse it and the chain falls back past them), then the headers.
std::variant<parsed_chat, api_error> parse_chat_request(const nlohmann::json& body, const chat_headers& headers,
                                                        const chat_context& ctx);

} // namespace squad::server
