// Per-model limits: a model with its own `limits` is admitted by its own limiter, beside its provider's (which
// its other models share). The whole actor tree with a sim provider, which enforces each model's limits as a
// provider that limits per model does (a call over them is a 429, counted as an upstream 429 here).
#include "runtime/host/squad_tree.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace squad;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct system_config : caf::actor_system_config {
  system_config() { configure_actor_system(*this, 2); }
};

// The provider allows 2 calls a minute; model "b" has its own 3 a minute. analyst uses p/a, pm uses p/b.
const char* squad_yaml =
    "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR "/config/workflows\n"
    R"(providers:
  p:
    kind: sim
    limits: {requests: 2, per: 60s, burst: 2, concurrency: 4}
    sim: {latency: 5ms, jitter: 0ms, max_tokens: 8}
    models:
      a: {id: sim-a}
      b: {id: sim-b, limits: {requests: 3, burst: 3}}
personas:
  analyst: {chain: [p/a]}
  pm: {chain: [p/b]}
)";

struct fixture {
  system_config cfg;
  caf::actor_system sys{cfg};
  net::io_runtime io{1};
  squad_tree tree;
  fixture() {
    std::vector<config_problem> problems;
    auto sq = load_squad_text(squad_yaml, problems);
    INFO((problems.empty() ? std::string() : to_string(problems.front())));
    REQUIRE(sq.cfg);
    auto pools = make_provider_pools(io, *sq.cfg, problems);
    tree = start_tree(sys, sq, pools);
    REQUIRE(await_tree(tree, sq));
  }
  ~fixture() { caf::anon_send_exit(tree.root, caf::exit_reason::user_shutdown); }

  void send(caf::scoped_actor& self, const std::string& persona, int i, std::int64_t timeout_ms) {
    call_request req;
    req.trace_id = persona + std::to_string(i);
    req.persona = persona;
    req.run_id = "model-limits"; // a run's calls: never shed, they wait for their slot
    req.priority = 1;
    req.messages = {{"user", "question " + std::to_string(i) + " of " + persona}};
    req.max_tokens = 8;
    req.timeout_ms = timeout_ms;
    self->send(tree.dir->get()->persona(persona), std::move(req));
  }

  json limiter_stats(caf::scoped_actor& self, const std::string& domain) {
    json out;
    auto* h = tree.dir->get()->provider(domain);
    REQUIRE(h);
    REQUIRE(h->limiter);
    self->request(h->limiter, 2s, atoms::stats_v)
        .receive([&](std::string& text) { out = json::parse(text); }, [&](caf::error&) {});
    return out;
  }
};

} // namespace

TEST_CASE("a model with its own limits is admitted by them, not by its provider's", "[governance][limits]") {
  fixture f;
  caf::scoped_actor self{f.sys};
  for (int i = 0; i < 2; ++i)
    f.send(self, "analyst", i, 5000);
  for (int i = 0; i < 3; ++i)
    f.send(self, "pm", i, 5000);
  // Five calls in one minute on a provider allowing two: served at once, because three of them are b's.
  int ok = 0;
  std::vector<std::string> errors;
  bool timed_out = false;
  while (ok + static_cast<int>(errors.size()) < 5 && !timed_out)
    self->receive(
        [&](call_result& r) {
          CHECK(r.served_by.provider == "p");
          ++ok;
        },
        [&](caf::error& e) { errors.push_back(error_detail(f.sys, e)); }, caf::after(3s) >> [&] { timed_out = true; });
  INFO((errors.empty() ? std::string{} : errors.front()));
  CHECK_FALSE(timed_out);
  CHECK(ok == 5);
  auto shared = f.limiter_stats(self, "p");
  auto own = f.limiter_stats(self, "p/b");
  CHECK(shared["window_occupancy"].get<double>() == 2);
  CHECK(shared["window_cap"].get<double>() == 2);
  CHECK(own["window_occupancy"].get<double>() == 3);
  CHECK(own["window_cap"].get<double>() == 3);

  // b's own window is full now, and so is the provider's: a fourth b call waits (its deadline ends it), as does
  // a third a call; neither reaches the upstream, which would have answered 429.
  f.send(self, "pm", 3, 300);
  f.send(self, "analyst", 2, 300);
  int failed = 0;
  for (int i = 0; i < 2; ++i)
    self->receive([&](call_result&) { FAIL("a call over its model's limits was sent"); },
                  [&](caf::error& e) {
                    ++failed;
                    INFO(error_detail(f.sys, e));
                    CHECK(error_detail(f.sys, e).find("429") == std::string::npos);
                  },
                  caf::after(3s) >> [&] { FAIL("no answer"); });
  CHECK(failed == 2);
}
