// The call's chat parameters and tool fields survive CAF's serialization (the form in which calls will cross nodes).
#include "actors/messages.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

TEST_CASE("call_request and upstream_reply round-trip through the binary serializer with tools and parameters") {
  // Nothing the adapters need may be lost on the way: params, tool calls, tool_call_id, an unset temperature.
  caf::actor_system_config cfg;
  squad::register_message_types(cfg);
  caf::actor_system sys{cfg};
  squad::call_request req;
  req.messages = {
      {"assistant", "", R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}])", "", ""},
      {"tool", "42", "", "c1", "bob"}};
  req.params_json = R"({"tools":[],"seed":3})";
  squad::upstream_reply rep;
  rep.tool_calls_json = R"([{"id":"c2"}])";
  rep.system_fingerprint = "fp";
  rep.logprobs_json = R"({"content":[]})";
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(req, rep));
  squad::call_request back;
  back.temperature = 1; // overwritten by "unset", which was sent
  squad::upstream_reply rep_back;
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(source(back, rep_back));
  CHECK(back.params_json == req.params_json);
  REQUIRE(back.messages.size() == 2);
  CHECK(back.messages[0].tool_calls_json == req.messages[0].tool_calls_json);
  CHECK(back.messages[1].tool_call_id == "c1");
  CHECK(back.messages[1].name == "bob");
  CHECK(back.max_tokens == 0);
  CHECK(back.temperature == squad::temperature_unset);
  CHECK(rep_back.tool_calls_json == rep.tool_calls_json);
  CHECK(rep_back.system_fingerprint == "fp");
  CHECK(rep_back.logprobs_json == rep.logprobs_json);
}
