// The dispatcher on CAF's test coordinator (virtual time, sim providers): a dead single-target chain ends within
// its bound with few events, and a call bound late moves to whichever target frees first.
#include "runtime/host/squad_tree.hpp"
#include "tests/actors/actor_fixture.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace squad;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string src = SQUAD_SOURCE_DIR;

struct dispatch_fixture : test::actor_fixture {
  squad_tree tree;
  std::shared_ptr<test::recorded> seen = std::make_shared<test::recorded>();
  caf::actor rec = sys->spawn(test::recorder, seen);
  caf::actor_clock::time_point t0;

  void boot(const std::string& providers, const std::string& chain) {
    auto yaml = "personas_dir: " + src + "/personas\nworkflows_dir: " + src + "/config/workflows\nproviders:\n" +
                providers + "personas:\n  analyst: {chain: " + chain + "}\n";
    std::vector<config_problem> problems;
    auto sq = load_squad_text(yaml, problems);
    INFO((problems.empty() ? std::string{} : to_string(problems.front())));
    REQUIRE(sq.cfg);
    tree = start_tree(*sys, sq);
    spawned = {caf::actor_cast<caf::actor>(tree.root), rec};
    sched->run();
    t0 = now();
  }

  std::shared_ptr<answer<call_result>> call(const std::string& question) {
    call_request req;
    req.trace_id = question;
    req.run_id = "r1"; // a run's call: judged by the walk, not shed at the door
    req.step_id = "s-" + question;
    req.priority = 1;
    req.messages = {{"user", question}};
    req.max_tokens = 32;
    req.timeout_ms = 120000;
    req.events = caf::actor_cast<event_sink_actor>(rec);
    return ask<call_result>(caf::actor_cast<caf::actor>(tree.dir->get()->persona("analyst")), req);
  }

  double seconds() const { return std::chrono::duration<double>(sched->clock().now() - t0).count(); }
};

} // namespace

TEST_CASE_METHOD(dispatch_fixture,
                 "a single-target chain whose provider cuts every stream ends soon after its breaker opens",
                 "[dispatcher][dead]") {
  // Every answer is cut after a few words; the breaker opens after 3 failures for 60 s. The call does not wait
  // the minute for a probe (runtime.probe_wait 2 s): it ends within 10 s of the breaker opening, marked partial,
  // with at most three events about it (the breaker's opening, the partial mark, and no per-second waiting).
  boot("  only:\n    kind: sim\n    limits: {requests: 1000, per: 1s, burst: 1000, concurrency: 4}\n"
       "    sim: {latency: 100ms, jitter: 0ms, fault: cut}\n    breaker: {failures: 3, cooldown: 60s}\n"
       "    retry: {base: 100ms, cap: 1s, jitter: 0}\n    models: {m: {id: only-m, tier: worker}}\n",
       "[only/m]");
  auto a = call("a question for a provider that cuts every stream");
  double opened_at = -1, answered_at = -1;
  REQUIRE(run_until([&] {
    if (opened_at < 0 && seen->find("provider.breaker"))
      opened_at = seconds();
    if (answered_at < 0 && (a->value || a->error))
      answered_at = seconds();
    return answered_at >= 0;
  }));
  REQUIRE(a->value);
  CHECK(a->value->partial);
  CHECK(a->value->finish_reason == "partial");
  REQUIRE(opened_at >= 0);
  INFO("breaker opened at " << opened_at << " s, answered at " << answered_at << " s");
  CHECK(answered_at - opened_at <= 10);
  std::size_t about = 0;
  for (auto& e : seen->events)
    about += e.type == "provider.breaker" || e.type == "step.partial" ||
             (e.type == "step.waiting" && json::parse(e.data_json).value("reason", "") == "breaker_open");
  CHECK(about <= 3);
  CHECK(seen->count("step.partial") == 1);
}

TEST_CASE_METHOD(dispatch_fixture, "a call bound late goes to whichever target of its chain frees first",
                 "[dispatcher][late-binding]") {
  // a and b take one call at a time. Their priors are wrong: a is planned at 10 s a call but answers in 2 s, b
  // planned at 4 s answers in 5 s. The first call takes a, the second b. The third sees a in ~10 s and b in ~4 s,
  // both past the bind horizon (1 s): it waits unbound (one step.waiting, reason unbound) counted against b, and
  // when a frees at 2 s it goes to a and is answered at 4 s, before b would have been free (5 s).
  auto provider = [](const std::string& name, const std::string& latency, const std::string& prior) {
    return "  " + name + ":\n    kind: sim\n    limits: {requests: 1000, per: 1s, burst: 1000, concurrency: 1, " +
           "expected_latency: " + prior + "}\n    sim: {latency: " + latency + ", jitter: 0ms}\n" +
           "    models: {m: {id: " + name + "-m, tier: worker}}\n";
  };
  boot(provider("a", "2s", "10s") + provider("b", "5s", "4s"), "[a/m, b/m]");
  auto first = call("first");
  sched->run();
  auto second = call("second");
  sched->run();
  auto third = call("third");
  double third_at = -1;
  REQUIRE(run_until([&] {
    if (third_at < 0 && (third->value || third->error))
      third_at = seconds();
    return first->value && second->value && third_at >= 0;
  }));
  CHECK(first->value->served_by.provider == "a");
  CHECK(second->value->served_by.provider == "b");
  REQUIRE(third->value);
  CHECK(third->value->served_by.provider == "a");
  INFO("third answered at " << third_at << " s");
  CHECK(third_at < 5);
  auto unbound = std::count_if(seen->events.begin(), seen->events.end(), [](const run_event& e) {
    return e.type == "step.waiting" && json::parse(e.data_json).value("reason", "") == "unbound";
  });
  CHECK(unbound == 1);
}

TEST_CASE_METHOD(dispatch_fixture, "a stray error message does not end the dispatcher, a persona or a limiter",
                 "[dispatcher][robust]") {
  // An actor that sends a call without a handler for the answer replies to it with unexpected_message; CAF's
  // default would make the receiver quit, dropping every call it holds.
  boot("  only:\n    kind: sim\n    limits: {requests: 1000, per: 1s, burst: 1000, concurrency: 4}\n"
       "    sim: {latency: 10ms, jitter: 0ms}\n    models: {m: {id: only-m, tier: worker}}\n",
       "[only/m]");
  auto snap = tree.dir->get();
  auto stray = caf::make_error(caf::sec::unexpected_message);
  caf::anon_send(caf::actor_cast<caf::actor>(snap->dispatcher), stray);
  caf::anon_send(caf::actor_cast<caf::actor>(snap->persona("analyst")), stray);
  caf::anon_send(caf::actor_cast<caf::actor>(snap->provider("only")->limiter), stray);
  sched->run();
  auto a = call("still here?");
  REQUIRE(run_until([&] { return a->value || a->error; }));
  CHECK(a->value);
  CHECK(tree.dir->get()->dispatcher == snap->dispatcher); // the same actor: not restarted
}
