#include "actors/provider/chat_params.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

namespace squad {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

std::string dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// params_json as an object (the gateway checked it; anything else reads as no parameters).
ordered_json params_of(const call_request& req) {
  if (req.params_json.empty())
    return ordered_json::object();
  auto j = ordered_json::parse(req.params_json, nullptr, false);
  return j.is_object() ? j : ordered_json::object();
}

// A value that asks the upstream for nothing: accepted by every provider.
bool neutral(const std::string& key, const ordered_json& v) {
  if (v.is_null())
    return true;
  if (key == "n")
    return v.is_number_integer() && v.get<std::int64_t>() == 1;
  if (key == "logprobs")
    return v.is_boolean() && !v.get<bool>();
  if (key == "frequency_penalty" || key == "presence_penalty")
    return v.is_number() && v.get<double>() == 0;
  if (key == "logit_bias" || key == "metadata")
    return v.is_object() && v.empty();
  if (key == "response_format")
    return v.is_object() && v.value("type", "") == "text";
  if (key == "tools" || key == "stop")
    return v.is_array() && v.empty();
  if (key == "parallel_tool_calls")
    return v.is_boolean() && v.get<bool>();
  return false;
}

param_refusal cannot(provider_family f, const std::string& param, const std::string& why) {
  return {param, std::string{to_string(f)} + " providers cannot honour " + param + why};
}

bool is_one_of(const std::string& key, std::initializer_list<const char*> names) {
  for (auto* n : names)
    if (key == n)
      return true;
  return false;
}

std::optional<param_refusal> refuse_anthropic(const call_request& req, const ordered_json& params) {
  constexpr auto f = provider_family::anthropic;
  if (req.temperature > 1)
    return cannot(f, "temperature", " above 1 (Anthropic takes 0 to 1)");
  for (auto& [key, v] : params.items()) {
    if (neutral(key, v) || is_one_of(key, {"tools", "tool_choice", "parallel_tool_calls", "stop", "top_p", "user",
                                           "max_completion_tokens"}))
      continue;
    if (key == "metadata" && v.is_object() && v.size() == 1 && v.contains("user_id"))
      continue; // Anthropic's own metadata field
    if (key == "response_format")
      return cannot(f, key,
                    " " + v.value("type", std::string{"?"}) +
                        " (Anthropic has no JSON mode: describe the shape in the prompt, or use a tool)");
    if (key == "n")
      return cannot(f, key, " above 1 (one answer per call)");
    return cannot(f, key, " (the Messages API has no such parameter)");
  }
  for (std::size_t i = 0; i < req.messages.size(); ++i) {
    auto& m = req.messages[i];
    if (!m.name.empty()) {
      auto p = "messages[" + std::to_string(i) + "].name";
      return param_refusal{p,
                           "anthropic providers cannot honour " + p + " (the Messages API has no participant names)"};
    }
    if (m.tool_calls_json.empty())
      continue;
    auto calls = json::parse(m.tool_calls_json, nullptr, false);
    for (std::size_t k = 0; calls.is_array() && k < calls.size(); ++k) {
      std::string args = calls[k].contains("function") ? calls[k]["function"].value("arguments", "") : "";
      auto input = json::parse(args.empty() ? "{}" : args, nullptr, false);
      if (!input.is_object()) {
        auto p = "messages[" + std::to_string(i) + "].tool_calls[" + std::to_string(k) + "].function.arguments";
        return param_refusal{p, "anthropic providers need " + p + " to be a JSON object (tool_use input)"};
      }
    }
  }
  return std::nullopt;
}

std::optional<param_refusal> refuse_sim(const ordered_json& params) {
  constexpr auto f = provider_family::sim;
  for (auto& [key, v] : params.items()) {
    // A simulator has no sampling: these are accepted and have no effect (documented in docs/api.md).
    if (neutral(key, v) ||
        is_one_of(key, {"top_p", "seed", "frequency_penalty", "presence_penalty", "logit_bias", "user", "metadata",
                        "store", "parallel_tool_calls", "max_completion_tokens"}))
      continue;
    if (key == "tool_choice" && v.is_string() && (v == "none" || v == "auto"))
      continue;
    return cannot(f, key, " (simulated providers answer with generated text only)");
  }
  return std::nullopt;
}

// One message in OpenAI form.
ordered_json openai_message(const chat_message& m) {
  ordered_json out = {{"role", m.role}};
  bool calls = !m.tool_calls_json.empty();
  if (calls && m.content.empty())
    out["content"] = nullptr; // what OpenAI itself sends for an assistant turn that only called tools
  else
    out["content"] = m.content;
  if (!m.name.empty())
    out["name"] = m.name;
  if (calls)
    out["tool_calls"] = ordered_json::parse(m.tool_calls_json, nullptr, false);
  if (!m.tool_call_id.empty())
    out["tool_call_id"] = m.tool_call_id;
  return out;
}

// Anthropic's tool_choice from OpenAI's; `parallel` false adds disable_parallel_tool_use.
ordered_json anthropic_tool_choice(const ordered_json* choice, bool parallel) {
  ordered_json out = {{"type", "auto"}};
  if (choice && choice->is_string()) {
    if (*choice == "required")
      out["type"] = "any";
    else if (*choice == "none")
      out["type"] = "none";
  } else if (choice && choice->is_object() && choice->contains("function")) {
    out = {{"type", "tool"}, {"name", (*choice)["function"].value("name", "")}};
  }
  if (!parallel && out["type"] != "none")
    out["disable_parallel_tool_use"] = true;
  return out;
}

ordered_json anthropic_tools(const ordered_json& tools) {
  ordered_json out = ordered_json::array();
  for (auto& t : tools) {
    auto& fn = t["function"];
    ordered_json a = {{"name", fn.value("name", "")}};
    if (fn.contains("description") && fn["description"].is_string())
      a["description"] = fn["description"];
    a["input_schema"] = fn.contains("parameters") && fn["parameters"].is_object()
                            ? fn["parameters"]
                            : ordered_json{{"type", "object"}, {"properties", ordered_json::object()}};
    out.push_back(std::move(a));
  }
  return out;
}

// One Anthropic turn: a role and its content blocks.
struct turn {
  std::string role;
  ordered_json blocks = ordered_json::array();
};

// Content as Anthropic wants it: a plain string when the turn is all text (joined by blank lines, as Squad always
// merged turns), else the blocks.
ordered_json turn_content(const turn& t) {
  std::string text;
  for (auto& b : t.blocks) {
    if (b["type"] != "text")
      return t.blocks;
    text += (text.empty() ? "" : "\n\n") + b["text"].get<std::string>();
  }
  return text;
}

} // namespace

provider_family family_of(const std::string& kind) {
  return kind == "anthropic" ? provider_family::anthropic
         : kind == "sim"     ? provider_family::sim
                             : provider_family::openai;
}

const char* to_string(provider_family f) {
  switch (f) {
  case provider_family::openai:
    return "openai";
  case provider_family::anthropic:
    return "anthropic";
  case provider_family::sim:
    return "sim";
  }
  return "openai";
}

std::optional<param_refusal> refuse_params(provider_family family, const call_request& req) {
  switch (family) {
  case provider_family::openai:
    return std::nullopt; // everything passes through: nothing to parse
  case provider_family::anthropic:
    return refuse_anthropic(req, params_of(req));
  case provider_family::sim:
    return req.params_json.empty() ? std::nullopt : refuse_sim(params_of(req));
  }
  return std::nullopt;
}

std::string openai_request_body(const call_request& req, const std::string& model_id, bool stream) {
  ordered_json body = {{"model", model_id}, {"messages", ordered_json::array()}};
  for (const auto& m : req.messages)
    body["messages"].push_back(openai_message(m));
  // The parameters' members are spliced in as the gateway wrote them: parsing and dumping them again cost several
  // times the rest of the body (measured: 38 us against 5 us with two tools). Only max_completion_tokens needs
  // the parse, as its value travels in req.max_tokens (governance may lower it).
  std::string extra;
  bool completion_name = false;
  const auto& pj = req.params_json;
  if (pj.find("\"max_completion_tokens\"") != std::string::npos) {
    auto params = params_of(req);
    completion_name = params.erase("max_completion_tokens") > 0;
    extra = dump(params);
    extra = extra.substr(1, extra.size() - 2);
  } else if (pj.size() > 2 && pj.front() == '{' && pj.back() == '}') {
    extra = pj.substr(1, pj.size() - 2);
  }
  if (req.max_tokens > 0)
    body[completion_name ? "max_completion_tokens" : "max_tokens"] = req.max_tokens;
  if (req.temperature >= 0) // below 0: not set
    body["temperature"] = req.temperature;
  body["stream"] = stream;
  if (stream)
    body["stream_options"] = {{"include_usage", true}};
  auto out = dump(body);
  if (!extra.empty()) { // the gateway never puts Squad's own fields in params_json: no key can repeat
    out.pop_back();
    out += ',';
    out += extra;
    out += '}';
  }
  return out;
}

std::string anthropic_request_body(const call_request& req, const std::string& model_id, bool stream) {
  std::string system;
  std::vector<turn> turns;
  auto add = [&turns](const std::string& role, ordered_json block) {
    if (turns.empty() || turns.back().role != role)
      turns.push_back({role});
    turns.back().blocks.push_back(std::move(block));
  };
  for (const auto& m : req.messages) {
    if (m.role == "system") {
      system += (system.empty() ? "" : "\n\n") + m.content;
      continue;
    }
    if (m.role == "tool") { // results of the assistant's tool calls go back in a user turn
      add("user", {{"type", "tool_result"}, {"tool_use_id", m.tool_call_id}, {"content", m.content}});
      continue;
    }
    std::string role = m.role == "assistant" ? "assistant" : "user";
    if (!m.content.empty() || m.tool_calls_json.empty())
      add(role, {{"type", "text"}, {"text", m.content}});
    auto calls = m.tool_calls_json.empty() ? json::array() : json::parse(m.tool_calls_json, nullptr, false);
    for (auto& c : calls) {
      std::string args = c.contains("function") ? c["function"].value("arguments", "") : "";
      auto input = ordered_json::parse(args.empty() ? "{}" : args, nullptr, false);
      add(role, {{"type", "tool_use"},
                 {"id", c.value("id", "")},
                 {"name", c.contains("function") ? c["function"].value("name", "") : ""},
                 {"input", input.is_object() ? input : ordered_json::object()}});
    }
  }
  auto params = params_of(req);
  ordered_json body = {{"model", model_id},
                       {"max_tokens", req.max_tokens > 0 ? req.max_tokens : anthropic_default_max_tokens}};
  if (!system.empty())
    body["system"] = system;
  body["messages"] = ordered_json::array();
  for (const auto& t : turns)
    body["messages"].push_back({{"role", t.role}, {"content", turn_content(t)}});
  if (req.temperature >= 0) // below 0: not set
    body["temperature"] = req.temperature;
  if (params.contains("top_p") && !params["top_p"].is_null())
    body["top_p"] = params["top_p"];
  if (params.contains("stop") && params["stop"].is_string())
    body["stop_sequences"] = ordered_json::array({params["stop"]});
  else if (params.contains("stop") && params["stop"].is_array() && !params["stop"].empty())
    body["stop_sequences"] = params["stop"];
  bool has_tools = params.contains("tools") && params["tools"].is_array() && !params["tools"].empty();
  if (has_tools) {
    body["tools"] = anthropic_tools(params["tools"]);
    bool parallel = !(params.contains("parallel_tool_calls") && params["parallel_tool_calls"] == false);
    auto* choice =
        params.contains("tool_choice") && !params["tool_choice"].is_null() ? &params["tool_choice"] : nullptr;
    if (choice || !parallel)
      body["tool_choice"] = anthropic_tool_choice(choice, parallel);
  }
  if (params.contains("user") && params["user"].is_string())
    body["metadata"] = {{"user_id", params["user"]}};
  else if (params.contains("metadata") && params["metadata"].is_object() && params["metadata"].contains("user_id"))
    body["metadata"] = params["metadata"];
  body["stream"] = stream;
  return dump(body);
}

} // namespace squad
