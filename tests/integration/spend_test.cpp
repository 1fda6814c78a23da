// Money budgets end to end: a key of a tier with a daily USD budget, priced calls through squad-mock-provider.
// 50 concurrent calls race for the budget's last $0.01: each reserves its worst case first, so the spend never
// passes the budget; the refused get 429 budget_exceeded with Retry-After at the reset. The spend survives a
// restart (read back from the audit rows), and GET /v1/usage sums it for admin keys only.
#include "tests/integration/http_client.hpp"
#include "tests/integration/serve_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <future>

using json = nlohmann::json;
using namespace squad;

namespace {

const std::string racer = "racer-key-0123456789", admin = "admin-key-0123456789";

std::string squad_yaml(const test::mock_process& m) {
  return "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR "/config/workflows\n"
         "server:\n"
         "  listen: 127.0.0.1:0\n"
         "  auth: keys\n"
         "  tiers:\n"
         "    free: {rpm: 1000, daily_usd: 0.02}\n"
         "  keys:\n"
         "    racer: {sha256: 82fafecee30b9228fb80cb9f57588b39168331c6b4c2129d8a5f1d801b0b766a, tier: free}\n"
         "    boss: {sha256: 6d843254d280913cb5f8e0b48efffb584cce7ff577178fe68e738ddf193af10c, admin: true}\n"
         "providers:\n"
         "  up:\n"
         "    kind: openai\n"
         "    base_url: http://127.0.0.1:" +
         std::to_string(m.port("up")) +
         "/v1\n"
         "    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 64}\n"
         "    models:\n"
         "      m: {id: mock-m, tier: worker, input_price: 0, output_price: 1000}\n" // $0.001 a completion token
         "personas: {}\n";
}

test::http_result chat(std::uint16_t port, const std::string& key, int i) {
  json body{{"model", "up/m"},
            {"max_tokens", 5}, // worst case $0.005, and the mock answers 5 tokens: $0.005
            {"messages", json::array({{{"role", "user"}, {"content", "call " + std::to_string(i)}}})}};
  return test::request("POST", "127.0.0.1", port, "/v1/chat/completions", body.dump(),
                       {{"Authorization", "Bearer " + key}});
}

json usage(std::uint16_t port, const std::string& key, const std::string& query, int& status) {
  auto r = test::request("GET", "127.0.0.1", port, "/v1/usage" + query, "", {{"Authorization", "Bearer " + key}});
  status = r.status;
  return json::parse(r.body, nullptr, false);
}

} // namespace

TEST_CASE("spend: 50 concurrent calls racing for a key's last $0.01 never spend past its daily budget") {
  test::mock_process mock{"upstreams:\n  up:\n    listen: 127.0.0.1:0\n    style: openai\n"
                          "    limits: {requests: 100000, per: 1s, concurrency: 0}\n    latency: {fixed: 50ms}\n"
                          "    reply: {tokens: 5}\n"};
  test::temp_dir dir;
  auto url = "sqlite:" + (dir / "squad.db").string();
  {
    test::serve_process squad{squad_yaml(mock), {}, url};
    auto port = squad.port();
    REQUIRE(chat(port, racer, 0).status == 200); // $0.005
    REQUIRE(chat(port, racer, 1).status == 200); // $0.010: $0.01 left of $0.02
    std::vector<std::future<test::http_result>> calls;
    for (int i = 0; i < 50; ++i)
      calls.push_back(std::async(std::launch::async, [&, i] { return chat(port, racer, 100 + i); }));
    int ok = 0, refused = 0;
    for (auto& c : calls) {
      auto r = c.get();
      if (r.status == 200) {
        ++ok;
        continue;
      }
      INFO(r.body);
      REQUIRE(r.status == 429);
      auto e = json::parse(r.body)["error"];
      CHECK(e["code"] == "budget_exceeded");
      CHECK(e["type"] == "insufficient_quota");
      CHECK(std::stoll(r.header("retry-after")) > 0);
      CHECK(std::stoll(r.header("retry-after")) <= 86400);
      ++refused;
    }
    std::printf("spend race: %d of 50 admitted, %d refused (budget_exceeded)\n", ok, refused);
    CHECK(ok <= 2); // $0.01 left buys two $0.005 calls at most
    CHECK(ok + refused == 50);
    int status = 0;
    auto u = usage(port, racer, "?group_by=key", status);
    CHECK(status == 403); // not an admin key
    CHECK(squad.stop() == 0);
  }
  // After a restart the day's spend is read back: the budget is still spent.
  test::serve_process again{squad_yaml(mock), {}, url};
  auto r = chat(again.port(), racer, 999);
  CHECK(r.status == 429);
  CHECK(json::parse(r.body)["error"]["code"] == "budget_exceeded");
  int status = 0;
  auto u = usage(again.port(), admin, "?group_by=key", status);
  INFO(u.dump());
  REQUIRE(status == 200);
  REQUIRE(u["data"].size() == 1);
  CHECK(u["data"][0]["key"] == "racer");
  CHECK(u["data"][0]["cost_usd"].get<double>() <= 0.02 + 1e-9);
  CHECK(u["data"][0]["cost_usd"].get<double>() >= 0.01 - 1e-9);
  // 2 + 50 before the restart, refused ones included; the one after it may still be on its way to the store.
  CHECK(u["data"][0]["requests"] >= 52);
  CHECK(u["data"][0]["requests"] <= 53);
  // By model: the one that served (refused calls are listed under the model they asked for, at no cost).
  auto by_model = usage(again.port(), admin, "?group_by=provider,model", status);
  REQUIRE(status == 200);
  CHECK(by_model["data"][0]["provider"] == "up");
  CHECK(by_model["data"][0]["model"] == "m");
  CHECK(by_model["data"][0]["cost_usd"] == u["data"][0]["cost_usd"]);
  CHECK(u["total"]["requests"].get<int>() >= 2);
  usage(again.port(), admin, "?group_by=colour", status);
  CHECK(status == 400);
  usage(again.port(), admin, "?since=soon", status);
  CHECK(status == 400);
  usage(again.port(), admin, "?since=2099-01-01", status);
  CHECK(status == 200);
}
