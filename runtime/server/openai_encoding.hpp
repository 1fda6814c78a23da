#pragma once
// Squad's answers in OpenAI's shapes: chat.completion bodies, chat.completion.chunk SSE events, error bodies, and the
// HTTP status of a failed call, chosen from its typed failure (squad_errc and failure_class), never from its text.
// No Beast, no actors: the chat sink and the endpoints call these.
#include "actors/messages.hpp"
#include "runtime/server/api_error.hpp"
#include "runtime/server/http_server.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace squad::server {

/// Content-Type: application/json.
const header_list& json_headers();

/// JSON text, invalid UTF-8 replaced rather than thrown on.
std::string dump_json(const nlohmann::json& j);

/// An OpenAI-style error body: {"error": {"message", "type", "param", "code"}} (param and code null when "").
std::string error_body(const std::string& message, const std::string& type, const std::string& param = {},
                       const std::string& code = {});
inline std::string error_body(const api_error& e) {
  return error_body(e.message, e.type, e.param, e.code);
}

/// An error answer (JSON body; Retry-After when retry_after_s > 0).
void send_error(responder& out, const api_error& e);
void send_error(responder& out, int status, const std::string& message, const std::string& type,
                const std::string& param = {}, const std::string& code = {}, std::int64_t retry_after_s = 0);

/// A 405 naming the methods the path takes (Allow header).
void send_not_allowed(responder& out, const std::string& method, const std::string& path, const char* methods);

/// The answer to a call that failed before any of it reached the client. `cache_only`: the call asked
/// X-Squad-Cache: only (a shed is then a cache miss, 404).
api_error error_for(const call_failure& f, bool cache_only);

/// The SSE event that ends a stream a failure cut after its first chunk (no [DONE] follows).
std::string stream_error_event(const std::string& detail);

/// What every piece of one completion repeats.
struct completion_ids {
  std::string id;    ///< chatcmpl-...
  std::string model; ///< as the client named it
  std::int64_t created = 0;
  std::string fingerprint; ///< the upstream's system_fingerprint; "" : left out
};

/// A whole chat.completion body (non-streamed answer), with Squad's `squad` extension.
std::string completion_json(const completion_ids& ids, const call_result& r);
/// The headers of a non-streamed answer (X-Squad-Served-By, X-Squad-Cache, X-Squad-Partial).
header_list completion_headers(const call_result& r);
/// One `data: {chat.completion.chunk}` event with this delta and finish_reason (null: not finished).
std::string chunk_event(const completion_ids& ids, nlohmann::json delta, nlohmann::json finish);
/// The usage chunk (stream_options.include_usage): no choices, the usage and the `squad` extension.
std::string usage_event(const completion_ids& ids, const call_result& r);
/// The whole tool calls of an answer as one delta, each with its index; null when the answer has none.
nlohmann::json tool_calls_delta(const call_result& r);
/// The finish_reason of an answer ("stop" when the upstream said none).
std::string finish_reason_of(const call_result& r);

} // namespace squad::server
