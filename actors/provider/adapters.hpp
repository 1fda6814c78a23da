#pragma once
// The two upstream API families, as pure logic for the HTTP client and the provider actors: request bodies and
// headers, replies (whole and streamed) into upstream_reply, and HTTP errors into outcomes.
//
//   openai:    Chat Completions; also Groq, Cerebras, OpenRouter, Together, Gemini's OpenAI-compatible
//              endpoint, Ollama and vLLM.
//   anthropic: Messages (system prompt apart, max_tokens required, content blocks, its own stream events).
//
// Nothing here throws on what an upstream sends: a body of the wrong shape is an upstream_reply with
// outcome bad_response and a detail saying what was wrong. Only an `ok` reply carries text; a failed one
// keeps its usage (the tokens may still have been billed). Details never quote the request or a header.
#include "actors/messages.hpp"
#include "actors/provider/limit_headers.hpp"
#include "actors/provider/sse_parser.hpp"
#include "actors/provider/tool_calls.hpp"

#include <map>
#include <string>
#include <string_view>

namespace squad {

/// The outcome of an HTTP answer from its status and error body, as an upstream_reply without text whose
/// `signals` are `signals`. 2xx: ok. 429: rate_limited (with no retry-after given, the latest reset of a limit
/// whose remaining count is 0 stands in for it). 503, 529: overloaded. Other 5xx: server_error. 401, 403:
/// auth_failed. 413: context_too_long. 404: bad_request (unknown model or endpoint). 408: timeout. 400 and
/// other 4xx: bad_request, or context_too_long when the error says so. Anything else: bad_response.
/// The detail is "HTTP <status>" plus the provider's error message, if any.
upstream_reply classify(int http_status, std::string_view body, const limit_signals& signals);

/// The provider's error message in an error body ({"error":{"message"}} from OpenAI, Anthropic and most
/// others; {"message"} from vLLM; {"error":"..."} from Ollama), on one line, cut to at most 300 bytes.
/// Empty when the body holds none.
std::string provider_error_message(std::string_view body);

namespace openai {

/// authorization (only with a key: Ollama and vLLM need none) and content-type.
header_list request_headers(const std::string& api_key);

/// A /chat/completions body: openai_request_body (chat_params.hpp).
std::string build_request_body(const call_request& req, const std::string& model_id, bool stream);

/// A whole /chat/completions reply: choices[0].message.content, its tool_calls (verbatim), logprobs and
/// finish_reason, system_fingerprint, and usage.
upstream_reply parse_response(std::string_view body);

/// Reassembles a streamed reply from its SSE events ("data: {chunk}" ... "data: [DONE]").
class stream_accumulator {
public:
  /// Takes one event; returns the text it adds (empty when none), to pass on to a streaming client.
  std::string on_event(const sse_event& ev);

  /// Whether the stream has ended ([DONE] or an error); later events are ignored.
  bool done() const { return ended_; }

  /// The reply: ok after [DONE]; stream_cut when the stream stopped before it; or the error met on the way.
  upstream_reply finish() const;

  /// The text received so far, whatever happens next.
  const std::string& text_so_far() const { return reply_.text; }

  /// Tool-call fragments since the last take, to pass on (tool_call_assembler::take_fragments).
  std::string take_tool_deltas() { return tools_.take_fragments(); }

private:
  upstream_reply reply_;
  tool_call_assembler tools_;
  bool ended_ = false;
};

} // namespace openai

namespace anthropic {

/// The API version every request names.
inline constexpr const char* api_version = "2023-06-01";

/// x-api-key, anthropic-version and content-type.
header_list request_headers(const std::string& api_key);

/// A /v1/messages body: anthropic_request_body (chat_params.hpp).
std::string build_request_body(const call_request& req, const std::string& model_id, bool stream);

/// A whole /v1/messages reply: its text blocks joined, its tool_use blocks as OpenAI tool_calls, stop_reason as an
/// OpenAI finish_reason (end_turn and stop_sequence: stop; max_tokens: length; tool_use: tool_calls), and usage (prompt
/// tokens include cached ones).
upstream_reply parse_response(std::string_view body);

/// Reassembles a streamed reply from its SSE events (message_start, content_block_start of tool_use blocks,
/// content_block_delta text and input_json_delta, message_delta, message_stop; ping and unknown events are
/// skipped; an error event ends the stream).
class stream_accumulator {
public:
  /// Takes one event; returns the text it adds (empty when none), to pass on to a streaming client.
  std::string on_event(const sse_event& ev);

  /// Whether the stream has ended (message_stop or an error); later events are ignored.
  bool done() const { return ended_; }

  /// The reply: ok after message_stop; stream_cut when the stream stopped before it; or the error met.
  upstream_reply finish() const;

  /// The text received so far, whatever happens next.
  const std::string& text_so_far() const { return reply_.text; }

  /// Tool-call fragments since the last take, in OpenAI's delta shape (tool_use blocks numbered from 0).
  std::string take_tool_deltas() { return tools_.take_fragments(); }

private:
  upstream_reply reply_;
  tool_call_assembler tools_;
  std::map<std::int64_t, std::size_t> tool_of_block_; // content block index -> tool call index
  bool ended_ = false;
};

} // namespace anthropic

} // namespace squad
