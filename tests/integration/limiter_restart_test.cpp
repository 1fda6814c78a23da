// Limiter state across a real restart: `squad serve` in front of squad-mock-provider with a provider limited to 3 calls
// per 60 s. Three calls go through, the process stops (SIGKILL once their checkpoint is in the store, or a clean
// SIGTERM), and the next process on the same store refuses a 4th call inside the window instead of sending it: the
// mock, which enforces the same 3 per 60 s, sees 3 requests and no 429.
#include "runtime/store/sql.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/serve_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using json = nlohmann::json;
using namespace squad;
using namespace std::chrono_literals;

namespace {

const char* strict_mock = "upstreams:\n"
                          "  strict:\n"
                          "    listen: 127.0.0.1:0\n"
                          "    style: openai\n"
                          "    limits: {requests: 3, per: 60s, concurrency: 0}\n"
                          "    latency: {fixed: 5ms}\n"
                          "    reply: {tokens: 5}\n";

std::string squad_yaml(const test::mock_process& m) {
  return "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR "/config/workflows\n"
         "server: {listen: 127.0.0.1:0}\n"
         "providers:\n"
         "  mock:\n"
         "    kind: openai\n"
         "    base_url: http://127.0.0.1:" +
         std::to_string(m.port("strict")) +
         "/v1\n"
         "    limits: {requests: 3, per: 60s, burst: 3, concurrency: 4}\n"
         "    models:\n"
         "      m: {id: mock-m, tier: worker}\n"
         "personas: {}\n";
}

test::http_result chat(std::uint16_t port, int i, const std::string& priority = "P1") {
  json body{{"model", "mock/m"},
            {"max_tokens", 5},
            {"messages", json::array({{{"role", "user"}, {"content", "call " + std::to_string(i)}}})}};
  return test::request("POST", "127.0.0.1", port, "/v1/chat/completions", body.dump(),
                       {{"X-Squad-Priority", priority}});
}

// The window entries of the provider's checkpoint in the store (-1: no checkpoint yet).
std::int64_t stored_entries(const std::string& url) {
  auto c = store::open_sql(store::parse_storage_url(url));
  auto rows = c->query("SELECT body FROM squad_limiter_state WHERE provider = 'mock'");
  if (rows.empty())
    return -1;
  return static_cast<std::int64_t>(json::parse(rows[0][0]).at("window").size());
}

json mock_stats(const test::mock_process& m) {
  auto r = test::request("GET", "127.0.0.1", m.port("strict"), "/stats");
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

} // namespace

TEST_CASE("limiter state: after a restart on the same store a 4th call inside the window is not sent upstream") {
  auto stop = GENERATE(as<std::string>{}, "SIGKILL", "SIGTERM");
  INFO("the first process stops by " << stop);
  test::mock_process mock{strict_mock};
  test::temp_dir store;
  auto url = "sqlite:" + (store / "squad.db").string();
  auto yaml = squad_yaml(mock);
  {
    test::serve_process first{yaml, {}, url};
    for (int i = 0; i < 3; ++i) {
      auto r = chat(first.port(), i);
      INFO(r.body);
      REQUIRE(r.status == 200);
    }
    if (stop == "SIGKILL") { // a crash: only what the limiter checkpointed before it is known
      auto deadline = std::chrono::steady_clock::now() + 10s;
      while (stored_entries(url) < 3 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
      REQUIRE(stored_entries(url) == 3);
      auto m = test::request("GET", "127.0.0.1", first.port(), "/metrics");
      CHECK(m.body.find("squad_limiter_checkpoints_total{provider=\"mock\"} 0") == std::string::npos);
      CHECK(m.body.find("squad_limiter_checkpoints_total{provider=\"mock\"}") != std::string::npos);
      first.kill_hard();
    } else { // a clean stop saves the limiter's last state before the journal's final flush
      REQUIRE(first.stop() == 0);
      CHECK(stored_entries(url) == 3);
    }
  }
  REQUIRE(mock_stats(mock)["admitted"] == 3);

  test::serve_process second{yaml, {}, url};
  CHECK_THAT(second.stdout_text(), Catch::Contains("restored limiter state for mock: 3 in window"));
  // The window is full for about a minute more: a P3 call (it waits at most 10 s) is refused at once.
  auto r = chat(second.port(), 3, "P3");
  INFO(r.body);
  CHECK(r.status == 429);
  auto retry = r.header("retry-after");
  REQUIRE(!retry.empty());
  CHECK(std::stoi(retry) >= 30); // the window's end, not a guess of a second
  CHECK(std::stoi(retry) <= 61);
  auto stats = mock_stats(mock);
  INFO(stats.dump());
  CHECK(stats["admitted"] == 3);
  CHECK(stats["requests_total"] == 3); // the 4th never reached the upstream
  CHECK(stats["rejected"]["requests"] == 0);
}

TEST_CASE("limiter state: with storage none a restart starts with an empty window, as before") {
  test::mock_process mock{strict_mock};
  auto yaml = squad_yaml(mock);
  {
    test::serve_process first{yaml, {}, "none"};
    REQUIRE(chat(first.port(), 0).status == 200);
    auto m = test::request("GET", "127.0.0.1", first.port(), "/metrics");
    CHECK(m.body.find("squad_limiter_checkpoints_total") == std::string::npos);
  }
  test::serve_process second{yaml, {}, "none"};
  CHECK(second.stdout_text().find("restored limiter state") == std::string::npos);
  CHECK(chat(second.port(), 1).status == 200);
}
