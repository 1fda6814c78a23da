// Provider actors over real loopback sockets: the project's squad-mock-provider binary as the upstream, a real
// actor system, the real io_runtime. Every error class is produced by the upstream and classified by the actor.
#include "actors/provider/provider.hpp"
#include "runtime/host/squad_tree.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/mock_process.hpp"
#include "tests/integration/tls_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>

using namespace squad;
using namespace std::chrono_literals;
using json = nlohmann::json;
using test::mock_process;

namespace {

const std::string host = "127.0.0.1";

struct system_config : caf::actor_system_config {
  system_config() { configure_actor_system(*this, 2); }
};

// An upstream "up" serving both APIs, with the given YAML fragments.
std::string upstream_yaml(const std::string& limits = "{requests: 1000, per: 1s, concurrency: 0}",
                          const std::string& latency = "{fixed: 0ms}", const std::string& extra = "") {
  return "upstreams:\n  up:\n    listen: 127.0.0.1:0\n    style: both\n    limits: " + limits +
         "\n    latency: " + latency + "\n    reply: {tokens: 12}\n" + extra;
}

provider_config make_cfg(const std::string& kind, const std::string& base_url) {
  provider_config p;
  p.name = "up";
  p.kind = kind;
  p.base_url = base_url;
  p.api_key = kind == "anthropic" ? "test-key-123456" : "";
  p.limits.concurrency = 4;
  p.http.connect_timeout = 2s;
  p.http.first_byte_timeout = 5s;
  p.http.idle_timeout = 5s;
  p.http.total_timeout = 10s;
  p.models.push_back({"m", kind == "anthropic" ? "claude-mock" : "gpt-mock", "worker"});
  return p;
}

std::string base_url(const mock_process& m, const std::string& kind) {
  return "http://127.0.0.1:" + std::to_string(m.port("up")) + (kind == "openai" ? "/v1" : "");
}

provider_call make_call(const std::string& prompt, bool stream = false) {
  provider_call c;
  c.target = {"up", "m", "gpt-mock", "worker"};
  c.request.trace_id = "t1";
  c.request.messages = {{"system", "You are terse."}, {"user", prompt}};
  c.request.max_tokens = 100;
  c.request.temperature = 0.5;
  c.request.stream = stream;
  c.request.timeout_ms = 10000;
  return c;
}

json stats(const mock_process& m) {
  auto r = test::request("GET", host, m.port("up"), "/stats");
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

void set_fault(const mock_process& m, const json& fault) {
  auto r = test::request("POST", host, m.port("up"), "/admin/fault", fault.dump());
  REQUIRE(r.status == 200);
}

struct fixture {
  system_config cfg;
  caf::actor_system sys{cfg};
  net::io_runtime io{1}; // stops before the actor system does
  std::vector<caf::actor> spawned;

  ~fixture() {
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  std::pair<caf::actor, std::shared_ptr<net::http_pool>> provider(const provider_config& p) {
    std::string why;
    auto pool = make_provider_pool(io, p, why);
    INFO(why);
    REQUIRE(pool);
    caf::scoped_actor self{sys};
    auto a = caf::actor_cast<caf::actor>(spawn_http_provider(self.ptr(), p, pool));
    spawned.push_back(a);
    return {a, pool};
  }

  upstream_reply call(const caf::actor& a, provider_call c) {
    caf::scoped_actor self{sys};
    upstream_reply out;
    self->request(a, 30s, std::move(c))
        .receive([&](upstream_reply& r) { out = std::move(r); },
                 [&](caf::error& err) { FAIL("no reply from the provider actor: " << to_string(err)); });
    return out;
  }
};

// A TCP port nothing listens on (bound, then closed).
std::uint16_t closed_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

} // namespace

TEST_CASE_METHOD(fixture, "an openai provider answers whole and streamed replies alike", "[provider][http]") {
  mock_process m(upstream_yaml());
  auto [a, pool] = provider(make_cfg("openai", base_url(m, "openai")));
  auto whole = call(a, make_call("Write a haiku about rate limits"));
  INFO(whole.detail);
  REQUIRE(whole.result == outcome::ok);
  CHECK(!whole.text.empty());
  CHECK(whole.finish_reason == "stop");
  CHECK(whole.usage.completion_tokens == 12);
  CHECK(whole.usage.prompt_tokens > 0);
  CHECK(whole.signals.remaining_requests >= 0); // x-ratelimit-remaining-requests came with the reply
  auto streamed = call(a, make_call("Write a haiku about rate limits", true));
  INFO(streamed.detail);
  REQUIRE(streamed.result == outcome::ok);
  CHECK(streamed.text == whole.text);
  CHECK(streamed.usage.completion_tokens == whole.usage.completion_tokens);
  CHECK(streamed.usage.prompt_tokens == whole.usage.prompt_tokens);
  CHECK(streamed.finish_reason == whole.finish_reason);
}

TEST_CASE_METHOD(fixture, "an anthropic provider answers whole and streamed replies alike", "[provider][http]") {
  mock_process m(upstream_yaml());
  auto [a, pool] = provider(make_cfg("anthropic", base_url(m, "anthropic")));
  auto c = make_call("Summarise the meeting");
  c.target.model_id = "claude-mock";
  auto whole = call(a, c);
  INFO(whole.detail);
  REQUIRE(whole.result == outcome::ok);
  CHECK(!whole.text.empty());
  CHECK(whole.usage.completion_tokens == 12);
  c.request.stream = true;
  auto streamed = call(a, c);
  INFO(streamed.detail);
  REQUIRE(streamed.result == outcome::ok);
  CHECK(streamed.text == whole.text);
  CHECK(streamed.usage.completion_tokens == whole.usage.completion_tokens);
  CHECK(streamed.usage.prompt_tokens == whole.usage.prompt_tokens);
}

TEST_CASE_METHOD(fixture, "keep-alive connections are reused and capped", "[provider][http]") {
  mock_process m(upstream_yaml());
  auto cfg = make_cfg("openai", base_url(m, "openai"));
  cfg.http.max_connections = 3;
  auto [a, pool] = provider(cfg);
  auto before = stats(m)["connections_opened"].get<int>();
  for (int i = 0; i < 20; ++i)
    REQUIRE(call(a, make_call("sequential " + std::to_string(i))).result == outcome::ok);
  auto after = stats(m)["connections_opened"].get<int>();
  CHECK(after - before == 2); // one for the 20 calls, one for this /stats request
  CHECK(pool->stats().connections_opened == 1);
  CHECK(pool->stats().reused == 19);

  // 12 at once through a cap of 3: every call answered, never more than 3 connections.
  caf::scoped_actor self{sys};
  int ok = 0;
  for (int i = 0; i < 12; ++i)
    self->send(a, make_call("parallel " + std::to_string(i)));
  for (int i = 0; i < 12; ++i)
    self->receive([&](upstream_reply& r) { ok += r.result == outcome::ok; });
  CHECK(ok == 12);
  CHECK(pool->stats().connections_opened <= 3);
  CHECK(stats(m)["max_in_flight"].get<int>() <= 3);
}

TEST_CASE_METHOD(fixture, "upstream errors are classified", "[provider][http]") {
  mock_process m(upstream_yaml("{requests: 5, per: 60s, concurrency: 0}", "{fixed: 0ms}",
                               "    context: 500\n    max_output: 200\n"));
  for (std::string kind : {"openai", "anthropic"}) {
    DYNAMIC_SECTION(kind) {
      auto [a, pool] = provider(make_cfg(kind, base_url(m, kind)));
      auto c = make_call("hello");
      c.target.model_id = kind == "openai" ? "gpt-mock" : "claude-mock";
      auto expect = [&](provider_call call, outcome want, const std::string& detail_part = "") {
        auto r = this->call(a, std::move(call));
        INFO(kind << ": " << to_string(r.result) << ": " << r.detail);
        CHECK(r.result == want);
        CHECK(r.text.empty());
        if (!detail_part.empty())
          CHECK(r.detail.find(detail_part) != std::string::npos);
        return r;
      };
      test::request("POST", host, m.port("up"), "/admin/reset", "{}");

      set_fault(m, {{"mode", "error500"}, {"fraction", 1.0}});
      expect(c, outcome::server_error, "HTTP 500");
      set_fault(m, {{"mode", "overloaded"}});
      expect(c, outcome::overloaded, kind == "openai" ? "HTTP 503" : "HTTP 529");
      set_fault(m, {{"mode", "garbage"}});
      expect(c, outcome::bad_response, "malformed JSON");
      set_fault(m, {{"mode", "unauthorized"}});
      auto auth = expect(c, outcome::auth_failed, "HTTP 401");
      CHECK(!is_retryable(auth.result));
      set_fault(m, {{"mode", "cut"}, {"cut_after", 3}});
      auto streamed = c;
      streamed.request.stream = true;
      expect(streamed, outcome::stream_cut);
      set_fault(m, {{"mode", "down"}});
      expect(c, outcome::connect_failed, "closed the connection");
      test::request("POST", host, m.port("up"), "/admin/reset", "{}"); // no fault; an empty window

      auto greedy = c;
      greedy.request.max_tokens = 300; // over the upstream's max_output
      auto bad = expect(greedy, outcome::bad_request, "HTTP 400: max_tokens");
      CHECK(!is_retryable(bad.result));
      { // openai: the upstream's 400; anthropic: refused by the adapter (above 1), never clamped in silence
        auto hot = c;
        hot.request.temperature = 5;
        expect(hot, outcome::bad_request, "temperature");
      }
      auto huge = c;
      huge.request.messages.back().content = std::string(4000, 'x');
      auto ctx = expect(huge, outcome::context_too_long);
      CHECK(!is_retryable(ctx.result));

      // Five requests per minute: the sixth is refused (400s are refused before admission, like real APIs).
      for (int i = 0; i < 5; ++i)
        REQUIRE(call(a, c).result == outcome::ok);
      auto limited = expect(c, outcome::rate_limited, "HTTP 429");
      CHECK(limited.signals.retry_after_ms > 0);
      CHECK(limited.signals.retry_after_ms <= 60000);
      if (kind == "openai")
        CHECK(limited.signals.remaining_requests == 0);
    }
  }
}

TEST_CASE_METHOD(fixture, "each timeout is told apart", "[provider][http]") {
  SECTION("first byte") {
    mock_process m(upstream_yaml());
    auto cfg = make_cfg("openai", base_url(m, "openai"));
    cfg.http.first_byte_timeout = 150ms;
    auto [a, pool] = provider(cfg);
    set_fault(m, {{"mode", "slow"}, {"slow_ms", 2000}});
    auto r = call(a, make_call("slow"));
    INFO(r.detail);
    CHECK(r.result == outcome::timeout);
    CHECK(r.detail.starts_with("first_byte timeout after 150ms"));
  }
  SECTION("idle gap between stream chunks") {
    mock_process m(upstream_yaml("{requests: 100, per: 1s, concurrency: 0}", "{fixed: 0ms, per_token: 400ms}"));
    auto cfg = make_cfg("openai", base_url(m, "openai"));
    cfg.http.idle_timeout = 100ms;
    auto [a, pool] = provider(cfg);
    auto r = call(a, make_call("idle", true));
    INFO(r.detail);
    CHECK(r.result == outcome::timeout);
    CHECK(r.detail.starts_with("idle timeout after 100ms"));
  }
  SECTION("total, while chunks keep coming") {
    mock_process m(upstream_yaml("{requests: 100, per: 1s, concurrency: 0}", "{fixed: 0ms, per_token: 50ms}"));
    auto cfg = make_cfg("openai", base_url(m, "openai"));
    cfg.http.total_timeout = 250ms;
    auto [a, pool] = provider(cfg);
    auto r = call(a, make_call("long", true));
    INFO(r.detail);
    CHECK(r.result == outcome::timeout);
    CHECK(r.detail.starts_with("total timeout after 250ms"));
  }
  SECTION("the call's own deadline tightens the total") {
    mock_process m(upstream_yaml());
    auto [a, pool] = provider(make_cfg("openai", base_url(m, "openai")));
    set_fault(m, {{"mode", "slow"}, {"slow_ms", 2000}});
    auto c = make_call("deadline");
    c.request.timeout_ms = 120;
    auto r = call(a, c);
    INFO(r.detail);
    CHECK(r.result == outcome::timeout);
    CHECK(r.detail.starts_with("total timeout after 120ms"));
  }
  SECTION("connect (a TLS handshake nobody answers)") {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}); // never accepts
    auto cfg = make_cfg("openai", "https://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/v1");
    cfg.http.connect_timeout = 150ms;
    auto [a, pool] = provider(cfg);
    auto r = call(a, make_call("connect"));
    INFO(r.detail);
    CHECK(r.result == outcome::timeout);
    CHECK(r.detail.starts_with("connect timeout after 150ms"));
  }
}

TEST_CASE_METHOD(fixture, "a refused connection is connect_failed", "[provider][http]") {
  auto [a, pool] = provider(make_cfg("openai", "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1"));
  auto r = call(a, make_call("anyone?"));
  INFO(r.detail);
  CHECK(r.result == outcome::connect_failed);
  CHECK(r.detail.find("refused") != std::string::npos);
}

TEST_CASE_METHOD(fixture, "a key echoed by the upstream never reaches a detail", "[provider][http]") {
  mock_process m(
      upstream_yaml("{requests: 100, per: 1s, concurrency: 0}", "{fixed: 0ms}", "    api_key: the-right-key-000000\n"));
  auto cfg = make_cfg("anthropic", base_url(m, "anthropic"));
  cfg.api_key = "sk-ant-wrong-key-1234567890abcdef";
  auto [a, pool] = provider(cfg);
  auto c = make_call("hello");
  c.target.model_id = "claude-mock";
  auto r = call(a, c);
  CHECK(r.result == outcome::auth_failed);
  CHECK(r.detail.find(cfg.api_key) == std::string::npos);
}

namespace {

// A CA and a server certificate for the name localhost only, made by the openssl CLI.
struct test_pki {
  test::temp_dir dir;
  std::string ca, cert, key;
  test_pki() {
    auto p = [&](const char* f) { return (dir / f).string(); };
    ca = p("ca.pem");
    cert = p("server.pem");
    key = p("server.key");
    std::string cmd =
        "cd '" + dir.path.string() +
        "' && ( "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=Squad Test CA' "
        "  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign && "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=localhost' && "
        "printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
        "  -extfile ext.cnf";
    std::string quiet = cmd + " ) >openssl.log 2>&1";
    if (std::system(quiet.c_str()) != 0)
      throw std::runtime_error("openssl failed: " + test::slurp(dir / "openssl.log"));
  }
};

const std::string canned_reply =
    R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",)"
    R"("content":"over TLS"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}})";

} // namespace

TEST_CASE_METHOD(fixture, "TLS: certificates and host names are verified", "[provider][http][tls]") {
  test_pki pki;
  test::tls_server server(pki.cert, pki.key, canned_reply);
  auto url = [&](const std::string& h) { return "https://" + h + ":" + std::to_string(server.port()) + "/v1"; };

  SECTION("an unknown CA fails verification, and says so") {
    auto [a, pool] = provider(make_cfg("openai", url("localhost")));
    auto r = call(a, make_call("hi"));
    INFO(r.detail);
    CHECK(r.result == outcome::connect_failed);
    CHECK(r.detail.find("certificate verification failed") != std::string::npos);
  }
  SECTION("with the test CA as ca_file the call succeeds (SNI + host name)") {
    auto cfg = make_cfg("openai", url("localhost"));
    cfg.ca_file = pki.ca;
    auto [a, pool] = provider(cfg);
    auto r = call(a, make_call("hi"));
    INFO(r.detail);
    CHECK(r.result == outcome::ok);
    CHECK(r.text == "over TLS");
  }
  SECTION("a name the certificate does not cover is refused even with the CA") {
    auto cfg = make_cfg("openai", url("127.0.0.1")); // same server, a name its certificate lacks
    cfg.ca_file = pki.ca;
    auto [a, pool] = provider(cfg);
    auto r = call(a, make_call("hi"));
    INFO(r.detail);
    CHECK(r.result == outcome::connect_failed);
    CHECK(r.detail.find("certificate verification failed") != std::string::npos);
  }
  SECTION("an unreadable ca_file is a config problem, not a silent fallback") {
    auto cfg = make_cfg("openai", url("localhost"));
    cfg.ca_file = (pki.dir / "missing.pem").string();
    std::string why;
    CHECK_FALSE(make_provider_pool(io, cfg, why));
    CHECK(why.find("providers.up.ca_file") == 0);
  }
}
