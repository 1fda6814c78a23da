// A run's USD budget end to end: POST /v1/runs with budget.usd, priced calls through squad-mock-provider. Each call
// reserves its worst case (prompt estimate + max_tokens at the dearest price of the run's personas) before it
// goes; past the budget the next calls are skipped with the reason as an event, P0 included, and the run's
// cost_usd never passes it.
#include "tests/integration/http_client.hpp"
#include "tests/integration/serve_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using json = nlohmann::json;
using namespace squad;

namespace {

// Three steps one after another, 10 completion tokens each; at $100 per 1M completion tokens a call costs $0.001,
// its worst case too (input is free).
const char* three_steps = "id: three\n"
                          "budget: {calls: 10, usd: 0.0025}\n"
                          "steps:\n"
                          "  - {id: one, persona: analyst, prompt: 'one {{task}}', max_tokens: 10}\n"
                          "  - {id: two, persona: pm, inputs: [one], prompt: 'two {{task}}', max_tokens: 10}\n"
                          "  - {id: three, persona: architect, priority: P0, inputs: [two], prompt: 'three', "
                          "max_tokens: 10}\n";

std::string squad_yaml(const test::mock_process& m, const std::string& workflows) {
  return "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " + workflows +
         "\ndefault_workflow: three\n"
         "server: {listen: 127.0.0.1:0}\n"
         "providers:\n"
         "  up:\n"
         "    kind: openai\n"
         "    base_url: http://127.0.0.1:" +
         std::to_string(m.port("up")) +
         "/v1\n"
         "    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 16}\n"
         "    models:\n"
         "      w: {id: mock-w, tier: worker, input_price: 0, output_price: 100}\n"
         "      b: {id: mock-b, tier: boss, input_price: 0, output_price: 100}\n"
         "personas: {}\n";
}

std::vector<json> run_events(std::uint16_t port, const std::string& body) {
  auto started = test::request("POST", "127.0.0.1", port, "/v1/runs", body);
  INFO(started.body);
  REQUIRE(started.status == 202);
  auto id = json::parse(started.body)["id"].get<std::string>();
  auto events = test::request("GET", "127.0.0.1", port, "/v1/runs/" + id + "/events");
  REQUIRE(events.status == 200);
  std::vector<json> out;
  for (const auto& d : test::sse_data(events.body))
    out.push_back(json::parse(d));
  return out;
}

} // namespace

TEST_CASE("run budget: a run's USD budget is a hard cap; the calls past it are skipped and say why") {
  test::mock_process mock{"upstreams:\n  up:\n    listen: 127.0.0.1:0\n    style: openai\n"
                          "    limits: {requests: 100000, per: 1s, concurrency: 0}\n    reply: {tokens: 10}\n"};
  test::temp_dir dir;
  std::ofstream(dir / "three.yaml") << three_steps;
  test::serve_process squad{squad_yaml(mock, dir.path.string())};
  auto port = squad.port();

  SECTION("the workflow's budget: two calls fit in $0.0025, the third (P0) is skipped") {
    auto evs = run_events(port, R"({"task": "t"})");
    REQUIRE(!evs.empty());
    CHECK(evs.front()["data"]["budget_usd"].get<double>() == Approx(0.0025));
    int skipped = 0;
    for (auto& e : evs)
      if (e["type"] == "call.skipped") {
        ++skipped;
        CHECK(e["step_id"] == "three");
        CHECK(e["data"]["reason"].get<std::string>().find("usd budget: $0.0020 of $0.0025") == 0);
      }
    CHECK(skipped == 1);
    auto& last = evs.back();
    CHECK(last["data"]["cost_usd"].get<double>() == Approx(0.002));
    CHECK(last["data"]["cost_usd"].get<double>() <= 0.0025);
  }
  SECTION("a request's budget.usd replaces the workflow's") {
    auto evs = run_events(port, R"({"task": "t", "budget": {"usd": 0.0015}})");
    int skipped = 0;
    for (auto& e : evs)
      skipped += e["type"] == "call.skipped";
    CHECK(skipped == 2);
    CHECK(evs.back()["data"]["cost_usd"].get<double>() == Approx(0.001));
  }
  SECTION("a bad budget.usd is a 400 naming it") {
    for (auto body : {R"({"task": "t", "budget": {"usd": 0}})", R"({"task": "t", "budget": {"usd": "1"}})"}) {
      auto r = test::request("POST", "127.0.0.1", port, "/v1/runs", body);
      CHECK(r.status == 400);
      CHECK(json::parse(r.body)["error"]["param"] == "budget.usd");
    }
  }
}
