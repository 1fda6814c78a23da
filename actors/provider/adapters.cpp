// What both API families share: HTTP errors into outcomes and error messages, and the field readers of
// reply_reading.hpp. The families themselves: openai_adapter.cpp, anthropic_adapter.cpp.
#include "actors/provider/adapters.hpp"
#include "actors/provider/reply_reading.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <utility>
#include <vector>

namespace squad {

namespace reply_reading {

constexpr std::size_t max_message_bytes = 300;

const json* find(const json& j, const char* key) {
  if (!j.is_object())
    return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// A string field; "" when absent or null, nullopt when of another type.
std::optional<std::string> string_field(const json& j, const char* key) {
  const json* v = find(j, key);
  if (!v || v->is_null())
    return std::string{};
  if (!v->is_string())
    return std::nullopt;
  return v->get<std::string>();
}

// Adds a token count to `out` when present; false when present but not a number.
bool add_count(const json& j, const char* key, std::int64_t& out) {
  const json* v = find(j, key);
  if (!v || v->is_null())
    return true;
  if (!v->is_number())
    return false;
  if (!v->is_number_float()) {
    out += v->get<std::int64_t>();
    return true;
  }
  double d = v->get<double>();
  if (!(std::fabs(d) < 1e15)) // NaN or absurd: out of the range a cast may take
    return false;
  out += static_cast<std::int64_t>(d);
  return true;
}

// Replaces `out` with a token count when present.
bool set_count(const json& j, const char* key, std::int64_t& out) {
  if (!find(j, key) || find(j, key)->is_null())
    return true;
  out = 0;
  return add_count(j, key, out);
}

std::string lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// One line, at most max_message_bytes, not cut inside a UTF-8 sequence.
std::string clip(std::string s) {
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20)
      c = ' ';
  if (s.size() <= max_message_bytes)
    return s;
  std::size_t cut = max_message_bytes - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
    --cut;
  s.resize(cut);
  return s + "...";
}

// Gemini's OpenAI endpoint sometimes wraps its error object in an array.
const json& unwrap(const json& j) {
  return j.is_array() && !j.empty() ? j[0] : j;
}

std::string error_message_of(const json& body) {
  const json& j = unwrap(body);
  if (const json* e = find(j, "error")) {
    if (e->is_string())
      return e->get<std::string>();
    if (const json* m = find(*e, "message"); m && m->is_string())
      return m->get<std::string>();
  }
  if (const json* m = find(j, "message"); m && m->is_string())
    return m->get<std::string>();
  return {};
}

// error.code, else error.type, else the top-level code or type, as text ("" when none).
std::string error_code_of(const json& body) {
  const json& j = unwrap(body);
  const json* e = find(j, "error");
  for (const json* holder : {e, &j}) {
    if (!holder)
      continue;
    for (const char* key : {"code", "type"}) {
      const json* v = find(*holder, key);
      if (v && v->is_string() && !v->get<std::string>().empty() && v->get<std::string>() != "error")
        return v->get<std::string>();
      if (v && v->is_number_integer())
        return std::to_string(v->get<std::int64_t>());
    }
  }
  return {};
}

bool says_context_too_long(const json& body) {
  static constexpr const char* phrases[] = {
      "context_length_exceeded",              // OpenAI's error code (also in some messages)
      "maximum context length",               // OpenAI, vLLM, Groq, Together
      "prompt is too long",                   // Anthropic
      "too many tokens",                      //
      "exceed context limit",                 // Anthropic: "input length and `max_tokens` exceed context limit"
      "exceeds the maximum number of tokens", // Gemini
  };
  std::string text = lower(error_message_of(body) + " " + error_code_of(body));
  return std::any_of(std::begin(phrases), std::end(phrases),
                     [&](const char* p) { return text.find(p) != std::string::npos; });
}

json parse_or_null(std::string_view body) {
  try {
    return json::parse(body, nullptr, false); // a discarded value on malformed input
  } catch (const std::exception&) {
    return json{};
  }
}

upstream_reply classify_parsed(int status, const json& body, const limit_signals& signals) {
  upstream_reply r;
  r.signals = signals;
  std::string note;
  if (status >= 200 && status < 300) {
    r.result = outcome::ok;
    return r;
  }
  if (status == 429 && error_code_of(body) == "insufficient_quota") {
    r.result = outcome::auth_failed; // out of credit: waiting does not help, unlike a rate limit
    note = " (insufficient_quota: the account has no credit left)";
  } else if (status == 429) {
    r.result = outcome::rate_limited;
    if (r.signals.retry_after_ms < 0) {
      if (signals.remaining_requests == 0 && signals.reset_requests_ms >= 0)
        r.signals.retry_after_ms = signals.reset_requests_ms;
      if (signals.remaining_tokens == 0 && signals.reset_tokens_ms >= 0)
        r.signals.retry_after_ms = std::max(r.signals.retry_after_ms, signals.reset_tokens_ms);
    }
  } else if (status == 503 || status == 529) {
    r.result = outcome::overloaded;
  } else if (status >= 500 && status < 600) {
    r.result = outcome::server_error;
  } else if (status == 401 || status == 403) {
    r.result = outcome::auth_failed;
  } else if (status == 413) {
    r.result = outcome::context_too_long;
  } else if (status == 404) {
    r.result = outcome::bad_request;
    note = " (unknown model or endpoint)";
  } else if (status == 408) {
    r.result = outcome::timeout;
  } else if (status >= 400 && status < 500) {
    r.result = says_context_too_long(body) ? outcome::context_too_long : outcome::bad_request;
  } else {
    r.result = outcome::bad_response;
    note = " (unexpected status)";
  }
  r.detail = "HTTP " + std::to_string(status) + note;
  if (auto message = clip(error_message_of(body)); !message.empty())
    r.detail += ": " + message;
  return r;
}

upstream_reply bad_response(std::string detail) {
  upstream_reply r;
  r.result = outcome::bad_response;
  r.detail = std::move(detail);
  return r;
}

upstream_reply malformed(const std::exception& e, const char* what) {
  if (auto* pe = dynamic_cast<const json::parse_error*>(&e))
    return bad_response(std::string("malformed JSON in ") + what + " at byte " + std::to_string(pe->byte));
  return bad_response(std::string("unreadable ") + what); // not expected: the readers below check types
}

// An error object where a reply or a stream chunk was expected (both APIs may send one after a 200).
// A numeric code is an HTTP status; otherwise overloaded or rate-limit types say so; the rest is server_error.
bool is_error_body(const json& j) {
  if (j.is_object() && j.contains("type") && j["type"] == "error")
    return true;
  const json* e = find(j, "error");
  return e && !e->is_null() && !find(j, "choices") && !find(j, "content");
}

upstream_reply embedded_error(const json& j, const char* where) {
  std::string code = error_code_of(j);
  upstream_reply r;
  const json* e = find(j, "error");
  const json* num = e ? find(*e, "code") : nullptr;
  if (num && num->is_number_integer() && num->get<std::int64_t>() >= 400 && num->get<std::int64_t>() < 600)
    r = classify_parsed(static_cast<int>(num->get<std::int64_t>()), j, {});
  else if (code == "overloaded_error")
    r.result = outcome::overloaded;
  else if (code == "rate_limit_error" || code == "rate_limit_exceeded")
    r.result = outcome::rate_limited;
  else
    r.result = outcome::server_error;
  r.detail = std::string(where) + (code.empty() ? "" : " (" + code + ")");
  if (auto message = clip(error_message_of(j)); !message.empty())
    r.detail += ": " + message;
  return r;
}

upstream_reply finish_stream(upstream_reply r, bool ended, const char* end_marker) {
  if (!ended) {
    r.result = outcome::stream_cut;
    r.detail = std::string("stream ended without ") + end_marker + " after " + std::to_string(r.text.size()) +
               " bytes of text";
  }
  if (r.result != outcome::ok) {
    r.text.clear();
    r.tool_calls_json.clear();
  }
  return r;
}

std::string map_stop_reason(const std::string& reason) {
  if (reason == "end_turn" || reason == "stop_sequence")
    return "stop";
  if (reason == "max_tokens")
    return "length";
  if (reason == "tool_use")
    return "tool_calls";
  return reason; // refusal, pause_turn, and whatever comes next: passed on as Anthropic says it
}

// Anthropic's usage object: cached input is billed input too, so it counts as prompt tokens.
bool read_anthropic_usage(const json& u, usage_info& out) {
  if (!u.is_object())
    return u.is_null();
  bool ok = true;
  if (find(u, "input_tokens")) {
    out.prompt_tokens = 0;
    ok = add_count(u, "input_tokens", out.prompt_tokens) &&
         add_count(u, "cache_creation_input_tokens", out.prompt_tokens) &&
         add_count(u, "cache_read_input_tokens", out.prompt_tokens);
  }
  return ok && set_count(u, "output_tokens", out.completion_tokens);
}

// OpenAI's usage object (null in every streamed chunk but the last).
bool read_openai_usage(const json* u, usage_info& out) {
  if (!u || u->is_null())
    return true;
  return u->is_object() && set_count(*u, "prompt_tokens", out.prompt_tokens) &&
         set_count(*u, "completion_tokens", out.completion_tokens);
}

} // namespace reply_reading

using namespace reply_reading;

upstream_reply classify(int http_status, std::string_view body, const limit_signals& signals) {
  return classify_parsed(http_status, parse_or_null(body), signals);
}

std::string provider_error_message(std::string_view body) {
  return clip(error_message_of(parse_or_null(body)));
}

} // namespace squad
