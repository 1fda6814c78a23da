#include "actors/provider/adapters.hpp"
#include "actors/provider/chat_params.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <utility>
#include <vector>

namespace squad {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

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

} // namespace

upstream_reply classify(int http_status, std::string_view body, const limit_signals& signals) {
  return classify_parsed(http_status, parse_or_null(body), signals);
}

std::string provider_error_message(std::string_view body) {
  return clip(error_message_of(parse_or_null(body)));
}

// -- OpenAI ---------------------------------------------------------------------------------------------

namespace openai {

header_list request_headers(const std::string& api_key) {
  header_list out;
  if (!api_key.empty())
    out.emplace_back("authorization", "Bearer " + api_key);
  out.emplace_back("content-type", "application/json");
  return out;
}

std::string build_request_body(const call_request& req, const std::string& model_id, bool stream) {
  return openai_request_body(req, model_id, stream);
}

upstream_reply parse_response(std::string_view body) {
  try {
    json j = json::parse(body);
    if (is_error_body(j))
      return embedded_error(j, "error in reply");
    const json* choices = find(j, "choices");
    if (!choices || !choices->is_array() || choices->empty())
      return bad_response("reply has no choices");
    const json* message = find((*choices)[0], "message");
    if (!message || !message->is_object())
      return bad_response("choices[0].message is missing or not an object");
    upstream_reply r;
    auto content = string_field(*message, "content"); // null when the model only called tools
    auto finish = string_field((*choices)[0], "finish_reason");
    if (!content)
      return bad_response("choices[0].message.content is not a string");
    if (!finish)
      return bad_response("choices[0].finish_reason is not a string");
    if (!read_openai_usage(find(j, "usage"), r.usage))
      return bad_response("usage is not an object of token counts");
    if (const json* calls = find(*message, "tool_calls"); calls && !calls->is_null()) {
      if (!calls->is_array())
        return bad_response("choices[0].message.tool_calls is not an array");
      if (!calls->empty())
        r.tool_calls_json = calls->dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (const json* lp = find((*choices)[0], "logprobs"); lp && !lp->is_null())
      r.logprobs_json = lp->dump(-1, ' ', false, json::error_handler_t::replace);
    if (auto fp = string_field(j, "system_fingerprint"))
      r.system_fingerprint = std::move(*fp);
    r.text = std::move(*content);
    r.finish_reason = std::move(*finish);
    return r;
  } catch (const std::exception& e) {
    return malformed(e, "reply");
  }
}

std::string stream_accumulator::on_event(const sse_event& ev) {
  if (ended_ || ev.data.empty())
    return {};
  if (ev.data == "[DONE]") {
    ended_ = true;
    return {};
  }
  auto fail = [this](upstream_reply r) {
    r.usage = reply_.usage;
    reply_ = std::move(r);
    ended_ = true;
    return std::string{};
  };
  try {
    json j = json::parse(ev.data);
    if (ev.event == "error" || is_error_body(j))
      return fail(embedded_error(j, "error in stream"));
    if (!read_openai_usage(find(j, "usage"), reply_.usage))
      return fail(bad_response("chunk usage is not an object of token counts"));
    if (auto fp = string_field(j, "system_fingerprint"); fp && !fp->empty())
      reply_.system_fingerprint = std::move(*fp);
    if (const json* groq = find(j, "x_groq")) // Groq puts the usage of its last chunk here
      if (!read_openai_usage(find(*groq, "usage"), reply_.usage))
        return fail(bad_response("chunk x_groq.usage is not an object of token counts"));
    const json* choices = find(j, "choices");
    if (!choices || choices->is_null())
      return {};
    if (!choices->is_array())
      return fail(bad_response("chunk choices is not an array"));
    if (choices->empty())
      return {}; // the usage chunk
    const json& choice = (*choices)[0];
    auto finish = string_field(choice, "finish_reason");
    if (!finish)
      return fail(bad_response("chunk finish_reason is not a string"));
    if (!finish->empty())
      reply_.finish_reason = std::move(*finish);
    const json* delta = find(choice, "delta");
    if (!delta || delta->is_null())
      return {};
    auto content = string_field(*delta, "content");
    if (!delta->is_object() || !content)
      return fail(bad_response("chunk delta.content is not a string"));
    if (const json* calls = find(*delta, "tool_calls"); calls && !calls->is_null()) {
      if (!calls->is_array())
        return fail(bad_response("chunk delta.tool_calls is not an array"));
      for (const auto& c : *calls) {
        const json* index = find(c, "index");
        const json* fn = find(c, "function");
        auto id = string_field(c, "id");
        auto name = fn ? string_field(*fn, "name") : std::string{};
        auto args = fn ? string_field(*fn, "arguments") : std::string{};
        if (!index || !index->is_number_unsigned() || !id || !name || !args ||
            !tools_.add(index->get<std::size_t>(), *id, *name, *args))
          return fail(bad_response("chunk delta.tool_calls holds an entry without a valid index, id, name or arguments"));
      }
    }
    reply_.text += *content;
    return std::move(*content);
  } catch (const std::exception& e) {
    return fail(malformed(e, "stream chunk"));
  }
}

upstream_reply stream_accumulator::finish() const {
  auto r = reply_;
  r.tool_calls_json = tools_.calls_json();
  return finish_stream(std::move(r), ended_, "[DONE]");
}

} // namespace openai

// -- Anthropic ------------------------------------------------------------------------------------------

namespace anthropic {

header_list request_headers(const std::string& api_key) {
  return {{"x-api-key", api_key}, {"anthropic-version", api_version}, {"content-type", "application/json"}};
}

std::string build_request_body(const call_request& req, const std::string& model_id, bool stream) {
  return anthropic_request_body(req, model_id, stream);
}

upstream_reply parse_response(std::string_view body) {
  try {
    json j = json::parse(body);
    if (is_error_body(j))
      return embedded_error(j, "error in reply");
    const json* content = find(j, "content");
    if (!content || !content->is_array())
      return bad_response("reply content is missing or not an array");
    upstream_reply r;
    json calls = json::array();
    for (const auto& block : *content) {
      const json* type = find(block, "type");
      if (!type || !type->is_string())
        return bad_response("reply content holds a block that is not an object with a type");
      if (*type == "tool_use") {
        auto id = string_field(block, "id");
        auto name = string_field(block, "name");
        const json* input = find(block, "input");
        if (!id || !name || id->empty() || name->empty())
          return bad_response("tool_use block has no id or name");
        calls.push_back({{"id", *id},
                         {"type", "function"},
                         {"function", {{"name", *name}, {"arguments", input ? input->dump() : "{}"}}}});
        continue;
      }
      if (*type != "text")
        continue; // thinking, ...
      auto text = string_field(block, "text");
      if (!text)
        return bad_response("text block's text is not a string");
      r.text += *text;
    }
    auto stop = string_field(j, "stop_reason");
    if (!stop)
      return bad_response("stop_reason is not a string");
    r.finish_reason = map_stop_reason(*stop);
    if (!calls.empty())
      r.tool_calls_json = calls.dump(-1, ' ', false, json::error_handler_t::replace);
    const json* usage = find(j, "usage");
    if (usage && !read_anthropic_usage(*usage, r.usage))
      return bad_response("usage is not an object of token counts");
    return r;
  } catch (const std::exception& e) {
    return malformed(e, "reply");
  }
}

std::string stream_accumulator::on_event(const sse_event& ev) {
  if (ended_ || ev.data.empty())
    return {};
  auto fail = [this](upstream_reply r) {
    r.usage = reply_.usage;
    reply_ = std::move(r);
    ended_ = true;
    return std::string{};
  };
  try {
    json j = json::parse(ev.data);
    auto type = string_field(j, "type");
    if (!j.is_object() || !type)
      return fail(bad_response("stream event is not an object with a type"));
    if (type->empty())
      type = ev.event;
    if (*type == "error" || is_error_body(j))
      return fail(embedded_error(j, "error event"));
    if (*type == "message_start") {
      const json* message = find(j, "message");
      const json* usage = message ? find(*message, "usage") : nullptr;
      if (usage && !read_anthropic_usage(*usage, reply_.usage))
        return fail(bad_response("message_start usage is not an object of token counts"));
    } else if (*type == "content_block_delta") {
      const json* delta = find(j, "delta");
      auto delta_type = delta ? string_field(*delta, "type") : std::nullopt;
      if (!delta || !delta_type)
        return fail(bad_response("content_block_delta has no delta with a type"));
      if (*delta_type == "input_json_delta") {
        const json* index = find(j, "index");
        auto it = index && index->is_number_integer() ? tool_of_block_.find(index->get<std::int64_t>())
                                                      : tool_of_block_.end();
        auto part = string_field(*delta, "partial_json");
        if (it == tool_of_block_.end() || !part)
          return fail(bad_response("input_json_delta outside a tool_use block, or without partial_json"));
        tools_.add(it->second, {}, {}, *part);
        return {};
      }
      if (*delta_type != "text_delta")
        return {}; // thinking_delta, signature_delta
      auto text = string_field(*delta, "text");
      if (!text)
        return fail(bad_response("text_delta's text is not a string"));
      reply_.text += *text;
      return std::move(*text);
    } else if (*type == "message_delta") {
      const json* delta = find(j, "delta");
      auto stop = delta ? string_field(*delta, "stop_reason") : std::string{};
      if (!stop)
        return fail(bad_response("message_delta stop_reason is not a string"));
      if (!stop->empty())
        reply_.finish_reason = map_stop_reason(*stop);
      const json* usage = find(j, "usage");
      if (usage && !read_anthropic_usage(*usage, reply_.usage))
        return fail(bad_response("message_delta usage is not an object of token counts"));
    } else if (*type == "content_block_start") {
      const json* block = find(j, "content_block");
      const json* index = find(j, "index");
      if (block && string_field(*block, "type").value_or("") == "tool_use") {
        auto id = string_field(*block, "id");
        auto name = string_field(*block, "name");
        if (!index || !index->is_number_integer() || !id || !name || id->empty() || name->empty())
          return fail(bad_response("tool_use content_block_start has no index, id or name"));
        std::size_t tool = tool_of_block_.size();
        if (!tools_.add(tool, *id, *name, {}))
          return fail(bad_response("too many tool_use blocks"));
        tool_of_block_[index->get<std::int64_t>()] = tool;
      }
    } else if (*type == "message_stop") {
      ended_ = true;
    }
    return {}; // ping, other content_block_start, content_block_stop, and event types added later
  } catch (const std::exception& e) {
    return fail(malformed(e, "stream event"));
  }
}

upstream_reply stream_accumulator::finish() const {
  auto r = reply_;
  r.tool_calls_json = tools_.calls_json();
  return finish_stream(std::move(r), ended_, "message_stop");
}

} // namespace anthropic

} // namespace squad
