// squad::mock::mock_upstream as pure logic: admission with injected time, Retry-After, bodies, faults.
#include "runtime/mock/mock_upstream.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

using namespace std::chrono_literals;
using namespace squad::mock;
using json = nlohmann::json;
using squad::steady_time;

namespace {

steady_time at(std::int64_t ms) {
  return steady_time{} + std::chrono::milliseconds{ms};
}

mock_upstream_config upstream(std::int64_t requests, squad::millis per, std::int64_t concurrency = 0,
                              std::int64_t tokens = 0) {
  mock_upstream_config c;
  c.name = "fast";
  c.limits = {requests, per, concurrency, tokens};
  return c;
}

mock_request chat(const std::string& prompt, bool stream = false, int max_tokens = 0) {
  json body = {{"model", "gpt-mock"}, {"messages", {{{"role", "user"}, {"content", prompt}}}}, {"stream", stream}};
  if (max_tokens > 0)
    body["max_tokens"] = max_tokens;
  return {"POST", "/v1/chat/completions", body.dump(), "", ""};
}

mock_request messages(const std::string& prompt, bool stream = false, int max_tokens = 1000) {
  json body = {{"model", "claude-mock"},
               {"max_tokens", max_tokens},
               {"messages", {{{"role", "user"}, {"content", prompt}}}},
               {"stream", stream}};
  return {"POST", "/v1/messages", body.dump(), "", ""};
}

mock_request admin_fault(const json& body) {
  return {"POST", "/admin/fault", body.dump(), "", ""};
}

// The `data:` payloads of a stream's frames that are JSON, in order.
std::vector<json> frame_json(const std::vector<sse_frame>& frames) {
  std::vector<json> out;
  for (const auto& f : frames) {
    auto pos = f.data.find("data: ");
    std::string payload = f.data.substr(pos + 6);
    payload.erase(payload.find_last_not_of('\n') + 1);
    if (payload != "[DONE]")
      out.push_back(json::parse(payload));
  }
  return out;
}

} // namespace

TEST_CASE("mock admission: 20 calls inside one window at 5 per second admit exactly 5", "[mock]") {
  // Intent: the window is strict at arrival; rejections do not consume slots.
  mock_upstream up(upstream(5, 1000ms));
  int admitted = 0;
  int rejected = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = up.handle(chat("hello"), at(i * 10LL));
    if (r.status == 200) {
      ++admitted;
      up.release();
    } else {
      ++rejected;
      CHECK(r.status == 429);
      CHECK(r.rejected == reject_reason::requests);
      CHECK(std::stoi(r.header("Retry-After")) >= 1);
    }
  }
  CHECK(admitted == 5);
  CHECK(rejected == 15);
  CHECK(up.stats().admitted == 5);
  CHECK(up.stats().rejected_requests == 15);
  CHECK(up.stats().max_window_occupancy == 5);
  CHECK(up.stats().requests_total == 20);
}

TEST_CASE("mock admission: Retry-After is the wait for the oldest admission, rounded up", "[mock]") {
  // Intent: Retry-After in whole seconds (>= 1, rounded up) and retry-after-ms exact.
  mock_upstream up(upstream(2, 2000ms));
  CHECK(up.admit(1, at(0)).reason == reject_reason::none);
  CHECK(up.admit(1, at(100)).reason == reject_reason::none);
  up.release();
  up.release();
  auto r = up.handle(chat("x"), at(500)); // oldest leaves at 2000: 1500 ms to wait
  REQUIRE(r.status == 429);
  CHECK(r.header("Retry-After") == "2");
  CHECK(r.header("retry-after-ms") == "1500");
  r = up.handle(chat("x"), at(1999)); // 1 ms left still says 1 s
  CHECK(r.header("Retry-After") == "1");
  CHECK(r.header("retry-after-ms") == "1");
  // At exactly the window's end the oldest admission has left.
  CHECK(up.handle(chat("x"), at(2000)).status == 200);
  CHECK(retry_after_seconds(0ms) == 1);
  CHECK(retry_after_seconds(1000ms) == 1);
  CHECK(retry_after_seconds(1001ms) == 2);
}

TEST_CASE("mock admission: the concurrency cap is checked first and freed by release", "[mock]") {
  // Intent: in flight >= cap gives 429 concurrency even when the window is also full; release frees a slot.
  mock_upstream up(upstream(2, 1000ms, 2));
  CHECK(up.admit(1, at(0)).reason == reject_reason::none);
  CHECK(up.admit(1, at(0)).reason == reject_reason::none);
  CHECK(up.admit(1, at(1)).reason == reject_reason::concurrency);
  CHECK(up.in_flight() == 2);
  up.release();
  CHECK(up.admit(1, at(2)).reason == reject_reason::requests); // a slot is free, the window is not
  CHECK(up.stats().rejected_concurrency == 1);
  CHECK(up.stats().rejected_requests == 1);
  CHECK(up.stats().max_in_flight == 2);
  auto r = up.handle(chat("x"), at(3));
  CHECK(r.status == 429);
  CHECK(r.rejected == reject_reason::requests);
  up.release();
  up.release();
  CHECK(up.admit(1, at(1000)).reason == reject_reason::none);
}

TEST_CASE("mock admission: tokens per window count prompt chars/4 plus max_tokens", "[mock]") {
  // Intent: a 40-char prompt is 10 tokens; with max_tokens 40 a request costs 50 of a 120 budget.
  mock_upstream up(upstream(100, 1000ms, 0, 120));
  std::string prompt(40, 'a');
  auto r1 = up.handle(chat(prompt, false, 40), at(0));
  CHECK(r1.status == 200);
  CHECK(r1.header("x-ratelimit-limit-tokens") == "120");
  CHECK(r1.header("x-ratelimit-remaining-tokens") == "70");
  CHECK(up.handle(chat(prompt, false, 40), at(300)).status == 200);
  auto r3 = up.handle(chat(prompt, false, 40), at(600)); // 100 + 50 > 120
  CHECK(r3.status == 429);
  CHECK(r3.rejected == reject_reason::tokens);
  CHECK(r3.header("retry-after-ms") == "400"); // the first request's 50 tokens leave at 1000
  CHECK(up.stats().rejected_tokens == 1);
  CHECK(up.handle(chat(prompt, false, 40), at(1000)).status == 200);
  // A request larger than the whole budget is refused; it would never fit.
  CHECK(up.handle(chat(prompt, false, 200), at(5000)).rejected == reject_reason::tokens);
  CHECK(estimate_tokens(0) == 0);
  CHECK(estimate_tokens(1) == 1);
  CHECK(estimate_tokens(8) == 2);
}

TEST_CASE("mock admission: rate-limit headers on 200 and 429", "[mock]") {
  // Intent: x-ratelimit-* tell the remaining requests and the time until the window empties.
  mock_upstream up(upstream(3, 2000ms));
  auto r = up.handle(chat("x"), at(0));
  CHECK(r.header("x-ratelimit-limit-requests") == "3");
  CHECK(r.header("x-ratelimit-remaining-requests") == "2");
  CHECK(r.header("x-ratelimit-reset-requests") == "2s");
  CHECK(r.header("x-ratelimit-limit-tokens").empty()); // tokens not limited
  up.handle(chat("x"), at(500));
  r = up.handle(chat("x"), at(500));
  CHECK(r.header("x-ratelimit-remaining-requests") == "0");
  r = up.handle(chat("x"), at(1000));
  CHECK(r.status == 429);
  CHECK(r.header("x-ratelimit-remaining-requests") == "0");
  CHECK(r.header("x-ratelimit-reset-requests") == "1.5s");
  CHECK(format_reset(0ms) == "0s");
  CHECK(format_reset(20ms) == "20ms");
  CHECK(format_reset(1500ms) == "1.5s");
  CHECK(format_reset(1050ms) == "1.05s");
  CHECK(format_reset(360000ms) == "6m0s");
}

TEST_CASE("mock replies: 400, 401, 404, 405 and styles", "[mock]") {
  // Intent: strict request checks, each with the vendor's error shape; none of them is admitted.
  auto cfg = upstream(10, 1000ms);
  cfg.style = api_style::openai;
  cfg.api_key = "sk-test";
  mock_upstream up(cfg);
  auto with_key = chat("x");
  with_key.authorization = "Bearer sk-test";
  CHECK(up.handle(with_key, at(0)).status == 200);
  auto r = up.handle(chat("x"), at(0));
  CHECK(r.status == 401);
  CHECK(json::parse(r.body)["error"]["code"] == "invalid_api_key");
  auto by_header = chat("x");
  by_header.api_key = "sk-test";
  CHECK(up.handle(by_header, at(0)).status == 200);
  CHECK(up.handle({"POST", "/v1/messages", "{}", "Bearer sk-test", ""}, at(0)).status == 404); // openai style only
  CHECK(up.handle({"GET", "/v1/chat/completions", "", "Bearer sk-test", ""}, at(0)).status == 405);
  r = up.handle({"POST", "/v1/chat/completions", "{not json", "Bearer sk-test", ""}, at(0));
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["error"]["type"] == "invalid_request_error");
  CHECK(up.handle({"POST", "/v1/chat/completions", R"({"model":"m"})", "Bearer sk-test", ""}, at(0)).status == 400);
  CHECK(up.stats().admitted == 2);

  mock_upstream anth(upstream(10, 1000ms));
  // Anthropic requires max_tokens.
  r = anth.handle({"POST", "/v1/messages", R"({"model":"c","messages":[{"role":"user","content":"hi"}]})", "", ""},
                  at(0));
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["type"] == "error");
}

TEST_CASE("mock replies: streamed text equals the non-streamed text, OpenAI and Anthropic", "[mock]") {
  // Intent: the same prompt gives the same words whichever way it is delivered; usage is reported.
  auto cfg = upstream(100, 1000ms);
  cfg.reply_tokens = 12;
  mock_upstream up(cfg);
  auto plain = json::parse(up.handle(chat("tell me"), at(0)).body);
  std::string text = plain["choices"][0]["message"]["content"];
  CHECK(plain["model"] == "gpt-mock");
  CHECK(plain["usage"]["completion_tokens"] == 12);
  CHECK(plain["usage"]["prompt_tokens"] == 2); // "tell me" is 7 chars, rounded up
  CHECK(plain["choices"][0]["finish_reason"] == "stop");

  auto req = chat("tell me", true);
  auto body = json::parse(req.body);
  body["stream_options"] = {{"include_usage", true}};
  req.body = body.dump();
  auto streamed = up.handle(req, at(0));
  CHECK(streamed.stream);
  CHECK(streamed.content_type == "text/event-stream");
  CHECK(streamed.frames.back().data == "data: [DONE]\n\n");
  std::string joined;
  std::size_t tokens = 0;
  for (const auto& f : streamed.frames)
    tokens += f.token;
  CHECK(tokens == 12);
  auto chunks = frame_json(streamed.frames);
  for (const auto& c : chunks)
    if (!c["choices"].empty() && c["choices"][0]["delta"].contains("content"))
      joined += c["choices"][0]["delta"]["content"].get<std::string>();
  CHECK(joined == text);
  CHECK(chunks[chunks.size() - 2]["choices"][0]["finish_reason"] == "stop");
  CHECK(chunks.back()["usage"]["completion_tokens"] == 12);

  auto a_plain = json::parse(up.handle(messages("tell me"), at(0)).body);
  auto a_stream = up.handle(messages("tell me", true), at(0));
  std::string a_joined;
  std::vector<std::string> types;
  for (const auto& e : frame_json(a_stream.frames)) {
    types.push_back(e["type"]);
    if (e["type"] == "content_block_delta")
      a_joined += e["delta"]["text"].get<std::string>();
  }
  CHECK(a_plain["content"][0]["text"] == text); // same prompt, same words
  CHECK(a_joined == text);
  CHECK(a_plain["usage"]["output_tokens"] == 12);
  CHECK(types.front() == "message_start");
  CHECK(types.back() == "message_stop");
  CHECK(types[types.size() - 2] == "message_delta");
}

TEST_CASE("mock replies: max_tokens truncates and latency adds up", "[mock]") {
  // Intent: a short max_tokens stops at that many words with finish_reason length; the delay is fixed +
  // per_token x tokens when not streaming and fixed alone before a stream's head.
  auto cfg = upstream(100, 1000ms);
  cfg.reply_tokens = 40;
  cfg.latency = {50ms, 0ms, 2ms};
  mock_upstream up(cfg);
  auto r = up.handle(chat("x", false, 5), at(0));
  auto j = json::parse(r.body);
  CHECK(j["usage"]["completion_tokens"] == 5);
  CHECK(j["choices"][0]["finish_reason"] == "length");
  CHECK(r.delay == 60ms);
  auto s = up.handle(chat("x", true, 5), at(0));
  CHECK(s.delay == 50ms);
  CHECK(s.per_token == 2ms);
}

TEST_CASE("mock replies: embeddings are deterministic unit vectors", "[mock]") {
  // Intent: the same input gives the same vector; `dimensions` is honoured.
  mock_upstream up(upstream(100, 1000ms));
  auto req = [](const json& input) {
    return mock_request{"POST", "/v1/embeddings", json{{"model", "emb"}, {"input", input}, {"dimensions", 8}}.dump(),
                        "", ""};
  };
  auto a = json::parse(up.handle(req({"alpha", "beta"}), at(0)).body);
  auto b = json::parse(up.handle(req("alpha"), at(0)).body);
  REQUIRE(a["data"].size() == 2);
  CHECK(a["data"][0]["embedding"].size() == 8);
  CHECK(a["data"][0]["embedding"] == b["data"][0]["embedding"]);
  CHECK(a["data"][1]["embedding"] != b["data"][0]["embedding"]);
  double norm = 0;
  for (double x : a["data"][0]["embedding"])
    norm += x * x;
  CHECK(norm == Approx(1.0));
}

TEST_CASE("mock faults: each mode changes the reply; admin is never limited", "[mock]") {
  // Intent: faults switch at run time; error500 is deterministic; reset clears faults, stats and the window.
  mock_upstream up(upstream(100, 1000ms));
  CHECK(up.handle(admin_fault({{"mode", "error500"}, {"fraction", 0.25}}), at(0)).status == 200);
  std::vector<int> statuses;
  for (int i = 0; i < 8; ++i) {
    statuses.push_back(up.handle(chat("x"), at(0)).status);
    up.release();
  }
  CHECK(statuses == std::vector<int>{200, 200, 200, 500, 200, 200, 200, 500});

  up.handle(admin_fault({{"mode", "down"}}), at(0));
  CHECK(up.handle(chat("x"), at(0)).drop);
  up.handle(admin_fault({{"mode", "unauthorized"}}), at(0));
  CHECK(up.handle(chat("x"), at(0)).status == 401);
  up.handle(admin_fault({{"mode", "slow"}, {"slow_ms", 300}}), at(0));
  CHECK(up.handle(chat("x"), at(0)).delay == 300ms);
  up.handle(admin_fault({{"mode", "garbage"}}), at(0));
  auto g = up.handle(chat("x"), at(0));
  CHECK(g.status == 200);
  CHECK(json::parse(g.body, nullptr, false).is_discarded());
  up.handle(admin_fault({{"mode", "ratelimited"}, {"retry_after_ms", 1500}}), at(0));
  auto limited = up.handle(chat("x"), at(0));
  CHECK(limited.status == 429);
  CHECK_FALSE(limited.admitted); // refused at arrival: holds no in-flight slot
  CHECK(limited.header("Retry-After") == "2");
  CHECK(limited.header("retry-after-ms") == "1500");
  up.handle(admin_fault({{"mode", "cut"}, {"cut_after", 3}}), at(0));
  CHECK(up.handle(chat("x", true), at(0)).cut_after == std::optional<std::size_t>(3));

  CHECK(up.handle(admin_fault({{"mode", "sideways"}}), at(0)).status == 400);
  CHECK(up.handle(admin_fault({{"mode", "error500"}, {"fraction", 2}}), at(0)).status == 400);
  CHECK(up.handle(admin_fault({{"mode", "slow"}, {"typo", 1}}), at(0)).status == 400);
  CHECK(up.fault().mode == fault_mode::cut); // bad requests leave the fault as it was

  auto stats = json::parse(up.handle({"GET", "/stats", "", "", ""}, at(0)).body);
  CHECK(stats["requests_total"] == 14);
  CHECK(stats["fault"] == "cut");
  CHECK(up.handle({"POST", "/admin/reset", "", "", ""}, at(0)).status == 200);
  CHECK(up.fault().mode == fault_mode::none);
  stats = json::parse(up.handle({"GET", "/stats", "", "", ""}, at(0)).body);
  CHECK(stats["admitted"] == 0);
  CHECK(stats["requests_total"] == 0);
}

TEST_CASE("mock replies: rendered heads and chunks", "[mock]") {
  // Intent: framing is right: Content-Length or chunked, Connection, and hex chunk sizes.
  mock_reply r;
  r.status = 429;
  r.body = "{}";
  r.headers = {{"Retry-After", "1"}};
  CHECK(render_head(r, true) ==
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        "Connection: keep-alive\r\nRetry-After: 1\r\n\r\n");
  r.stream = true;
  CHECK(render_head(r, false).find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(render_head(r, false).find("Connection: close\r\n") != std::string::npos);
  CHECK(render_chunk("hello") == "5\r\nhello\r\n");
  CHECK(render_chunk(std::string(26, 'x')).substr(0, 4) == "1a\r\n");
  CHECK(render_chunk("") == "0\r\n\r\n");
}
