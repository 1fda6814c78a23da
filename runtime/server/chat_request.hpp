#pragma once
// The body of POST /v1/chat/completions, read into a call_request: pure logic, no sockets, no actors.
// Every field is checked here, on the io thread, so a bad one is a 400 naming it (`param`) before any actor
// sees the call. What each provider kind then does with the parameters is actors/provider/chat_params.hpp.
#include "actors/messages.hpp"

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>

namespace squad::server {

/// What the client asked for about the answer itself (not sent upstream as such).
struct chat_flags {
  bool stream = false;
  bool include_usage = false; ///< stream_options.include_usage
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

} // namespace squad::server
