#include "runtime/mock/mock_tools.hpp"

#include <nlohmann/json.hpp>

namespace squad::mock {

using json = nlohmann::json;

namespace {

constexpr const char* fingerprint = "fp_mock";
constexpr const char* lead_text = "calling tools";

std::string arguments_for(const json& parameters) {
  json args = json::object();
  if (parameters.is_object() && parameters.contains("properties") && parameters["properties"].is_object())
    for (auto& [name, _] : parameters["properties"].items())
      args[name] = "mock-" + name;
  return args.dump();
}

// Whether the conversation's last message hands tool results back (the model then writes its answer).
bool ends_with_tool_results(const json& messages, bool anthropic) {
  if (!messages.is_array() || messages.empty())
    return false;
  auto& last = messages.back();
  if (!anthropic)
    return last.value("role", "") == "tool";
  if (last.value("role", "") != "user" || !last.contains("content") || !last["content"].is_array())
    return false;
  for (auto& block : last["content"])
    if (block.is_object() && block.value("type", "") == "tool_result")
      return true;
  return false;
}

std::string sse(const json& j) {
  return "data: " + j.dump() + "\n\n";
}
std::string sse(const char* event, const json& j) {
  return std::string("event: ") + event + "\ndata: " + j.dump() + "\n\n";
}

std::int64_t completion_tokens(const std::vector<mock_tool_call>& calls) {
  std::size_t chars = 0;
  for (auto& c : calls)
    chars += c.name.size() + c.arguments.size();
  return estimate_tokens(chars);
}

json openai_usage(const completion& c, std::int64_t out) {
  return {{"prompt_tokens", c.prompt_tokens}, {"completion_tokens", out}, {"total_tokens", c.prompt_tokens + out}};
}

json openai_chunk(const completion& c, json delta, json finish) {
  return {{"id", c.id},
          {"object", "chat.completion.chunk"},
          {"created", created_at},
          {"model", c.model},
          {"system_fingerprint", fingerprint},
          {"choices", json::array({{{"index", 0},
                                    {"delta", std::move(delta)},
                                    {"logprobs", nullptr},
                                    {"finish_reason", std::move(finish)}}})}};
}

} // namespace

std::vector<mock_tool_call> plan_tool_calls(const std::string& body, bool anthropic, std::int64_t seq) {
  auto j = json::parse(body, nullptr, false);
  std::vector<mock_tool_call> out;
  if (!j.is_object() || !j.contains("tools") || !j["tools"].is_array() || j["tools"].empty())
    return out;
  if (ends_with_tool_results(j.value("messages", json::array()), anthropic))
    return out;
  std::string only; // a tool the choice names
  bool one = false;
  if (j.contains("tool_choice")) {
    auto& c = j["tool_choice"];
    if (c == "none" || (c.is_object() && c.value("type", "") == "none"))
      return out;
    if (c.is_object() && c.contains("function") && c["function"].is_object())
      only = c["function"].value("name", "");
    if (c.is_object() && c.value("type", "") == "tool")
      only = c.value("name", "");
    one = c.is_object() && c.value("disable_parallel_tool_use", false);
  }
  one = one || (j.contains("parallel_tool_calls") && j["parallel_tool_calls"] == false);
  for (auto& t : j["tools"]) {
    std::string name = anthropic ? t.value("name", "") : t.contains("function") ? t["function"].value("name", "") : "";
    if (name.empty() || (!only.empty() && name != only))
      continue;
    const json& params =
        anthropic ? t.value("input_schema", json::object()) : t["function"].value("parameters", json::object());
    auto n = out.size() + 1;
    out.push_back({(anthropic ? "toolu_mock_" : "call_mock_") + std::to_string(seq) + "_" + std::to_string(n), name,
                   arguments_for(params)});
    if (one)
      break;
  }
  return out;
}

std::string openai_tool_json(const completion& c, const std::vector<mock_tool_call>& calls) {
  json tool_calls = json::array();
  for (auto& t : calls)
    tool_calls.push_back(
        {{"id", t.id}, {"type", "function"}, {"function", {{"name", t.name}, {"arguments", t.arguments}}}});
  json message = {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", std::move(tool_calls)}};
  json choice = {{"index", 0}, {"message", std::move(message)}, {"logprobs", nullptr}, {"finish_reason", "tool_calls"}};
  return json{{"id", c.id},
              {"object", "chat.completion"},
              {"created", created_at},
              {"model", c.model},
              {"system_fingerprint", fingerprint},
              {"choices", json::array({choice})},
              {"usage", openai_usage(c, completion_tokens(calls))}}
      .dump();
}

std::vector<sse_frame> openai_tool_sse(const completion& c, const std::vector<mock_tool_call>& calls,
                                       bool include_usage) {
  std::vector<sse_frame> out;
  out.push_back({sse(openai_chunk(c, {{"role", "assistant"}, {"content", nullptr}}, nullptr)), false});
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto& t = calls[i];
    json head = {{"index", i}, {"id", t.id}, {"type", "function"}, {"function", {{"name", t.name}, {"arguments", ""}}}};
    out.push_back({sse(openai_chunk(c, {{"tool_calls", json::array({head})}}, nullptr)), true});
    auto half = t.arguments.size() / 2;
    for (auto part : {t.arguments.substr(0, half), t.arguments.substr(half)}) {
      json frag = {{"index", i}, {"function", {{"arguments", part}}}};
      out.push_back({sse(openai_chunk(c, {{"tool_calls", json::array({frag})}}, nullptr)), true});
    }
  }
  out.push_back({sse(openai_chunk(c, json::object(), "tool_calls")), false});
  if (include_usage) {
    json usage = openai_chunk(c, json::object(), nullptr);
    usage["choices"] = json::array();
    usage["usage"] = openai_usage(c, completion_tokens(calls));
    out.push_back({sse(usage), false});
  }
  out.push_back({"data: [DONE]\n\n", false});
  return out;
}

std::string anthropic_tool_json(const completion& c, const std::vector<mock_tool_call>& calls) {
  json content = json::array({{{"type", "text"}, {"text", lead_text}}});
  for (auto& t : calls)
    content.push_back({{"type", "tool_use"}, {"id", t.id}, {"name", t.name}, {"input", json::parse(t.arguments)}});
  return json{{"id", c.id},
              {"type", "message"},
              {"role", "assistant"},
              {"model", c.model},
              {"content", std::move(content)},
              {"stop_reason", "tool_use"},
              {"stop_sequence", nullptr},
              {"usage", {{"input_tokens", c.prompt_tokens}, {"output_tokens", completion_tokens(calls)}}}}
      .dump();
}

std::vector<sse_frame> anthropic_tool_sse(const completion& c, const std::vector<mock_tool_call>& calls) {
  std::vector<sse_frame> out;
  json message = {{"id", c.id},
                  {"type", "message"},
                  {"role", "assistant"},
                  {"model", c.model},
                  {"content", json::array()},
                  {"stop_reason", nullptr},
                  {"stop_sequence", nullptr},
                  {"usage", {{"input_tokens", c.prompt_tokens}, {"output_tokens", 1}}}};
  out.push_back({sse("message_start", {{"type", "message_start"}, {"message", message}}), false});
  out.push_back(
      {sse("content_block_start",
           {{"type", "content_block_start"}, {"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}}),
       false});
  out.push_back(
      {sse("content_block_delta",
           {{"type", "content_block_delta"}, {"index", 0}, {"delta", {{"type", "text_delta"}, {"text", lead_text}}}}),
       true});
  out.push_back({sse("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}}), false});
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto& t = calls[i];
    auto index = i + 1;
    out.push_back(
        {sse("content_block_start",
             {{"type", "content_block_start"},
              {"index", index},
              {"content_block", {{"type", "tool_use"}, {"id", t.id}, {"name", t.name}, {"input", json::object()}}}}),
         false});
    auto half = t.arguments.size() / 2;
    for (auto part : {t.arguments.substr(0, half), t.arguments.substr(half)})
      out.push_back({sse("content_block_delta", {{"type", "content_block_delta"},
                                                 {"index", index},
                                                 {"delta", {{"type", "input_json_delta"}, {"partial_json", part}}}}),
                     true});
    out.push_back({sse("content_block_stop", {{"type", "content_block_stop"}, {"index", index}}), false});
  }
  out.push_back({sse("message_delta", {{"type", "message_delta"},
                                       {"delta", {{"stop_reason", "tool_use"}, {"stop_sequence", nullptr}}},
                                       {"usage", {{"output_tokens", completion_tokens(calls)}}}}),
                 false});
  out.push_back({sse("message_stop", {{"type", "message_stop"}}), false});
  return out;
}

} // namespace squad::mock
