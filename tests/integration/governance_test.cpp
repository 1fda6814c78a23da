// Rate governance end to end: the whole actor tree (personas -> dispatcher -> breaker -> limiter -> provider
// actors -> HTTP) against squad-mock-provider upstreams, one fault mode at a time.
#include "actors/boss/boss.hpp"
#include "runtime/config/workflow.hpp"
#include "runtime/host/squad_tree.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/mock_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace squad;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct system_config : caf::actor_system_config {
  system_config() { configure_actor_system(*this, 2); }
};

// "main" is strict (5 per second, 2 at once); "spare" is roomy. The analyst's chain is main, then spare.
const char* mock_yaml = R"(upstreams:
  main:
    listen: 127.0.0.1:0
    style: openai
    limits: {requests: 5, per: 1s, concurrency: 2}
    latency: {fixed: 5ms, per_token: 1ms}
    reply: {tokens: 8}
  spare:
    listen: 127.0.0.1:0
    style: openai
    limits: {requests: 1000, per: 1s, concurrency: 0}
    latency: {fixed: 5ms}
    reply: {tokens: 8}
)";

std::string squad_yaml(const test::mock_process& m) {
  auto provider = [&](const std::string& name, const std::string& limits, const std::string& extra) {
    return "  " + name + ":\n    kind: openai\n    base_url: http://127.0.0.1:" + std::to_string(m.port(name)) +
           "/v1\n    limits: " + limits + "\n    timeouts: {connect: 1s, first_byte: 300ms, idle: 300ms, total: 5s}\n" +
           extra + "    models:\n      m: {id: mock-" + name + ", tier: worker}\n";
  };
  return "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR "/config/workflows\n"
         "providers:\n" +
         provider("main", "{requests: 5, per: 1s, burst: 5, concurrency: 2}",
                  "    stream: true\n    breaker: {failures: 3, cooldown: 60s}\n") +
         provider("spare", "{requests: 1000, per: 1s, burst: 1000, concurrency: 32}", "") +
         "personas:\n  analyst: {chain: [main/m, spare/m]}\n";
}

json stats(const test::mock_process& m, const std::string& name) {
  auto r = test::request("GET", "127.0.0.1", m.port(name), "/stats");
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

struct tree_fixture {
  test::mock_process mock{mock_yaml};
  system_config cfg;
  caf::actor_system sys{cfg};
  net::io_runtime io{1};
  squad_tree tree;
  int asked = 0; // every call asks a new question: the response cache must not answer it

  tree_fixture() {
    std::vector<config_problem> problems;
    auto sq = load_squad_text(squad_yaml(mock), problems);
    INFO((problems.empty() ? std::string() : to_string(problems.front())));
    REQUIRE(sq.cfg);
    auto pools = make_provider_pools(io, *sq.cfg, problems);
    tree = start_tree(sys, sq, pools);
    REQUIRE(await_tree(tree, sq));
  }
  ~tree_fixture() { caf::anon_send_exit(tree.root, caf::exit_reason::user_shutdown); }

  // `n` calls at once; the results (or the errors' text) and the run events seen.
  struct batch {
    std::vector<call_result> ok;
    std::vector<std::string> errors;
    std::vector<run_event> events;
  };
  batch calls(int n) {
    caf::scoped_actor self{sys};
    for (int i = 0; i < n; ++i) {
      call_request req;
      req.trace_id = "g" + std::to_string(i);
      req.persona = "analyst";
      req.messages = {{"user", "question " + std::to_string(asked++)}};
      req.max_tokens = 16;
      req.timeout_ms = 20000;
      req.events = caf::actor_cast<event_sink_actor>(caf::actor{self});
      self->send(tree.dir->get()->persona("analyst"), std::move(req));
    }
    batch b;
    int answered = 0;
    bool timed_out = false;
    while (answered < n && !timed_out)
      self->receive([&](call_result& r) { b.ok.push_back(std::move(r)), ++answered; },
                    [&](run_event& ev) { b.events.push_back(std::move(ev)); },
                    [&](caf::error& err) { b.errors.push_back(error_detail(sys, err)), ++answered; },
                    caf::after(30s) >> [&] { timed_out = true; });
    REQUIRE_FALSE(timed_out);
    return b;
  }

  void fault(const json& f) {
    auto r = test::request("POST", "127.0.0.1", mock.port("main"), "/admin/fault", f.dump());
    REQUIRE(r.status == 200);
  }
};

std::size_t count(const std::vector<run_event>& events, const std::string& type) {
  return static_cast<std::size_t>(
      std::count_if(events.begin(), events.end(), [&](const run_event& e) { return e.type == type; }));
}

} // namespace

TEST_CASE_METHOD(tree_fixture, "a burst far over a strict upstream's limit sees no 429", "[governance][http]") {
  auto b = calls(30);
  CHECK(b.errors.empty());
  CHECK(b.ok.size() == 30);
  auto s = stats(mock, "main");
  CHECK(s["rejected"]["requests"] == 0);
  CHECK(s["rejected"]["concurrency"] == 0);
  CHECK(s["max_window_occupancy"].get<int>() <= 5);
  CHECK(s["max_in_flight"].get<int>() <= 2);
  CHECK(s["admitted"].get<int>() >= 2);       // the preferred upstream was used as far as it could serve soon...
  CHECK(count(b.events, "step.routed") >= 1); // ...and the rest was routed, visibly
  // ...and counted: the dispatcher's metrics match the events.
  caf::scoped_actor self{sys};
  std::string text;
  self->request(tree.dir->get()->dispatcher, 5s, atoms::stats_v)
      .receive([&](std::string& s) { text = std::move(s); }, [](caf::error&) {});
  auto metrics = json::parse(text);
  CHECK(metrics["events"]["step.routed"].get<std::size_t>() == count(b.events, "step.routed"));
  CHECK(metrics["calls_in_flight"] == 0);
}

TEST_CASE_METHOD(tree_fixture, "every fault mode of the preferred upstream ends in answers, through fallback",
                 "[governance][http]") {
  struct mode {
    json fault;
    std::string outcome;
  };
  std::vector<mode> modes = {
      {{{"mode", "down"}}, "connect_failed"},
      {{{"mode", "error500"}, {"fraction", 1.0}}, "server_error"},
      {{{"mode", "overloaded"}}, "overloaded"},
      {{{"mode", "garbage"}}, "bad_response"},
      {{{"mode", "cut"}, {"cut_after", 2}}, "stream_cut"},
      {{{"mode", "slow"}, {"slow_ms", 2000}}, "timeout"},
      {{{"mode", "unauthorized"}}, "auth_failed"},
  };
  for (auto& m : modes) {
    DYNAMIC_SECTION(m.fault["mode"].get<std::string>()) {
      fault(m.fault);
      auto b = calls(4);
      CHECK(b.errors.empty());
      REQUIRE(b.ok.size() == 4);
      bool seen = false;
      for (auto& r : b.ok) {
        CHECK(r.served_by.provider == "spare");
        for (auto& a : r.attempts)
          seen = seen || (a.provider == "main" && a.outcome == m.outcome);
      }
      CHECK(seen);
      CHECK(count(b.events, "step.fallback") >= 1);
    }
  }
}

TEST_CASE_METHOD(tree_fixture, "a failing upstream's breaker opens and stops traffic to it", "[governance][http]") {
  fault({{"mode", "error500"}, {"fraction", 1.0}});
  bool opened = false;
  for (int i = 0; i < 3; ++i) { // one at a time, so each goes to main first (breaker: 3 failures)
    auto one = calls(1);
    CHECK(one.ok.size() == 1);
    for (auto& e : one.events)
      opened = opened || (e.type == "provider.breaker" && e.message.find("closed->open") != std::string::npos);
  }
  CHECK(opened);
  auto before = stats(mock, "main")["requests_total"].get<int>();
  auto later = calls(5); // breaker open for 60s: main is not even asked
  CHECK(later.ok.size() == 5);
  CHECK(stats(mock, "main")["requests_total"].get<int>() == before);
  for (auto& r : later.ok)
    CHECK(r.served_by.provider == "spare");
}

TEST_CASE_METHOD(tree_fixture, "when every target fails, a cut stream's partial text is passed on, marked partial",
                 "[governance][http]") {
  fault({{"mode", "cut"}, {"cut_after", 6}}); // main streams a few words, then the connection drops
  auto down = test::request("POST", "127.0.0.1", mock.port("spare"), "/admin/fault", R"({"mode":"down"})");
  REQUIRE(down.status == 200);
  auto b = calls(1);
  REQUIRE(b.ok.size() == 1);
  auto& r = b.ok.front();
  CHECK(r.partial);
  CHECK(r.finish_reason == "partial");
  CHECK_FALSE(r.text.empty());
  CHECK(r.served_by.provider == "main");
  bool cut = false, refused = false;
  for (auto& a : r.attempts) {
    cut = cut || (a.provider == "main" && a.outcome == "stream_cut");
    refused = refused || (a.provider == "spare" && a.outcome == "connect_failed");
  }
  CHECK(cut);
  CHECK(refused);
  CHECK(count(b.events, "step.partial") == 1);
}

TEST_CASE_METHOD(tree_fixture, "a call outside a run stops at its budget of LLM calls, and says so",
                 "[governance][http]") {
  fault({{"mode", "error500"}, {"fraction", 1.0}});
  auto down =
      test::request("POST", "127.0.0.1", mock.port("spare"), "/admin/fault", R"({"mode":"error500","fraction":1.0})");
  REQUIRE(down.status == 200);
  auto before = stats(mock, "main")["requests_total"].get<int>() + stats(mock, "spare")["requests_total"].get<int>();
  auto b = calls(1); // runtime.request_calls defaults to 5 (a try and the default 4 retries)
  REQUIRE(b.errors.size() == 1);
  CHECK_THAT(b.errors.front(), Catch::Contains("the request's budget of 5 LLM calls is spent"));
  auto after = stats(mock, "main")["requests_total"].get<int>() + stats(mock, "spare")["requests_total"].get<int>();
  CHECK(after - before == 5);
  CHECK(count(b.events, "call.budget_spent") == 1);
}

TEST_CASE_METHOD(tree_fixture, "a repeated question is answered from the cache without an upstream request",
                 "[governance][http]") {
  auto first = calls(1);
  REQUIRE(first.ok.size() == 1);
  CHECK_FALSE(first.ok.front().cached);
  asked = 0; // the same question again
  auto before = stats(mock, "main")["requests_total"].get<int>() + stats(mock, "spare")["requests_total"].get<int>();
  auto again = calls(1);
  REQUIRE(again.ok.size() == 1);
  CHECK(again.ok.front().cached);
  CHECK(again.ok.front().text == first.ok.front().text);
  auto after = stats(mock, "main")["requests_total"].get<int>() + stats(mock, "spare")["requests_total"].get<int>();
  CHECK(after == before);
  CHECK(count(again.events, "call.cached") == 1);
}

TEST_CASE("in a run, the step after a cut-short step receives its partial text, marked partial", "[governance][http]") {
  // The analyst (brief) streams from main, which cuts the stream after a few frames; spare is down. The pm (prd)
  // runs on the simulated provider, whose answer lists the input headings it received.
  test::mock_process mock{mock_yaml};
  system_config cfg;
  caf::actor_system sys{cfg};
  net::io_runtime io{1};
  auto yaml = squad_yaml(mock) + "  pm: {chain: [sim/s]}\n";
  yaml.replace(yaml.find("providers:\n"), 11,
               "providers:\n  sim:\n    kind: sim\n    limits: {requests: 100, per: 1s, concurrency: 8}\n"
               "    sim: {latency: 1ms, jitter: 0ms}\n    models:\n      s: {id: sim-s, tier: boss}\n");
  std::vector<config_problem> problems;
  auto sq = load_squad_text(yaml, problems);
  INFO((problems.empty() ? std::string() : to_string(problems.front())));
  REQUIRE(sq.cfg);
  auto pools = make_provider_pools(io, *sq.cfg, problems);
  auto tree = start_tree(sys, sq, pools);
  REQUIRE(await_tree(tree, sq));
  REQUIRE(
      test::request("POST", "127.0.0.1", mock.port("main"), "/admin/fault", R"({"mode":"cut","cut_after":6})").status ==
      200);
  REQUIRE(test::request("POST", "127.0.0.1", mock.port("spare"), "/admin/fault", R"({"mode":"down"})").status == 200);
  auto wf = load_workflow(sq.cfg->workflows_dir, "greenfield", sq.persona_ids());
  REQUIRE(wf.workflow);
  run_spec spec;
  spec.run_id = "partial";
  spec.task = "Build a habit tracker";
  spec.workflow = *wf.workflow;
  spec.workflow.steps.resize(2); // brief -> prd
  for (auto& p : sq.personas)
    spec.personas[p.id] = p;
  spec.step_timeout = 20s;
  caf::scoped_actor self{sys};
  self->send(tree.dir->get()->runs, atoms::start_child_v,
             boss_child(spec, tree.dir, caf::actor_cast<event_sink_actor>(caf::actor{self})));
  std::map<std::string, json> done; // step -> step.completed data
  bool ended = false, timed_out = false;
  std::vector<std::string> types;
  while (!ended && !timed_out)
    self->receive(
        [&](run_event& ev) {
          types.push_back(ev.type);
          if (ev.type == "step.completed" || ev.type == "step.failed")
            done[ev.step_id] = json::parse(ev.data_json);
          ended = ev.type == "run.completed" || ev.type == "run.failed";
        },
        [](caf::actor&) {}, [](caf::error&) {}, caf::after(30s) >> [&] { timed_out = true; });
  caf::anon_send_exit(tree.root, caf::exit_reason::user_shutdown);
  REQUIRE_FALSE(timed_out);
  REQUIRE(done.count("brief"));
  REQUIRE(done.count("prd"));
  CHECK(done["brief"]["status"] == "completed");
  CHECK(done["brief"]["outputs"][0]["partial"] == true);
  CHECK_THAT(done["brief"]["error"].get<std::string>(), Catch::Contains("partial output"));
  CHECK(std::count(types.begin(), types.end(), "step.partial") == 1);
  CHECK(done["prd"]["status"] == "completed");
  CHECK_THAT(done["prd"]["text"].get<std::string>(), Catch::Contains("brief (analyst) [PARTIAL: cut short]"));
}
