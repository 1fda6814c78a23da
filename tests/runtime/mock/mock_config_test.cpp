// squad::mock config loading: defaults, every problem with its path, unknown keys rejected.
#include "runtime/mock/mock_config.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace squad::mock;

namespace {

bool has(const std::vector<squad::config_problem>& problems, const std::string& text) {
  return std::any_of(problems.begin(), problems.end(), [&](const auto& p) { return squad::to_string(p) == text; });
}

} // namespace

TEST_CASE("mock config: a full upstream parses and the shipped example loads", "[mock][config]") {
  // Intent: every field reaches its struct; listen splits into host and port.
  auto r = load_mock_config_text(R"(
upstreams:
  fast:
    listen: 127.0.0.1:0
    style: openai
    limits: {requests: 5, per: 1s, concurrency: 4, tokens: 0}
    latency: {fixed: 20ms, jitter: 5ms, per_token: 1ms}
    reply: {tokens: 40}
    api_key: "k"
  slow:
    style: anthropic
)");
  INFO((r.problems.empty() ? "" : squad::to_string(r.problems[0])));
  REQUIRE(r.cfg);
  REQUIRE(r.cfg->upstreams.size() == 2);
  const auto& f = r.cfg->upstreams[0];
  CHECK(f.name == "fast");
  CHECK(f.host == "127.0.0.1");
  CHECK(f.port == 0);
  CHECK(f.style == api_style::openai);
  CHECK(f.limits.requests == 5);
  CHECK(f.limits.per == squad::millis{1000});
  CHECK(f.latency.jitter == squad::millis{5});
  CHECK(f.reply_tokens == 40);
  CHECK(f.api_key == "k");
  CHECK(r.cfg->upstreams[1].limits.requests == 60); // defaults

  auto example = load_mock_config_file(SQUAD_SOURCE_DIR "/config/examples/mock-upstreams.yaml");
  INFO((example.problems.empty() ? "" : squad::to_string(example.problems[0])));
  CHECK(example.cfg);
}

TEST_CASE("mock config: reports every problem with its path", "[mock][config]") {
  // Intent: one pass finds all mistakes; unknown keys are errors.
  auto r = load_mock_config_text(R"(
upstreams:
  fast:
    listen: localhost:80
    style: grpc
    limits: {requests: 0, per: 1s, concurrency: -1, rpm: 3}
    reply: {tokens: 0}
  twin-a: {listen: "127.0.0.1:9000"}
  twin-b: {listen: "127.0.0.1:9000", latency: {fixed: soon}}
extra: 1
)");
  CHECK_FALSE(r.cfg);
  CHECK(has(r.problems, "upstreams.fast.limits.requests: must be > 0"));
  CHECK(has(r.problems, "upstreams.fast.limits.concurrency: must be >= 0 (0 = unlimited)"));
  CHECK(has(r.problems, "upstreams.fast.limits.rpm: unknown key"));
  CHECK(has(r.problems, "upstreams.fast.reply.tokens: must be > 0"));
  CHECK(has(r.problems, "upstreams.fast.style: must be one of openai, anthropic, both (got \"grpc\")"));
  CHECK(has(r.problems, "upstreams.fast.listen: must be IPv4:port, e.g. 127.0.0.1:0 (got \"localhost:80\")"));
  CHECK(has(r.problems, "upstreams.twin-b.listen: port 9000 is used by another upstream"));
  CHECK(has(r.problems, "upstreams.twin-b.latency.fixed: invalid duration \"soon\" (use e.g. 500ms, 2s, 60s, 10m)"));
  CHECK(has(r.problems, "extra: unknown key"));
  CHECK(r.problems.size() == 9);

  CHECK(has(load_mock_config_text("upstreams: {}").problems, "upstreams: at least one upstream is required"));
  CHECK(has(load_mock_config_file("/nonexistent.yaml").problems, "/nonexistent.yaml: cannot read file"));
}
