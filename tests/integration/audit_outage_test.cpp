// No audit row lost while PostgreSQL is down: `squad serve` on a PostgreSQL of its own (tests/runtime/store/pg.sh)
// answers 50 requests a second while the database is stopped for 10 s; its rows go to the spool file and are
// replayed when the database is back. Every answered request has exactly one request row.
#include "tests/integration/http_client.hpp"
#include "tests/integration/serve_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <future>
#include <set>
#include <thread>

using json = nlohmann::json;
using namespace squad;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

int pg(const std::string& cmd, const fs::path& dir) {
  auto line = std::string(SQUAD_SOURCE_DIR "/tests/runtime/store/pg.sh ") + cmd + " " + dir.string() + " >/dev/null";
  return std::system(line.c_str());
}

json readyz(std::uint16_t port) {
  auto r = test::request("GET", "127.0.0.1", port, "/readyz");
  REQUIRE(r.status == 200);
  return json::parse(r.body)["storage"];
}

template <class F> bool eventually(F f, std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (!f()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

} // namespace

TEST_CASE("audit: PostgreSQL stopped for 10 s under 50 requests/s: rows spool, replay, none lost, none twice") {
  test::temp_dir pgdir;
  fs::permissions(pgdir.path, fs::perms::all);
  auto db = pgdir / "pg";
  REQUIRE(pg("start", db) == 0);
  struct stop_pg {
    fs::path dir;
    ~stop_pg() { pg("destroy", dir); }
  } stopper{db};
  auto url = test::slurp(db / "url");
  url.erase(url.find_last_not_of("\n") + 1);

  test::mock_process mock{"upstreams:\n  up:\n    listen: 127.0.0.1:0\n    style: openai\n"
                          "    limits: {requests: 100000, per: 1s, concurrency: 0}\n    latency: {fixed: 2ms}\n"
                          "    reply: {tokens: 5}\n"};
  test::temp_dir dir;
  auto yaml = "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR "/config/workflows\n"
              "server: {listen: 127.0.0.1:0}\n"
              "storage: {spool: " +
              (dir / "spool.jsonl").string() +
              "}\n"
              "providers:\n  up:\n    kind: openai\n    base_url: http://127.0.0.1:" +
              std::to_string(mock.port("up")) +
              "/v1\n    limits: {requests: 100000, per: 1s, burst: 1000, concurrency: 64}\n"
              "    models:\n      m: {id: mock-m, tier: worker}\npersonas: {}\n";
  test::serve_process squad{yaml, {}, url};
  auto port = squad.port();

  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0};
  auto load = std::async(std::launch::async, [&] { // 50 requests a second, each on its own 20 ms tick
    auto next = std::chrono::steady_clock::now();
    int i = 0;
    while (!stop) {
      json body{{"model", "up/m"},
                {"messages", json::array({{{"role", "user"}, {"content", "q" + std::to_string(i++)}}})}};
      auto r = test::request("POST", "127.0.0.1", port, "/v1/chat/completions", body.dump());
      (r.status == 200 ? answered : failed)++;
      next += 20ms;
      std::this_thread::sleep_until(next);
    }
  });
  std::this_thread::sleep_for(2s);
  REQUIRE(pg("stop", db) == 0);
  auto outage_started = answered.load();
  auto stopped_at = std::chrono::steady_clock::now();
  // During the outage the requests go on, and the rows go to the spool.
  CHECK(eventually([&] { return readyz(port)["up"] == false; }, 5s));
  CHECK(eventually([&] { return readyz(port)["spool_bytes"].get<std::int64_t>() > 0; }, 5s));
  std::this_thread::sleep_until(stopped_at + 10s);
  auto during = answered.load() - outage_started;
  CHECK(during >= 450); // 10 s at 50/s, less the client's own pace
  REQUIRE(pg("start", db) == 0);
  std::this_thread::sleep_for(2s);
  stop = true;
  load.get();
  CHECK(failed.load() == 0);
  // Back: the spool is replayed and emptied.
  CHECK(eventually(
      [&] {
        auto s = readyz(port);
        return s["up"] == true && s["spool_bytes"] == 0 && s["queue_rows"] == 0;
      },
      20s));
  CHECK(squad.stop() == 0);
  CHECK_FALSE(fs::exists(dir / "spool.jsonl"));

  int rc = -1;
  auto out = test::run_command(std::string(SQUAD_BIN) + " audit export --storage " + url, rc);
  REQUIRE(rc == 0);
  std::set<std::string> ids;
  std::size_t requests = 0;
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto end = out.find('\n', pos);
    auto row = json::parse(out.substr(pos, end - pos));
    pos = end + 1;
    if (row["kind"] != "request")
      continue;
    ++requests;
    ids.insert(row["trace_id"].get<std::string>());
  }
  CHECK(requests == static_cast<std::size_t>(answered.load()));
  CHECK(ids.size() == requests); // none twice
  std::printf("audit outage: %d answered (%d while PostgreSQL was down), %zu request rows, %zu distinct\n",
              answered.load(), during, requests, ids.size());
  CHECK(answered.load() >= 600);
}
