// End to end: the real squad-mock-provider binary, over loopback sockets, as tests and benchmarks use it.
#include "tests/integration/http_client.hpp"
#include "tests/integration/mock_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <random>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using squad::test::http_connection;
using squad::test::http_result;
using squad::test::mock_process;
using squad::test::slurp;
using squad::test::temp_dir;

namespace {

const std::string host = "127.0.0.1";

// One upstream named "up" with the given YAML fragments.
std::string one_upstream(const std::string& limits, const std::string& latency = "{fixed: 0ms}",
                         const std::string& extra = "") {
  return "upstreams:\n  up:\n    listen: 127.0.0.1:0\n    style: both\n    limits: " + limits +
         "\n    latency: " + latency + "\n    reply: {tokens: 12}\n" + extra;
}

std::string chat_body(const std::string& prompt, bool stream = false, bool include_usage = false) {
  json body = {{"model", "gpt-mock"}, {"messages", {{{"role", "user"}, {"content", prompt}}}}, {"stream", stream}};
  if (include_usage)
    body["stream_options"] = {{"include_usage", true}};
  return body.dump();
}

std::string messages_body(const std::string& prompt, bool stream = false) {
  return json{{"model", "claude-mock"},
              {"max_tokens", 100},
              {"messages", {{{"role", "user"}, {"content", prompt}}}},
              {"stream", stream}}
      .dump();
}

http_result chat(const mock_process& m, const std::string& body = chat_body("hello")) {
  return squad::test::request("POST", host, m.port("up"), "/v1/chat/completions", body);
}

json stats(const mock_process& m) {
  auto r = squad::test::request("GET", host, m.port("up"), "/stats");
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

void set_fault(const mock_process& m, const json& fault) {
  auto r = squad::test::request("POST", host, m.port("up"), "/admin/fault", fault.dump());
  REQUIRE(r.status == 200);
}

// Runs the binary to completion (for start-up failures); returns exit status and stderr + stdout.
std::pair<int, std::string> run_to_exit(const std::string& args) {
  std::string cmd = "'" SQUAD_MOCK_BIN "' " + args + " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::array<char, 4096> buf;
  while (auto n = fread(buf.data(), 1, buf.size(), p))
    out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

} // namespace

TEST_CASE("mock provider: announces every upstream and stops cleanly on SIGTERM", "[mock][integration]") {
  // Intent: one file, several upstreams on separate ports; stdout names each; SIGTERM exits 0.
  mock_process m("upstreams:\n  a: {style: openai}\n  b: {style: anthropic}\n");
  REQUIRE(m.upstream_count() == 2);
  CHECK(m.port("a") != m.port("b"));
  auto out = m.stdout_text();
  CHECK_THAT(out, Catch::Contains("upstream a listening on 127.0.0.1:" + std::to_string(m.port("a")) + "\n"));
  CHECK_THAT(out, Catch::Contains("upstream b listening on 127.0.0.1:" + std::to_string(m.port("b")) + "\n"));
  // Styles pick the endpoints.
  CHECK(squad::test::request("POST", host, m.port("a"), "/v1/chat/completions", chat_body("x")).status == 200);
  CHECK(squad::test::request("POST", host, m.port("a"), "/v1/messages", messages_body("x")).status == 404);
  CHECK(squad::test::request("POST", host, m.port("b"), "/v1/messages", messages_body("x")).status == 200);
  CHECK(m.stop() == 0);
}

TEST_CASE("mock provider: a bad config exits 2 naming each problem", "[mock][integration]") {
  // Intent: config problems are reported with their paths before anything listens.
  temp_dir dir;
  std::ofstream(dir / "bad.yaml") << "upstreams:\n  fast:\n    limits: {requests: 0, rpm: 3}\n";
  auto [status, out] = run_to_exit("--config '" + (dir / "bad.yaml").string() + "'");
  CHECK(status == 2);
  CHECK_THAT(out, Catch::Contains("upstreams.fast.limits.requests: must be > 0"));
  CHECK_THAT(out, Catch::Contains("upstreams.fast.limits.rpm: unknown key"));
}

TEST_CASE("mock provider: 20 calls at an upstream allowing 5 per second admit exactly 5", "[mock][integration]") {
  // Intent: the issue's acceptance test, sequential on fresh connections: 5 x 200, 15 x 429 with Retry-After.
  mock_process m(one_upstream("{requests: 5, per: 1s, concurrency: 4}"));
  int ok = 0;
  int limited = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = chat(m);
    if (r.status == 200) {
      ++ok;
    } else {
      ++limited;
      CHECK(r.status == 429);
      CHECK(std::stoi(r.header("retry-after")) >= 1);
      CHECK_FALSE(r.header("retry-after-ms").empty());
      CHECK(json::parse(r.body)["error"]["code"] == "rate_limit_exceeded");
    }
    CHECK(r.header("x-ratelimit-limit-requests") == "5");
  }
  CHECK(ok == 5);
  CHECK(limited == 15);
  auto s = stats(m);
  CHECK(s["admitted"] == 5);
  CHECK(s["rejected"]["requests"] == 15);
  CHECK(s["max_window_occupancy"] == 5);
  CHECK(s["requests_total"] == 20);
}

TEST_CASE("mock provider: 20 concurrent calls over 20 connections admit exactly 5", "[mock][integration]") {
  // Intent: admission is decided at arrival even when calls race: no more than the window lets through.
  mock_process m(one_upstream("{requests: 5, per: 1s, concurrency: 0}", "{fixed: 100ms}"));
  std::atomic<int> ok = 0;
  std::atomic<int> limited = 0;
  std::atomic<int> with_retry_after = 0;
  std::latch go(20);
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&] {
      go.arrive_and_wait();
      auto r = chat(m);
      if (r.status == 200)
        ++ok;
      if (r.status == 429)
        ++limited;
      if (r.status == 429 && !r.header("retry-after").empty() && std::stoi(r.header("retry-after")) >= 1)
        ++with_retry_after;
    });
  for (auto& t : threads)
    t.join();
  CHECK(ok == 5);
  CHECK(limited == 15);
  CHECK(with_retry_after == 15);
  CHECK(stats(m)["max_window_occupancy"] == 5);
}

TEST_CASE("mock provider: the concurrency cap rejects the request over it", "[mock][integration]") {
  // Intent: N+1 slow calls at once: N answered, one 429 for concurrency; max_in_flight is N.
  mock_process m(one_upstream("{requests: 100, per: 1s, concurrency: 3}", "{fixed: 600ms}"));
  std::atomic<int> ok = 0;
  std::atomic<int> limited = 0;
  std::string reject_message;
  std::mutex mutex;
  std::latch go(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      go.arrive_and_wait();
      auto r = chat(m);
      ok += r.status == 200;
      if (r.status == 429) {
        ++limited;
        std::lock_guard lock(mutex);
        reject_message = json::parse(r.body)["error"]["message"];
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(ok == 3);
  CHECK(limited == 1);
  CHECK_THAT(reject_message, Catch::Contains("concurrency"));
  auto s = stats(m);
  CHECK(s["max_in_flight"] == 3);
  CHECK(s["rejected"]["concurrency"] == 1);
  CHECK(s["in_flight"] == 0);
}

TEST_CASE("mock provider: streamed text equals non-streamed text", "[mock][integration]") {
  // Intent: SSE for OpenAI and Anthropic carries the same words as the JSON answer, piece by piece.
  mock_process m(one_upstream("{requests: 100, per: 1s}", "{fixed: 0ms, per_token: 5ms}"));
  auto plain = json::parse(chat(m, chat_body("same prompt")).body);
  std::string text = plain["choices"][0]["message"]["content"];
  CHECK(plain["usage"]["completion_tokens"] == 12);

  int pieces = 0;
  auto s = squad::test::stream("POST", host, m.port("up"), "/v1/chat/completions", chat_body("same prompt", true, true),
                               {}, [&](std::string_view) { ++pieces; });
  REQUIRE(s.status == 200);
  CHECK(s.complete);
  CHECK(s.header("content-type") == "text/event-stream");
  CHECK(pieces > 1); // it arrived as a stream, not in one piece
  auto data = squad::test::sse_data(s.body);
  REQUIRE(data.size() >= 3);
  CHECK(data.back() == "[DONE]");
  std::string joined;
  for (std::size_t i = 0; i + 1 < data.size(); ++i) {
    auto chunk = json::parse(data[i]);
    if (!chunk["choices"].empty() && chunk["choices"][0]["delta"].contains("content"))
      joined += chunk["choices"][0]["delta"]["content"].get<std::string>();
  }
  CHECK(joined == text);
  CHECK(json::parse(data[data.size() - 2])["usage"]["completion_tokens"] == 12);

  auto a_plain =
      json::parse(squad::test::request("POST", host, m.port("up"), "/v1/messages", messages_body("same prompt")).body);
  auto a_stream = squad::test::stream("POST", host, m.port("up"), "/v1/messages", messages_body("same prompt", true),
                                      {}, [](std::string_view) {});
  CHECK(a_stream.complete);
  std::string a_joined;
  std::string last_type;
  for (const auto& d : squad::test::sse_data(a_stream.body)) {
    auto e = json::parse(d);
    last_type = e["type"];
    if (e["type"] == "content_block_delta")
      a_joined += e["delta"]["text"].get<std::string>();
  }
  CHECK(a_plain["content"][0]["text"] == a_joined);
  CHECK(a_joined == text);
  CHECK(last_type == "message_stop");
}

TEST_CASE("mock provider: latency is fixed before the head plus per token while streaming", "[mock][integration]") {
  // Intent: with fixed 100ms and 12 tokens x 15ms the first byte waits ~100ms and the stream ~280ms.
  mock_process m(one_upstream("{requests: 100, per: 1s}", "{fixed: 100ms, per_token: 15ms}"));
  auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration first{};
  auto s = squad::test::stream("POST", host, m.port("up"), "/v1/chat/completions", chat_body("x", true), {},
                               [&](std::string_view) {
                                 if (first == first.zero())
                                   first = std::chrono::steady_clock::now() - t0;
                               });
  auto total = std::chrono::steady_clock::now() - t0;
  CHECK(s.complete);
  CHECK(first >= 100ms);
  CHECK(total >= 280ms);
  CHECK(first < total);
}

TEST_CASE("mock provider: each fault mode shows its symptom", "[mock][integration]") {
  // Intent: faults switched through the admin endpoint look to a client like the real failure.
  mock_process m(one_upstream("{requests: 100, per: 1s, concurrency: 0}"));

  SECTION("down: the connection closes without a response; admin still answers") {
    set_fault(m, {{"mode", "down"}});
    auto r = chat(m);
    CHECK(r.status == 0);
    CHECK_FALSE(r.error.empty());
    set_fault(m, {{"mode", "none"}});
    CHECK(chat(m).status == 200);
  }
  SECTION("error500: the given fraction fails, deterministically") {
    set_fault(m, {{"mode", "error500"}, {"fraction", 0.5}});
    std::vector<int> statuses;
    for (int i = 0; i < 4; ++i)
      statuses.push_back(chat(m).status);
    CHECK(statuses == std::vector<int>{200, 500, 200, 500});
  }
  SECTION("slow: the answer takes at least slow_ms") {
    set_fault(m, {{"mode", "slow"}, {"slow_ms", 300}});
    auto t0 = std::chrono::steady_clock::now();
    CHECK(chat(m).status == 200);
    CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
  }
  SECTION("garbage: 200 with a body that is not JSON") {
    set_fault(m, {{"mode", "garbage"}});
    auto r = chat(m);
    CHECK(r.status == 200);
    CHECK(json::parse(r.body, nullptr, false).is_discarded());
  }
  SECTION("cut: the stream ends after cut_after events, without [DONE]") {
    set_fault(m, {{"mode", "cut"}, {"cut_after", 3}});
    auto r = squad::test::stream("POST", host, m.port("up"), "/v1/chat/completions", chat_body("x", true), {},
                                 [](std::string_view) {});
    CHECK(r.status == 200);
    CHECK_FALSE(r.complete);
    auto data = squad::test::sse_data(r.body);
    CHECK(data.size() == 3);
    CHECK(std::find(data.begin(), data.end(), "[DONE]") == data.end());
    auto plain = chat(m); // a plain answer is cut in the middle of its body
    CHECK_FALSE(plain.complete);
    CHECK(stats(m)["in_flight"] == 0); // cut connections gave their slots back
  }
  SECTION("unauthorized: 401") {
    set_fault(m, {{"mode", "unauthorized"}});
    auto r = chat(m);
    CHECK(r.status == 401);
    CHECK(json::parse(r.body)["error"]["code"] == "invalid_api_key");
  }
  SECTION("a bad fault request is refused and reset clears the fault") {
    auto r = squad::test::request("POST", host, m.port("up"), "/admin/fault", R"({"mode":"sideways"})");
    CHECK(r.status == 400);
    set_fault(m, {{"mode", "unauthorized"}});
    CHECK(squad::test::request("POST", host, m.port("up"), "/admin/reset").status == 200);
    CHECK(chat(m).status == 200);
    CHECK(stats(m)["fault"] == "none");
  }
}

TEST_CASE("mock provider: keep-alive serves sequential requests on one connection", "[mock][integration]") {
  // Intent: 5 requests and /stats over one connection open exactly one connection.
  mock_process m(one_upstream("{requests: 100, per: 1s}"));
  http_connection c(host, m.port("up"));
  for (int i = 0; i < 5; ++i)
    CHECK(c.request("POST", "/v1/chat/completions", chat_body("k")).status == 200);
  auto s = c.request("GET", "/stats");
  REQUIRE(s.status == 200);
  CHECK(c.is_open());
  auto j = json::parse(s.body);
  CHECK(j["connections_opened"] == 1);
  CHECK(j["requests_total"] == 5);
  CHECK(j["admitted"] == 5);
}

TEST_CASE("mock provider: bad requests, api keys, tokens and stats", "[mock][integration]") {
  // Intent: 400 for bad JSON, 404 for unknown paths, 401 without the key, 429 for tokens; counters add up.
  mock_process m(one_upstream("{requests: 100, per: 1s, tokens: 150}", "{fixed: 0ms}", "    api_key: sk-mock\n"));
  auto port = m.port("up");
  squad::test::header_list bearer = {{"Authorization", "Bearer sk-mock"}};
  squad::test::header_list x_api_key = {{"x-api-key", "sk-mock"}};
  CHECK(squad::test::request("POST", host, port, "/v1/chat/completions", chat_body("x")).status == 401);
  CHECK(squad::test::request("POST", host, port, "/v1/chat/completions", chat_body("x"), bearer).status == 200);
  auto bad = squad::test::request("POST", host, port, "/v1/chat/completions", "{oops", bearer);
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body)["error"]["type"] == "invalid_request_error");
  auto missing = squad::test::request("POST", host, port, "/v1/nothing", "{}", bearer);
  CHECK(missing.status == 404);
  // Anthropic-style errors on /v1/messages.
  auto a401 = squad::test::request("POST", host, port, "/v1/messages", messages_body("x"));
  CHECK(a401.status == 401);
  CHECK(json::parse(a401.body)["error"]["type"] == "authentication_error");
  // 13 tokens used so far (1 prompt + 12 reply); each of these costs 1 + max_tokens 100: 114 fits, 215 does not.
  CHECK(squad::test::request("POST", host, port, "/v1/messages", messages_body("x"), x_api_key).status == 200);
  auto over = squad::test::request("POST", host, port, "/v1/messages", messages_body("x"), x_api_key);
  CHECK(over.status == 429);
  CHECK(json::parse(over.body)["error"]["type"] == "rate_limit_error");
  CHECK(over.header("x-ratelimit-limit-tokens") == "150");
  CHECK(std::stoi(over.header("retry-after")) >= 1);
  auto e = squad::test::request("POST", host, port, "/v1/embeddings", R"({"model":"e","input":["a","b"]})", bearer);
  CHECK(e.status == 200);
  CHECK(json::parse(e.body)["data"].size() == 2);

  auto s = stats(m);
  CHECK(s["admitted"] == 3);
  CHECK(s["rejected"]["tokens"] == 1);
  CHECK(s["rejected"]["requests"] == 0);
  CHECK(s["requests_total"] == 8);
}
