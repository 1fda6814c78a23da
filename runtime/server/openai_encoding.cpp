#include "runtime/server/openai_encoding.hpp"

#include <algorithm>

namespace squad::server {

using json = nlohmann::json;

namespace {

// A JSON text Squad stored itself (tool calls, logprobs); null when empty or unreadable.
json parsed_or_null(const std::string& text) {
  if (text.empty())
    return nullptr;
  auto j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

json usage_json(const call_result& r) {
  return {{"prompt_tokens", r.usage.prompt_tokens},
          {"completion_tokens", r.usage.completion_tokens},
          {"total_tokens", r.usage.prompt_tokens + r.usage.completion_tokens}};
}

// Squad's extension of an answer: who served it, from the cache or not, partial or not, every attempt.
json squad_json(const call_result& r) {
  json attempts = json::array();
  for (auto& a : r.attempts)
    attempts.push_back({{"target", a.provider + "/" + a.model}, {"outcome", a.outcome}, {"latency_ms", a.latency_ms}});
  return {{"served_by", r.served_by.provider + "/" + r.served_by.model},
          {"cached", r.cached},
          {"partial", r.partial},
          {"attempts", std::move(attempts)}};
}

} // namespace

const header_list& json_headers() {
  static const header_list h{{"Content-Type", "application/json"}};
  return h;
}

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error_body(const std::string& message, const std::string& type, const std::string& param,
                       const std::string& code) {
  return dump_json(json{{"error",
                         {{"message", message},
                          {"type", type},
                          {"param", param.empty() ? json(nullptr) : json(param)},
                          {"code", code.empty() ? json(nullptr) : json(code)}}}});
}

void send_error(responder& out, const api_error& e) {
  header_list headers = json_headers();
  if (e.retry_after_s > 0)
    headers.emplace_back("Retry-After", std::to_string(e.retry_after_s));
  out.reply(e.status, std::move(headers), error_body(e));
}

void send_error(responder& out, int status, const std::string& message, const std::string& type,
                const std::string& param, const std::string& code, std::int64_t retry_after_s) {
  send_error(out, api_error{status, message, type, param, code, retry_after_s});
}

void send_not_allowed(responder& out, const std::string& method, const std::string& path, const char* methods) {
  auto headers = json_headers();
  headers.emplace_back("Allow", methods);
  out.reply(405, std::move(headers),
            error_body(method + " is not allowed on " + path + " (use " + methods + ")", "invalid_request_error"));
}

api_error error_for(const call_failure& f, bool cache_only) {
  auto& d = f.detail;
  switch (f.code) {
  case squad_errc::budget_spent: // a shared budget does not come back by waiting a little
    return {429,
            d + " (use a new X-Squad-Run id, or wait until this one is unused for an hour)",
            "insufficient_quota",
            {},
            "budget_spent",
            3600};
  case squad_errc::shed:
    if (cache_only) // nothing was limited: the cache simply holds no answer for this call
      return {404, "X-Squad-Cache: only and " + d, "invalid_request_error", {}, "cache_miss", 0};
    return {429,
            "shed by Squad: " + d,
            "rate_limit_exceeded",
            {},
            "shed",
            f.retry_after_ms >= 0 ? std::max<std::int64_t>(1, (f.retry_after_ms + 999) / 1000) : 5};
  case squad_errc::deadline_exceeded:
    return {504, d, "timeout", {}, "deadline_exceeded", 0};
  case squad_errc::cancelled: // the client hung up: nginx's 499, so metrics do not count it as a server error
    return {499, d, "client_closed_request", {}, "client_closed_request", 0};
  case squad_errc::chain_exhausted:
    if (f.upstream == failure_class::request_refused)
      return {400, "the upstream refused the request: " + d, "invalid_request_error", {}, "upstream_bad_request", 0};
    if (f.upstream == failure_class::rate_limited) // every target is at its rate limit: a 429 with when to retry
      return {429,
              "every provider of the call is at its rate limit: " + d,
              "rate_limit_exceeded",
              {},
              "upstream_rate_limited",
              f.retry_after_ms >= 0 ? std::max<std::int64_t>(1, (f.retry_after_ms + 999) / 1000) : 1};
    // Retry-After: when the soonest open breaker probes again, if that is what ended the call.
    return {503,
            "no provider could serve the call: " + d,
            "service_unavailable",
            {},
            "no_provider",
            f.retry_after_ms >= 0 ? std::max<std::int64_t>(1, (f.retry_after_ms + 999) / 1000) : 1};
  default:
    return {503, d, "service_unavailable", {}, to_string(f.code), 1};
  }
}

std::string stream_error_event(const std::string& detail) {
  json e{{"error", {{"message", detail}, {"type", "upstream_error"}, {"code", "stream_interrupted"}}}};
  return "data: " + dump_json(e) + "\n\n";
}

std::string finish_reason_of(const call_result& r) {
  return r.finish_reason.empty() ? std::string{"stop"} : r.finish_reason;
}

std::string completion_json(const completion_ids& ids, const call_result& r) {
  json message{{"role", "assistant"}, {"content", r.text}};
  if (auto calls = parsed_or_null(r.tool_calls_json); calls.is_array()) {
    if (r.text.empty())
      message["content"] = nullptr; // OpenAI's own shape for an answer that only calls tools
    message["tool_calls"] = std::move(calls);
  }
  json body{{"id", ids.id},
            {"object", "chat.completion"},
            {"created", ids.created},
            {"model", ids.model},
            {"choices", json::array({{{"index", 0},
                                      {"message", std::move(message)},
                                      {"logprobs", parsed_or_null(r.logprobs_json)},
                                      {"finish_reason", finish_reason_of(r)}}})},
            {"usage", usage_json(r)}};
  if (!ids.fingerprint.empty())
    body["system_fingerprint"] = ids.fingerprint;
  body["squad"] = squad_json(r);
  return dump_json(body);
}

header_list completion_headers(const call_result& r) {
  header_list headers = json_headers();
  headers.emplace_back("X-Squad-Served-By", r.served_by.provider + "/" + r.served_by.model);
  headers.emplace_back("X-Squad-Cache", r.cached ? "hit" : "miss");
  if (r.partial)
    headers.emplace_back("X-Squad-Partial", "true");
  return headers;
}

std::string chunk_event(const completion_ids& ids, json delta, json finish) {
  json c{{"id", ids.id},
         {"object", "chat.completion.chunk"},
         {"created", ids.created},
         {"model", ids.model},
         {"choices", json::array({{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", std::move(finish)}}})}};
  if (!ids.fingerprint.empty())
    c["system_fingerprint"] = ids.fingerprint;
  return "data: " + dump_json(c) + "\n\n";
}

std::string usage_event(const completion_ids& ids, const call_result& r) {
  json u{{"id", ids.id},       {"object", "chat.completion.chunk"}, {"created", ids.created},
         {"model", ids.model}, {"choices", json::array()},          {"usage", usage_json(r)}};
  if (!ids.fingerprint.empty())
    u["system_fingerprint"] = ids.fingerprint;
  u["squad"] = squad_json(r);
  return "data: " + dump_json(u) + "\n\n";
}

json tool_calls_delta(const call_result& r) {
  auto calls = parsed_or_null(r.tool_calls_json);
  if (!calls.is_array())
    return nullptr;
  for (std::size_t i = 0; i < calls.size(); ++i)
    calls[i]["index"] = i;
  return json{{"tool_calls", std::move(calls)}};
}

} // namespace squad::server
