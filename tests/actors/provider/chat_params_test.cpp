// chat_params: what each provider kind does with the OpenAI chat parameters (bodies and refusals), and the
// reassembly of streamed tool calls (tool_call_assembler and the adapters' stream accumulators).
#include "actors/provider/adapters.hpp"
#include "actors/provider/chat_params.hpp"
#include "actors/provider/reply_assembler.hpp"
#include "actors/provider/tool_calls.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>

using nlohmann::json;
using squad::call_request;
using squad::chat_message;
using squad::outcome;
using squad::provider_family;
using squad::refuse_params;
using squad::sse_event;

namespace {

call_request with_params(std::string params) {
  call_request req;
  req.messages = {{"user", "hi"}};
  req.params_json = std::move(params);
  return req;
}

std::string param_refused(provider_family f, const std::string& params) {
  auto no = refuse_params(f, with_params(params));
  return no ? no->param : "";
}

sse_event ev(std::string data, std::string name = "") {
  return {std::move(name), std::move(data), ""};
}

const char* weather_tool =
    R"([{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])";

} // namespace

TEST_CASE("openai body: a call that sets nothing sends only model, messages and stream") {
  // No max_tokens, no temperature: the upstream's own defaults apply.
  call_request req;
  req.messages = {{"user", "hi"}};
  auto body = json::parse(squad::openai_request_body(req, "gpt-x", false));
  CHECK(body == json::parse(R"({"model":"gpt-x","messages":[{"role":"user","content":"hi"}],"stream":false})"));
}

TEST_CASE("openai body: every parameter verbatim, unknown ones too, max_completion_tokens under its own name") {
  // The gateway keeps what the client sent; the adapter only writes it out, with the governed token cap.
  auto req = with_params(R"({"seed":3,"stop":["x"],"tools":)" + std::string{weather_tool} +
                         R"(,"vendor_thing":{"a":1},"max_completion_tokens":99})");
  req.max_tokens = 50; // lowered by governance from 99
  req.temperature = 0;
  auto body = json::parse(squad::openai_request_body(req, "gpt-x", true));
  CHECK(body["seed"] == 3);
  CHECK(body["stop"] == json::parse(R"(["x"])"));
  CHECK(body["tools"] == json::parse(weather_tool));
  CHECK(body["vendor_thing"] == json::parse(R"({"a":1})"));
  CHECK(body["max_completion_tokens"] == 50);
  CHECK_FALSE(body.contains("max_tokens"));
  CHECK(body["temperature"] == 0);
  CHECK(body["stream_options"]["include_usage"] == true);
}

TEST_CASE("openai body: assistant tool_calls and tool_call_id go upstream intact") {
  // An assistant turn that only called tools has content null, as OpenAI sends it.
  call_request req;
  chat_message a{"assistant", "", R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}])", "",
                 ""};
  chat_message t{"tool", "42", "", "c1", ""};
  req.messages = {{"user", "q"}, a, t};
  auto body = json::parse(squad::openai_request_body(req, "m", false));
  CHECK(body["messages"][1]["content"].is_null());
  CHECK(body["messages"][1]["tool_calls"][0]["id"] == "c1");
  CHECK(body["messages"][2] == json::parse(R"({"role":"tool","content":"42","tool_call_id":"c1"})"));
}

TEST_CASE("anthropic body: tools, tool_choice, stop, top_p and user translated") {
  // OpenAI's names become Anthropic's; nothing is sent under a name the Messages API does not know.
  auto req =
      with_params(R"({"tools":)" + std::string{weather_tool} +
                  R"(,"tool_choice":"required","parallel_tool_calls":false,"stop":"END","top_p":0.5,"user":"u1"})");
  auto body = json::parse(squad::anthropic_request_body(req, "claude", false));
  CHECK(
      body["tools"] ==
      json::parse(
          R"([{"name":"get_weather","description":"d","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}])"));
  CHECK(body["tool_choice"] == json::parse(R"({"type":"any","disable_parallel_tool_use":true})"));
  CHECK(body["stop_sequences"] == json::parse(R"(["END"])"));
  CHECK(body["top_p"] == 0.5);
  CHECK(body["metadata"] == json::parse(R"({"user_id":"u1"})"));
  for (auto* raw : {"stop", "user", "parallel_tool_calls"})
    CHECK_FALSE(body.contains(raw));
  CHECK(body["max_tokens"] == squad::anthropic_default_max_tokens);
  CHECK_FALSE(body.contains("temperature"));
}

TEST_CASE("anthropic body: tool_choice none, auto and a named function") {
  // Each OpenAI form has its Anthropic counterpart.
  auto choice = [](const std::string& c) {
    auto req = with_params(R"({"tools":)" + std::string{weather_tool} + R"(,"tool_choice":)" + c + "}");
    return json::parse(squad::anthropic_request_body(req, "m", false))["tool_choice"];
  };
  CHECK(choice(R"("none")") == json::parse(R"({"type":"none"})"));
  CHECK(choice(R"("auto")") == json::parse(R"({"type":"auto"})"));
  CHECK(choice(R"({"type":"function","function":{"name":"get_weather"}})") ==
        json::parse(R"({"type":"tool","name":"get_weather"})"));
}

TEST_CASE("anthropic body: tool calls become tool_use blocks, tool messages one user turn of tool_result blocks") {
  // Parallel results must come back in a single user turn; a user text after them joins that turn.
  call_request req;
  req.messages = {{"user", "q"},
                  {"assistant", "let me look",
                   R"([{"id":"t1","type":"function","function":{"name":"a","arguments":"{\"x\":1}"}},)"
                   R"({"id":"t2","type":"function","function":{"name":"b","arguments":""}}])",
                   "", ""},
                  {"tool", "r1", "", "t1", ""},
                  {"tool", "r2", "", "t2", ""},
                  {"user", "and?"}};
  auto body = json::parse(squad::anthropic_request_body(req, "m", false));
  REQUIRE(body["messages"].size() == 3);
  CHECK(body["messages"][1] == json::parse(R"({"role":"assistant","content":[
      {"type":"text","text":"let me look"},
      {"type":"tool_use","id":"t1","name":"a","input":{"x":1}},
      {"type":"tool_use","id":"t2","name":"b","input":{}}]})"));
  CHECK(body["messages"][2] == json::parse(R"({"role":"user","content":[
      {"type":"tool_result","tool_use_id":"t1","content":"r1"},
      {"type":"tool_result","tool_use_id":"t2","content":"r2"},
      {"type":"text","text":"and?"}]})"));
}

TEST_CASE("refuse_params: openai takes everything") {
  // Compatible upstreams get every field as sent, unknown ones included.
  CHECK(param_refused(provider_family::openai, R"({"logprobs":true,"top_logprobs":2,"n":1,"whatever":[1]})").empty());
}

TEST_CASE("refuse_params: anthropic refuses what the Messages API cannot do, naming it") {
  // Neutral values pass; anything that would be silently ignored is a refusal.
  CHECK(param_refused(provider_family::anthropic, R"({"logprobs":true})") == "logprobs");
  CHECK(param_refused(provider_family::anthropic, R"({"seed":1})") == "seed");
  CHECK(param_refused(provider_family::anthropic, R"({"frequency_penalty":0.5})") == "frequency_penalty");
  CHECK(param_refused(provider_family::anthropic, R"({"response_format":{"type":"json_object"}})") ==
        "response_format");
  CHECK(param_refused(provider_family::anthropic, R"({"top_k":3})") == "top_k");
  CHECK(param_refused(provider_family::anthropic, R"({"metadata":{"team":"a"}})") == "metadata");
  CHECK(param_refused(provider_family::anthropic,
                      R"({"logprobs":false,"n":1,"frequency_penalty":0,"response_format":{"type":"text"},)"
                      R"("stop":["a"],"top_p":0.1,"user":"u","metadata":{"user_id":"u"},"tool_choice":"auto"})")
            .empty());
  auto hot = with_params("");
  hot.temperature = 1.5;
  REQUIRE(refuse_params(provider_family::anthropic, hot));
  CHECK(refuse_params(provider_family::anthropic, hot)->param == "temperature");
}

TEST_CASE("refuse_params: anthropic needs tool call arguments that are a JSON object") {
  // tool_use input is an object; text that is not one cannot be translated.
  call_request req;
  req.messages = {
      {"assistant", "", R"([{"id":"t","type":"function","function":{"name":"f","arguments":"[1"}}])", "", ""}};
  auto no = refuse_params(provider_family::anthropic, req);
  REQUIRE(no);
  CHECK(no->param == "messages[0].tool_calls[0].function.arguments");
  call_request named;
  named.messages = {{"user", "hi", "", "", "alice"}}; // a participant name has no place in the Messages API
  REQUIRE(refuse_params(provider_family::anthropic, named));
  CHECK(refuse_params(provider_family::anthropic, named)->param == "messages[0].name");
}

TEST_CASE("refuse_params: sim accepts sampling knobs and refuses tools, formats and stop") {
  // A simulator has no sampling; it cannot call tools or follow a format.
  CHECK(param_refused(provider_family::sim, R"({"seed":1,"top_p":0.2,"user":"u","presence_penalty":1})").empty());
  CHECK(param_refused(provider_family::sim, std::string{R"({"tools":)"} + weather_tool + "}") == "tools");
  CHECK(param_refused(provider_family::sim, R"({"response_format":{"type":"json_object"}})") == "response_format");
  CHECK(param_refused(provider_family::sim, R"({"stop":"x"})") == "stop");
  CHECK(param_refused(provider_family::sim, R"({"tools":[],"tool_choice":"none"})").empty());
}

TEST_CASE("tool_call_assembler: fragments by index become whole calls") {
  // Two parallel calls, their arguments interleaved in pieces.
  squad::tool_call_assembler a;
  CHECK(a.take_fragments().empty());
  CHECK(a.add(0, "c0", "f", ""));
  CHECK(a.add(1, "c1", "g", "{\"b\""));
  CHECK(a.add(0, "", "", "{\"a\":1}"));
  CHECK(a.add(1, "", "", ":2}"));
  auto frags = json::parse(a.take_fragments());
  REQUIRE(frags.size() == 4);
  CHECK(frags[0] == json::parse(R"({"index":0,"id":"c0","type":"function","function":{"name":"f","arguments":""}})"));
  CHECK(frags[2] == json::parse(R"({"index":0,"function":{"arguments":"{\"a\":1}"}})"));
  CHECK(a.take_fragments().empty()); // taken once
  CHECK(json::parse(a.calls_json()) == json::parse(R"([
      {"id":"c0","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
      {"id":"c1","type":"function","function":{"name":"g","arguments":"{\"b\":2}"}}])"));
  CHECK_FALSE(a.add(squad::tool_call_assembler::max_calls, "x", "y", ""));
}

TEST_CASE("openai stream: tool_calls deltas are passed on and reassembled") {
  // What OpenAI streams for a tool call: id and name first, then argument fragments; finish_reason tool_calls.
  squad::openai::stream_accumulator acc;
  acc.on_event(
      ev(R"({"system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":null,)"
         R"("tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]})"));
  auto first = json::parse(acc.take_tool_deltas());
  CHECK(first[0]["id"] == "call_1");
  acc.on_event(
      ev(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":"}}]}}]})"));
  acc.on_event(ev(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]})"));
  CHECK(json::parse(acc.take_tool_deltas()).size() == 2);
  acc.on_event(ev(R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"));
  acc.on_event(ev("[DONE]"));
  auto r = acc.finish();
  REQUIRE(r.result == outcome::ok);
  CHECK(r.finish_reason == "tool_calls");
  CHECK(r.system_fingerprint == "fp_1");
  CHECK(json::parse(r.tool_calls_json) ==
        json::parse(R"([{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"q\":1}"}}])"));
}

TEST_CASE("openai stream: a tool_calls entry without an index is a bad response") {
  // Reassembly is by index; without one the calls cannot be put together.
  squad::openai::stream_accumulator acc;
  acc.on_event(ev(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c","function":{"name":"f"}}]}}]})"));
  CHECK(acc.done());
  CHECK(acc.finish().result == outcome::bad_response);
}

TEST_CASE("anthropic stream: tool_use blocks and input_json_delta become OpenAI tool-call deltas") {
  // Block indexes (text at 0, tools at 1 and 2) map to tool-call indexes 0 and 1.
  squad::anthropic::stream_accumulator acc;
  acc.on_event(ev(R"({"type":"message_start","message":{"usage":{"input_tokens":5}}})"));
  CHECK(acc.on_event(ev(R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}})")) ==
        "ok");
  acc.on_event(ev(
      R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"tu1","name":"a","input":{}}})"));
  acc.on_event(ev(
      R"({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"tu2","name":"b","input":{}}})"));
  acc.on_event(
      ev(R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"y\":"}})"));
  acc.on_event(
      ev(R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}})"));
  acc.on_event(
      ev(R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"2}"}})"));
  auto frags = json::parse(acc.take_tool_deltas());
  REQUIRE(frags.size() == 5);
  CHECK(frags[1] == json::parse(R"({"index":1,"id":"tu2","type":"function","function":{"name":"b","arguments":""}})"));
  CHECK(frags[2] == json::parse(R"({"index":1,"function":{"arguments":"{\"y\":"}})"));
  acc.on_event(ev(R"({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}})"));
  acc.on_event(ev(R"({"type":"message_stop"})"));
  auto r = acc.finish();
  REQUIRE(r.result == outcome::ok);
  CHECK(r.finish_reason == "tool_calls");
  CHECK(r.text == "ok");
  CHECK(json::parse(r.tool_calls_json) == json::parse(R"([
      {"id":"tu1","type":"function","function":{"name":"a","arguments":"{}"}},
      {"id":"tu2","type":"function","function":{"name":"b","arguments":"{\"y\":2}"}}])"));
}

TEST_CASE("whole replies: tool calls from both APIs in OpenAI form") {
  // OpenAI's tool_calls pass verbatim; Anthropic's tool_use input becomes the arguments text.
  auto o = squad::openai::parse_response(
      R"({"system_fingerprint":"fp","choices":[{"index":0,"message":{"role":"assistant","content":null,)"
      R"("tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},)"
      R"("logprobs":{"content":[]},"finish_reason":"tool_calls"}]})");
  REQUIRE(o.result == outcome::ok);
  CHECK(json::parse(o.tool_calls_json)[0]["id"] == "c");
  CHECK(o.text.empty());
  CHECK(o.system_fingerprint == "fp");
  CHECK(json::parse(o.logprobs_json) == json::parse(R"({"content":[]})"));
  auto a = squad::anthropic::parse_response(
      R"({"content":[{"type":"text","text":"hm"},{"type":"tool_use","id":"tu","name":"f","input":{"k":"v"}}],)"
      R"("stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}})");
  REQUIRE(a.result == outcome::ok);
  CHECK(a.text == "hm");
  CHECK(a.finish_reason == "tool_calls");
  CHECK(json::parse(a.tool_calls_json) ==
        json::parse(R"([{"id":"tu","type":"function","function":{"name":"f","arguments":"{\"k\":\"v\"}"}}])"));
}

TEST_CASE("reply_assembler: tool deltas split across network pieces come out once each") {
  // Bytes arrive anywhere; each fragment is handed on exactly once, and a failed stream keeps no calls.
  squad::reply_assembler ra(squad::api_kind::openai, "");
  ra.on_head(200, {{"content-type", "text/event-stream"}}, std::chrono::system_clock::time_point{});
  std::string sse =
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\","
      "\"arguments\":\"{\"}}]}}]}\n\n"
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"}\"}}]}}]}\n\n";
  std::size_t fragments = 0;
  for (std::size_t i = 0; i < sse.size(); i += 7) {
    ra.on_data(std::string_view{sse}.substr(i, 7));
    if (auto t = ra.take_tool_deltas(); !t.empty())
      fragments += json::parse(t).size();
  }
  CHECK(fragments == 2);
  auto cut = ra.finish(squad::net::http_failure::closed_early, "closed");
  CHECK(cut.result == outcome::stream_cut);
  CHECK(cut.tool_calls_json.empty());
}

TEST_CASE("refuse_params: the rows of docs/api.md's parameter table the other cases leave out") {
  using f = provider_family;
  // store: openai as sent, anthropic refused, sim no effect.
  CHECK(param_refused(f::openai, R"({"store":true})").empty());
  CHECK(param_refused(f::anthropic, R"({"store":true})") == "store");
  CHECK(param_refused(f::sim, R"({"store":true})").empty());
  // response_format json_schema: openai as sent; anthropic and sim refused.
  auto schema = std::string{R"({"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}})"};
  CHECK(param_refused(f::openai, schema).empty());
  CHECK(param_refused(f::anthropic, schema) == "response_format");
  CHECK(param_refused(f::sim, schema) == "response_format");
  // logit_bias: anthropic refused unless {}, sim no effect.
  CHECK(param_refused(f::anthropic, R"({"logit_bias":{"50256":-100}})") == "logit_bias");
  CHECK(param_refused(f::anthropic, R"({"logit_bias":{}})").empty());
  CHECK(param_refused(f::sim, R"({"logit_bias":{"50256":-100}})").empty());
  // top_logprobs: anthropic and sim refused.
  CHECK(param_refused(f::anthropic, R"({"top_logprobs":2})") == "top_logprobs");
  CHECK(param_refused(f::sim, R"({"top_logprobs":2})") == "top_logprobs");
  // n: 1 everywhere.
  CHECK(param_refused(f::anthropic, R"({"n":1})").empty());
  CHECK(param_refused(f::sim, R"({"n":1})").empty());
}
