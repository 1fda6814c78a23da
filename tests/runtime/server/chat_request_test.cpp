// read_chat_body: what the gateway takes from a chat body, what it refuses (naming the field), and that it
// injects nothing; plus the API's random ids.
#include "runtime/server/api_ids.hpp"
#include "runtime/server/chat_request.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

using nlohmann::json;
using squad::call_request;
using squad::server::chat_flags;
using squad::server::read_chat_body;

namespace {

// The refused param, or "" when the body is accepted.
std::string refused(const std::string& body) {
  call_request call;
  chat_flags flags;
  auto no = read_chat_body(json::parse(body), call, flags);
  return no ? no->param : "";
}

} // namespace

TEST_CASE("chat body: nothing set, nothing injected") {
  // No max_tokens, no temperature, no parameters: the upstream decides.
  call_request call;
  chat_flags flags;
  REQUIRE_FALSE(
      read_chat_body(json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"), call, flags));
  CHECK(call.max_tokens == 0);
  CHECK(call.temperature == squad::temperature_unset);
  CHECK(call.params_json.empty());
  CHECK_FALSE(flags.stream);
}

TEST_CASE("chat body: parameters are kept verbatim, Squad's own fields apart") {
  // model, messages, stream, stream_options, max_tokens and temperature are read; every other field travels.
  call_request call;
  chat_flags flags;
  REQUIRE_FALSE(read_chat_body(json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}],
      "stream":true,"stream_options":{"include_usage":true},"max_tokens":7,"temperature":0.2,
      "seed":1,"stop":"x","vendor":{"a":1},"tools":[{"type":"function","function":{"name":"f"}}]})"),
                               call, flags));
  CHECK(call.max_tokens == 7);
  CHECK(call.temperature == 0.2);
  CHECK(flags.stream);
  CHECK(flags.include_usage);
  CHECK(json::parse(call.params_json) ==
        json::parse(R"({"seed":1,"stop":"x","vendor":{"a":1},"tools":[{"type":"function","function":{"name":"f"}}]})"));
}

TEST_CASE("chat body: tool messages keep their ids, assistant turns their tool_calls") {
  // The round trip of a tool loop.
  call_request call;
  chat_flags flags;
  REQUIRE_FALSE(read_chat_body(json::parse(R"({"messages":[
      {"role":"user","content":"q"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
      {"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"42"}]}]})"),
                               call, flags));
  REQUIRE(call.messages.size() == 3);
  CHECK(json::parse(call.messages[1].tool_calls_json)[0]["id"] == "c1");
  CHECK(call.messages[1].content.empty());
  CHECK(call.messages[2].tool_call_id == "c1");
  CHECK(call.messages[2].content == "42");
}

TEST_CASE("chat body: bad fields are refused by name") {
  // Each refusal names the field as OpenAI's `param` would.
  auto msgs = std::string{R"("messages":[{"role":"user","content":"x"}])"};
  CHECK(refused(R"({"messages":[{"role":"tool","content":"r"}]})") == "messages[0].tool_call_id");
  CHECK(refused(R"({"messages":[{"role":"user","content":"x","tool_calls":[]}]})") == "messages[0].tool_calls");
  CHECK(refused(R"({"messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]})") ==
        "messages[0].tool_calls[0].id");
  CHECK(refused("{" + msgs + R"(,"tools":[{"type":"function","function":{}}]})") == "tools[0].function.name");
  CHECK(refused("{" + msgs + R"(,"tool_choice":"sometimes"})") == "tool_choice");
  CHECK(refused("{" + msgs + R"(,"tool_choice":"required"})") == "tool_choice"); // nothing to choose from
  CHECK(refused("{" + msgs + R"(,"tool_choice":"none"})").empty());
  CHECK(refused("{" + msgs + R"(,"stop":["a","b","c","d","e"]})") == "stop");
  CHECK(refused("{" + msgs + R"(,"n":2})") == "n");
  CHECK(refused("{" + msgs + R"(,"top_p":1.5})") == "top_p");
  CHECK(refused("{" + msgs + R"(,"response_format":{"type":"yaml"}})") == "response_format");
  CHECK(refused("{" + msgs + R"(,"logprobs":true,"stream":true})") == "logprobs");
  CHECK(refused("{" + msgs + R"(,"stream_options":{"include_usage":"yes"}})") == "stream_options.include_usage");
  CHECK(refused("{" + msgs + R"(,"max_completion_tokens":0})") == "max_completion_tokens");
  CHECK(refused("{" + msgs + R"(,"n":1,"logprobs":true,"seed":null,"anything":[1]})").empty());
}

TEST_CASE("random ids: long enough and unique") {
  // Completion ids must not repeat across calls or restarts: 1000 draws, no collision, the right alphabet.
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = squad::server::random_id(24);
    CHECK(id.size() == 24);
    CHECK(id.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz") == std::string::npos);
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("request ids: the client's when usable, else a new one") {
  // Echoing the client's id lets it correlate logs; a control character or an over-long id is not echoed.
  CHECK(squad::server::request_id_for("abc-123") == "abc-123");
  CHECK(squad::server::request_id_for("").rfind("req_", 0) == 0);
  CHECK(squad::server::request_id_for("a b").rfind("req_", 0) == 0);
  CHECK(squad::server::request_id_for(std::string(129, 'a')).rfind("req_", 0) == 0);
}

TEST_CASE("chat body: the developer role is sent as system; n other than 1 is refused") {
  call_request call;
  chat_flags flags;
  REQUIRE_FALSE(read_chat_body(
      json::parse(
          R"({"model":"m","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":"hi"}]})"),
      call, flags));
  REQUIRE(call.messages.size() == 2);
  CHECK(call.messages[0].role == "system");
  CHECK(call.messages[0].content == "be brief");
  CHECK(refused(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"n":2})") == "n");
  CHECK(refused(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"n":1})").empty());
}
