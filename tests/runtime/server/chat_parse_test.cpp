// parse_chat_request: a chat call checked field by field against the API's models, the key's models, the chain's
// providers and Squad's headers, each refusal an api_error naming the field, in the order a client fixes them.
#include "runtime/server/chat_request.hpp"
#include "runtime/server/json_body.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using nlohmann::json;
using namespace squad;
using namespace squad::server;

namespace {

// Two providers (openai-compatible "oa", simulated "sim"), their models and a persona chained over both.
struct api_fixture {
  std::map<std::string, api_model> models;
  std::map<std::string, provider_family> providers{{"oa", provider_family::openai}, {"sim", provider_family::sim}};
  std::vector<std::string> allowed;
  api_fixture() {
    models["oa/m"] = {"oa/m", "", {{"oa", "m", "m-1", "boss"}}, priority_class::p1, "model", ""};
    models["sim/s"] = {"sim/s", "", {{"sim", "s", "s-1", "worker"}}, priority_class::p1, "model", ""};
    models["persona/analyst"] = {
        "persona/analyst",  "analyst", {{"sim", "s", "s-1", "worker"}, {"oa", "m", "m-1", "boss"}},
        priority_class::p2, "persona", ""};
  }
  chat_context ctx() const { return {models, allowed, providers, std::chrono::milliseconds{30000}}; }
  std::variant<parsed_chat, api_error> parse(const std::string& body, chat_headers h = {}) const {
    return parse_chat_request(json::parse(body), h, ctx());
  }
};

const std::string hi = R"("messages":[{"role":"user","content":"hi"}])";

api_error error_of(const std::variant<parsed_chat, api_error>& r) {
  REQUIRE(std::holds_alternative<api_error>(r));
  return std::get<api_error>(r);
}

const parsed_chat& call_of(const std::variant<parsed_chat, api_error>& r) {
  if (auto* e = std::get_if<api_error>(&r))
    FAIL("refused: " << e->status << " " << e->param << ": " << e->message);
  return std::get<parsed_chat>(r);
}

} // namespace

TEST_CASE("chat request: a direct model call carries its one target, defaults and no cache") {
  // The chain is the model's own target, priority the default P1, the call timeout the server's, cache bypassed.
  api_fixture f;
  auto r = f.parse(R"({"model":"oa/m",)" + hi + "}");
  auto& p = call_of(r);
  REQUIRE(p.model == &f.models.at("oa/m"));
  REQUIRE(p.call.chain.size() == 1);
  CHECK(p.call.chain[0].provider == "oa");
  CHECK(p.call.priority == static_cast<std::uint8_t>(priority_class::p1));
  CHECK(p.call.timeout_ms == 30000);
  CHECK(p.call.cache_mode == cache_bypass);
  CHECK(p.call.budget_id.empty());
  CHECK_FALSE(p.call.stream);
  REQUIRE(p.call.messages.size() == 1);
  CHECK(p.call.messages[0].content == "hi");
}

TEST_CASE("chat request: a persona call takes the persona's chain and priority, and stream is carried") {
  // persona/analyst is P2 over sim then oa; stream: true reaches the call and the flags.
  api_fixture f;
  auto r = f.parse(R"({"model":"persona/analyst","stream":true,)" + hi + "}");
  auto& p = call_of(r);
  CHECK(p.call.chain.size() == 2);
  CHECK(p.call.priority == static_cast<std::uint8_t>(priority_class::p2));
  CHECK(p.call.stream);
  CHECK(p.flags.stream);
  CHECK(p.model->persona == "analyst");
}

TEST_CASE("chat request: the body and its model are checked first") {
  // Not an object, no model, a model of the wrong type: 400 naming model; an unknown model: 404 model_not_found.
  api_fixture f;
  CHECK(error_of(f.parse("[1]")).param.empty());
  CHECK(error_of(f.parse("[1]")).status == 400);
  CHECK(error_of(f.parse("{" + hi + "}")).param == "model");
  CHECK(error_of(f.parse(R"({"model":7,)" + hi + "}")).param == "model");
  auto unknown = error_of(f.parse(R"({"model":"nope/x",)" + hi + "}"));
  CHECK(unknown.status == 404);
  CHECK(unknown.code == "model_not_found");
  CHECK(unknown.message.find("oa/m") != std::string::npos); // it names some models that exist
}

TEST_CASE("chat request: a key limited to some models is refused the others (403) before its body is read") {
  // The allow list is checked before the messages: a bad body on a forbidden model still says 403.
  api_fixture f;
  f.allowed = {"oa/m"};
  auto e = error_of(f.parse(R"({"model":"sim/s","messages":[]})"));
  CHECK(e.status == 403);
  CHECK(e.code == model_not_allowed);
  CHECK(e.type == "permission_denied");
  CHECK(e.message.find("allowed: oa/m") != std::string::npos);
  call_of(f.parse(R"({"model":"oa/m",)" + hi + "}"));
}

TEST_CASE("chat request: a bad body field is a 400 naming it") {
  // read_chat_body's refusals come through with their param.
  api_fixture f;
  auto e = error_of(f.parse(R"({"model":"oa/m","messages":[]})"));
  CHECK(e.status == 400);
  CHECK(e.param == "messages");
  CHECK(error_of(f.parse(R"({"model":"oa/m","temperature":3,)" + hi + "}")).param == "temperature");
}

TEST_CASE("chat request: a parameter no target of the chain honours is refused, one some honour goes ahead") {
  // tools on the sim-only model: 400 unsupported_parameter naming the provider; on the persona (sim, then oa): sent.
  api_fixture f;
  auto tools = std::string{R"("tools":[{"type":"function","function":{"name":"f"}}],)"};
  auto e = error_of(f.parse(R"({"model":"sim/s",)" + tools + hi + "}"));
  CHECK(e.status == 400);
  CHECK(e.param == "tools");
  CHECK(e.code == "unsupported_parameter");
  CHECK(e.message.rfind("provider sim: ", 0) == 0);
  CHECK(e.message.find("(model sim/s)") != std::string::npos);
  auto sent = f.parse(R"({"model":"persona/analyst",)" + tools + hi + "}");
  CHECK(json::parse(call_of(sent).call.params_json).contains("tools"));
}

TEST_CASE("chat request: X-Squad-Priority sets the class, any case of the P, and refuses others") {
  // p0 and P3 are read; P4 and words are a 400 naming the header.
  api_fixture f;
  auto body = R"({"model":"oa/m",)" + hi + "}";
  CHECK(call_of(f.parse(body, {"p0", {}, {}, {}})).call.priority == 0);
  CHECK(call_of(f.parse(body, {"P3", {}, {}, {}})).call.priority == 3);
  CHECK(error_of(f.parse(body, {"P4", {}, {}, {}})).param == "X-Squad-Priority");
  CHECK(error_of(f.parse(body, {"high", {}, {}, {}})).param == "X-Squad-Priority");
}

TEST_CASE("chat request: X-Squad-Cache chooses use, only or bypass") {
  // Each mode maps to its cache_mode; anything else is refused.
  api_fixture f;
  auto body = R"({"model":"oa/m",)" + hi + "}";
  CHECK(call_of(f.parse(body, {{}, "use", {}, {}})).call.cache_mode == cache_use);
  CHECK(call_of(f.parse(body, {{}, "only", {}, {}})).call.cache_mode == cache_only);
  CHECK(call_of(f.parse(body, {{}, "bypass", {}, {}})).call.cache_mode == cache_bypass);
  CHECK(error_of(f.parse(body, {{}, "always", {}, {}})).param == "X-Squad-Cache");
}

TEST_CASE("chat request: X-Squad-Run becomes the budget id when it is 1 to 128 safe characters") {
  // A plain id is kept; a space or 129 characters are refused.
  api_fixture f;
  auto body = R"({"model":"oa/m",)" + hi + "}";
  CHECK(call_of(f.parse(body, {{}, {}, "job-7:a.b_c", {}})).call.budget_id == "job-7:a.b_c");
  CHECK(error_of(f.parse(body, {{}, {}, "a b", {}})).param == "X-Squad-Run");
  auto long_id = std::string(129, 'a');
  CHECK(error_of(f.parse(body, {{}, {}, long_id, {}})).param == "X-Squad-Run");
}

TEST_CASE("chat request: X-Squad-Timeout takes ms or a duration up to the server's call timeout") {
  // 1500 and 2s are read; 0, past call_timeout (30s here) and words are refused, and the message says the bound.
  api_fixture f;
  auto body = R"({"model":"oa/m",)" + hi + "}";
  CHECK(call_of(f.parse(body, {{}, {}, {}, "1500"})).call.timeout_ms == 1500);
  CHECK(call_of(f.parse(body, {{}, {}, {}, "2s"})).call.timeout_ms == 2000);
  CHECK(error_of(f.parse(body, {{}, {}, {}, "0"})).param == "X-Squad-Timeout");
  auto e = error_of(f.parse(body, {{}, {}, {}, "31s"}));
  CHECK(e.param == "X-Squad-Timeout");
  CHECK(e.message.find("(30000ms)") != std::string::npos);
  CHECK(error_of(f.parse(body, {{}, {}, {}, "soon"})).param == "X-Squad-Timeout");
}

TEST_CASE("json bodies: a number out of a double's range is a 400, not an exception (found by tests/fuzz)") {
  // nlohmann throws out_of_range (not parse_error) for 1e999; uncaught, it ended the whole server.
  for (std::string body : {R"({"model":"m","x":1e999})", R"([-1e400])", "63754e331333"}) {
    auto r = squad::server::parse_json_body(body);
    INFO(body);
    REQUIRE(std::holds_alternative<squad::server::api_error>(r));
    CHECK(std::get<squad::server::api_error>(r).status == 400);
    CHECK_FALSE(std::get<squad::server::api_error>(r).message.empty());
  }
}
