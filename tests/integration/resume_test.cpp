// Runs that survive a crash: `squad serve` killed with SIGKILL in the middle of a run, started again on the same
// store, resumes the run. Completed steps are never called again (the mock provider counts any request body it
// admits twice), the interrupted step is retried, and the finished run outlives the restart.
#include "tests/integration/http_client.hpp"
#include "tests/integration/serve_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <future>
#include <set>
#include <thread>

using json = nlohmann::json;
using namespace squad;
using namespace std::chrono_literals;

namespace {

// One upstream slow enough (150 ms a call) that a kill lands inside the run.
const char* slow_mock = "upstreams:\n"
                        "  slow:\n"
                        "    listen: 127.0.0.1:0\n"
                        "    style: openai\n"
                        "    limits: {requests: 1000, per: 1s, concurrency: 0}\n"
                        "    latency: {fixed: 150ms}\n"
                        "    reply: {tokens: 10}\n";

std::string squad_yaml(const test::mock_process& m) {
  return "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR "/config/workflows\n"
         "server: {listen: 127.0.0.1:0}\n"
         "storage: {lease: 1s}\n"
         "providers:\n"
         "  mock:\n"
         "    kind: openai\n"
         "    base_url: http://127.0.0.1:" +
         std::to_string(m.port("slow")) +
         "/v1\n"
         "    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 16}\n"
         "    models:\n"
         "      w: {id: mock-worker, tier: worker}\n"
         "      b: {id: mock-boss, tier: boss}\n"
         "personas: {}\n";
}

json mock_stats(const test::mock_process& m) {
  auto r = test::request("GET", "127.0.0.1", m.port("slow"), "/stats");
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

// The events of an SSE body, parsed from their data lines.
std::vector<json> events_of(const std::string& body) {
  std::vector<json> out;
  for (const auto& d : test::sse_data(body))
    if (auto j = json::parse(d, nullptr, false); !j.is_discarded())
      out.push_back(std::move(j)); // the last one may be cut by the kill
  return out;
}

} // namespace

TEST_CASE("a run in flight when squad serve is killed with SIGKILL is resumed by the next start on the same store") {
  test::mock_process mock{slow_mock};
  test::temp_dir store;
  auto url = "sqlite:" + (store / "squad.db").string();
  auto yaml = squad_yaml(mock);
  std::string id;
  std::set<std::string> done_before; // steps whose step.completed went out before the kill
  {
    test::serve_process first{yaml, {}, url};
    auto started = test::request("POST", "127.0.0.1", first.port(), "/v1/runs",
                                 R"({"task":"Build a habit tracker","budget":{"calls":30}})");
    REQUIRE(started.status == 202);
    id = json::parse(started.body)["id"].get<std::string>();
    // Follow the run; kill the server once two steps are done (the crash lands in the third or later).
    std::string seen;
    test::stream("GET", "127.0.0.1", first.port(), "/v1/runs/" + id + "/events", "", {}, [&](std::string_view piece) {
      seen += piece;
      std::size_t pos = 0, completed = 0;
      while ((pos = seen.find("event: step.completed", pos)) != std::string::npos)
        ++completed, ++pos;
      if (completed >= 2)
        first.kill_hard();
    });
    for (const auto& ev : events_of(seen))
      if (ev["type"] == "step.completed")
        done_before.insert(ev["step_id"].get<std::string>());
    REQUIRE(done_before.size() >= 2);
    REQUIRE(seen.find("event: run.completed") == std::string::npos);
  }
  auto calls_before = mock_stats(mock)["admitted"].get<std::int64_t>();

  test::serve_process second{yaml, {}, url};
  // The restart claims the run once the dead process's lease (1 s) has run out, and runs it to its end.
  auto events = test::request("GET", "127.0.0.1", second.port(), "/v1/runs/" + id + "/events");
  REQUIRE(events.status == 200);
  auto evs = events_of(events.body);
  REQUIRE(!evs.empty());
  INFO(events.body);
  CHECK(evs.back()["type"] == "run.completed");
  auto resumed = std::find_if(evs.begin(), evs.end(), [](const json& e) { return e["type"] == "run.resumed"; });
  REQUIRE(resumed != evs.end());
  std::set<std::string> done;
  for (const auto& s : (*resumed)["data"]["done"])
    done.insert(s.get<std::string>());
  for (const auto& s : done_before)
    CHECK(done.count(s) == 1); // every step completed before the crash is known done
  CHECK((*resumed)["data"]["calls_spent"].get<std::int64_t>() >= static_cast<std::int64_t>(done_before.size()));
  std::int64_t last_seq = 0;
  for (auto it = evs.begin(); it != evs.end(); ++it) {
    CHECK((*it)["seq"].get<std::int64_t>() > last_seq); // one sequence across both processes
    last_seq = (*it)["seq"].get<std::int64_t>();
    if (it > resumed && (*it)["type"] == "step.started")
      CHECK(done.count((*it)["step_id"].get<std::string>()) == 0); // no done step starts again
  }
  // Only the interrupted calls were made twice: no completed step's request reached the upstream again.
  auto stats = mock_stats(mock);
  CHECK(stats["repeated"].get<std::int64_t>() <= 2);
  CHECK(stats["admitted"].get<std::int64_t>() > calls_before);

  auto snap = test::request("GET", "127.0.0.1", second.port(), "/v1/runs/" + id);
  REQUIRE(snap.status == 200);
  auto run = json::parse(snap.body);
  CHECK(run["state"] == "completed");
  for (const auto& s : run["steps"])
    CHECK(s["status"] == "completed");
  CHECK(!run["artifacts"]["synthesis"].get<std::string>().empty());
  CHECK(!run["artifacts"]["brief"].get<std::string>().empty()); // from the journal, written by the first process
}

TEST_CASE("a finished run outlives a clean restart: GET lists it, its events replay from the store") {
  test::mock_process mock{slow_mock};
  test::temp_dir store;
  auto url = "sqlite:" + (store / "squad.db").string();
  auto yaml = squad_yaml(mock);
  std::string id, first_events;
  {
    test::serve_process first{yaml, {}, url};
    auto started = test::request("POST", "127.0.0.1", first.port(), "/v1/runs", R"({"task":"Build a habit tracker"})");
    REQUIRE(started.status == 202);
    id = json::parse(started.body)["id"].get<std::string>();
    first_events = test::request("GET", "127.0.0.1", first.port(), "/v1/runs/" + id + "/events").body;
    CHECK(first.stop() == 0);
  }
  test::serve_process second{yaml, {}, url};
  auto list = json::parse(test::request("GET", "127.0.0.1", second.port(), "/v1/runs").body);
  REQUIRE(!list["data"].empty());
  CHECK(list["data"][0]["id"] == id);
  CHECK(list["data"][0]["state"] == "completed");
  auto replay = events_of(test::request("GET", "127.0.0.1", second.port(), "/v1/runs/" + id + "/events").body);
  std::vector<std::string> kept_first, kept_replay;
  for (const auto& e : events_of(first_events))
    if (e["type"] != "step.delta")
      kept_first.push_back(e.dump());
  for (const auto& e : replay)
    kept_replay.push_back(e.dump());
  CHECK(kept_replay == kept_first); // every kept event, byte for byte, in order
  auto run = json::parse(test::request("GET", "127.0.0.1", second.port(), "/v1/runs/" + id).body);
  CHECK(run["state"] == "completed");
  CHECK(!run["artifacts"]["synthesis"].get<std::string>().empty());
}
