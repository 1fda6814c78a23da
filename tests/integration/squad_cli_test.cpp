// End to end: the real `squad` binary on the shipped config, as a user runs it.
#include "tests/integration/http_client.hpp"
#include "tests/integration/mock_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/wait.h>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct result {
  int status = -1;
  std::string out; // stdout and stderr together
};

// Runs `bin args` through the shell from `dir`.
result run_in(const std::string& dir, const std::string& bin, const std::string& args) {
  auto cmd = "cd '" + dir + "' && '" + bin + "' " + args + " 2>&1";
  result r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::array<char, 4096> buf;
  while (auto n = fread(buf.data(), 1, buf.size(), p))
    r.out.append(buf.data(), n);
  auto st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Runs `args` through the shell from the source directory.
result run_squad(const std::string& args) {
  return run_in(SQUAD_SOURCE_DIR, SQUAD_BIN, args);
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("squad-cli-" + std::to_string(rd()));
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

std::size_t count_events(const json& run, const std::string& type) {
  std::size_t n = 0;
  for (auto& e : run["events"])
    n += e["type"] == type;
  return n;
}

} // namespace

TEST_CASE("squad run on the default config writes the artifacts and run.json within 10s") {
  // Intent: the main job works on a fresh checkout with simulated providers only.
  temp_dir dir;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_squad("run 'Build a habit tracker for small teams' --out '" + dir.path.string() + "'");
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(secs < 10.0);
  std::size_t md = 0;
  for (auto& e : fs::directory_iterator(dir.path))
    md += e.path().extension() == ".md";
  CHECK(md >= 7);
  auto run = read_json(dir.path / "run.json");
  CHECK(run["status"] == "completed");
  CHECK(run["workflow"] == "greenfield");
  CHECK(run["steps"].size() == 6);
  CHECK(count_events(run, "run.completed") == 1);
  CHECK(run["artifacts"].size() == md);
  // The live view printed a line per step and the summary table.
  CHECK_THAT(r.out, Catch::Contains("ok synthesis"));
  CHECK_THAT(r.out, Catch::Contains("run completed"));
  // Simulated answers say so.
  std::ifstream synth(dir.path / "06-synthesis.md");
  std::string text((std::istreambuf_iterator<char>(synth)), {});
  CHECK_THAT(text, Catch::Contains("simulated"));
}

TEST_CASE("squad run also completes on CAF's own workers (runtime.scheduler caf)") {
  // Intent: the alternative to running actors on the io threads stays a working choice.
  temp_dir dir;
  fs::create_directories(dir.path);
  std::ifstream shipped(SQUAD_SOURCE_DIR "/config/squad.yaml");
  std::string yaml((std::istreambuf_iterator<char>(shipped)), {});
  auto at = yaml.find("  scheduler: io\n");
  REQUIRE(at != std::string::npos);
  yaml.replace(at, 16, "  scheduler: caf\n  scheduler_threads: 2\n");
  auto cfg = dir.path / "caf.yaml";
  std::ofstream(cfg) << yaml;
  auto r = run_squad("run 'Build a habit tracker' -q --config '" + cfg.string() + "' --out '" +
                     (dir.path / "out").string() + "'");
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(read_json(dir.path / "out" / "run.json")["status"] == "completed");
}

TEST_CASE("a persona actor killed mid-run is restarted and the run still completes") {
  // Intent: the test hook crashes the architect's actor while its step runs; supervision recovers it.
  temp_dir dir;
  auto r = run_squad("run 'Build a habit tracker' -q --test-kill-persona architect --out '" + dir.path.string() + "'");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto run = read_json(dir.path / "run.json");
  CHECK(count_events(run, "actor.restarted") == 1);
  CHECK(run["status"] == "completed");
}

TEST_CASE("a worker that keeps crashing fails the run with a non-zero exit and the reason") {
  // Intent: escalation past the restart intensity is explicit, in run.json and the exit status.
  temp_dir dir;
  auto r = run_squad("run 'x' -q --test-crash-step prd --test-crash-times 100 --out '" + dir.path.string() + "'");
  CHECK(r.status == 1);
  auto run = read_json(dir.path / "run.json");
  CHECK(run["status"] == "failed");
  CHECK_THAT(run["reason"].get<std::string>(), Catch::Contains("intensity_exceeded"));
}

TEST_CASE("squad config check reports all three mistakes with their paths and exits 2") {
  // Intent: validation reports every problem, not the first.
  auto r = run_squad("config check tests/data/three_mistakes.yaml");
  INFO(r.out);
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("3 problems"));
  CHECK_THAT(r.out, Catch::Contains("providers.sim-swift.limits.requests: must be > 0"));
  CHECK_THAT(r.out, Catch::Contains("providers.sim-steady.limits.rpm: unknown key"));
  CHECK_THAT(r.out, Catch::Contains("providers.sim-deep.kind:"));
}

TEST_CASE("squad config check reports mistakes in three sections in one pass and exits 2") {
  // Intent: an unknown key and a bad value no longer hide a bad chain reference until they are fixed.
  auto r = run_squad("config check tests/data/three_sections.yaml");
  INFO(r.out);
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("3 problems"));
  CHECK_THAT(r.out, Catch::Contains("providers.sim-steady.limits.rpm: unknown key"));
  CHECK_THAT(r.out, Catch::Contains("runtime.scheduler_threads: must be between 1 and 64"));
  CHECK_THAT(r.out, Catch::Contains("personas.analyst.chain[0]: unknown provider \"nope\""));
}

TEST_CASE("squad config check reports a workflow's mistake beside the config's") {
  // Intent: a bad value in the config no longer stops the workflows from being checked in the same pass.
  temp_dir dir;
  fs::create_directories(dir.path / "wf");
  std::ofstream(dir.path / "wf" / "solo.yaml") << "id: solo\nsteps:\n  - {id: only, persona: nobody, prompt: x}\n";
  std::ofstream(dir.path / "squad.yaml") << "personas_dir: personas\nworkflows_dir: " << (dir.path / "wf").string()
                                         << "\nsupervision: {period: 0s}\n"
                                         << "providers:\n  p:\n    kind: sim\n    models: {m: {id: m}}\n";
  auto r = run_squad("config check '" + (dir.path / "squad.yaml").string() + "'");
  INFO(r.out);
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("2 problems"));
  CHECK_THAT(r.out, Catch::Contains("supervision.period: must be > 0"));
  CHECK_THAT(r.out, Catch::Contains("nobody"));
}

TEST_CASE("squad config keys lists every key with its default and bounds") {
  // Intent: the section tables double as the reference users read.
  auto r = run_squad("config keys");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("providers.<name>.limits.requests: 60 (> 0)  # "));
  CHECK_THAT(r.out, Catch::Contains("runtime.io_spin: 1ms (between 0ms and 100ms)  # "));
}

TEST_CASE("squad serve refuses a --listen override off loopback with auth: none") {
  // Intent: the override obeys the same rule as server.listen (validate() checks both), before anything starts.
  auto r = run_squad("serve --config config/squad.yaml --listen 0.0.0.0:0");
  INFO(r.out);
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("--listen 0.0.0.0:0: auth: none only listens on loopback"));
}

TEST_CASE("squad config check accepts the shipped config, personas and workflows") {
  // Intent: what we ship is valid.
  auto r = run_squad("config check config/squad.yaml");
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("12 personas"));
}

TEST_CASE("bad command lines and missing inputs fail with a clear message") {
  // Intent: errors name what was wrong; nothing crashes.
  auto wf = run_squad("run 'x' --workflow no-such-flow --out /tmp/squad-never-written");
  CHECK(wf.status == 2);
  CHECK_THAT(wf.out, Catch::Contains("no-such-flow"));
  auto cfg = run_squad("run 'x' --config /nonexistent/squad.yaml");
  CHECK(cfg.status == 2);
  CHECK_THAT(cfg.out, Catch::Contains("/nonexistent/squad.yaml"));
  auto v = run_squad("version");
  CHECK(v.status == 0);
  CHECK_THAT(v.out, Catch::Contains("squad "));
}

TEST_CASE("every bad command line exits 2; --help and --version exit 0", "[cli][usage]") {
  // CLI11's own codes (106, 109, 114, ...) are not what the README promises.
  for (const char* args : {"", "run", "run 'x' --no-such-flag", "no-such-command", "run 'x' --out", "serve --listen",
                           "config", "key", "run 'x' 'y'"}) {
    INFO(args);
    CHECK(run_squad(args).status == 2);
  }
  CHECK(run_squad("--help").status == 0);
  CHECK(run_squad("run --help").status == 0);
  auto v = run_squad("--version");
  CHECK(v.status == 0);
  CHECK_THAT(v.out, Catch::StartsWith("squad 0."));
}

TEST_CASE("squad workflows and squad personas list what the config holds, in aligned columns", "[cli][usage]") {
  auto wf = run_squad("workflows");
  REQUIRE(wf.status == 0);
  CHECK_THAT(wf.out, Catch::Contains("greenfield (default)") && Catch::Contains("quick") && Catch::Contains("review"));
  auto p = run_squad("personas");
  REQUIRE(p.status == 0);
  // Every row's second column starts where the header's does.
  std::istringstream lines(p.out);
  std::string header, line;
  std::getline(lines, header);
  auto col = header.find("CLASS");
  REQUIRE(col != std::string::npos);
  int rows = 0;
  while (std::getline(lines, line)) {
    INFO(line);
    CHECK(line.compare(col, 1, "P") == 0);
    CHECK(line[col - 1] == ' ');
    ++rows;
  }
  CHECK(rows >= 8);
  // An unknown workflow's error names the real ones.
  auto bad = run_squad("run 'x' --workflow nope --out /tmp/squad-never-written");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.out, Catch::Contains("greenfield, quick, review"));
}

TEST_CASE("--out refuses a non-empty directory unless --force, and -q prints the outcome and where it went",
          "[cli][usage]") {
  temp_dir dir;
  fs::create_directories(dir.path);
  std::ofstream(dir.path / "stale.md") << "an earlier run's artifact\n";
  auto refused = run_squad("run 'x' -q -w quick --out '" + dir.path.string() + "'");
  CHECK(refused.status == 2);
  CHECK_THAT(refused.out, Catch::Contains("not empty") && Catch::Contains("--force"));
  CHECK(fs::exists(dir.path / "stale.md"));
  auto forced = run_squad("run 'x' -q -w quick --force --out '" + dir.path.string() + "'");
  INFO(forced.out);
  REQUIRE(forced.status == 0);
  CHECK_FALSE(fs::exists(dir.path / "stale.md"));
  CHECK(fs::exists(dir.path / "run.json"));
  CHECK_THAT(forced.out, Catch::Contains("completed") && Catch::Contains((dir.path / "run.json").string()));
  // run.json's events are the API's (docs/api.md): step_id, not step.
  auto run = read_json(dir.path / "run.json");
  std::size_t with_step = 0;
  for (auto& e : run["events"]) {
    CHECK_FALSE(e.contains("step"));
    CHECK(e["run_id"] == run["run_id"]);
    with_step += e.contains("step_id");
  }
  CHECK(with_step > 0);
}

TEST_CASE("the summary's columns line up whatever the step ids' lengths", "[cli][usage]") {
  temp_dir dir;
  auto r = run_squad("run 'Review the payment module' -w review --out '" + dir.path.string() + "'");
  INFO(r.out);
  REQUIRE(r.status == 0);
  std::istringstream lines(r.out);
  std::string line;
  std::size_t status_col = std::string::npos;
  int rows = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("step ", 0) == 0 && line.find("status") != std::string::npos) {
      status_col = line.find("status");
      continue;
    }
    if (status_col == std::string::npos || line.empty() || line.rfind("run ", 0) == 0)
      continue;
    INFO(line);
    CHECK(line.compare(status_col, 9, "completed") == 0); // release_notes is longer than the old 12-wide column
    CHECK(line[status_col - 1] == ' ');
    ++rows;
  }
  CHECK(rows == 3);
}

TEST_CASE("an installed squad runs from any directory with the installed personas and workflows", "[cli][install]") {
  temp_dir prefix, elsewhere;
  fs::create_directories(elsewhere.path);
  auto install = "cmake --install '" SQUAD_BUILD_DIR "' --prefix '" + prefix.path.string() + "' >/dev/null 2>&1";
  REQUIRE(std::system(install.c_str()) == 0);
  auto bin = prefix.path / "bin" / "squad";
  REQUIRE(fs::exists(bin));
  CHECK(fs::exists(prefix.path / "bin" / "squad-mock-provider"));
  auto shell = [&](const std::string& args) { return run_in(elsewhere.path.string(), bin.string(), args); };
  auto wf = shell("workflows");
  INFO(wf.out);
  CHECK(wf.status == 0);
  CHECK_THAT(wf.out, Catch::Contains("greenfield"));
  auto run = shell("run 'Build a habit tracker' -q -w quick");
  INFO(run.out);
  CHECK(run.status == 0);
  CHECK(fs::exists(elsewhere.path / "runs")); // the run's artifacts go to the working directory
}

namespace {

// The shipped mock upstreams, with their URLs exported the way deploy/mock-env.sh does.
struct mock_upstreams {
  squad::test::mock_process mock{squad::test::slurp(SQUAD_SOURCE_DIR "/config/examples/mock-upstreams.yaml")};
  mock_upstreams() {
    for (std::string name : {"swift", "steady", "deep", "backup"}) {
      std::string upper = name;
      for (auto& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      std::string url = "http://127.0.0.1:" + std::to_string(mock.port(name)) + (name == "deep" ? "" : "/v1");
      setenv(("MOCK_" + upper + "_URL").c_str(), url.c_str(), 1);
    }
  }
  json stats(const std::string& name) {
    auto r = squad::test::request("GET", "127.0.0.1", mock.port(name), "/stats");
    REQUIRE(r.status == 200);
    return json::parse(r.body);
  }
};

} // namespace

TEST_CASE("squad run works against squad-mock-provider over HTTP", "[cli][http]") {
  mock_upstreams up;
  temp_dir out;
  auto r = run_squad("run --quiet --config config/examples/squad-mock.yaml --out '" + out.path.string() +
                     "' 'Build a habit tracker for small teams'");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto run = read_json(out.path / "run.json");
  CHECK(run["status"] == "completed");
  CHECK(run["steps"].size() == 6);
  for (auto& [id, step] : run["steps"].items()) {
    CHECK(step["status"] == "completed");
    CHECK_THAT(step["served_by"].get<std::string>(), Catch::StartsWith("mock-"));
  }
  int admitted = 0;
  for (std::string name : {"swift", "steady", "deep", "backup"})
    admitted += up.stats(name)["admitted"].get<int>();
  CHECK(admitted >= 7); // the answers really came over HTTP
}

TEST_CASE("a persona's declared tools reach the upstream; the calls it makes are recorded in the step",
          "[cli][http][tools]") {
  mock_upstreams up;
  temp_dir dir, out;
  fs::create_directories(dir.path / "personas");
  for (auto& e : fs::directory_iterator(SQUAD_SOURCE_DIR "/personas"))
    fs::copy_file(e.path(), dir.path / "personas" / e.path().filename());
  std::ofstream(dir.path / "personas" / "analyst.yaml", std::ios::app)
      << "tools:\n  - name: search_docs\n    description: Search the product docs\n"
         "    parameters: {type: object, properties: {query: {type: string}}, required: [query]}\n";
  auto yaml = squad::test::slurp(SQUAD_SOURCE_DIR "/config/examples/squad-mock.yaml");
  auto set = [&](const std::string& from, const std::string& to) {
    auto at = yaml.find(from);
    REQUIRE(at != std::string::npos);
    yaml.replace(at, from.size(), to);
  };
  set("personas_dir: personas", "personas_dir: " + (dir.path / "personas").string());
  set("workflows_dir: config/workflows", "workflows_dir: " SQUAD_SOURCE_DIR "/config/workflows");
  std::ofstream(dir.path / "squad.yaml") << yaml;
  auto r = run_squad("run -q -w quick --config '" + (dir.path / "squad.yaml").string() + "' --out '" +
                     out.path.string() + "' 'Build a habit tracker'");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto run = read_json(out.path / "run.json");
  CHECK(count_events(run, "step.tool_calls") == 1);
  for (auto& e : run["events"])
    if (e["type"] == "step.tool_calls")
      CHECK(e["data"]["calls"][0]["function"]["name"] == "search_docs");
  std::string artifact;
  for (auto& e : fs::directory_iterator(out.path))
    if (e.path().extension() == ".md")
      artifact += squad::test::slurp(e.path().string());
  CHECK_THAT(artifact, Catch::Contains("Tool calls requested") && Catch::Contains("search_docs("));
}

TEST_CASE("squad config check names a malformed tool by its path", "[cli][tools]") {
  temp_dir dir;
  fs::create_directories(dir.path / "personas");
  for (auto& e : fs::directory_iterator(SQUAD_SOURCE_DIR "/personas"))
    fs::copy_file(e.path(), dir.path / "personas" / e.path().filename());
  std::ofstream(dir.path / "personas" / "analyst.yaml", std::ios::app)
      << "tools:\n  - name: bad name\n  - {name: ok, colour: red}\n";
  auto yaml = squad::test::slurp(SQUAD_SOURCE_DIR "/config/squad.yaml");
  auto at = yaml.find("personas_dir: personas");
  REQUIRE(at != std::string::npos);
  yaml.replace(at, 22, "personas_dir: " + (dir.path / "personas").string());
  std::ofstream(dir.path / "squad.yaml") << yaml;
  auto r = run_squad("config check '" + (dir.path / "squad.yaml").string() + "'");
  CHECK(r.status == 2);
  CHECK_THAT(r.out, Catch::Contains("tools[0].name") && Catch::Contains("tools[1].colour: unknown key"));
}

TEST_CASE("a run against the mock survives an upstream that is down, and says so", "[cli][http]") {
  mock_upstreams up;
  auto f = squad::test::request("POST", "127.0.0.1", up.mock.port("swift"), "/admin/fault", R"({"mode":"down"})");
  REQUIRE(f.status == 200);
  temp_dir out;
  auto r = run_squad("run --quiet --config config/examples/squad-mock.yaml --out '" + out.path.string() +
                     "' 'Plan a launch'");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto run = read_json(out.path / "run.json");
  CHECK(run["status"] == "completed");
  CHECK(count_events(run, "step.fallback") >= 1);
  bool named = false;
  for (auto& e : run["events"])
    if (e["type"] == "step.fallback")
      named = named || e["message"].get<std::string>().find("connect_failed") != std::string::npos;
  CHECK(named);
  CHECK(up.stats("swift")["admitted"] == 0);
}

TEST_CASE("a run under pressure completes, and its synthesis names what was skipped or degraded", "[cli][budget]") {
  // config/examples/pressure.yaml: the default sim squad at 1 call per 10s per provider.
  temp_dir out;
  auto r = run_squad("run --quiet --config config/examples/pressure.yaml --out '" + out.path.string() +
                     "' 'Build a habit tracker for small teams'");
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto run = read_json(out.path / "run.json");
  CHECK(run["status"] == "completed");
  CHECK(run["steps"]["synthesis"]["status"] == "completed");
  CHECK(count_events(run, "call.skipped") >= 1);
  std::ifstream in(out.path / "06-synthesis.md");
  std::string synthesis((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(synthesis, Catch::Contains("Skipped, degraded or rerouted in this run"));
  CHECK_THAT(synthesis, Catch::Contains("skipped: P2"));
}
