#include "actors/boss/boss.hpp"
#include "runtime/host/run_journal.hpp"
#include "runtime/host/squad_tree.hpp"
#include "tests/actors/actor_fixture.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace squad;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string src = SQUAD_SOURCE_DIR;

// The shipped default providers, with personas and workflows read from the source tree.
std::string default_config() {
  return "personas_dir: " + src + "/personas\nworkflows_dir: " + src + "/config/workflows\n" + R"(
providers:
  sim-swift:
    kind: sim
    limits: {requests: 4, per: 10s, burst: 2, concurrency: 2}
    sim: {latency: 120ms, jitter: 60ms, max_tokens: 300}
    models: {swift-small: {id: sim-swift-small, tier: worker}}
  sim-steady:
    kind: sim
    limits: {requests: 10, per: 10s, burst: 3, concurrency: 4}
    sim: {latency: 250ms, jitter: 100ms, max_tokens: 400}
    models: {steady-medium: {id: sim-steady-medium, tier: worker}}
  sim-deep:
    kind: sim
    limits: {requests: 3, per: 10s, burst: 1, concurrency: 1}
    sim: {latency: 450ms, jitter: 150ms, max_tokens: 600}
    models: {deep-large: {id: sim-deep-large, tier: boss}}
)";
}

// One provider for everything, with the given limits.
std::string single_provider_config(const std::string& limits, const std::string& step_timeout = "60s") {
  return "personas_dir: " + src + "/personas\nworkflows_dir: " + src + "/config/workflows\n" +
         "runtime: {step_timeout: " + step_timeout + "}\n" + R"(
providers:
  only:
    kind: sim
    limits: )" +
         limits + R"(
    sim: {latency: 100ms, jitter: 0ms}
    models: {m: {id: only-m, tier: worker}}
)";
}

struct run_fixture : test::actor_fixture {
  loaded_squad squad;
  squad_tree tree;
  caf::actor root; // the root supervisor, untyped for the fixture's bookkeeping
  std::shared_ptr<test::recorded> seen = std::make_shared<test::recorded>();
  caf::actor rec = sys->spawn(test::recorder, seen);
  std::string task = "Build a habit tracker for small teams";

  void boot(const std::string& yaml) {
    std::vector<config_problem> problems;
    squad = load_squad_text(yaml, problems);
    INFO((problems.empty() ? std::string{} : to_string(problems.front())));
    REQUIRE(squad.cfg);
    tree = start_tree(*sys, squad);
    root = caf::actor_cast<caf::actor>(tree.root);
    spawned = {root, rec};
    sched->run();
  }

  void run(const std::string& workflow, test_hooks hooks = {}, const std::string& run_id = "t1", run_resume resume = {},
           std::optional<std::int64_t> budget_calls = {}) {
    auto wf = load_workflow(squad.cfg->workflows_dir, workflow, squad.persona_ids());
    REQUIRE(wf.workflow);
    run_spec spec;
    spec.run_id = run_id;
    spec.task = task;
    spec.workflow = *wf.workflow;
    for (auto& p : squad.personas)
      spec.personas[p.id] = p;
    spec.step_timeout = squad.cfg->runtime.step_timeout;
    spec.supervision = squad.cfg->supervision;
    spec.hooks = std::move(hooks);
    spec.resume = std::move(resume);
    if (budget_calls)
      spec.workflow.budget_calls = *budget_calls;
    ask<caf::actor>(handle(tree.dir->get()->runs), atoms::start_child_v,
                    boss_child(spec, tree.dir, caf::actor_cast<event_sink_actor>(rec)));
    REQUIRE(run_until([&] { return seen->ended(); }));
  }

  std::vector<std::string> started_steps() const {
    std::vector<std::string> out;
    for (auto& e : seen->events)
      if (e.type == "step.started")
        out.push_back(e.step_id);
    return out;
  }

  json data(const run_event* e) const { return json::parse(e->data_json); }

  // The recorded events as the journal keeps them, up to and including the `n`-th step.completed.
  std::vector<json> journal_until_completed(std::size_t n) const {
    std::vector<json> out;
    std::size_t completed = 0;
    for (auto& e : seen->events) {
      if (e.type == "step.delta")
        continue;
      out.push_back({{"type", e.type},
                     {"seq", e.seq},
                     {"at_ms", e.at_ms},
                     {"run_id", e.run_id},
                     {"step_id", e.step_id},
                     {"data", json::parse(e.data_json)}});
      if (e.type == "step.completed" && ++completed == n)
        break;
    }
    return out;
  }

  template <class Handle> static caf::actor handle(const Handle& h) { return caf::actor_cast<caf::actor>(h); }
  caf::actor persona(const std::string& id) { return handle(tree.dir->get()->persona(id)); }
  caf::actor dispatcher() { return handle(tree.dir->get()->dispatcher); }
};

} // namespace

TEST_CASE_METHOD(run_fixture, "greenfield: steps are delegated in dependency order and complete") {
  // Intent: the boss expands the DAG in order, every step completes, the run completes.
  boot(default_config());
  run("greenfield");
  CHECK(started_steps() == std::vector<std::string>{"brief", "prd", "design", "validation", "stories", "synthesis"});
  CHECK(seen->count("step.completed") == 6);
  REQUIRE(seen->find("run.completed"));
  auto summary = data(seen->find("run.completed"));
  CHECK(summary["failed"].empty());
  // Events are numbered without gaps, in order.
  for (std::size_t i = 0; i < seen->events.size(); ++i)
    CHECK(seen->events[i].seq == static_cast<std::int64_t>(i + 1));
}

TEST_CASE_METHOD(run_fixture, "a parallel step fans out: both personas' calls are in flight at once") {
  // Intent: the design step lasts as long as its slower call, not the sum of both.
  boot(default_config());
  run("greenfield");
  auto started = seen->find("step.started", "design");
  auto done = seen->find("step.completed", "design");
  REQUIRE(started);
  REQUIRE(done);
  auto outputs = data(done)["outputs"];
  REQUIRE(outputs.size() == 2);
  auto a = outputs[0]["latency_ms"].get<std::int64_t>();
  auto b = outputs[1]["latency_ms"].get<std::int64_t>();
  CHECK(done->at_ms - started->at_ms == std::max(a, b));
  CHECK(outputs[0]["persona"] == "architect");
  CHECK(outputs[0]["provider"] == "sim-deep"); // boss-tier persona goes to the boss tier first
  CHECK(outputs[1]["persona"] == "ux-expert");
}

TEST_CASE_METHOD(run_fixture, "a crashing worker is restarted within the intensity limit and the run completes") {
  // Intent: transient worker children are restarted by the run's worker supervisor and redo their step.
  boot(default_config());
  test_hooks hooks;
  hooks.crash_step = "prd";
  hooks.crash_times = 2;
  run("greenfield", hooks);
  CHECK(seen->count("step.restarted") == 2);
  CHECK(seen->find("step.restarted")->step_id == "prd");
  CHECK(seen->find("run.completed"));
}

TEST_CASE_METHOD(run_fixture, "past the intensity limit the worker supervisor escalates and the run fails explicitly") {
  // Intent: a step whose worker always crashes is not retried forever; the run says why it failed.
  boot(default_config()); // supervision default: 5 restarts in 10s
  test_hooks hooks;
  hooks.crash_step = "prd";
  hooks.crash_times = 1000;
  run("greenfield", hooks);
  CHECK(seen->count("step.restarted") == 5);
  CHECK(seen->find("step.escalated"));
  auto failed = seen->find("run.failed");
  REQUIRE(failed);
  CHECK_THAT(failed->message, Catch::Contains("intensity_exceeded"));
}

TEST_CASE_METHOD(run_fixture, "a persona actor crashed mid-run is restarted and the run completes") {
  // Intent: persona actors are permanent children; their crash is visible and loses no step.
  boot(default_config());
  test_hooks hooks;
  hooks.kill_persona = "architect";
  run("greenfield", hooks);
  auto restarted = seen->find("actor.restarted");
  REQUIRE(restarted);
  CHECK(restarted->persona == "architect");
  CHECK(seen->find("run.completed"));
}

TEST_CASE_METHOD(run_fixture, "a busy target's calls are routed to one that can serve sooner, visibly") {
  // Intent: sim-swift allows 1 call per 10s; its limiter says so, and prd goes to sim-steady without a 429.
  auto yaml = default_config();
  yaml.replace(yaml.find("requests: 4"), 11, "requests: 1");
  boot(yaml);
  run("greenfield");
  auto routed = seen->find("step.routed", "prd");
  REQUIRE(routed);
  CHECK(data(routed)["preferred"] == "sim-swift/swift-small");
  CHECK(data(routed)["chosen"] == "sim-steady/steady-medium");
  CHECK(data(routed)["preferred_wait_ms"].get<std::int64_t>() > 250);
  CHECK(data(seen->find("step.completed", "prd"))["outputs"][0]["provider"] == "sim-steady");
  CHECK_FALSE(seen->find("step.fallback")); // no upstream ever answered 429
  CHECK(seen->find("run.completed"));
}

TEST_CASE_METHOD(run_fixture, "when every target is busy the call queues for the earliest slot, then completes") {
  // Intent: one provider at 1 call per 2s: calls queue at its limiter (step.queued) instead of failing. Each call
  // that goes waits its 2s turn; the waits raise the pressure, so P2 work is skipped (with a reason) on the way.
  boot(single_provider_config("{requests: 1, per: 2s, burst: 1, concurrency: 1}"));
  run("greenfield");
  auto queued = seen->count("step.queued");
  CHECK(queued >= 3);
  CHECK_FALSE(seen->find("step.fallback"));
  auto done = seen->find("run.completed");
  REQUIRE(done);
  CHECK(done->at_ms >= 2000 * static_cast<std::int64_t>(queued));
  CHECK(seen->count("call.skipped") + seen->count("step.queued") + 1 >= 7); // every call went, or said why not
}

TEST_CASE_METHOD(run_fixture, "a call whose only slot lies past its deadline fails with every attempt listed") {
  // Intent: chain exhaustion is an explicit error; dependents still run and the run fails, saying which step.
  boot(single_provider_config("{requests: 1, per: 10m, burst: 1, concurrency: 1}", "5s"));
  run("greenfield");
  auto failed = seen->find("step.failed", "prd");
  REQUIRE(failed);
  CHECK_THAT(data(failed)["error"].get<std::string>(), Catch::Contains("chain_exhausted"));
  CHECK_THAT(data(failed)["error"].get<std::string>(), Catch::Contains("limited (no slot within"));
  auto run_failed = seen->find("run.failed");
  REQUIRE(run_failed);
  CHECK_THAT(run_failed->message, Catch::Contains("prd"));
}

TEST_CASE_METHOD(run_fixture, "a truncated worker answer escalates to the boss tier, visibly") {
  // Intent: the output check: worker models that cut every answer short (max_tokens 5) make the call go to the
  // boss tier, and the step says so with step.escalated.
  auto yaml = default_config();
  yaml.replace(yaml.find("max_tokens: 300"), 15, "max_tokens: 5  ");
  yaml.replace(yaml.find("max_tokens: 400"), 15, "max_tokens: 5  ");
  boot(yaml);
  run("greenfield");
  auto esc = seen->find("step.escalated", "brief");
  REQUIRE(esc);
  CHECK(data(esc)["reason"] == "bad_output");
  CHECK(data(esc)["to"] == "sim-deep/deep-large");
  CHECK(data(seen->find("step.completed", "brief"))["outputs"][0]["provider"] == "sim-deep");
}

TEST_CASE_METHOD(run_fixture, "under pressure a P2 step is skipped, and the synthesis still completes") {
  // Intent: every provider allows 1 call per 10s. The first calls go at once; then the best wait for a slot
  // passes the elevated threshold, the run's budget allocator skips P2 work with a reason, and the P0 synthesis
  // runs anyway.
  auto yaml = default_config();
  for (auto from : {"requests: 4", "requests: 10", "requests: 3"})
    yaml.replace(yaml.find(from), std::string(from).size(), "requests: 1");
  boot(yaml);
  run("greenfield");
  auto skipped = seen->find("call.skipped");
  REQUIRE(skipped);
  CHECK_THAT(data(skipped)["reason"].get<std::string>(), Catch::Contains("P2"));
  CHECK(data(skipped)["pressure"] != "normal");
  auto step_skipped = seen->find("step.skipped");
  REQUIRE(step_skipped);
  CHECK_THAT(data(step_skipped)["error"].get<std::string>(), Catch::Contains("skipped"));
  auto synthesis = seen->find("step.completed", "synthesis");
  REQUIRE(synthesis);
  CHECK(seen->find("run.completed"));
}

TEST_CASE_METHOD(run_fixture, "at critical pressure the synthesis is degraded and says how") {
  // Intent: every provider allows 1 call per 30s; waits pass the critical threshold (10s). The P0 synthesis still
  // runs, with lower max_tokens and temperature and the worker tier preferred, each stated as a step.degraded event.
  auto yaml = default_config();
  for (auto from : {"requests: 4", "requests: 10", "requests: 3"})
    yaml.replace(yaml.find(from), std::string(from).size(), "requests: 1");
  for (std::size_t at = yaml.find("per: 10s"); at != std::string::npos; at = yaml.find("per: 10s"))
    yaml.replace(at, 8, "per: 30s");
  boot(yaml);
  run("greenfield");
  std::vector<std::string> changes;
  for (auto& ev : seen->events)
    if (ev.type == "step.degraded" && ev.step_id == "synthesis")
      changes.push_back(data(&ev)["change"].get<std::string>());
  auto has = [&](const std::string& what) {
    return std::any_of(changes.begin(), changes.end(), [&](auto& c) {
      return c.find(what) != std::string::npos && c.find("critical") != std::string::npos;
    });
  };
  CHECK(has("max_tokens"));
  CHECK(has("temperature"));
  CHECK(has("prefer_worker"));
  CHECK(seen->find("step.completed", "synthesis"));
  CHECK(seen->find("run.completed"));
}

TEST_CASE_METHOD(run_fixture,
                 "a repeated run is answered from the response cache; only the P0 synthesis calls an LLM") {
  boot(default_config());
  run("greenfield");
  REQUIRE(seen->find("run.completed"));
  CHECK(seen->count("call.cached") == 0);
  seen->events.clear();
  run("greenfield", {}, "t2");
  REQUIRE(seen->find("run.completed"));
  // brief, prd, architect, ux-expert, validation, stories: six calls below P0, each answered from the cache.
  CHECK(seen->count("call.cached") == 6);
  CHECK_FALSE(seen->find("call.cached", "synthesis")); // P0 always asks an LLM
  auto stats = ask<std::string>(dispatcher(), atoms::stats_v);
  sched->run();
  REQUIRE(stats->value);
  auto cache = json::parse(*stats->value)["cache"];
  CHECK(cache["hits"] == 6);
  CHECK(cache["entries"] == 7);
}

TEST_CASE_METHOD(run_fixture, "cache_only answers from the cache or is shed with the reason; bypass skips the cache") {
  boot(default_config());
  auto call = [&](std::uint8_t mode) {
    call_request req;
    req.persona = "analyst";
    req.run_id = "r";
    req.messages = {{"user", "Summarise the habit tracker idea"}};
    req.cache_mode = mode;
    return ask<call_result>(persona("analyst"), req);
  };
  auto miss = call(cache_only);
  REQUIRE(run_until([&] { return miss->value || miss->error; }));
  REQUIRE(miss->error);
  CHECK(miss->error == squad_errc::shed);
  CHECK_THAT(error_detail(*sys, miss->error), Catch::Contains("no cached answer"));
  auto fresh = call(cache_use);
  REQUIRE(run_until([&] { return fresh->value || fresh->error; }));
  REQUIRE(fresh->value);
  CHECK_FALSE(fresh->value->cached);
  auto hit = call(cache_only);
  REQUIRE(run_until([&] { return hit->value || hit->error; }));
  REQUIRE(hit->value);
  CHECK(hit->value->cached);
  CHECK(hit->value->text == fresh->value->text);
  CHECK(hit->value->attempts.empty());
  auto bypass = call(cache_bypass);
  REQUIRE(run_until([&] { return bypass->value || bypass->error; }));
  REQUIRE(bypass->value);
  CHECK_FALSE(bypass->value->cached);
  CHECK(bypass->value->attempts.size() == 1);
}

TEST_CASE_METHOD(run_fixture, "under pressure a P2 step whose answer is cached is served from the cache, not skipped") {
  // Intent: run once at normal pressure (every answer is stored), then fill the limiters' queues with uncached P0
  // calls so that pressure is elevated, and run again. The P2 validation call (po), which a miss would skip, is
  // answered from the cache, and the run still has no skip.
  boot(default_config());
  run("greenfield");
  REQUIRE(seen->find("run.completed"));
  seen->events.clear();
  std::vector<std::shared_ptr<answer<call_result>>> load;
  for (int i = 0; i < 16; ++i) {
    call_request req;
    req.persona = "analyst";
    req.priority = 0;
    req.messages = {{"user", "load " + std::to_string(i)}};
    req.cache_mode = cache_bypass;
    req.timeout_ms = 600000;
    load.push_back(ask<call_result>(persona("analyst"), req));
  }
  sched->run();
  auto level = std::make_shared<int>(-1);
  sys->spawn([level, d = tree.dir->get()->dispatcher](caf::event_based_actor* self) {
    self->request(d, caf::infinite, atoms::phase_v).then([level](std::uint8_t l, std::string&) { *level = l; });
  });
  sched->run();
  REQUIRE(*level >= 1); // elevated or critical
  run("greenfield", {}, "t2");
  REQUIRE(seen->find("run.completed"));
  auto po = std::find_if(seen->events.begin(), seen->events.end(),
                         [](auto& e) { return e.type == "call.cached" && e.persona == "po"; });
  CHECK(po != seen->events.end());
  CHECK(seen->count("call.skipped") == 0);
  // Elevated when it asked: P1 calls were granted degraded; the P2 call got no grant to degrade (cache only).
  auto degraded = [&](const std::string& persona) {
    return std::any_of(seen->events.begin(), seen->events.end(),
                       [&](auto& e) { return e.type == "step.degraded" && e.persona == persona; });
  };
  CHECK(degraded("architect"));
  CHECK_FALSE(degraded("po"));
  REQUIRE(
      run_until([&] { return std::all_of(load.begin(), load.end(), [](auto& a) { return a->value || a->error; }); }));
}

TEST_CASE_METHOD(run_fixture, "a provider that crashes holding a call: the call fails at its deadline, not never") {
  // CAF 0.17 has no broken-promise error and provider requests carry no timeout: the dispatcher's deadline sweep
  // is what answers a call whose provider died with it.
  boot(single_provider_config("{requests: 100, per: 1s, burst: 100, concurrency: 10}"));
  call_request req;
  req.messages = {{"user", "hello"}};
  req.chain = {chain_target{"only", "m", "only-m", "worker"}};
  req.timeout_ms = 2000;
  req.cache_mode = cache_bypass;
  auto start = now();
  auto r = ask<call_result>(dispatcher(), req);
  sched->run(); // the call reaches the sim provider, which holds it for its 100ms latency
  REQUIRE_FALSE(r->value);
  caf::anon_send(tree.dir->get()->provider("only")->provider, atoms::crash_v);
  REQUIRE(run_until([&] { return r->value || r->error; }));
  REQUIRE(r->error);
  CHECK(r->error == squad_errc::deadline_exceeded);
  CHECK_THAT(error_detail(*sys, r->error), Catch::Contains("deadline of 2000ms"));
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now() - start).count();
  CHECK(waited >= 2000);
  CHECK(waited <= 4000); // the deadline plus the sweep's grace and period
}

TEST_CASE_METHOD(run_fixture, "a resumed run never calls its done steps again and its budget counts what they spent") {
  // Intent: the journal of a run cut after two steps; the run goes on from it: run.resumed (not run.started)
  // continues the numbering, brief and prd are not started again, their results feed their dependents, and the
  // calls they spent count against the budget.
  boot(default_config());
  run("greenfield");
  auto journal = journal_until_completed(2);
  auto resume = resume_from(journal);
  REQUIRE(resume.done.size() == 2);
  REQUIRE(resume.done.count("brief") == 1);
  REQUIRE(resume.done.count("prd") == 1);
  CHECK(resume.calls == 2);
  CHECK(resume.seq == journal.back()["seq"].get<std::int64_t>());
  auto brief_text = resume.done["brief"].text;

  *seen = test::recorded{};
  task = "Build a reading list app"; // another prompt: nothing comes from the response cache
  run("greenfield", {}, "t1", resume);
  REQUIRE(!seen->events.empty());
  CHECK(seen->events.front().type == "run.resumed");
  CHECK(seen->events.front().seq == resume.seq + 1);
  CHECK(seen->events.front().at_ms >= resume.at_ms);
  CHECK_FALSE(seen->find("run.started"));
  auto resumed = data(&seen->events.front());
  CHECK(resumed["done"] == json::array({"brief", "prd"}));
  CHECK(resumed["calls_spent"] == 2);
  CHECK(started_steps() == std::vector<std::string>{"design", "validation", "stories", "synthesis"});
  REQUIRE(seen->find("run.completed"));
  CHECK(data(seen->find("run.completed"))["calls"] == 7); // 2 before the restart, 5 after

  // With a budget of 4 calls, 2 already spent leaves 2: the run cannot make the 5 calls it still needs.
  *seen = test::recorded{};
  task = "Build a recipe planner";
  run("greenfield", {}, "t1", resume, 4);
  CHECK(seen->count("step.completed") < 4);
  auto skipped = seen->find("call.skipped");
  REQUIRE(skipped);
  INFO(skipped->data_json);
  CHECK(data(skipped)["reason"].get<std::string>().find("budget") != std::string::npos);
}
