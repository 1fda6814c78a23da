#include "runtime/config/config.hpp"

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>

using namespace squad;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> problems_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& p : load_config_text(yaml).problems)
    out.push_back(to_string(p));
  return out;
}

// The smallest config that loads: one sim provider with one model.
const std::string sim_provider = R"(
providers:
  p:
    kind: sim
    models:
      m1: {id: sim-1}
)";

const std::string example = R"(
server: {listen: 127.0.0.1:8080}
personas_dir: personas
providers:
  groq:
    kind: openai            # openai | anthropic | sim
    base_url: https://api.groq.com/openai/v1
    api_key: ${GROQ_API_KEY}
    limits: {requests: 12, per: 60s, burst: 2, concurrency: 4, min_interval: 0ms}
    models:
      llama-70b: {id: llama-3.3-70b-versatile, tier: boss}
      llama-8b: {id: llama-3.1-8b-instant, tier: worker}
personas:                   # per-persona overrides of what the persona file says
  analyst: {priority: P1, chain: [groq/llama-8b, groq/llama-70b]}
)";

} // namespace

TEST_CASE("the documented example config loads", "[config]") {
  // The shape from the design notes loads as written, with ${GROQ_API_KEY} expanded.
  ::setenv("GROQ_API_KEY", "gsk-test-key", 1);
  auto result = load_config_text(example);
  ::unsetenv("GROQ_API_KEY");
  INFO((result.problems.empty() ? std::string() : to_string(result.problems.front())));
  REQUIRE(result.problems.empty());
  REQUIRE(result.cfg);
  const config& cfg = *result.cfg;
  CHECK(cfg.server.listen == "127.0.0.1:8080");
  CHECK(cfg.personas_dir == "personas");
  REQUIRE(cfg.providers.size() == 1);
  const provider_config* groq = cfg.find_provider("groq");
  REQUIRE(groq != nullptr);
  CHECK(groq->kind == "openai");
  CHECK(groq->base_url == "https://api.groq.com/openai/v1");
  CHECK(groq->api_key == "gsk-test-key");
  CHECK(groq->limits.requests == 12);
  CHECK(groq->limits.per == 60s);
  CHECK(groq->limits.burst == 2);
  CHECK(groq->limits.concurrency == 4);
  CHECK(groq->limits.min_interval == 0ms);
  CHECK(groq->limits.tokens == 0);
  REQUIRE(groq->models.size() == 2);
  CHECK(groq->models[0].name == "llama-70b"); // file order, not sorted
  CHECK(groq->models[0].id == "llama-3.3-70b-versatile");
  CHECK(groq->models[0].tier == "boss");
  CHECK(groq->models[1].name == "llama-8b");
  CHECK(groq->models[1].tier == "worker");
  REQUIRE(cfg.personas.count("analyst") == 1);
  const persona_override& analyst = cfg.personas.at("analyst");
  CHECK(analyst.priority == priority_class::p1);
  REQUIRE(analyst.chain.has_value());
  CHECK(*analyst.chain == std::vector<std::string>{"groq/llama-8b", "groq/llama-70b"});
  CHECK(cfg.find_provider("nope") == nullptr);
}

TEST_CASE("omitted fields take the defaults from config.hpp", "[config]") {
  // A minimal config gets every documented default.
  auto result = load_config_text(sim_provider);
  REQUIRE(result.problems.empty());
  const config& cfg = *result.cfg;
  CHECK(cfg.server.listen == "127.0.0.1:8080");
  CHECK(cfg.workflows_dir == "config/workflows");
  CHECK(cfg.default_workflow == "greenfield");
  CHECK(cfg.supervision.max_restarts == 5);
  CHECK(cfg.supervision.period == 10s);
  CHECK(cfg.runtime.scheduler_threads == 2);
  CHECK(cfg.runtime.scheduler == "io");
  CHECK(cfg.runtime.io_spin == 1ms);
  CHECK(cfg.server.ws_lag_at == 256);
  CHECK(cfg.server.ws_max_queued == 1024);
  CHECK(cfg.server.stream_max_queued == 8 << 20);
  CHECK(cfg.runtime.step_timeout == 120s);
  const auto& p = cfg.providers.at(0);
  CHECK(p.limits.requests == 60);
  CHECK(p.limits.per == 60s);
  CHECK(p.limits.burst == 1);
  CHECK(p.sim.latency == 150ms);
  CHECK(p.sim.jitter == 50ms);
  CHECK(p.sim.max_tokens == 400);
  CHECK(p.models.at(0).tier == "worker");
  CHECK_FALSE(p.ca_file.has_value());
}

TEST_CASE("every optional key is read", "[config]") {
  // The keys beyond the example (sim, tokens, ca_file, supervision, runtime, dirs) land in their fields.
  auto result = load_config_text(R"(
workflows_dir: wf
default_workflow: quick
supervision: {max_restarts: 3, period: 30s}
runtime: {scheduler_threads: 4, step_timeout: 2m, scheduler: caf, io_spin: 0ms}
providers:
  fake:
    kind: sim
    ca_file: /etc/ssl/extra.pem
    limits: {tokens: 6000}
    sim: {latency: 10ms, jitter: 0ms, per_token: 1ms, max_tokens: 50}
    models:
      small: {id: s}
      big: {id: b, tier: boss}
  other:
    kind: sim
    models: {x: {id: x}}
)");
  REQUIRE(result.problems.empty());
  const config& cfg = *result.cfg;
  CHECK(cfg.workflows_dir == "wf");
  CHECK(cfg.default_workflow == "quick");
  CHECK(cfg.supervision.max_restarts == 3);
  CHECK(cfg.supervision.period == 30s);
  CHECK(cfg.runtime.scheduler_threads == 4);
  CHECK(cfg.runtime.scheduler == "caf");
  CHECK(cfg.runtime.io_spin == 0ms);
  CHECK(cfg.runtime.step_timeout == 2min);
  REQUIRE(cfg.providers.size() == 2);
  CHECK(cfg.providers[0].name == "fake"); // file order
  CHECK(cfg.providers[1].name == "other");
  const auto& fake = cfg.providers[0];
  CHECK(fake.ca_file == std::optional<std::string>("/etc/ssl/extra.pem"));
  CHECK(fake.limits.tokens == 6000);
  CHECK(fake.sim.latency == 10ms);
  CHECK(fake.sim.jitter == 0ms);
  CHECK(fake.sim.per_token == 1ms);
  CHECK(fake.sim.max_tokens == 50);
}

TEST_CASE("a model's own limits inherit the provider's limits where unset", "[config][limits]") {
  auto r = load_config_text(R"(
providers:
  groq:
    kind: sim
    limits: {requests: 30, per: 60s, burst: 2, concurrency: 3, per_day: 1000, throttle: {after: 5}}
    models:
      shared: {id: s}
      big: {id: b, limits: {requests: 6, per_day: 100, throttle: {quiet: 5m}}}
)");
  REQUIRE(r.problems.empty());
  auto& p = r.cfg->providers.at(0);
  CHECK_FALSE(p.models.at(0).limits); // shares the provider's limits
  REQUIRE(p.models.at(1).limits);
  auto& l = *p.models.at(1).limits;
  CHECK(l.requests == 6);
  CHECK(l.per_day == 100);
  CHECK(l.per == 60s);          // inherited
  CHECK(l.burst == 2);          // inherited
  CHECK(l.concurrency == 3);    // inherited
  CHECK(l.throttle.after == 5); // inherited inside the throttle too
  CHECK(l.throttle.quiet == 5min);
  CHECK(p.limits.requests == 30); // the provider's own are untouched
}

TEST_CASE("a model's limits are checked like a provider's", "[config][limits]") {
  auto head = std::string{"providers:\n  p:\n    kind: sim\n    models:\n      m1: {id: x, limits: "};
  CHECK(problems_of(head + "{requests: 0}}\n") ==
        std::vector<std::string>{"providers.p.models.m1.limits.requests: must be > 0"});
  CHECK(problems_of(head + "{rpm: 3}}\n") == std::vector<std::string>{"providers.p.models.m1.limits.rpm: unknown key"});
  CHECK(problems_of("providers:\n  p:\n    kind: sim\n    models:\n      m1: {id: x, limit: {}}\n") ==
        std::vector<std::string>{"providers.p.models.m1.limit: unknown key"});
}

TEST_CASE("bad configs report exactly the expected problems", "[config]") {
  // Table: one mistake per row, and the full problem list it must produce (no cascades, no silence).
  ::unsetenv("SQUAD_TEST_UNSET_VAR");
  struct row {
    const char* name;
    std::string yaml;
    std::vector<std::string> expected;
  };
  const std::string openai_head = "providers:\n  p:\n    kind: openai\n";
  const std::string one_model = "    models: {m1: {id: x}}\n";
  const row rows[] = {
      {"no providers", "server: {listen: 127.0.0.1:8080}\n", {"providers: at least one provider is required"}},
      {"empty document", "", {"providers: at least one provider is required"}},
      {"requests zero", sim_provider + "    limits: {requests: 0}\n", {"providers.p.limits.requests: must be > 0"}},
      {"unknown kind",
       "providers:\n  p:\n    kind: foo\n" + one_model,
       {"providers.p.kind: must be one of openai, anthropic, sim (got \"foo\")"}},
      {"missing kind", "providers:\n  p:\n" + one_model, {"providers.p.kind: required: one of openai, anthropic, sim"}},
      {"openai without base_url",
       openai_head + "    api_key: k\n" + one_model,
       {"providers.p.base_url: required for kind openai"}},
      {"anthropic without api_key",
       "providers:\n  p:\n    kind: anthropic\n    base_url: https://a.example\n" + one_model,
       {"providers.p.api_key: required for kind anthropic"}},
      {"base_url not http",
       openai_head + "    base_url: ftp://x\n    api_key: k\n" + one_model,
       {"providers.p.base_url: must start with http:// or https://"}},
      {"no models", "providers:\n  x:\n    kind: sim\n", {"providers.x.models: at least one model is required"}},
      {"bad tier",
       "providers:\n  p:\n    kind: sim\n    models: {m1: {id: x, tier: chief}}\n",
       {"providers.p.models.m1.tier: must be worker or boss"}},
      {"model without id",
       "providers:\n  p:\n    kind: sim\n    models: {m1: {tier: boss}}\n",
       {"providers.p.models.m1.id: required"}},
      {"duration without unit",
       sim_provider + "    limits: {per: 60}\n",
       {"providers.p.limits.per: invalid duration \"60\" (use e.g. 500ms, 2s, 60s, 10m)"}},
      {"listen without port", "server: {listen: localhost}\n" + sim_provider, {"server.listen: must be host:port"}},
      {"listen port too big",
       "server: {listen: \"0.0.0.0:70000\"}\n" + sim_provider,
       {"server.listen: must be host:port"}},
      {"bad persona priority",
       sim_provider + "personas:\n  analyst: {priority: P9}\n",
       {"personas.analyst.priority: must be one of P0, P1, P2, P3"}},
      {"bad chain entry",
       sim_provider + "personas:\n  analyst: {chain: [p/m1, justaname]}\n",
       {"personas.analyst.chain[1]: must be provider/model, @worker or @boss (got \"justaname\")"}},
      {"unknown override key",
       sim_provider + "personas:\n  analyst: {model: x}\n",
       {"personas.analyst.model: unknown key"}},
      {"unknown limits key", sim_provider + "    limits: {rpm: 10}\n", {"providers.p.limits.rpm: unknown key"}},
      {"unknown top-level key", "extra: 1\n" + sim_provider, {"extra: unknown key"}},
      {"duplicate key",
       sim_provider + "    limits: {requests: 1, requests: 2}\n",
       {"providers.p.limits.requests: duplicate key"}},
      {"map where an integer belongs",
       sim_provider + "    limits:\n      requests: {a: 1}\n",
       {"providers.p.limits.requests: must be an integer"}},
      {"fraction where an integer belongs",
       sim_provider + "    limits: {burst: 1.5}\n",
       {"providers.p.limits.burst: must be an integer"}},
      {"list where a string belongs",
       "default_workflow: [a, b]\n" + sim_provider,
       {"default_workflow: must be a string"}},
      {"provider is not a map", "providers:\n  p: 5\n", {"providers.p: must be a map"}},
      {"models is a list",
       "providers:\n  p:\n    kind: sim\n    models: [a, b]\n",
       {"providers.p.models: must be a map"}},
      {"bad provider name",
       "providers:\n  \"bad name\":\n    kind: sim\n" + one_model,
       {"providers.bad name: invalid name (use letters, digits, '.', '_', '-')"}},
      {"document is a list", "- a\n- b\n", {"yaml: the document must be a map of settings"}},
      {"unset variable",
       openai_head + "    base_url: https://x\n    api_key: ${SQUAD_TEST_UNSET_VAR}\n" + one_model,
       {"providers.p.api_key: environment variable SQUAD_TEST_UNSET_VAR is not set"}},
      {"unterminated variable",
       "personas_dir: ${HOME\n" + sim_provider,
       {"personas_dir: unterminated ${ (write ${NAME})"}},
      {"scheduler threads zero",
       "runtime: {scheduler_threads: 0}\n" + sim_provider,
       {"runtime.scheduler_threads: must be between 1 and 64"}},
      {"WebSocket bounds out of order",
       "server: {ws_lag_at: 500, ws_max_queued: 400}\n" + sim_provider,
       {"server.ws_max_queued: must be greater than server.ws_lag_at (500)"}},
      {"tiny stream queue",
       "server: {stream_max_queued: 10}\n" + sim_provider,
       {"server.stream_max_queued: must be >= 65536 bytes"}},
      {"unknown scheduler",
       "runtime: {scheduler: fast}\n" + sim_provider,
       {"runtime.scheduler: must be io or caf (got \"fast\")"}},
      {"io_spin too long",
       "runtime: {io_spin: 1s}\n" + sim_provider,
       {"runtime.io_spin: must be between 0ms and 100ms"}},
      {"supervision period zero", "supervision: {period: 0s}\n" + sim_provider, {"supervision.period: must be > 0"}},
      {"negative max_restarts",
       "supervision: {max_restarts: -1}\n" + sim_provider,
       {"supervision.max_restarts: must be >= 0"}},
      {"sim max_tokens zero", sim_provider + "    sim: {max_tokens: 0}\n", {"providers.p.sim.max_tokens: must be > 0"}},
      {"burst zero and concurrency zero",
       sim_provider + "    limits: {burst: 0, concurrency: 0}\n",
       {"providers.p.limits.burst: must be >= 1", "providers.p.limits.concurrency: must be >= 1"}},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    INFO(r.yaml);
    auto result = load_config_text(r.yaml);
    std::vector<std::string> got;
    for (const auto& p : result.problems)
      got.push_back(to_string(p));
    CHECK(got == r.expected);
    CHECK_FALSE(result.cfg);
  }
}

TEST_CASE("three mistakes give exactly three problems", "[config]") {
  // Validation keeps going after the first problem and reports each mistake once.
  auto problems = problems_of(R"(
server: {listen: 127.0.0.1:8080}
providers:
  groq:
    kind: sim
    limits: {requests: 0, per: 60, rpm: 5}
    models:
      llama-8b: {id: llama-3.1-8b-instant}
)");
  CHECK(problems == std::vector<std::string>{
                        "providers.groq.limits.rpm: unknown key",
                        "providers.groq.limits.per: invalid duration \"60\" (use e.g. 500ms, 2s, 60s, 10m)",
                        "providers.groq.limits.requests: must be > 0",
                    });
}

TEST_CASE("variables expand inside longer strings", "[config]") {
  // "prefix-${VAR}-suffix" keeps the text around the variable.
  ::setenv("SQUAD_TEST_HOST", "api.example.com", 1);
  auto result = load_config_text(R"(
providers:
  p:
    kind: openai
    base_url: https://${SQUAD_TEST_HOST}/v1
    api_key: key-${SQUAD_TEST_HOST}-end
    models: {m: {id: x}}
)");
  ::unsetenv("SQUAD_TEST_HOST");
  REQUIRE(result.problems.empty());
  CHECK(result.cfg->providers[0].base_url == "https://api.example.com/v1");
  CHECK(result.cfg->providers[0].api_key == "key-api.example.com-end");
}

TEST_CASE("a sim provider does not need its api_key variable", "[config]") {
  // kind sim never sends a key, so an unset ${VAR} there is not a problem.
  ::unsetenv("SQUAD_TEST_UNSET_VAR");
  auto result = load_config_text(sim_provider + "    api_key: ${SQUAD_TEST_UNSET_VAR}\n");
  CHECK(result.problems.empty());
  REQUIRE(result.cfg);
  CHECK(result.cfg->providers[0].api_key.empty());
}

TEST_CASE("problem messages never contain expanded values", "[config]") {
  // A secret that lands in a bad field is quoted as written (${VAR}), not as its value.
  ::setenv("SQUAD_TEST_SECRET", "hunter2", 1);
  auto problems =
      problems_of(sim_provider + "    limits: {per: \"${SQUAD_TEST_SECRET}\", requests: \"${SQUAD_TEST_SECRET}\"}\n");
  ::unsetenv("SQUAD_TEST_SECRET");
  REQUIRE(problems.size() == 2);
  for (const auto& p : problems)
    CHECK(p.find("hunter2") == std::string::npos);
}

TEST_CASE("malformed YAML is one problem with a line and column", "[config]") {
  // yaml-cpp's parse error becomes a problem at "yaml"; nothing throws.
  auto result = load_config_text("providers:\n  p: {kind: sim\n  q: [\n");
  REQUIRE(result.problems.size() == 1);
  CHECK(result.problems[0].path == "yaml");
  CHECK_THAT(result.problems[0].message, Catch::Contains("line "));
  CHECK_FALSE(result.cfg);
}

TEST_CASE("load_config_file names the file in its problems", "[config]") {
  // A missing file is one problem at its path; a malformed one reports the file instead of "yaml".
  test::temp_dir dir;
  auto missing = load_config_file(dir.str() + "/nope.yaml");
  REQUIRE(missing.problems.size() == 1);
  CHECK(missing.problems[0].path == dir.str() + "/nope.yaml");

  auto bad = dir.write("bad.yaml", "providers: [\n");
  auto broken = load_config_file(bad);
  REQUIRE(broken.problems.size() == 1);
  CHECK(broken.problems[0].path == bad);

  auto good = dir.write("good.yaml", sim_provider);
  auto loaded = load_config_file(good);
  CHECK(loaded.problems.empty());
  CHECK(loaded.cfg);
}

TEST_CASE("validate checks a config built in code", "[config]") {
  // validate() works on structs too, not only on loaded files.
  config cfg;
  provider_config p;
  p.name = "p";
  p.kind = "sim";
  p.models.push_back({"m", "id", "worker"});
  cfg.providers.push_back(p);
  CHECK(validate(cfg).empty());
  cfg.providers[0].limits.requests = -1;
  cfg.server.listen = "[::1]:8080";
  auto problems = validate(cfg);
  REQUIRE(problems.size() == 1);
  CHECK(to_string(problems[0]) == "providers.p.limits.requests: must be > 0");
}

TEST_CASE("priorities parse and print", "[config]") {
  // P0..P3 round-trip; anything else is refused.
  for (auto p : {priority_class::p0, priority_class::p1, priority_class::p2, priority_class::p3})
    CHECK(parse_priority(to_string(p)) == p);
  CHECK_FALSE(parse_priority("p1"));
  CHECK_FALSE(parse_priority("P4"));
  CHECK_FALSE(parse_priority(""));
}

TEST_CASE("limits.throttle and limits.expected_latency are read and checked", "[config][throttle]") {
  // The adaptive throttle's constants are config: read under limits.throttle with their defaults when absent;
  // a bad value or an unknown throttle key is a problem at its path.
  auto ok = load_config_text(R"(
providers:
  p:
    kind: sim
    limits: {requests: 10, per: 1s, expected_latency: 250ms,
             throttle: {after: 2, period: 30s, step: 0.25, floor: 0.4, quiet: 5m}}
    models:
      m1: {id: sim-1}
)");
  REQUIRE(ok.problems.empty());
  auto& l = ok.cfg->providers.at(0).limits;
  CHECK(l.expected_latency == 250ms);
  CHECK(l.throttle.after == 2);
  CHECK(l.throttle.period == 30s);
  CHECK(l.throttle.step == Approx(0.25));
  CHECK(l.throttle.floor == Approx(0.4));
  CHECK(l.throttle.quiet == 5min);
  auto plain = load_config_text(sim_provider);
  REQUIRE(plain.cfg);
  CHECK(plain.cfg->providers.at(0).limits.throttle.after == 3);
  CHECK(plain.cfg->providers.at(0).limits.throttle.quiet == 10min);

  auto bad = problems_of(R"(
providers:
  p:
    kind: sim
    limits: {throttle: {after: 0, step: 1.5, nope: 1}}
    models:
      m1: {id: sim-1}
)");
  auto has = [&](const std::string& text) {
    return std::any_of(bad.begin(), bad.end(), [&](auto& p) { return p.find(text) != std::string::npos; });
  };
  INFO(bad.size());
  CHECK(has("providers.p.limits.throttle.nope: unknown key"));
  CHECK(has("providers.p.limits.throttle.after: must be >= 1"));
  CHECK(has("providers.p.limits.throttle.step:"));
}

TEST_CASE("runtime.tolerable_wait is read per class with its defaults", "[config][tolerable]") {
  auto ok = load_config_text(sim_provider + "runtime: {tolerable_wait: {P2: 45s, P3: 5s}}\n");
  REQUIRE(ok.problems.empty());
  CHECK(ok.cfg->runtime.tolerable_wait.p1 == 60s);
  CHECK(ok.cfg->runtime.tolerable_wait.p2 == 45s);
  CHECK(ok.cfg->runtime.tolerable_wait.p3 == 5s);
  CHECK(ok.cfg->runtime.bind_horizon == 1s);
  auto off = load_config_text(sim_provider + "runtime: {bind_horizon: 0ms}\n");
  REQUIRE(off.problems.empty());
  CHECK(off.cfg->runtime.bind_horizon == 0ms);
  auto bad = problems_of(sim_provider + "runtime: {tolerable_wait: {P0: 1s, P3: 0ms}}\n");
  CHECK(std::find(bad.begin(), bad.end(), "runtime.tolerable_wait.P0: unknown key") != bad.end());
  CHECK(std::find(bad.begin(), bad.end(), "runtime.tolerable_wait.P3: must be > 0") != bad.end());
}
