// The audit trail end to end: `squad serve` in front of squad-mock-provider writes a request row per API call and
// an upstream row per attempt; `squad audit export` reads them back (jsonl, csv). With audit.bodies the bodies are
// kept redacted: the store's file never holds the e-mail address or the card number a client sent.
#include "tests/integration/http_client.hpp"
#include "tests/integration/serve_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <set>

using json = nlohmann::json;
using namespace squad;

namespace {

const char* mock_yaml = "upstreams:\n"
                        "  up:\n"
                        "    listen: 127.0.0.1:0\n"
                        "    style: openai\n"
                        "    limits: {requests: 1000, per: 1s, concurrency: 0}\n"
                        "    latency: {fixed: 5ms}\n"
                        "    reply: {tokens: 10}\n";

std::string squad_yaml(const test::mock_process& m, bool bodies) {
  return "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR "/config/workflows\n"
         "server: {listen: 127.0.0.1:0}\n"
         "audit: {bodies: " +
         std::string(bodies ? "true" : "false") +
         "}\n"
         "providers:\n"
         "  up:\n"
         "    kind: openai\n"
         "    base_url: http://127.0.0.1:" +
         std::to_string(m.port("up")) +
         "/v1\n"
         "    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 16}\n"
         "    retry: {retries: 0}\n"
         "    models:\n"
         "      m: {id: mock-m, tier: worker, input_price: 2.5, output_price: 10}\n"
         "personas: {}\n";
}

// `squad audit export` on the store: its stdout, and its exit status in `rc`.
std::string export_rows(const std::string& url, const std::string& args, int& rc) {
  return test::run_command(std::string(SQUAD_BIN) + " audit export --storage " + url + " " + args + " 2>&1", rc);
}

std::vector<json> lines_of(const std::string& text) {
  std::vector<json> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    out.push_back(json::parse(text.substr(pos, end - pos)));
    pos = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

json chat(std::uint16_t port, const std::string& model, const std::string& text) {
  json body{{"model", model}, {"messages", json::array({{{"role", "user"}, {"content", text}}})}, {"max_tokens", 16}};
  auto r = test::request("POST", "127.0.0.1", port, "/v1/chat/completions", body.dump());
  return json{{"status", r.status}, {"body", r.body}};
}

} // namespace

TEST_CASE("audit: a row per request and per upstream attempt, priced, exported as jsonl and csv") {
  test::mock_process mock{mock_yaml};
  test::temp_dir dir;
  auto url = "sqlite:" + (dir / "squad.db").string();
  {
    test::serve_process squad{squad_yaml(mock, false), {}, url};
    for (int i = 0; i < 5; ++i)
      REQUIRE(chat(squad.port(), "up/m", "question " + std::to_string(i))["status"] == 200);
    CHECK(chat(squad.port(), "no-such-model", "x")["status"] == 404);
    // The upstream fails: the call's rows say how.
    REQUIRE(test::request("POST", "127.0.0.1", mock.port("up"), "/admin/fault", R"({"mode":"unauthorized"})").status ==
            200);
    CHECK(chat(squad.port(), "up/m", "this one fails")["status"].get<int>() >= 400);
    CHECK(squad.stop() == 0);
  }
  int rc = -1;
  auto rows = lines_of(export_rows(url, "", rc));
  REQUIRE(rc == 0);
  std::size_t requests = 0, upstream = 0, ok = 0;
  double cost = 0;
  std::set<std::string> ids;
  for (auto& r : rows) {
    INFO(r.dump());
    for (auto* k : {"request_id", "kind", "time", "persona", "provider", "model", "status", "prompt_tokens",
                    "completion_tokens", "cost_usd"})
      CHECK(r.contains(k));
    CHECK_FALSE(r.contains("request_body")); // audit.bodies is off
    if (r["kind"] == "request") {
      ++requests;
      CHECK(ids.insert(r["request_id"].get<std::string>()).second); // one request row per request
      if (r["status"] == "200") {
        ++ok;
        CHECK(r["prompt_tokens"].get<int>() > 0);
        CHECK(r["completion_tokens"].get<int>() == 10);
        // 2.5 USD per 1M prompt tokens, 10 per 1M completion tokens
        double want = r["prompt_tokens"].get<double>() * 2.5e-6 + 10 * 10e-6;
        CHECK(r["cost_usd"].get<double>() == Approx(want));
        cost += r["cost_usd"].get<double>();
      }
    } else {
      CHECK(r["kind"] == "upstream");
      ++upstream;
    }
  }
  CHECK(requests == 7);
  CHECK(ok == 5);
  CHECK(upstream >= 6); // 5 answered, and at least one try of the failed call
  auto failed = std::find_if(rows.begin(), rows.end(), [](const json& r) {
    return r["kind"] == "request" && r["status"] != "200" && r["status"] != "404";
  });
  REQUIRE(failed != rows.end());
  CHECK(!(*failed)["error_class"].get<std::string>().empty());
  auto refused = std::find_if(rows.begin(), rows.end(), [](const json& r) { return r["status"] == "404"; });
  REQUIRE(refused != rows.end());
  CHECK((*refused)["error_class"] == "model_not_found");
  CHECK((*refused)["model"] == "no-such-model");

  auto csv = export_rows(url, "--format csv --since 1h", rc);
  REQUIRE(rc == 0);
  CHECK(csv.rfind("request_id,kind,time,", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == static_cast<long>(rows.size()) + 1);
  CHECK(export_rows(url, "--since 2099-01-01", rc).empty());
  CHECK(rc == 0);
  auto bad = export_rows(url, "--since yesterday-ish", rc);
  CHECK(rc == 2);
  CHECK(bad.find("--since") != std::string::npos);
  export_rows(url, "--format xml", rc);
  CHECK(rc == 2);
}

TEST_CASE("audit: with audit.bodies the bodies are kept, redacted before they reach the store") {
  test::mock_process mock{mock_yaml};
  test::temp_dir dir;
  auto url = "sqlite:" + (dir / "squad.db").string();
  {
    test::serve_process squad{squad_yaml(mock, true), {}, url};
    REQUIRE(chat(squad.port(), "up/m",
                 "Mail jane.doe@example.org, card 4111 1111 1111 1111, call +55 11 98765-4321")["status"] == 200);
    CHECK(squad.stop() == 0);
  }
  int rc = -1;
  auto rows = lines_of(export_rows(url, "", rc));
  REQUIRE(rc == 0);
  auto req = std::find_if(rows.begin(), rows.end(), [](const json& r) { return r["kind"] == "request"; });
  REQUIRE(req != rows.end());
  auto body = (*req)["request_body"].get<std::string>();
  INFO(body);
  CHECK(body.find("[EMAIL]") != std::string::npos);
  CHECK(body.find("[CARD]") != std::string::npos);
  CHECK(body.find("[PHONE]") != std::string::npos);
  CHECK(!(*req)["response_body"].get<std::string>().empty());
  // Nowhere in the database files: the redaction happened before anything was written.
  for (auto* f : {"squad.db", "squad.db-wal"}) {
    auto bytes = test::slurp(dir / f);
    CHECK(bytes.find("jane.doe@example.org") == std::string::npos);
    CHECK(bytes.find("4111 1111 1111 1111") == std::string::npos);
  }
}
