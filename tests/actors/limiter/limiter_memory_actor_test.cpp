// The limiter actor with a limiter_memory, on CAF's deterministic test coordinator: when it saves checkpoints (at
// most once per interval while it changes, none while idle, at once when asked), and that a limiter spawned again on
// the same memory starts where its predecessor left off. The wall clock is the test clock plus a fixed offset.
#include "actors/limiter/limiter.hpp"
#include "runtime/host/limiter_state.hpp"
#include "runtime/metrics/registry.hpp"
#include "tests/actors/actor_fixture.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

using namespace squad;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t wall0 = 1'765'000'000'000;

struct memory_fixture : test::actor_fixture {
  std::vector<std::pair<std::string, limiter_checkpoint>> saved; // what reached the sink, in order
  std::vector<std::string> lines;
  std::shared_ptr<limiter_memory> memory;

  memory_fixture() {
    limiter_memory::options o;
    o.wall_ms = [this] { return wall0 + std::chrono::duration_cast<millis>(now().time_since_epoch()).count(); };
    o.log = [this](std::string l) { lines.push_back(std::move(l)); };
    memory = std::make_shared<limiter_memory>(o);
    memory->set_sink([this](const std::string& d, const limiter_checkpoint& cp) { saved.emplace_back(d, cp); });
  }

  static provider_config three_per_minute(const std::string& name = "groq") {
    provider_config p;
    p.name = name;
    p.kind = "sim";
    p.limits.requests = 3;
    p.limits.per = 60000ms;
    p.limits.burst = 3;
    p.limits.concurrency = 10;
    return p;
  }

  caf::actor spawn_with_memory(const provider_config& p) {
    caf::scoped_actor self{*sys};
    auto a = caf::actor_cast<caf::actor>(spawn_limiter(self.ptr(), p, false, nullptr, memory));
    spawned.push_back(a);
    sched->run();
    return a;
  }

  limit_grant admit(const caf::actor& lim) {
    auto a = ask<limit_grant>(lim, atoms::admit_v, std::int64_t{0}, std::int64_t{0}, std::uint8_t{1});
    sched->run();
    REQUIRE(a->value);
    return *a->value;
  }

  void advance(caf::timespan d) {
    sched->clock().advance_time(d);
    do
      sched->run();
    while (sched->clock().advance_time(caf::timespan{0}) > 0);
  }
};

} // namespace

TEST_CASE_METHOD(memory_fixture, "limiter memory: a changed limiter saves once per interval, an idle one never",
                 "[limiter][limiter_actor][checkpoint]") {
  // Intent: three grants within a few milliseconds make one checkpoint 250 ms after the first, holding all three;
  // nothing more while nothing changes; the next grant makes the next one; the counter counts them.
  auto counted = [] {
    return metrics::registry::global().value("squad_limiter_checkpoints_total", {{"provider", "groq"}});
  };
  auto before = counted();
  auto lim = spawn_with_memory(three_per_minute());
  CHECK(lines.empty()); // nothing to restore
  for (int i = 0; i < 3; ++i) {
    CHECK(admit(lim).granted);
    advance(1ms);
  }
  CHECK(saved.empty()); // not on the admission path
  advance(246ms);
  CHECK(saved.empty());
  advance(1ms); // 250 ms after the first change
  REQUIRE(saved.size() == 1);
  CHECK(saved[0].first == "groq");
  CHECK(saved[0].second.window.size() == 3);
  CHECK(saved[0].second.saved_ms == memory->wall_ms()); // taken now, on the wall clock
  CHECK(counted() - before == 1);
  advance(10000ms);
  CHECK(saved.size() == 1);        // idle: nothing new to keep
  CHECK_FALSE(admit(lim).granted); // the window is full: nothing changed either
  advance(1000ms);
  CHECK(saved.size() == 1);
  CHECK(memory->latest("groq")->window.size() == 3);
}

TEST_CASE_METHOD(memory_fixture, "limiter memory: (done) saves what changed at once, for a clean stop",
                 "[limiter][limiter_actor][checkpoint]") {
  auto lim = spawn_with_memory(three_per_minute());
  CHECK(admit(lim).granted);
  auto done = ask<bool>(lim, atoms::done_v);
  sched->run();
  REQUIRE(done->value);
  CHECK(*done->value);
  REQUIRE(saved.size() == 1); // no time passed
  CHECK(saved[0].second.window.size() == 1);
  auto again = ask<bool>(lim, atoms::done_v);
  sched->run();
  CHECK(again->value == true);
  CHECK(saved.size() == 1); // nothing changed since
  advance(1000ms);
  CHECK(saved.size() == 1); // the timer the grant armed finds nothing new
}

TEST_CASE_METHOD(memory_fixture,
                 "limiter memory: a limiter spawned again on the same memory admits nothing more "
                 "than its window allows",
                 "[limiter][limiter_actor][checkpoint]") {
  // Intent: the first limiter grants 3 of 3 and dies (as a crash or a restarted process would); the second, spawned
  // 10 s later on the same memory, grants nothing until 60 s after the first grant, and says what it restored.
  auto p = three_per_minute();
  auto first = spawn_with_memory(p);
  for (int i = 0; i < 3; ++i)
    CHECK(admit(first).granted);
  advance(250ms);
  REQUIRE(saved.size() == 1);
  caf::anon_send_exit(first, caf::exit_reason::kill);
  sched->run();
  advance(9750ms);
  auto second = spawn_with_memory(p);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("groq: 3 in window"));
  auto g = admit(second);
  CHECK_FALSE(g.granted);
  CHECK(g.rule == "window");
  CHECK(g.wait_ms >= 49000); // 60 s (+ the 600 ms margin) after the first grant, 10 s ago
  CHECK(g.wait_ms <= 50700);
  advance(50000ms);
  CHECK_FALSE(admit(second).granted);
  advance(700ms);
  CHECK(admit(second).granted);
  // A limiter of another domain finds nothing of groq's.
  auto other = spawn_with_memory(three_per_minute("cerebras"));
  CHECK(admit(other).granted);
}

TEST_CASE_METHOD(memory_fixture, "limiter memory: without a memory nothing is saved or restored",
                 "[limiter][limiter_actor][checkpoint]") {
  caf::scoped_actor self{*sys};
  auto lim = caf::actor_cast<caf::actor>(spawn_limiter(self.ptr(), three_per_minute(), false));
  spawned.push_back(lim);
  sched->run();
  CHECK(admit(lim).granted);
  advance(1000ms);
  CHECK(saved.empty());
  auto done = ask<bool>(lim, atoms::done_v);
  sched->run();
  CHECK(done->value == false);
}

TEST_CASE("limiter state: only the checkpoints of configured limiters, readable ones, are loaded at start",
          "[limiter][checkpoint][host]") {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() / ("squad-limiter-state-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  {
    auto db = store::store::open("sqlite:" + (dir / "squad.db").string());
    limiter_checkpoint cp;
    cp.saved_ms = wall0;
    cp.window = {wall0 - 10};
    store::write_batch b;
    b.limiters.push_back({"groq", to_json(cp), wall0});
    b.limiters.push_back({"groq/llama", to_json(cp), wall0}); // a model with limits of its own
    b.limiters.push_back({"retired", to_json(cp), wall0});    // no longer in the config
    b.limiters.push_back({"cerebras", "{\"v\":99}", wall0});  // a format this squad does not read
    db->write(b);
    config cfg;
    for (std::string name : {"groq", "cerebras"}) {
      provider_config p;
      p.name = name;
      model_config m;
      m.name = "llama";
      if (name == "groq")
        m.limits = limits_config{};
      p.models.push_back(m);
      cfg.providers.push_back(p);
    }
    CHECK(limiter_domains(cfg) == std::set<std::string>{"cerebras", "groq", "groq/llama"});
    auto memory = load_limiter_memory(*db, cfg);
    REQUIRE(memory->latest("groq"));
    CHECK(memory->latest("groq")->window == std::vector<std::int64_t>{wall0 - 10});
    CHECK(memory->latest("groq/llama"));
    CHECK_FALSE(memory->latest("retired"));
    CHECK_FALSE(memory->latest("cerebras"));
  }
  std::filesystem::remove_all(dir);
}
