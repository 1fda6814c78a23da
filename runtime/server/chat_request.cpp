#include "runtime/server/chat_request.hpp"
#include "runtime/config/config.hpp"
#include "runtime/time/duration.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace squad::server {

namespace {

using json = nlohmann::json;

using refusal = std::optional<chat_refusal>;

refusal bad(std::string param, std::string message) {
  return chat_refusal{std::move(param), std::move(message)};
}

// Text of a content field: a string or an array of text parts (null or absent too, when `may_be_null`).
refusal read_content(const json& m, const std::string& p, bool may_be_null, std::string& out) {
  auto it = m.find("content");
  if (it != m.end() && it->is_string()) {
    out = it->get<std::string>();
    return std::nullopt;
  }
  if (it != m.end() && it->is_array()) {
    for (auto& part : *it) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        return bad(p + ".content",
                   p + ".content parts must be {type: text, text: string} (other parts are not supported)");
      out += part["text"].get<std::string>();
    }
    return std::nullopt;
  }
  if (may_be_null && (it == m.end() || it->is_null()))
    return std::nullopt;
  return bad(p + ".content", p + ".content is required: a string or an array of text parts");
}

// An assistant message's tool_calls: [{id, type: function, function: {name, arguments}}].
refusal read_tool_calls(const json& calls, const std::string& p, std::string& out) {
  if (!calls.is_array())
    return bad(p, p + " must be an array of {id, type: function, function: {name, arguments}}");
  for (std::size_t k = 0; k < calls.size(); ++k) {
    auto q = p + "[" + std::to_string(k) + "]";
    auto& c = calls[k];
    if (!c.is_object() || !c.contains("id") || !c["id"].is_string() || c["id"].get<std::string>().empty())
      return bad(q + ".id", q + ".id is required: the call's id, which the tool message answers");
    if (c.contains("type") && c["type"] != "function")
      return bad(q + ".type", q + ".type must be function");
    if (!c.contains("function") || !c["function"].is_object() || !c["function"].contains("name") ||
        !c["function"]["name"].is_string())
      return bad(q + ".function", q + ".function must be {name: string, arguments: string}");
    if (c["function"].contains("arguments") && !c["function"]["arguments"].is_string())
      return bad(q + ".function.arguments", q + ".function.arguments must be a string (JSON text)");
  }
  if (!calls.empty())
    out = calls.dump(-1, ' ', false, json::error_handler_t::replace);
  return std::nullopt;
}

refusal read_messages(const json& b, call_request& call) {
  if (!b.contains("messages") || !b["messages"].is_array() || b["messages"].empty())
    return bad("messages", "messages is required: a non-empty array of {role, content}");
  auto& msgs = b["messages"];
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    auto p = "messages[" + std::to_string(i) + "]";
    auto& m = msgs[i];
    if (!m.is_object())
      return bad(p, p + " must be an object with role and content");
    if (!m.contains("role") || !m["role"].is_string())
      return bad(p + ".role", p + ".role is required: system, user, assistant, developer or tool");
    auto role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "developer" && role != "tool")
      return bad(p + ".role", p + ".role must be system, user, assistant, developer or tool (got \"" + role + "\")");
    chat_message out;
    out.role = role == "developer" ? "system" : role;
    if (auto no = read_content(m, p, role == "assistant", out.content))
      return no;
    if (m.contains("name") && !m["name"].is_null()) {
      if (!m["name"].is_string())
        return bad(p + ".name", p + ".name must be a string");
      out.name = m["name"].get<std::string>();
    }
    if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
      if (role != "assistant")
        return bad(p + ".tool_calls", p + ".tool_calls is only for assistant messages");
      if (auto no = read_tool_calls(m["tool_calls"], p + ".tool_calls", out.tool_calls_json))
        return no;
    }
    if (role == "tool") {
      if (!m.contains("tool_call_id") || !m["tool_call_id"].is_string() || m["tool_call_id"].get<std::string>().empty())
        return bad(p + ".tool_call_id", p + ".tool_call_id is required: the id of the tool call this answers");
      out.tool_call_id = m["tool_call_id"].get<std::string>();
    }
    call.messages.push_back(std::move(out));
  }
  return std::nullopt;
}

bool is_number_in(const json& v, double lo, double hi) {
  return v.is_number() && v.get<double>() >= lo && v.get<double>() <= hi;
}

refusal read_tools(const json& v) {
  if (!v.is_array())
    return bad("tools", "tools must be an array of {type: function, function: {name, description?, parameters?}}");
  for (std::size_t k = 0; k < v.size(); ++k) {
    auto q = "tools[" + std::to_string(k) + "]";
    auto& t = v[k];
    if (!t.is_object() || t.value("type", "") != "function")
      return bad(q + ".type", q + ".type must be function");
    if (!t.contains("function") || !t["function"].is_object() || !t["function"].contains("name") ||
        !t["function"]["name"].is_string() || t["function"]["name"].get<std::string>().empty())
      return bad(q + ".function.name", q + ".function.name is required: a non-empty string");
    auto& fn = t["function"];
    if (fn.contains("parameters") && !fn["parameters"].is_null() && !fn["parameters"].is_object())
      return bad(q + ".function.parameters", q + ".function.parameters must be a JSON Schema object");
  }
  return std::nullopt;
}

// The type checks of the known parameters that travel in params_json; unknown ones pass unchecked.
refusal check_param(const std::string& k, const json& v) {
  if (v.is_null())
    return std::nullopt;
  if (k == "tools")
    return read_tools(v);
  if (k == "tool_choice") {
    bool ok = (v.is_string() && (v == "none" || v == "auto" || v == "required")) ||
              (v.is_object() && v.value("type", "") == "function" && v.contains("function") &&
               v["function"].is_object() && v["function"].contains("name") && v["function"]["name"].is_string());
    if (!ok)
      return bad(k, "tool_choice must be none, auto, required or {type: function, function: {name}}");
  } else if (k == "parallel_tool_calls" || k == "logprobs" || k == "store") {
    if (!v.is_boolean())
      return bad(k, k + " must be true or false");
  } else if (k == "response_format") {
    auto type = v.is_object() ? v.value("type", "") : "";
    if (type != "text" && type != "json_object" && type != "json_schema")
      return bad(k, "response_format must be {type: text | json_object | json_schema}");
    if (type == "json_schema" && (!v.contains("json_schema") || !v["json_schema"].is_object()))
      return bad("response_format.json_schema", "response_format.json_schema is required with type json_schema");
  } else if (k == "stop") {
    bool ok = v.is_string() || (v.is_array() && v.size() <= 4 &&
                                std::all_of(v.begin(), v.end(), [](const json& s) { return s.is_string(); }));
    if (!ok)
      return bad(k, "stop must be a string or an array of at most 4 strings");
  } else if (k == "seed") {
    if (!v.is_number_integer())
      return bad(k, "seed must be an integer");
  } else if (k == "top_logprobs") {
    if (!v.is_number_integer() || !is_number_in(v, 0, 20))
      return bad(k, "top_logprobs must be an integer from 0 to 20");
  } else if (k == "top_p") {
    if (!is_number_in(v, 0, 1))
      return bad(k, "top_p must be a number from 0 to 1");
  } else if (k == "frequency_penalty" || k == "presence_penalty") {
    if (!is_number_in(v, -2, 2))
      return bad(k, k + " must be a number from -2 to 2");
  } else if (k == "user") {
    if (!v.is_string())
      return bad(k, "user must be a string");
  } else if (k == "metadata" || k == "logit_bias") {
    if (!v.is_object())
      return bad(k, k + " must be an object");
  } else if (k == "n") {
    if (!v.is_number_integer() || v.get<std::int64_t>() != 1)
      return bad(k, "n must be 1: Squad answers with one choice per call (send n calls for n answers)");
  }
  return std::nullopt;
}

refusal read_token_cap(const json& b, const char* name, std::int64_t& out) {
  if (!b.contains(name) || b[name].is_null())
    return std::nullopt;
  auto& v = b[name];
  if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 1000000)
    return bad(name, std::string{name} + " must be an integer from 1 to 1000000");
  out = v.get<std::int64_t>();
  return std::nullopt;
}

api_error invalid(std::string param, std::string message, std::string code = {}) {
  return {400, std::move(message), "invalid_request_error", std::move(param), std::move(code), 0};
}

} // namespace

// X-Squad-Priority, X-Squad-Cache, X-Squad-Run and X-Squad-Timeout into `call`.
std::optional<api_error> read_headers(const chat_headers& h, std::chrono::milliseconds call_timeout,
                                      call_request& call) {
  if (!h.priority.empty()) {
    std::string up{h.priority};
    up[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(up[0])));
    auto p = parse_priority(up);
    if (!p)
      return invalid("X-Squad-Priority",
                     "X-Squad-Priority must be P0, P1, P2 or P3 (got \"" + std::string{h.priority} + "\")");
    call.priority = static_cast<std::uint8_t>(*p);
  }
  call.cache_mode = cache_bypass; // API calls use the response cache only when they ask
  if (!h.cache.empty()) {
    if (h.cache == "use")
      call.cache_mode = cache_use;
    else if (h.cache == "only")
      call.cache_mode = cache_only;
    else if (h.cache != "bypass")
      return invalid("X-Squad-Cache",
                     "X-Squad-Cache must be use, only or bypass (got \"" + std::string{h.cache} + "\")");
  }
  if (!h.run.empty()) {
    if (h.run.size() > 128 ||
        h.run.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") !=
            std::string_view::npos)
      return invalid("X-Squad-Run",
                     "X-Squad-Run must be 1 to 128 of [A-Za-z0-9._:-] (got \"" + std::string{h.run} + "\")");
    call.budget_id = std::string{h.run};
  }
  call.timeout_ms = call_timeout.count();
  if (!h.timeout.empty()) { // the client's own deadline
    std::optional<millis> t;
    if (h.timeout.find_first_not_of("0123456789") == std::string_view::npos && h.timeout.size() < 10)
      t = millis{std::stoll(std::string{h.timeout})};
    else
      t = parse_duration(h.timeout);
    if (!t || t->count() <= 0 || *t > call_timeout)
      return invalid(
          "X-Squad-Timeout",
          "X-Squad-Timeout must be milliseconds or a duration (500ms, 30s) from 1ms to server.call_timeout (" +
              std::to_string(call_timeout.count()) + "ms) (got \"" + std::string{h.timeout} + "\")");
    call.timeout_ms = t->count();
  }
  return std::nullopt;
}

namespace {

// A parameter no target of the chain can honour is the client's to fix; when only some cannot, the call goes ahead.
std::optional<api_error> refuse_for_chain(const api_model& model, const chat_context& ctx, const call_request& call) {
  std::optional<api_error> first;
  for (auto& t : model.chain) {
    auto p = ctx.providers.find(t.provider);
    auto no = refuse_params(p == ctx.providers.end() ? provider_family::openai : p->second, call);
    if (!no)
      return std::nullopt;
    if (!first)
      first = invalid(no->param, "provider " + t.provider + ": " + no->message + " (model " + model.name + ")",
                      "unsupported_parameter");
  }
  return first;
}

} // namespace

std::variant<const api_model*, api_error> find_api_model(const json& b, const chat_context& ctx) {
  if (!b.is_object())
    return invalid("", "the body must be a JSON object");
  if (!b.contains("model") || !b["model"].is_string())
    return invalid("model", "model is required and must be a string: persona/<id>, <provider>/<model> or an alias");
  auto model_name = b["model"].get<std::string>();
  auto found = ctx.models.find(model_name);
  if (found == ctx.models.end()) {
    std::string some;
    for (auto& [name, m] : ctx.models) {
      if (some.size() > 200)
        break;
      some += (some.empty() ? "" : ", ") + name;
    }
    return api_error{404,
                     "unknown model \"" + model_name + "\": use persona/<id>, <provider>/<model> or an alias (e.g. " +
                         some + "; GET /v1/models lists all)",
                     "invalid_request_error",
                     "model",
                     "model_not_found",
                     0};
  }
  auto& allowed = ctx.allowed_models;
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), model_name) == allowed.end()) {
    std::string list;
    for (auto& a : allowed)
      list += (list.empty() ? "" : ", ") + a;
    return api_error{403,
                     "this API key may not use model \"" + model_name + "\" (allowed: " + list + ")",
                     "permission_denied",
                     "model",
                     std::string{model_not_allowed},
                     0};
  }
  return &found->second;
}

std::variant<parsed_chat, api_error> parse_chat_request(const json& b, const chat_headers& headers,
                                                        const chat_context& ctx) {
  auto found = find_api_model(b, ctx);
  if (auto* e = std::get_if<api_error>(&found))
    return *e;
  parsed_chat out;
  out.model = std::get<const api_model*>(found);
  if (auto no = read_chat_body(b, out.call, out.flags))
    return invalid(no->param, no->message);
  if (auto no = refuse_for_chain(*out.model, ctx, out.call))
    return *no;
  out.call.priority = static_cast<std::uint8_t>(out.model->priority);
  if (auto no = read_headers(headers, ctx.call_timeout, out.call))
    return *no;
  out.call.chain = out.model->chain;
  out.call.stream = out.flags.stream;
  return out;
}

std::optional<chat_refusal> read_chat_body(const json& b, call_request& call, chat_flags& flags) {
  if (auto no = read_messages(b, call))
    return no;
  if (auto no = read_token_cap(b, "max_tokens", call.max_tokens))
    return no;
  if (auto no = read_token_cap(b, "max_completion_tokens", call.max_tokens))
    return no;
  if (b.contains("temperature") && !b["temperature"].is_null()) {
    if (!is_number_in(b["temperature"], 0, 2))
      return bad("temperature", "temperature must be a number from 0 to 2");
    call.temperature = b["temperature"].get<double>();
  }
  if (b.contains("stream") && !b["stream"].is_null()) {
    if (!b["stream"].is_boolean())
      return bad("stream", "stream must be true or false");
    flags.stream = b["stream"].get<bool>();
  }
  if (b.contains("stream_options") && !b["stream_options"].is_null()) {
    if (!b["stream_options"].is_object())
      return bad("stream_options", "stream_options must be an object: {include_usage?}");
    auto& u = b["stream_options"];
    if (u.contains("include_usage") && !u["include_usage"].is_null() && !u["include_usage"].is_boolean())
      return bad("stream_options.include_usage", "stream_options.include_usage must be true or false");
    flags.include_usage = u.contains("include_usage") && u["include_usage"] == true;
  }
  json params = json::object();
  for (auto& [k, v] : b.items()) {
    if (k == "model" || k == "messages" || k == "stream" || k == "stream_options" || k == "max_tokens" ||
        k == "temperature")
      continue;
    if (auto no = check_param(k, v))
      return no;
    params[k] = v; // unknown fields too: the rule of chat_params.hpp decides per provider
  }
  bool has_tools = params.contains("tools") && params["tools"].is_array() && !params["tools"].empty();
  if (params.contains("tool_choice") && !params["tool_choice"].is_null() && params["tool_choice"] != "none" &&
      !has_tools)
    return bad("tool_choice", "tool_choice needs tools: no tool is offered to choose from");
  if (flags.stream && params.contains("logprobs") && params["logprobs"] == true)
    return bad("logprobs", "logprobs is not available with stream: true in Squad (ask without streaming)");
  if (!params.empty())
    call.params_json = params.dump(-1, ' ', false, json::error_handler_t::replace);
  return std::nullopt;
}

} // namespace squad::server
