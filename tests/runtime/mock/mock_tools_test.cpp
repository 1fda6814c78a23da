// The mock upstream's tool calling (which calls it makes, in which shape) and its record of requests.
#include "runtime/mock/mock_tools.hpp"
#include "runtime/mock/mock_upstream.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using json = nlohmann::json;
using namespace squad::mock;

namespace {

const json two_tools = json::parse(R"([
  {"type":"function","function":{"name":"a","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
  {"type":"function","function":{"name":"b"}}])");

std::vector<std::string> names(const std::vector<mock_tool_call>& calls) {
  std::vector<std::string> out;
  for (auto& c : calls)
    out.push_back(c.name);
  return out;
}

std::string openai_body(json extra, json messages = json::parse(R"([{"role":"user","content":"q"}])")) {
  json b = {{"model", "m"}, {"messages", std::move(messages)}, {"tools", two_tools}};
  b.update(extra);
  return b.dump();
}

} // namespace

TEST_CASE("mock tools: every offered tool is called, with mock arguments", "[mock]") {
  // Two tools: two parallel calls; arguments name each schema property.
  auto calls = plan_tool_calls(openai_body(json::object()), false, 3);
  REQUIRE(names(calls) == std::vector<std::string>{"a", "b"});
  CHECK(calls[0].id == "call_mock_3_1");
  CHECK(json::parse(calls[0].arguments) == json::parse(R"({"city":"mock-city"})"));
  CHECK(json::parse(calls[1].arguments) == json::object());
}

TEST_CASE("mock tools: tool_choice, parallel_tool_calls and tool results decide", "[mock]") {
  // none: text; a named function: only it; parallel off: the first; a tool result last: text.
  CHECK(plan_tool_calls(openai_body({{"tool_choice", "none"}}), false, 1).empty());
  CHECK(names(plan_tool_calls(openai_body({{"tool_choice", {{"type", "function"}, {"function", {{"name", "b"}}}}}}),
                              false, 1)) == std::vector<std::string>{"b"});
  CHECK(names(plan_tool_calls(openai_body({{"parallel_tool_calls", false}}), false, 1)) ==
        std::vector<std::string>{"a"});
  auto answered = json::parse(R"([{"role":"user","content":"q"},{"role":"tool","tool_call_id":"x","content":"r"}])");
  CHECK(plan_tool_calls(openai_body(json::object(), answered), false, 1).empty());
  auto anthropic = json{{"model", "m"},
                        {"max_tokens", 5},
                        {"tools", json::parse(R"([{"name":"a","input_schema":{"type":"object"}},{"name":"b"}])")},
                        {"tool_choice", {{"type", "auto"}, {"disable_parallel_tool_use", true}}},
                        {"messages", json::parse(R"([{"role":"user","content":"q"}])")}};
  CHECK(names(plan_tool_calls(anthropic.dump(), true, 1)) == std::vector<std::string>{"a"});
  anthropic["messages"].push_back(
      json::parse(R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"r"}]})"));
  CHECK(plan_tool_calls(anthropic.dump(), true, 1).empty());
}

TEST_CASE("mock upstream: answers with tool calls and records what it received", "[mock]") {
  // The whole OpenAI answer holds the calls; GET /admin/requests returns the body as sent; reset clears it.
  mock_upstream_config cfg;
  cfg.name = "t";
  cfg.limits = {100, squad::millis{1000}, 0, 0};
  mock_upstream up(cfg);
  auto body = openai_body({{"seed", 5}});
  auto r = up.handle({"POST", "/v1/chat/completions", body, "", ""}, squad::steady_time{});
  REQUIRE(r.status == 200);
  auto j = json::parse(r.body);
  CHECK(j["choices"][0]["finish_reason"] == "tool_calls");
  CHECK(j["choices"][0]["message"]["tool_calls"].size() == 2);
  CHECK(j["choices"][0]["message"]["content"].is_null());
  auto rec = json::parse(up.handle({"GET", "/admin/requests", "", "", ""}, squad::steady_time{}).body);
  REQUIRE(rec["requests"].size() == 1);
  CHECK(rec["requests"][0]["path"] == "/v1/chat/completions");
  CHECK(rec["requests"][0]["body"] == json::parse(body));
  up.handle({"POST", "/admin/reset", "", "", ""}, squad::steady_time{});
  CHECK(json::parse(up.handle({"GET", "/admin/requests", "", "", ""}, squad::steady_time{}).body)["requests"].empty());
}

TEST_CASE("mock upstream: streamed tool calls come in fragments, both shapes", "[mock]") {
  // OpenAI: id and name first, arguments in two pieces; Anthropic: tool_use blocks after a text block.
  completion c;
  c.id = "x";
  c.model = "m";
  std::vector<mock_tool_call> calls{{"c1", "a", R"({"city":"mock-city"})"}};
  auto o = openai_tool_sse(c, calls, true);
  std::string all;
  for (auto& f : o)
    all += f.data;
  CHECK(all.find(R"("id":"c1")") != std::string::npos);
  CHECK(all.find(R"("finish_reason":"tool_calls")") != std::string::npos);
  CHECK(o.back().data == "data: [DONE]\n\n");
  auto a = anthropic_tool_sse(c, calls);
  std::string text;
  for (auto& f : a)
    text += f.data;
  CHECK(text.find(R"("type":"input_json_delta")") != std::string::npos);
  CHECK(text.find(R"("stop_reason":"tool_use")") != std::string::npos);
}
