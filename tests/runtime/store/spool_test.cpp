// The spool file on its own: batches appended in order come back in order, a torn last line is skipped, the limit
// refuses what would pass it, clear() removes the file, and a spool left behind is read by the next process.
#include "runtime/store/spool.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

using namespace squad::store;
namespace fs = std::filesystem;

namespace {

fs::path fresh_path() {
  std::random_device rd;
  auto dir = fs::temp_directory_path() / ("squad-spool-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(dir);
  return dir / "spool.jsonl";
}

write_batch batch_of(int n) {
  write_batch b;
  audit_row a;
  a.id = "req-" + std::to_string(n) + ":request";
  a.kind = "request";
  a.time_ms = 1000 + n;
  a.request_body = "line\nbreak \"quoted\" \xc3\xa9";
  a.cost_usd = 0.125;
  b.audit.push_back(a);
  run_row r;
  r.id = "run-" + std::to_string(n);
  r.state = "running";
  r.lease_until = 42;
  b.runs.push_back(r);
  b.events.push_back({"run-" + std::to_string(n), n, "step.started", R"({"seq":1})"});
  b.updates.push_back({"run-" + std::to_string(n), "completed", "", "{}", 7});
  b.limiters.push_back({"groq/llama-" + std::to_string(n), R"({"v":1,"window":[3,0,1]})", 1000 + n});
  return b;
}

} // namespace

TEST_CASE("spool: batches come back in order, field for field") {
  auto path = fresh_path();
  {
    spool s{path.string(), 1 << 20};
    CHECK(s.empty());
    CHECK_FALSE(fs::exists(path)); // no file until something is spooled
    for (int i = 1; i <= 3; ++i)
      REQUIRE(s.append(batch_of(i)));
    CHECK(s.bytes() == fs::file_size(path));
  }
  spool again{path.string(), 1 << 20}; // the next process finds it
  CHECK(again.bytes() > 0);
  auto back = again.read_all();
  REQUIRE(back.size() == 3);
  for (int i = 0; i < 3; ++i) {
    auto& a = back[i].audit.at(0);
    CHECK(a.id == "req-" + std::to_string(i + 1) + ":request");
    CHECK(a.request_body == "line\nbreak \"quoted\" \xc3\xa9");
    CHECK(a.cost_usd == 0.125);
    CHECK(back[i].runs.at(0).lease_until == 42);
    CHECK(back[i].events.at(0).seq == i + 1);
    CHECK(back[i].updates.at(0).state == "completed");
    REQUIRE(back[i].limiters.size() == 1);
    CHECK(back[i].limiters[0].provider == "groq/llama-" + std::to_string(i + 1));
    CHECK(back[i].limiters[0].body == R"({"v":1,"window":[3,0,1]})");
    CHECK(back[i].limiters[0].updated_ms == 1000 + i + 1);
  }
  again.clear();
  CHECK(again.empty());
  CHECK_FALSE(fs::exists(path));
  fs::remove_all(path.parent_path());
}

TEST_CASE("spool: a torn last line is skipped; past its limit it refuses and writes nothing") {
  auto path = fresh_path();
  spool s{path.string(), 4096};
  REQUIRE(s.append(batch_of(1)));
  { std::ofstream(path, std::ios::app) << R"({"runs":[{"id":"torn)"; }
  CHECK(s.read_all().size() == 1);
  spool next{path.string(), 1 << 20}; // the next process appends after the torn line, not into it
  REQUIRE(next.append(batch_of(3)));
  auto back = next.read_all();
  REQUIRE(back.size() == 2);
  CHECK(back[1].audit.at(0).id == "req-3:request");
  spool small{(path.parent_path() / "small.jsonl").string(), 100};
  CHECK_FALSE(small.append(batch_of(2)));
  CHECK(small.empty());
  CHECK(from_line("not json") == std::nullopt);
  CHECK(from_line(R"({"runs":[{"id":1}],"updates":[],"events":[],"audit":[]})") == std::nullopt);
  fs::remove_all(path.parent_path());
}

TEST_CASE("spool: a line an older squad wrote (no limiters) still reads, and a batch keeps one checkpoint a provider") {
  auto old = from_line(R"({"runs":[],"updates":[],"events":[{"run_id":"r","seq":1,"type":"t","body":"{}"}],)"
                       R"("audit":[]})");
  REQUIRE(old);
  CHECK(old->events.size() == 1);
  CHECK(old->limiters.empty());
  write_batch a, b, c;
  a.limiters.push_back({"groq", "first", 10});
  b.limiters.push_back({"groq", "second", 20});
  b.limiters.push_back({"cerebras", "other", 15});
  c.limiters.push_back({"groq", "stale", 5}); // taken before the one kept: it does not replace it
  a.append(std::move(b));
  a.append(std::move(c));
  REQUIRE(a.limiters.size() == 2);
  CHECK(a.limiters[0].body == "second");
  CHECK(a.limiters[1].body == "other");
  CHECK(a.size() == 2);
  auto back = from_line(to_line(a));
  REQUIRE(back);
  REQUIRE(back->limiters.size() == 2);
  CHECK(back->limiters[0].provider == "groq");
  CHECK(back->limiters[0].updated_ms == 20);
}
