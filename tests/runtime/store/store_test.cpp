// The storage suite: every case runs against SQLite (a file in a temporary directory) and PostgreSQL (the
// throwaway server tests/runtime/store/pg.sh starts as a CTest fixture; each case gets a database of its own).
#include "runtime/store/store.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

namespace fs = std::filesystem;
using namespace squad::store;

namespace {

std::string unique_name(const char* prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  return prefix + std::to_string(rng() % 1000000000000ULL);
}

std::string pg_server_url() {
  const char* file = std::getenv("SQUAD_TEST_PG_URL_FILE");
  REQUIRE(file != nullptr); // set by CTest: the pg fixture is part of the suite, not optional
  std::ifstream in{file};
  std::string url;
  std::getline(in, url);
  REQUIRE_FALSE(url.empty());
  return url;
}

// The SQLite cases' directories, removed when the test program ends.
struct temp_dirs {
  std::vector<fs::path> made;
  ~temp_dirs() {
    std::error_code ec;
    for (const auto& d : made)
      fs::remove_all(d, ec);
  }
  fs::path make() {
    auto dir = fs::temp_directory_path() / unique_name("squad-store-");
    fs::create_directories(dir);
    made.push_back(dir);
    return dir;
  }
};
fs::path temp_dir() {
  static temp_dirs dirs;
  return dirs.make();
}

// A fresh, empty database for one case: a new SQLite file or a new PostgreSQL database.
std::string fresh_url(const std::string& backend) {
  if (backend == "sqlite") {
    auto dir = temp_dir();
    return "sqlite:" + (dir / "squad.db").string();
  }
  auto server = pg_server_url();
  auto name = unique_name("squad_test_");
  open_postgresql(server)->query("CREATE DATABASE " + name);
  return server.substr(0, server.rfind('/') + 1) + name;
}

run_row a_run(const std::string& id, std::int64_t created, const std::string& state = "running") {
  run_row r;
  r.id = id;
  r.owner = "team-a";
  r.task = "Build a todo app";
  r.workflow = "greenfield";
  r.request = R"({"budget_calls":40})";
  r.state = state;
  r.created = r.updated = created;
  r.instance = "node-1";
  r.lease_until = 1000;
  return r;
}

event_row an_event(const std::string& run, std::int64_t seq, const std::string& type = "step.started") {
  return {run, seq, type, R"({"type":")" + type + R"(","seq":)" + std::to_string(seq) + "}"};
}

} // namespace

TEST_CASE("store: the same suite on SQLite and PostgreSQL", "[store]") {
  auto backend = GENERATE(std::string("sqlite"), std::string("postgresql"));
  auto url = fresh_url(backend);
  INFO("backend " << backend << " at " << url);

  SECTION("a new database gets the whole schema, and reopening it keeps the data") {
    auto s = store::open(url);
    CHECK(s->backend() == backend);
    CHECK(s->schema_version() == known_schema_version());
    write_batch b;
    b.runs.push_back(a_run("run_1", 100));
    s->write(b);
    s.reset();
    auto again = store::open(url);
    CHECK(again->schema_version() == known_schema_version());
    REQUIRE(again->run("run_1"));
    CHECK(again->run("run_1")->task == "Build a todo app");
  }

  SECTION("a schema newer than the binary is refused, naming the versions") {
    store::open(url)->write({});
    open_sql(parse_storage_url(url))
        ->query("UPDATE squad_schema SET version = $1", {std::int64_t{known_schema_version() + 1}});
    try {
      store::open(url);
      FAIL("a newer schema was opened");
    } catch (const store_error& e) {
      CHECK_THAT(e.what(), Catch::Contains("newer than this squad knows") &&
                               Catch::Contains("schema version " + std::to_string(known_schema_version() + 1)));
    }
  }

  SECTION("runs, state changes and events are written in one batch and read back in order") {
    auto s = store::open(url);
    write_batch b;
    b.runs.push_back(a_run("run_old", 100));
    b.runs.push_back(a_run("run_new", 200));
    for (int i = 1; i <= 5; ++i)
      b.events.push_back(an_event("run_new", i));
    b.updates.push_back({"run_new", "completed", "", R"({"calls":3})", 250});
    s->write(b);
    auto runs = s->runs(10);
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].id == "run_new"); // newest first
    CHECK(runs[0].state == "completed");
    CHECK(runs[0].summary == R"({"calls":3})");
    CHECK(runs[0].updated == 250);
    CHECK(runs[1].request == R"({"budget_calls":40})");
    CHECK(s->runs(1).size() == 1);
    auto evs = s->events("run_new", 2);
    REQUIRE(evs.size() == 3);
    CHECK(evs[0].seq == 3);
    CHECK(evs[2].seq == 5);
    CHECK(evs[2].body == an_event("run_new", 5).body);
    CHECK(s->events("run_old").empty());
    CHECK_FALSE(s->run("run_none"));
  }

  SECTION("a batch written twice writes nothing twice, and a finished run stays finished") {
    auto s = store::open(url);
    write_batch b;
    b.runs.push_back(a_run("run_1", 100));
    b.events.push_back(an_event("run_1", 1));
    b.events.push_back(an_event("run_1", 2, "run.completed"));
    b.updates.push_back({"run_1", "completed", "", "{}", 120});
    audit_row a;
    a.id = "req_1:request:0";
    a.kind = "request";
    a.time_ms = 5000;
    b.audit.push_back(a);
    s->write(b);
    s->write(b); // a replay after an outage
    CHECK(s->events("run_1").size() == 2);
    CHECK(s->audit(0, 100).size() == 1);
    write_batch late;
    late.updates.push_back({"run_1", "running", "", "{}", 130});
    s->write(late);
    CHECK(s->run("run_1")->state == "completed");
  }

  SECTION("orphaned runs are claimed once their lease ran out; live and finished ones are not") {
    auto s = store::open(url);
    write_batch b;
    auto dead = a_run("run_dead", 100);
    dead.lease_until = 5000;
    auto live = a_run("run_live", 101);
    live.lease_until = 20000;
    live.instance = "node-2";
    auto done = a_run("run_done", 102, "completed");
    done.lease_until = 1;
    b.runs = {dead, live, done};
    s->write(b);
    auto got = s->claim_orphans("node-3", "api", 10000, 40000);
    REQUIRE(got.size() == 1);
    CHECK(got[0].id == "run_dead");
    CHECK(got[0].instance == "node-3");
    CHECK(got[0].lease_until == 40000);
    CHECK(s->claim_orphans("node-4", "api", 10000, 50000).empty()); // node-3 holds it now
    s->renew("node-2", 90000);
    CHECK(s->run("run_live")->lease_until == 90000);
    CHECK(s->claim_orphans("node-4", "api", 60000, 70000).size() == 1); // node-3's lapsed; node-2's renewed one did not
  }

  SECTION("a run is claimed by id once its lease lapsed, or by the instance holding it; a cli run is not an orphan "
          "of serve") {
    auto s = store::open(url);
    auto cli = a_run("run_cli", 100);
    cli.kind = "cli";
    cli.lease_until = 5000;
    write_batch b;
    b.runs = {cli};
    s->write(b);
    CHECK(s->claim_orphans("serve-1", "api", 10000, 20000).empty());
    CHECK_FALSE(s->claim("run_cli", "cli-2", 4000, 20000)); // node-1 still holds it
    CHECK(s->claim("run_cli", "node-1", 4000, 20000));      // its holder may
    auto got = s->claim("run_cli", "cli-2", 30000, 40000);
    REQUIRE(got);
    CHECK(got->kind == "cli");
    CHECK(got->instance == "cli-2");
    CHECK_FALSE(s->claim("run_none", "cli-2", 30000, 40000));
  }

  SECTION("retention deletes finished runs and their events in batches, and keeps the rest") {
    auto s = store::open(url);
    write_batch b;
    for (int i = 0; i < 5; ++i) {
      b.runs.push_back(a_run("run_old_" + std::to_string(i), 100, "completed"));
      b.events.push_back(an_event("run_old_" + std::to_string(i), 1));
    }
    b.runs.push_back(a_run("run_running_old", 100, "running"));
    b.runs.push_back(a_run("run_recent", 900, "failed"));
    audit_row old_row, new_row;
    old_row.id = "old", old_row.time_ms = 100 * 1000;
    new_row.id = "new", new_row.time_ms = 900 * 1000;
    b.audit = {old_row, new_row};
    s->write(b);
    CHECK(s->prune(500, 2) == 5);
    auto left = s->runs(100);
    REQUIRE(left.size() == 2);
    CHECK(s->events("run_old_3").empty());
    CHECK(s->run("run_running_old"));
    CHECK(s->run("run_recent"));
    auto audit = s->audit(0, 10);
    REQUIRE(audit.size() == 1);
    CHECK(audit[0].id == "new");
  }

  SECTION("an audit row reads back field for field") {
    auto s = store::open(url);
    audit_row a;
    a.id = "req_9:upstream:1";
    a.time_ms = 1764720000123;
    a.kind = "upstream";
    a.request_id = "req_9", a.run_id = "run_1", a.step = "architecture", a.key_id = "team-a";
    a.persona = "architect", a.provider = "groq", a.model = "llama", a.status = "429";
    a.error_class = "rate_limited", a.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    a.prompt_tokens = 120, a.completion_tokens = 45, a.cached_tokens = 64, a.latency_ms = 812, a.fallbacks = 1;
    a.cost_usd = 0.0000123456789;
    a.request_body = R"({"messages":[{"role":"user","content":"mail [EMAIL]"}]})";
    write_batch b;
    b.audit.push_back(a);
    s->write(b);
    auto got = s->audit(1764720000000, 10);
    REQUIRE(got.size() == 1);
    auto& g = got[0];
    CHECK(g.kind == "upstream");
    CHECK(g.step == "architecture");
    CHECK(g.error_class == "rate_limited");
    CHECK(g.trace_id == a.trace_id);
    CHECK(g.cached_tokens == 64);
    CHECK(g.fallbacks == 1);
    CHECK(g.cost_usd == Approx(0.0000123456789).epsilon(1e-12));
    CHECK(g.request_body == a.request_body);
    CHECK(s->audit(1764720000124, 10).empty());
  }

  SECTION("limiter checkpoints: one row per provider, the later checkpoint wins, an earlier one changes nothing") {
    auto s = store::open(url);
    CHECK(s->limiters().empty());
    write_batch b;
    b.limiters.push_back({"groq", R"({"v":1,"saved_ms":100})", 100});
    b.limiters.push_back({"cerebras/llama", R"({"v":1,"saved_ms":150})", 150});
    s->write(b);
    write_batch next;
    next.limiters.push_back({"groq", R"({"v":1,"saved_ms":200})", 200});
    next.limiters.push_back({"groq", R"({"v":1,"saved_ms":250})", 250}); // twice in one transaction: the last
    s->write(next);
    write_batch late; // a spool replayed after newer checkpoints went in
    late.limiters.push_back({"groq", R"({"v":1,"saved_ms":120})", 120});
    s->write(late);
    auto rows = s->limiters();
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].provider == "cerebras/llama");
    CHECK(rows[0].updated_ms == 150);
    CHECK(rows[1].provider == "groq");
    CHECK(rows[1].body == R"({"v":1,"saved_ms":250})");
    CHECK(rows[1].updated_ms == 250);
    s.reset();
    CHECK(store::open(url)->limiters().size() == 2); // kept across a reopen
  }

  SECTION("a version-1 database is migrated to the current schema, keeping its rows") {
    auto s = store::open(url);
    write_batch b;
    b.runs.push_back(a_run("run_v1", 100));
    s->write(b);
    s.reset();
    { // as the squad before limiter checkpoints left it
      auto c = open_sql(parse_storage_url(url));
      c->query("DROP TABLE squad_limiter_state");
      c->query("UPDATE squad_schema SET version = 1");
    }
    auto again = store::open(url);
    CHECK(again->schema_version() == known_schema_version());
    CHECK(again->run("run_v1"));
    CHECK(again->limiters().empty());
    write_batch l;
    l.limiters.push_back({"groq", "{}", 1});
    again->write(l);
    CHECK(again->limiters().size() == 1);
  }
}

TEST_CASE("store: a file that is not a SQLite database is refused, naming it", "[store][sqlite]") {
  auto dir = temp_dir();
  auto path = (dir / "notes.db").string();
  std::ofstream{path} << "these are my notes, not a database, and they go on for a while............";
  try {
    store::open("sqlite:" + path);
    FAIL("a text file was opened as a database");
  } catch (const store_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("not a database"));
  }
}

TEST_CASE("store: another program's SQLite database is refused rather than written into", "[store][sqlite]") {
  auto dir = temp_dir();
  auto path = (dir / "other.db").string();
  open_sqlite(path)->query("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)");
  try {
    store::open("sqlite:" + path);
    FAIL("a foreign database was opened");
  } catch (const store_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("another program") && Catch::Contains("invoices"));
  }
  CHECK(open_sqlite(path)->query("SELECT name FROM sqlite_master WHERE name = 'squad_schema'").empty());
}

TEST_CASE("store: an unreachable PostgreSQL is a clear error with the password masked", "[store][postgresql]") {
  try {
    store::open("postgresql://squad:hunter2secret@127.0.0.1:1/squad?connect_timeout=2");
    FAIL("connected to nothing");
  } catch (const store_unavailable& e) {
    std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("cannot connect") && Catch::Contains("postgresql://squad:***@127.0.0.1:1/squad"));
    CHECK(what.find("hunter2secret") == std::string::npos);
  }
}

TEST_CASE("store: storage URLs are parsed and masked", "[store][url]") {
  CHECK(parse_storage_url("sqlite:squad.db").target == "squad.db");
  CHECK(parse_storage_url("sqlite:///var/lib/squad/squad.db").target == "/var/lib/squad/squad.db");
  CHECK(parse_storage_url("postgres://u@h/db").backend == "postgresql");
  CHECK_THROWS_WITH(parse_storage_url("sqlite:"), Catch::Contains("needs a file path"));
  CHECK_THROWS_WITH(parse_storage_url("mysql://x"), Catch::Contains("must be sqlite:PATH"));
  CHECK_THROWS_WITH(parse_storage_url("mysql://u:hunter2@h/db"), !Catch::Contains("hunter2"));
  CHECK(masked_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db");
  CHECK(masked_url("postgresql://u@h:5432/db") == "postgresql://u@h:5432/db");
  CHECK(masked_url("sqlite:a:b@c") == "sqlite:a:b@c");
}
