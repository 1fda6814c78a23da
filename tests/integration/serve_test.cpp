// `squad serve` end to end: the real binary on loopback in front of squad-mock-provider, driven over real sockets.
// Every error status of the API has a case that sends the bad input and checks the OpenAI-style body.
#include "tests/integration/http_client.hpp"
#include "tests/integration/serve_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <array>
#include <cstdio>
#include <future>
#include <thread>

using json = nlohmann::json;
using namespace squad;
using namespace std::chrono_literals;

namespace {

// Shared with tests/js/harness.mjs.
std::string mock_yaml() {
  return test::slurp(SQUAD_SOURCE_DIR "/tests/data/serve_mock.yaml");
}

// The provider "main" streams from its upstream; "spare" does not. `server` is the server block's body.
std::string squad_yaml(const test::mock_process& m, const std::string& server = "{listen: 127.0.0.1:0}") {
  auto provider = [&](const std::string& name, const std::string& extra) {
    return "  " + name + ":\n    kind: openai\n    base_url: http://127.0.0.1:" + std::to_string(m.port(name)) +
           "/v1\n    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 16}\n"
           "    timeouts: {connect: 1s, first_byte: 3s, idle: 3s, total: 10s}\n" +
           extra + "    models:\n      m: {id: mock-" + name + ", tier: worker}\n";
  };
  return "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR "/config/workflows\n"
         "server: " +
         server +
         "\n"
         "providers:\n" +
         provider("main", "    stream: true\n") + provider("spare", "") +
         "personas:\n  analyst: {chain: [main/m, spare/m]}\n"
         "aliases:\n  fast: main/m\n  helper: persona/analyst\n";
}

struct served {
  test::mock_process mock{mock_yaml()};
  test::serve_process squad;
  explicit served(const std::string& server = "{listen: 127.0.0.1:0}", const std::string& extra = "")
      : squad{squad_yaml(mock, server) + extra} {}

  test::http_result post(const std::string& target, const std::string& body, const test::header_list& h = {}) {
    return test::request("POST", "127.0.0.1", squad.port(), target, body, h);
  }
  test::http_result get(const std::string& target, const test::header_list& h = {}) {
    return test::request("GET", "127.0.0.1", squad.port(), target, "", h);
  }
  test::http_result chat(const json& body, const test::header_list& h = {}) {
    return post("/v1/chat/completions", body.dump(), h);
  }
  void fault(const std::string& upstream, const json& f) {
    auto r = test::request("POST", "127.0.0.1", mock.port(upstream), "/admin/fault", f.dump());
    REQUIRE(r.status == 200);
  }
  json mock_stats(const std::string& upstream) {
    auto r = test::request("GET", "127.0.0.1", mock.port(upstream), "/stats");
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
};

json hello(const std::string& model, const std::string& text = "Say hello") {
  return {{"model", model}, {"messages", json::array({{{"role", "user"}, {"content", text}}})}, {"max_tokens", 32}};
}

// The error body every refusal carries: {"error": {"message", "type", "param", "code"}}.
json error_of(const test::http_result& r) {
  INFO(r.body);
  auto j = json::parse(r.body);
  REQUIRE(j.contains("error"));
  REQUIRE(j["error"]["message"].is_string());
  REQUIRE(j["error"]["type"].is_string());
  REQUIRE(j["error"].contains("param"));
  REQUIRE(j["error"].contains("code"));
  return j["error"];
}

// The data payloads of an SSE body, in order.
std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    auto end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end == std::string::npos ? std::string::npos : end - pos - 6));
    if (end == std::string::npos)
      break;
    pos = end + 2;
  }
  return out;
}

std::string key_hash(const std::string& key) {
  std::string out;
  FILE* p = popen(("'" SQUAD_BIN "' key hash '" + key + "'").c_str(), "r");
  REQUIRE(p);
  std::array<char, 256> buf;
  while (auto n = fread(buf.data(), 1, buf.size(), p))
    out.append(buf.data(), n);
  REQUIRE(pclose(p) == 0);
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

// A raw TCP exchange: sends `head` and waits up to `wait` for the server's answer (or its closing the socket).
std::string raw_exchange(std::uint16_t port, const std::string& head, std::chrono::milliseconds wait) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size()));
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
      break;
    char buf[4096];
    auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return got;
}

} // namespace

TEST_CASE("serve: a chat call to a persona answers a chat.completion with usage and who served it") {
  served s;
  auto r = s.chat(hello("persona/analyst"));
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "application/json");
  auto j = json::parse(r.body);
  CHECK(j["object"] == "chat.completion");
  CHECK(j["model"] == "persona/analyst");
  CHECK(!j["choices"][0]["message"]["content"].get<std::string>().empty());
  CHECK(j["choices"][0]["message"]["role"] == "assistant");
  CHECK(j["usage"]["completion_tokens"].get<int>() > 0);
  CHECK(j["squad"]["served_by"] == "main/m");
  CHECK(r.header("x-squad-served-by") == "main/m");
  CHECK(r.header("x-squad-cache") == "miss");
}

TEST_CASE("serve: a provider model and an alias are served directly; /v1/models lists all three kinds") {
  served s;
  auto direct = s.chat(hello("spare/m"));
  REQUIRE(direct.status == 200);
  CHECK(json::parse(direct.body)["squad"]["served_by"] == "spare/m");
  auto alias = s.chat(hello("fast"));
  REQUIRE(alias.status == 200);
  CHECK(json::parse(alias.body)["squad"]["served_by"] == "main/m");
  CHECK(s.mock_stats("spare")["admitted"] == 1);
  CHECK(s.mock_stats("main")["admitted"] == 1);

  auto models = s.get("/v1/models");
  REQUIRE(models.status == 200);
  std::map<std::string, std::string> kinds;
  auto list = json::parse(models.body);
  for (auto& m : list["data"])
    kinds[m["id"].get<std::string>()] = m["squad_kind"].get<std::string>();
  CHECK(kinds["persona/analyst"] == "persona");
  CHECK(kinds["main/m"] == "model");
  CHECK(kinds["spare/m"] == "model");
  CHECK(kinds["fast"] == "alias");
  CHECK(kinds["helper"] == "alias");
}

TEST_CASE("serve: stream:true answers SSE chunks that add up to the answer and end with [DONE]") {
  served s;
  auto body = hello("persona/analyst");
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto r = s.chat(body);
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "text/event-stream");
  auto data = sse_data(r.body);
  REQUIRE(data.size() >= 4);
  CHECK(data.back() == "[DONE]");
  std::string text;
  bool finished = false, usage = false;
  for (std::size_t i = 0; i + 1 < data.size(); ++i) {
    auto c = json::parse(data[i]);
    CHECK(c["object"] == "chat.completion.chunk");
    if (c["choices"].empty()) {
      usage = c["usage"]["completion_tokens"].get<int>() > 0;
      continue;
    }
    auto& d = c["choices"][0]["delta"];
    if (d.contains("content"))
      text += d["content"].get<std::string>();
    finished |= c["choices"][0]["finish_reason"].is_string();
  }
  CHECK(!text.empty());
  CHECK(finished);
  CHECK(usage);
}

TEST_CASE("serve: an upstream that dies after bytes were sent ends the stream with an error event, not [DONE]") {
  served s;
  s.fault("main", {{"mode", "cut"}, {"fraction", 1.0}, {"cut_after", 4}});
  auto body = hello("main/m");
  body["stream"] = true;
  auto r = s.chat(body);
  INFO(r.body);
  REQUIRE(r.status == 200); // the head went out with the first chunk
  auto data = sse_data(r.body);
  REQUIRE(!data.empty());
  CHECK(data.back() != "[DONE]");
  CHECK(r.body.find("[DONE]") == std::string::npos);
  auto last = json::parse(data.back());
  CHECK(last["error"]["code"] == "stream_interrupted");
}

TEST_CASE("serve: 400 names the bad field; 404 lists the valid model forms; 405, 415 and unknown routes") {
  served s;
  struct bad_case {
    std::string body, param;
  };
  std::vector<bad_case> cases = {
      {R"({"messages":[{"role":"user","content":"hi"}]})", "model"},
      {R"({"model":"persona/analyst"})", "messages"},
      {R"({"model":"persona/analyst","messages":[]})", "messages"},
      {R"({"model":"persona/analyst","messages":[{"role":"wizard","content":"hi"}]})", "messages[0].role"},
      {R"({"model":"persona/analyst","messages":[{"role":"user","content":"hi"}],"temperature":3})", "temperature"},
      {R"({"model":"persona/analyst","messages":[{"role":"user","content":"hi"}],"max_tokens":-1})", "max_tokens"},
      {R"({"model":"persona/analyst","messages":[{"role":"user","content":"hi"}],"n":2})", "n"},
      {R"({"model":"persona/analyst","messages":[{"role":"user","content":"hi"}],"stream":"yes"})", "stream"},
  };
  for (auto& c : cases) {
    auto r = s.post("/v1/chat/completions", c.body);
    INFO(c.body << " -> " << r.body);
    CHECK(r.status == 400);
    auto e = error_of(r);
    CHECK(e["type"] == "invalid_request_error");
    CHECK(e["param"] == c.param);
  }
  SECTION("not JSON, and JSON nested too deep") {
    auto r = s.post("/v1/chat/completions", "{\"model\": ");
    CHECK(r.status == 400);
    CHECK(error_of(r)["message"].get<std::string>().find("not valid JSON") != std::string::npos);
    std::string deep = R"({"model":"persona/analyst","messages":[{"role":"user","content":"hi"}],"x":)";
    deep += std::string(40, '[') + std::string(40, ']') + "}";
    auto d = s.post("/v1/chat/completions", deep);
    CHECK(d.status == 400);
    CHECK(error_of(d)["message"].get<std::string>().find("deeper than 32") != std::string::npos);
  }
  SECTION("a bad priority header") {
    auto r = s.chat(hello("persona/analyst"), {{"X-Squad-Priority", "P9"}});
    CHECK(r.status == 400);
    CHECK(error_of(r)["message"].get<std::string>().find("X-Squad-Priority") != std::string::npos);
  }
  SECTION("an unknown model") {
    auto r = s.chat(hello("gpt-4o"));
    CHECK(r.status == 404);
    auto e = error_of(r);
    CHECK(e["code"] == "model_not_found");
    CHECK(e["param"] == "model");
    auto msg = e["message"].get<std::string>();
    CHECK(msg.find("persona/<id>") != std::string::npos);
    CHECK(msg.find("persona/analyst") != std::string::npos);
  }
  SECTION("wrong method, content type and route") {
    auto m = s.get("/v1/chat/completions");
    CHECK(m.status == 405);
    CHECK(m.header("allow") == "POST");
    error_of(m);
    auto t = s.post("/v1/chat/completions", hello("persona/analyst").dump(), {{"Content-Type", "text/plain"}});
    CHECK(t.status == 415);
    error_of(t);
    auto n = s.get("/v2/nothing");
    CHECK(n.status == 404);
    CHECK(error_of(n)["message"].get<std::string>().find("POST /v1/chat/completions") != std::string::npos);
  }
}

TEST_CASE("serve: size limits (413 body, 431 headers) and a slow client times out with 408") {
  served s{"{listen: 127.0.0.1:0, body_limit: 4096, header_limit: 2048, read_timeout: 300ms}"};
  auto big = hello("persona/analyst", std::string(8000, 'x'));
  auto r = s.chat(big);
  CHECK(r.status == 413);
  CHECK(error_of(r)["message"].get<std::string>().find("4096") != std::string::npos);

  auto h = s.chat(hello("persona/analyst"), {{"X-Padding", std::string(4000, 'p')}});
  CHECK(h.status == 431);
  error_of(h);

  // Half a request head, then silence: answered 408 once read_timeout passes, and closed.
  auto t0 = std::chrono::steady_clock::now();
  auto got = raw_exchange(s.squad.port(), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n", 5s);
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(got.rfind("HTTP/1.1 408", 0) == 0);
  CHECK(waited < 3s);
  // The server is still fine afterwards.
  CHECK(s.chat(hello("persona/analyst")).status == 200);
}

TEST_CASE("serve: a call whose client hangs up while it waits for a slot is never sent upstream") {
  // Intent: a client that gives up (closes its connection) while its call is queued behind the provider's rate
  // limit costs no upstream call: when the slot comes the call is dropped, and counted.
  test::mock_process mock{mock_yaml()};
  test::serve_process squad{"personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR
                            "/config/workflows\nserver: {listen: 127.0.0.1:0}\nproviders:\n  slow:\n    kind: openai\n"
                            "    base_url: http://127.0.0.1:" +
                            std::to_string(mock.port("main")) +
                            "/v1\n"
                            "    limits: {requests: 1, per: 2s, burst: 1, concurrency: 4}\n"
                            "    models:\n      m: {id: mock-main, tier: worker}\npersonas: {}\n"};
  auto first = test::request("POST", "127.0.0.1", squad.port(), "/v1/chat/completions", hello("slow/m").dump());
  REQUIRE(first.status == 200); // the window's only slot for the next 2s
  auto body = hello("slow/m").dump();
  auto head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body;
  CHECK(raw_exchange(squad.port(), head, 300ms).empty()); // queued: no answer within the client's patience
  std::string metrics;
  for (int i = 0; i < 100 && metrics.find("squad_calls_abandoned_total{provider=\"slow\"} 1") == std::string::npos;
       ++i) { // the slot comes about 2s after the first call
    std::this_thread::sleep_for(100ms);
    metrics = test::request("GET", "127.0.0.1", squad.port(), "/metrics").body;
  }
  CHECK_THAT(metrics, Catch::Contains("squad_calls_abandoned_total{provider=\"slow\"} 1"));
  auto stats = test::request("GET", "127.0.0.1", mock.port("main"), "/stats");
  CHECK(json::parse(stats.body)["admitted"] == 1);
  // The provider serves the next caller as usual.
  CHECK(test::request("POST", "127.0.0.1", squad.port(), "/v1/chat/completions", hello("slow/m").dump()).status == 200);
}

TEST_CASE("serve: out of file descriptors it pauses accepting, counts it, and serves again once some are free") {
  // Intent: EMFILE on accept leaves the connection in the backlog; retrying at once would spin a core forever.
  served s;
  CHECK_THAT(s.squad.stdout_text(), Catch::Contains("open files)"));
  REQUIRE(s.chat(hello("persona/analyst")).status == 200);
  rlimit low{40, 40};
  REQUIRE(prlimit(s.squad.pid(), RLIMIT_NOFILE, &low, nullptr) == 0);
  std::vector<int> flood;
  for (int i = 0; i < 80; ++i) { // the kernel completes these handshakes into the backlog either way
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(s.squad.port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      flood.push_back(fd);
    else
      close(fd);
  }
  CHECK(flood.size() > 40);
  std::this_thread::sleep_for(300ms); // the client holds its connections a while, as a burst of real clients would
  for (int fd : flood)
    close(fd);
  // The server frees the descriptors of the closed connections and takes new ones again.
  std::string metrics;
  for (int i = 0; i < 100 && metrics.find("squad_accept_errors_total{reason=\"no_descriptors\"}") == std::string::npos;
       ++i) {
    try {
      metrics = s.get("/metrics").body;
    } catch (const std::exception&) {
    }
    if (metrics.find("squad_accept_errors_total") == std::string::npos)
      std::this_thread::sleep_for(50ms);
  }
  CHECK_THAT(metrics, Catch::Contains("squad_accept_errors_total{reason=\"no_descriptors\"}"));
  CHECK(s.chat(hello("persona/analyst")).status == 200);
}

TEST_CASE("serve: a streamed answer whose client hangs up stops the upstream stream, and the breaker is not told") {
  // Intent: tokens nobody will read are not generated (they cost money), and a client's leaving is not a
  // provider failure.
  test::mock_process mock{R"(upstreams:
  slow:
    listen: 127.0.0.1:0
    style: openai
    limits: {requests: 1000, per: 1s, concurrency: 0}
    latency: {fixed: 5ms, per_token: 50ms}
    reply: {tokens: 200}
)"};
  test::serve_process squad{"personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR
                            "/config/workflows\nserver: {listen: 127.0.0.1:0}\nproviders:\n  slow:\n    kind: openai\n"
                            "    base_url: http://127.0.0.1:" +
                            std::to_string(mock.port("slow")) +
                            "/v1\n"
                            "    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 4}\n"
                            "    timeouts: {connect: 1s, first_byte: 3s, idle: 3s, total: 30s}\n"
                            "    models:\n      m: {id: mock-slow, tier: worker}\npersonas: {}\n"};
  auto req = hello("slow/m");
  req["stream"] = true;
  req["max_tokens"] = 400;
  auto body = req.dump();
  auto head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body;
  // Reads until the first content delta has arrived (the upstream would stream for about 10s), then hangs up.
  auto got = raw_exchange(squad.port(), head, 1500ms);
  REQUIRE(got.find("\"content\"") != std::string::npos);
  auto t0 = std::chrono::steady_clock::now();
  json stats;
  std::string metrics;
  for (int i = 0; i < 60; ++i) {
    stats = json::parse(test::request("GET", "127.0.0.1", mock.port("slow"), "/stats").body);
    metrics = test::request("GET", "127.0.0.1", squad.port(), "/metrics").body;
    if (stats["in_flight"] == 0 && metrics.find("client_left") != std::string::npos)
      break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(stats["in_flight"] == 0); // the upstream stream ended
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  CHECK_THAT(metrics, Catch::Contains("squad_upstream_calls_total{provider=\"slow\",outcome=\"client_left\"} 1"));
  CHECK_THAT(metrics, Catch::Contains("squad_breaker_state{provider=\"slow\"} 0")); // still closed
}

TEST_CASE("serve: pipelined requests on one connection are answered in order") {
  // Intent: bytes of a next request that arrive while an answer is prepared are kept for the next read.
  served s;
  auto body = hello("persona/analyst").dump();
  auto one = [&](const std::string& extra) {
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  auto got = raw_exchange(s.squad.port(),
                          one("") + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + one("Connection: close\r\n"), 10s);
  auto first = got.find("HTTP/1.1 200");
  auto health = got.find("HTTP/1.1 200", first + 1);
  auto third = got.find("HTTP/1.1 200", health + 1);
  REQUIRE(third != std::string::npos);
  CHECK(got.find("chat.completion") < health);                    // the chat answer came first
  CHECK(got.find("chat.completion", third) != std::string::npos); // and the third request's after /healthz
}

TEST_CASE("serve: API keys: 401 without or with a wrong key, 403 outside the key's models, 429 with Retry-After") {
  auto alice = key_hash("sk-test-alice-0123456789");
  auto bob = key_hash("sk-test-bob-0123456789ab");
  auto carol = key_hash("sk-test-carol-0123456789");
  REQUIRE(alice.size() == 64);
  served s{"{listen: 127.0.0.1:0, auth: keys, keys: {alice: {sha256: " + alice + ", rpm: 2}, bob: {sha256: " + bob +
           ", daily_calls: 1}, carol: {sha256: " + carol + ", models: [persona/analyst]}}}"};
  auto as = [](const std::string& key) { return test::header_list{{"Authorization", "Bearer " + key}}; };

  auto none = s.chat(hello("persona/analyst"));
  CHECK(none.status == 401);
  CHECK(error_of(none)["code"] == "missing_api_key");
  auto wrong = s.chat(hello("persona/analyst"), as("sk-test-mallory-000000000"));
  CHECK(wrong.status == 401);
  CHECK(error_of(wrong)["code"] == "invalid_api_key");
  auto scheme = s.chat(hello("persona/analyst"), {{"Authorization", "Basic abc"}});
  CHECK(scheme.status == 401);
  error_of(scheme);

  // alice: 2 requests per minute; the third is refused with a Retry-After of at most a minute. Each answer tells
  // her key's limit, what is left and when it resets, as OpenAI's x-ratelimit-* headers do.
  auto first = s.chat(hello("persona/analyst"), as("sk-test-alice-0123456789"));
  CHECK(first.status == 200);
  CHECK(first.header("x-ratelimit-limit-requests") == "2");
  CHECK(first.header("x-ratelimit-remaining-requests") == "1");
  CHECK_THAT(first.header("x-ratelimit-reset-requests"), Catch::EndsWith("s"));
  CHECK(first.header("x-ratelimit-limit-requests-day").empty()); // no daily limit on this key
  CHECK(s.chat(hello("persona/analyst"), as("sk-test-alice-0123456789")).status == 200);
  auto third = s.chat(hello("persona/analyst"), as("sk-test-alice-0123456789"));
  CHECK(third.status == 429);
  CHECK(third.header("x-ratelimit-remaining-requests") == "0");
  CHECK(error_of(third)["code"] == "key_limit");
  REQUIRE(!third.header("retry-after").empty());
  auto ra = std::stoi(third.header("retry-after"));
  CHECK(ra >= 1);
  CHECK(ra <= 60);
  // Listing models is not a chat call: it does not count against the key.
  CHECK(s.get("/v1/models", as("sk-test-alice-0123456789")).status == 200);

  // bob: one call a day.
  CHECK(s.chat(hello("persona/analyst"), as("sk-test-bob-0123456789ab")).status == 200);
  auto daily = s.chat(hello("persona/analyst"), as("sk-test-bob-0123456789ab"));
  CHECK(daily.status == 429);
  CHECK(error_of(daily)["message"].get<std::string>().find("daily") != std::string::npos);
  CHECK(!daily.header("retry-after").empty());

  // carol may use persona/analyst only.
  CHECK(s.chat(hello("persona/analyst"), as("sk-test-carol-0123456789")).status == 200);
  auto other = s.chat(hello("main/m"), as("sk-test-carol-0123456789"));
  CHECK(other.status == 403);
  CHECK(error_of(other)["param"] == "model");
}

TEST_CASE("serve: calls with one X-Squad-Run id share one budget of LLM calls; P0 runs beyond it") {
  served s{"{listen: 127.0.0.1:0}", "runtime: {shared_calls: 3}\n"};
  test::header_list run{{"X-Squad-Run", "sprint-42"}};
  for (int i = 0; i < 3; ++i)
    CHECK(s.chat(hello("spare/m", "question " + std::to_string(i)), run).status == 200);
  auto spent = s.chat(hello("spare/m", "one more"), run);
  INFO(spent.body);
  CHECK(spent.status == 429);
  auto e = error_of(spent);
  CHECK(e["code"] == "budget_spent");
  CHECK(e["message"].get<std::string>().find("sprint-42") != std::string::npos);
  CHECK(!spent.header("retry-after").empty());
  CHECK(s.mock_stats("spare")["admitted"] == 3); // the refused call never reached the upstream
  // Another id has its own budget; P0 is never refused for a spent budget.
  CHECK(s.chat(hello("spare/m"), {{"X-Squad-Run", "sprint-43"}}).status == 200);
  CHECK(s.chat(hello("spare/m"), {{"X-Squad-Run", "sprint-42"}, {"X-Squad-Priority", "P0"}}).status == 200);
  auto bad = s.chat(hello("spare/m"), {{"X-Squad-Run", "no spaces allowed"}});
  CHECK(bad.status == 400);
  CHECK(error_of(bad)["param"] == "X-Squad-Run");
}

TEST_CASE("serve: concurrent calls cannot overshoot an X-Squad-Run budget") {
  served s{"{listen: 127.0.0.1:0}", "runtime: {shared_calls: 3}\n"};
  s.fault("spare", {{"mode", "slow"}, {"fraction", 1.0}, {"slow_ms", 300}}); // all ten are in flight at once
  std::vector<std::future<test::http_result>> calls;
  for (int i = 0; i < 10; ++i)
    calls.push_back(std::async(std::launch::async, [&s, i] {
      return s.chat(hello("spare/m", "q" + std::to_string(i)), {{"X-Squad-Run", "burst"}});
    }));
  int ok = 0, spent = 0;
  for (auto& f : calls) {
    auto r = f.get();
    ok += r.status == 200;
    if (r.status == 429 && error_of(r)["code"] == "budget_spent")
      ++spent;
  }
  CHECK(ok == 3);
  CHECK(spent == 7);
  CHECK(s.mock_stats("spare")["admitted"] == 3);
}

TEST_CASE("serve: a key limited to some models may not start runs (403); runs count against a key's rpm") {
  auto alice = key_hash("sk-test-alice-0123456789");
  auto carol = key_hash("sk-test-carol-0123456789");
  served s{"{listen: 127.0.0.1:0, auth: keys, keys: {alice: {sha256: " + alice + ", rpm: 1}, carol: {sha256: " + carol +
           ", models: [persona/analyst]}}}"};
  auto as = [](const std::string& key) { return test::header_list{{"Authorization", "Bearer " + key}}; };
  auto run = std::string{R"({"task":"Build a habit tracker","workflow":"quick"})"};
  auto c = s.post("/v1/runs", run, as("sk-test-carol-0123456789"));
  CHECK(c.status == 403);
  CHECK(error_of(c)["code"] == "model_not_allowed");
  auto first = s.post("/v1/runs", run, as("sk-test-alice-0123456789"));
  INFO(first.body);
  CHECK(first.status == 202);
  auto second = s.post("/v1/runs", run, as("sk-test-alice-0123456789"));
  CHECK(second.status == 429);
  CHECK(!second.header("retry-after").empty());
  CHECK(s.post("/v1/runs", run).status == 401);
}

TEST_CASE("serve: 503 with Retry-After when no provider can serve") {
  served s;
  s.fault("main", {{"mode", "error500"}, {"fraction", 1.0}});
  s.fault("spare", {{"mode", "error500"}, {"fraction", 1.0}});
  auto r = s.chat(hello("persona/analyst"));
  INFO(r.body);
  CHECK(r.status == 503);
  CHECK(error_of(r)["code"] == "no_provider");
  CHECK(!r.header("retry-after").empty());
}

TEST_CASE("serve: /healthz, /readyz and /metrics with requests, upstream calls and the overhead histogram") {
  served s;
  CHECK(s.get("/healthz").status == 200);
  CHECK(s.get("/readyz").status == 200);
  REQUIRE(s.chat(hello("persona/analyst")).status == 200);
  CHECK(s.chat(hello("nope/none")).status == 404);
  auto m = s.get("/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.header("content-type").find("text/plain") == 0);
  INFO(m.body);
  CHECK(m.body.find("squad_http_requests_total{route=\"chat\",status=\"200\"} 1") != std::string::npos);
  CHECK(m.body.find("squad_http_requests_total{route=\"chat\",status=\"404\"} 1") != std::string::npos);
  CHECK(m.body.find("squad_upstream_calls_total{provider=\"main\",outcome=\"ok\"} 1") != std::string::npos);
  CHECK(m.body.find("squad_gateway_overhead_seconds_count 1") != std::string::npos);
  CHECK(m.body.find("squad_breaker_state{provider=\"main\"} 0") != std::string::npos);
  CHECK(m.body.find("# TYPE squad_limiter_queue_depth gauge") != std::string::npos);
}

TEST_CASE("serve: SIGTERM lets the call in flight finish, then exits 0 (actors on the io threads or on CAF's)") {
  auto scheduler = GENERATE(as<std::string>{}, "io", "caf");
  INFO("runtime.scheduler " << scheduler);
  served s{"{listen: 127.0.0.1:0}", "runtime: {scheduler: " + scheduler + "}\n"};
  s.fault("spare", {{"mode", "slow"}, {"fraction", 1.0}, {"slow_ms", 1500}});
  auto call = std::async(std::launch::async, [&] { return s.chat(hello("spare/m")); });
  // Wait until the upstream holds the call, then ask the server to stop.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (s.mock_stats("spare")["in_flight"] == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  REQUIRE(s.mock_stats("spare")["in_flight"] == 1);
  s.squad.terminate();
  auto r = call.get();
  CHECK(r.status == 200);
  CHECK(s.squad.stop() == 0);
  CHECK(s.squad.stdout_text().find("draining") != std::string::npos);
}

namespace {

// The shipped config (simulated providers) with absolute paths, for whole squad runs.
std::string sim_yaml() {
  auto text = test::slurp(SQUAD_SOURCE_DIR "/config/squad.yaml");
  auto set = [&](const std::string& from, const std::string& to) {
    auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, from.size(), to);
  };
  set("personas_dir: personas", "personas_dir: " SQUAD_SOURCE_DIR "/personas");
  set("workflows_dir: config/workflows", "workflows_dir: " SQUAD_SOURCE_DIR "/config/workflows");
  return text;
}

// The events of an SSE body: (event name, data JSON).
std::vector<std::pair<std::string, json>> sse_events(const std::string& body) {
  std::vector<std::pair<std::string, json>> out;
  std::size_t pos = 0;
  while ((pos = body.find("event: ", pos)) != std::string::npos) {
    auto nl = body.find('\n', pos);
    auto data = body.find("data: ", nl);
    auto end = body.find("\n\n", data);
    REQUIRE(end != std::string::npos);
    out.emplace_back(body.substr(pos + 7, nl - pos - 7), json::parse(body.substr(data + 6, end - data - 6)));
    pos = end + 2;
  }
  return out;
}

} // namespace

TEST_CASE("runs API: POST starts a squad run, its events stream as SSE to run.completed, GET shows the artifacts") {
  test::serve_process squad{sim_yaml()};
  auto port = squad.port();
  auto started =
      test::request("POST", "127.0.0.1", port, "/v1/runs", R"({"task":"Build a habit tracker","budget":{"calls":20}})");
  INFO(started.body);
  REQUIRE(started.status == 202);
  auto id = json::parse(started.body)["id"].get<std::string>();
  CHECK(started.header("location") == "/v1/runs/" + id);

  auto events = test::request("GET", "127.0.0.1", port, "/v1/runs/" + id + "/events");
  REQUIRE(events.status == 200);
  CHECK(events.header("content-type") == "text/event-stream");
  CHECK(events.complete); // the stream ends by itself after the last event
  auto evs = sse_events(events.body);
  REQUIRE(!evs.empty());
  CHECK(evs.front().first == "run.started");
  CHECK(evs.back().first == "run.completed");
  std::int64_t last_seq = 0;
  std::size_t completed = 0;
  for (auto& [name, ev] : evs) {
    CHECK(ev["type"] == name);
    CHECK(ev["run_id"] == id);
    if (name != "step.delta") { // kept events replay in order
      CHECK(ev["seq"].get<std::int64_t>() > last_seq);
      last_seq = ev["seq"].get<std::int64_t>();
    }
    completed += name == "step.completed";
  }
  CHECK(completed == 6);

  auto snap = test::request("GET", "127.0.0.1", port, "/v1/runs/" + id);
  REQUIRE(snap.status == 200);
  auto run = json::parse(snap.body);
  CHECK(run["state"] == "completed");
  CHECK(run["workflow"] == "greenfield");
  CHECK(run["steps"].size() == 6);
  CHECK(!run["artifacts"]["synthesis"].get<std::string>().empty());
  auto list = json::parse(test::request("GET", "127.0.0.1", port, "/v1/runs").body);
  CHECK(list["data"][0]["id"] == id);
  // A finished run cannot be cancelled.
  auto late = test::request("DELETE", "127.0.0.1", port, "/v1/runs/" + id);
  CHECK(late.status == 409);
  CHECK(error_of(late)["code"] == "run_ended");
}

TEST_CASE("runs API: a step waits for a person's feedback, which its dependents then read; DELETE cancels") {
  test::serve_process squad{sim_yaml()};
  auto port = squad.port();
  auto started = test::request("POST", "127.0.0.1", port, "/v1/runs",
                               R"({"task":"Build a habit tracker","feedback":{"brief":60000}})");
  REQUIRE(started.status == 202);
  auto id = json::parse(started.body)["id"].get<std::string>();
  // Follow the events until the brief waits.
  std::string seen;
  std::atomic<bool> waiting{false};
  auto follower = std::async(std::launch::async, [&] {
    return test::stream("GET", "127.0.0.1", port, "/v1/runs/" + id + "/events", "", {}, [&](std::string_view piece) {
      seen.append(piece);
      if (seen.find("event: step.awaiting_feedback") != std::string::npos)
        waiting = true;
    });
  });
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!waiting && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  REQUIRE(waiting);
  auto snap = json::parse(test::request("GET", "127.0.0.1", port, "/v1/runs/" + id).body);
  CHECK(snap["steps"][0]["status"] == "awaiting_feedback");
  CHECK(snap["steps"][1]["status"] == "pending"); // prd reads brief: it waits too

  auto no_step = test::request("POST", "127.0.0.1", port, "/v1/runs/" + id + "/steps/nope/feedback", R"({"text":"x"})");
  CHECK(no_step.status == 404);
  auto not_waiting =
      test::request("POST", "127.0.0.1", port, "/v1/runs/" + id + "/steps/prd/feedback", R"({"text":"x"})");
  CHECK(not_waiting.status == 409);
  auto no_text = test::request("POST", "127.0.0.1", port, "/v1/runs/" + id + "/steps/brief/feedback", R"({"txt":"x"})");
  CHECK(no_text.status == 400);
  CHECK(error_of(no_text)["param"] == "text");
  auto fb = test::request("POST", "127.0.0.1", port, "/v1/runs/" + id + "/steps/brief/feedback",
                          R"({"text":"Only teams of five or fewer"})");
  CHECK(fb.status == 202);

  auto r = follower.get();
  auto evs = sse_events(r.body);
  REQUIRE(!evs.empty());
  CHECK(evs.back().first == "run.completed");
  bool got_feedback = false;
  for (auto& [name, ev] : evs)
    got_feedback |= name == "step.feedback" && ev["data"]["text"] == "Only teams of five or fewer";
  CHECK(got_feedback);
  auto done = json::parse(test::request("GET", "127.0.0.1", port, "/v1/runs/" + id).body);
  CHECK(done["artifacts"]["brief"].get<std::string>().find("Only teams of five or fewer") != std::string::npos);

  // Cancelling: a run waiting for feedback is cancelled by DELETE, and says so.
  auto second = test::request("POST", "127.0.0.1", port, "/v1/runs", R"({"task":"Another","feedback":["brief"]})");
  REQUIRE(second.status == 202);
  auto id2 = json::parse(second.body)["id"].get<std::string>();
  auto del = test::request("DELETE", "127.0.0.1", port, "/v1/runs/" + id2);
  CHECK(del.status == 202);
  auto evs2 = sse_events(test::request("GET", "127.0.0.1", port, "/v1/runs/" + id2 + "/events").body);
  REQUIRE(!evs2.empty());
  CHECK(evs2.back().first == "run.failed");
  CHECK(evs2.back().second["data"]["reason"] == "cancelled");
  CHECK(json::parse(test::request("GET", "127.0.0.1", port, "/v1/runs/" + id2).body)["state"] == "cancelled");
}

TEST_CASE("runs API: bad requests name the field; unknown runs are 404; /v1/ws without an upgrade is 426") {
  test::serve_process squad{sim_yaml()};
  auto port = squad.port();
  struct bad_case {
    std::string body, param;
  };
  std::vector<bad_case> cases = {
      {R"({"workflow":"greenfield"})", "task"},
      {R"({"task":"  "})", "task"},
      {R"({"task":"x","workflow":"../etc"})", "workflow"},
      {R"({"task":"x","workflow":"nope"})", "workflow"},
      {R"({"task":"x","budget":{"calls":0}})", "budget.calls"},
      {R"({"task":"x","budget":{"dollars":3}})", "budget.dollars"},
      {R"({"task":"x","feedback":{"nope":1000}})", "feedback"},
      {R"({"task":"x","feedback":{"brief":-1}})", "feedback.brief"},
  };
  for (auto& c : cases) {
    auto r = test::request("POST", "127.0.0.1", port, "/v1/runs", c.body);
    INFO(c.body << " -> " << r.body);
    CHECK(r.status == 400);
    CHECK(error_of(r)["param"] == c.param);
  }
  CHECK(test::request("GET", "127.0.0.1", port, "/v1/runs/run_0000").status == 404);
  CHECK(test::request("GET", "127.0.0.1", port, "/v1/runs/run_0000/events").status == 404);
  CHECK(test::request("DELETE", "127.0.0.1", port, "/v1/runs/run_0000").status == 404);
  auto put = test::request("PUT", "127.0.0.1", port, "/v1/runs", "{}");
  CHECK(put.status == 405);
  CHECK(put.header("allow") == "GET, POST");
  auto ws = test::request("GET", "127.0.0.1", port, "/v1/ws");
  CHECK(ws.status == 426);
  CHECK(error_of(ws)["code"] == "upgrade_required");
}
