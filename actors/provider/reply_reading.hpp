#pragma once
// Shared by the adapters of the two API families (adapters.cpp, openai_adapter.cpp, anthropic_adapter.cpp): reading
// fields of an upstream's JSON without throwing, and turning what is wrong with it into an upstream_reply. Internal
// to actors/provider.
#include "actors/messages.hpp"

#include <nlohmann/json.hpp>

#include <exception>
#include <optional>
#include <string>

namespace squad::reply_reading {

using nlohmann::json;
using nlohmann::ordered_json;

/// The member `key` of an object; nullptr when absent or `j` is no object.
const json* find(const json& j, const char* key);
/// A string field; "" when absent or null, nullopt when of another type.
std::optional<std::string> string_field(const json& j, const char* key);
/// outcome bad_response with this detail.
upstream_reply bad_response(std::string detail);
/// bad_response for a body the JSON parser or a field read threw on.
upstream_reply malformed(const std::exception& e, const char* what);
/// An error object where a reply or a stream chunk was expected (both APIs may send one after a 200).
bool is_error_body(const json& j);
/// The outcome such an error object stands for: a numeric code is an HTTP status; otherwise overloaded or
/// rate-limit types say so; the rest is server_error.
upstream_reply embedded_error(const json& j, const char* where);
/// A stream's reply once it ended (`ended`: its end marker came) or broke off.
upstream_reply finish_stream(upstream_reply r, bool ended, const char* end_marker);
/// Anthropic's stop_reason as OpenAI's finish_reason.
std::string map_stop_reason(const std::string& reason);
/// Anthropic's usage object into `out` (cached input counts as prompt tokens); false when malformed.
bool read_anthropic_usage(const json& u, usage_info& out);
/// OpenAI's usage object (null in every streamed chunk but the last); false when malformed.
bool read_openai_usage(const json* u, usage_info& out);

} // namespace squad::reply_reading
