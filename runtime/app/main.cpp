// squad: the command line. `squad run`, `squad serve`, `squad workflows`, `squad personas`, `squad config check`,
// `squad key hash`, `squad version` (or --version). A bad command line exits 2.
#include "actors/boss/boss.hpp"
#include "runtime/app/audit_export.hpp"
#include "runtime/app/listings.hpp"
#include "runtime/app/run_recorder.hpp"
#include "runtime/host/limiter_state.hpp"
#include "runtime/host/squad_host.hpp"
#include "runtime/server/auth.hpp"
#include "runtime/server/gateway.hpp"

#include <csignal>
#include <sys/resource.h>
#include <thread>

#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>

namespace fs = std::filesystem;
using namespace squad;

namespace {

constexpr const char* squad_version = "0.1.0";

// config/squad.yaml in the working directory (a checkout), else the installed one (deploy/setup.sh install), whose
// persona and workflow directories are absolute: `squad run` works from any directory.
std::string default_config() {
  std::string local = "config/squad.yaml";
  std::error_code ec;
  if (fs::exists(local, ec))
    return local;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  auto installed = exe.parent_path().parent_path() / "share" / "squad" / "squad.yaml";
  return !ec && fs::exists(installed, ec) ? installed.string() : local;
}

void print_problems(const std::vector<config_problem>& problems) {
  for (auto& p : problems)
    std::cerr << "  " << to_string(p) << "\n";
}

std::string new_run_id() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::gmtime(&t));
  std::random_device rd;
  char tail[8];
  std::snprintf(tail, sizeof tail, "%04x", rd() & 0xffff);
  return std::string{"r"} + buf + "-" + tail;
}

int config_check(const std::string& file) {
  std::vector<config_problem> problems;
  auto squad = check_squad(file, problems); // the config, its personas and every workflow, in one pass
  if (!problems.empty()) {
    std::cerr << file << ": " << problems.size() << " problem" << (problems.size() == 1 ? "" : "s") << "\n";
    print_problems(problems);
    return 2;
  }
  std::cout << file << ": OK (" << squad.cfg->providers.size() << " providers, " << squad.personas.size()
            << " personas)\n";
  return 0;
}

// The section tables as a reference: "path: default (bounds) doc", one key a line.
int config_keys() {
  for (const auto& k : config_reference()) {
    std::cout << k.path << ":";
    if (!k.default_value.empty())
      std::cout << " " << k.default_value;
    if (!k.bounds.empty())
      std::cout << " (" << k.bounds << ")";
    std::cout << "  # " << k.doc << "\n";
  }
  return 0;
}

struct run_options {
  std::string task, workflow, out, config_file;
  bool quiet = false, force = false;
  test_hooks hooks;
};

int run(const run_options& o) {
  std::vector<config_problem> problems;
  auto squad = load_squad(o.config_file, problems);
  if (!squad.cfg) {
    std::cerr << o.config_file << ": " << problems.size() << " problem(s)\n";
    print_problems(problems);
    return 2;
  }
  auto& cfg = *squad.cfg;
  auto wf_id = o.workflow.empty() ? cfg.default_workflow : o.workflow;
  auto wf = load_workflow(cfg.workflows_dir, wf_id, squad.persona_ids());
  if (!wf.workflow) {
    std::cerr << "workflow " << wf_id << ": " << wf.problems.size() << " problem(s)\n";
    print_problems(wf.problems);
    std::string known;
    for (auto& id : workflow_ids(cfg.workflows_dir))
      known += (known.empty() ? "" : ", ") + id;
    std::cerr << "workflows in " << cfg.workflows_dir << ": " << (known.empty() ? "none" : known)
              << " (squad workflows lists them)\n";
    return 2;
  }
  run_spec spec;
  spec.run_id = new_run_id();
  spec.task = o.task;
  spec.workflow = *wf.workflow;
  for (auto& p : squad.personas)
    spec.personas[p.id] = p;
  spec.step_timeout = cfg.runtime.step_timeout;
  spec.supervision = cfg.supervision;
  spec.hooks = o.hooks;
  price_worst_case(spec, squad);
  fs::path out_dir = o.out.empty() ? fs::path{"runs"} / spec.run_id : fs::path{o.out};
  std::error_code ec;
  if (!o.force && fs::exists(out_dir, ec) && !fs::is_empty(out_dir, ec)) {
    // A second run's artifacts beside the first's would be mistaken for one run's.
    std::cerr << "squad run: --out " << out_dir.string()
              << " is not empty (an earlier run's artifacts?); name a new directory, or add --force to clear it\n";
    return 2;
  }
  if (o.force && fs::exists(out_dir, ec))
    for (auto& entry : fs::directory_iterator(out_dir, ec))
      fs::remove_all(entry.path(), ec);
  run_recorder recorder(out_dir, o.task, wf_id, o.quiet ? nullptr : &std::cout);
  std::vector<std::string> step_ids;
  for (auto& s : spec.workflow.steps)
    step_ids.push_back(s.id);
  recorder.expect_steps(step_ids);

  squad_host host{squad, problems};
  if (!host.ok()) {
    std::cerr << o.config_file << ": " << problems.size() << " problem(s)\n";
    print_problems(problems);
    return 2;
  }
  auto& sys = host.system();
  caf::scoped_actor self{sys};
  caf::actor boss;
  std::string start_error;
  self->request(host.dir()->get()->runs, caf::infinite, atoms::start_child_v,
                boss_child(spec, host.dir(), caf::actor_cast<event_sink_actor>(caf::actor{self})))
      .receive([&](const caf::actor& b) { boss = b; },
               [&](const caf::error& err) { start_error = error_detail(sys, err); });
  if (!boss) {
    std::cerr << "squad run: could not start the run: " << start_error << "\n";
    return 1;
  }
  self->monitor(boss);
  // A generous overall deadline: every step at its own deadline, one after another.
  auto deadline = cfg.runtime.step_timeout * static_cast<std::int64_t>(spec.workflow.steps.size() + 1);
  bool ended = false;
  self->receive_while([&] { return !ended; })(
      [&](run_event& ev) { ended = recorder.on_event(ev); },
      [&](caf::down_msg& msg) {
        if (msg.source == boss.address()) {
          recorder.fail("the run's boss actor died: " + error_detail(sys, msg.reason));
          ended = true;
        }
      },
      [&](child_event&) {},
      caf::after(deadline) >>
          [&] {
            recorder.fail("no event for " + std::to_string(deadline.count()) + "ms");
            ended = true;
          });
  return recorder.finish();
}

// `squad serve`: the actor tree behind the HTTP API until SIGTERM or SIGINT; then stop accepting, let the calls in
// flight finish (up to server.drain_timeout) and exit 0.
// A gateway holds two sockets per call in flight (client and upstream): lift the soft limit on open files to
// the hard one, as nginx's worker_rlimit_nofile or Go's runtime do. Returns the limit now in force.
rlim_t raise_open_file_limit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) != 0)
    return 0;
  if (l.rlim_cur < l.rlim_max) {
    rlimit want = l;
    want.rlim_cur = l.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
      return want.rlim_cur;
  }
  return l.rlim_cur;
}

// --storage URL: storage.url for this process (tests and one-off runs keep their own database).
void override_storage(loaded_squad& squad, const std::string& url) {
  if (url.empty() || !squad.cfg)
    return;
  auto cfg = std::make_shared<config>(*squad.cfg);
  cfg->storage.url = url;
  squad.cfg = cfg;
}

// Opens the store (null for none); on failure says why (the URL masked) and gives the exit code: 1 unreachable, 2
// refused. Before the actor tree starts: the limiters begin from the state it keeps.
std::shared_ptr<store::store> open_store(const config& cfg, const char* who, int& rc) {
  try {
    return run_journal::open_store(cfg.storage);
  } catch (const store::store_unavailable& e) {
    std::cerr << who << ": " << e.what() << "\n";
    rc = 1;
  } catch (const store::store_error& e) {
    std::cerr << who << ": " << e.what() << "\n";
    rc = 2;
  }
  return nullptr;
}

int serve(const std::string& config_file, const std::string& listen_override, const std::string& storage) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr); // before any thread starts: only sigwait below sees them
  auto open_files = raise_open_file_limit();
  std::vector<config_problem> problems;
  auto squad = load_squad(config_file, problems);
  if (!squad.cfg) {
    std::cerr << config_file << ": " << problems.size() << " problem(s)\n";
    print_problems(problems);
    return 2;
  }
  override_storage(squad, storage);
  auto& cfg = *squad.cfg;
  auto listen = listen_override.empty() ? cfg.server.listen : listen_override;
  if (!listen_override.empty()) { // the override obeys the config's rules (host:port; auth: none on loopback)
    auto with_override = cfg;
    with_override.server.listen = listen_override;
    bool refused = false;
    for (auto& p : validate(with_override))
      if (p.path == "server.listen") {
        std::cerr << "squad serve: --listen " << listen_override << ": " << p.message << "\n";
        refused = true;
      }
    if (refused)
      return 2;
  }
  auto colon = listen.rfind(':');
  server::server_options sopts;
  sopts.host = listen.substr(0, colon);
  if (sopts.host.size() > 2 && sopts.host.front() == '[')
    sopts.host = sopts.host.substr(1, sopts.host.size() - 2);
  if (sopts.host == "localhost")
    sopts.host = "127.0.0.1";
  sopts.port = listen.substr(colon + 1);
  sopts.body_limit = static_cast<std::size_t>(cfg.server.body_limit);
  sopts.header_limit = static_cast<std::size_t>(cfg.server.header_limit);
  sopts.read_timeout = cfg.server.read_timeout;
  sopts.linger_time = cfg.server.linger_time;
  sopts.linger_timeout = cfg.server.linger_timeout;
  sopts.linger_bytes = static_cast<std::size_t>(cfg.server.linger_bytes);
  sopts.max_client_header_reads = static_cast<std::size_t>(cfg.server.max_client_header_reads);
  sopts.stream_max_queued = static_cast<std::size_t>(cfg.server.stream_max_queued);
  sopts.ws_max_queued = static_cast<std::size_t>(cfg.server.ws_max_queued);

  int rc = 0;
  auto db = open_store(cfg, "squad serve", rc);
  if (rc != 0)
    return rc;
  std::shared_ptr<limiter_memory> limiters; // what each limiter's window, pause and learned limits were
  try {
    limiters = db ? load_limiter_memory(*db, cfg) : nullptr;
  } catch (const store::store_error& e) {
    std::cerr << "squad serve: " << e.what() << "\n";
    return 1;
  }
  squad_host host{squad, problems, limiters};
  if (!host.ok()) {
    std::cerr << config_file << ": " << problems.size() << " problem(s)\n";
    print_problems(problems);
    return 2;
  }
  auto& sys = host.system();
  auto& io = host.io();
  auto journal = db ? std::make_shared<run_journal>(sys, cfg.storage, db) : nullptr;
  if (limiters && journal)
    keep_limiters_in(*limiters, journal);
  server::gateway gw{sys, host.dir(), squad, problems, journal};
  if (!problems.empty()) {
    std::cerr << config_file << ": " << problems.size() << " problem(s)\n";
    print_problems(problems);
    return 2;
  }
  std::string why;
  auto srv = server::start_http_server(
      io, sopts,
      [&gw](server::request r, std::shared_ptr<server::responder> out) { gw.handle(std::move(r), std::move(out)); },
      [&gw](const server::request& r, server::ws_refusal& refusal) { return gw.accept_ws(r, refusal); }, why);
  if (!srv) {
    std::cerr << "squad serve: " << why << "\n";
    return 2;
  }
  gw.attach(srv);
  auto shown = sopts.host.find(':') != std::string::npos ? "[" + sopts.host + "]" : sopts.host;
  std::cout << "squad serve: listening on http://" << shown << ":" << srv->port() << " (auth: " << cfg.server.auth
            << ", " << squad.personas.size() << " personas, " << cfg.providers.size()
            << " providers, storage: " << (journal ? journal->db().url() : std::string("none")) << ", " << open_files
            << " open files)" << std::endl;
  int sig = 0;
  // SIGHUP (a service manager's reload) re-reads and checks the config file but applies nothing yet: there is no
  // live reload, so the answer says whether a restart would start. Without this SIGHUP would kill the process.
  for (sigwait(&signals, &sig); sig == SIGHUP; sigwait(&signals, &sig)) {
    std::vector<config_problem> reread;
    auto next = load_squad(config_file, reread);
    if (next.cfg && reread.empty()) {
      std::cout << "squad serve: SIGHUP: " << config_file << " is valid; changes apply on restart (no live reload)"
                << std::endl;
    } else {
      std::cerr << "squad serve: SIGHUP: " << config_file << ": " << reread.size()
                << " problem(s); still serving the config it started with\n";
      print_problems(reread);
    }
  }
  std::cout << "squad serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ": draining" << std::endl;
  gw.drain();
  srv->stop();
  auto deadline = std::chrono::steady_clock::now() + cfg.server.drain_timeout;
  while (srv->stats().requests_in_flight > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  auto left = srv->stats().requests_in_flight;
  if (left > 0)
    std::cerr << "squad serve: " << left << " request(s) still in flight after the drain timeout\n";
  if (limiters) // their last state, into the journal's final flush
    save_limiters(sys, *host.dir(), millis{2000});
  std::cout << "squad serve: stopped" << std::endl;
  return 0;
}

int key_hash(const std::string& key_arg) {
  std::string key = key_arg;
  if (key.empty() && !std::getline(std::cin, key)) {
    std::cerr << "squad key hash: give the key as an argument or on standard input\n";
    return 2;
  }
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' '))
    key.pop_back();
  if (key.size() < 16) {
    std::cerr << "squad key hash: a key must have at least 16 characters\n";
    return 2;
  }
  std::cout << server::sha256_hex(key) << "\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"squad: run a squad of LLM personas within every provider's rate limits"};
  app.require_subcommand(1);
  app.set_version_flag("--version,-V", std::string{"squad "} + squad_version + " (CAF 0.17.6, C++20)");
  std::string config_file = default_config();

  auto* run_cmd = app.add_subcommand("run", "run a workflow on a task and write its artifacts");
  run_options ro;
  run_cmd->add_option("task", ro.task, "what the squad should work on")->required();
  run_cmd->add_option("--workflow,-w", ro.workflow, "workflow id (default: the config's default_workflow)");
  run_cmd->add_option("--out,-o", ro.out, "artifact directory (default: runs/<run id>)");
  run_cmd->add_option("--config,-c", config_file, "config file")->capture_default_str();
  run_cmd->add_flag("--quiet,-q", ro.quiet, "no live view: one line with the outcome and where run.json is");
  run_cmd->add_flag("--force", ro.force, "with --out: clear a non-empty directory first");
  run_cmd->add_option("--test-kill-persona", ro.hooks.kill_persona, "test hook: kill this persona's actor mid-run")
      ->group("");
  run_cmd->add_option("--test-crash-step", ro.hooks.crash_step, "test hook: crash this step's worker")->group("");
  run_cmd->add_option("--test-crash-times", ro.hooks.crash_times, "test hook: how many times")->group("");

  auto* config_cmd = app.add_subcommand("config", "configuration tools");
  config_cmd->require_subcommand(1);
  auto* check_cmd =
      config_cmd->add_subcommand("check", "validate a config, its personas and workflows (exit 2 on problems)");
  std::string check_file = default_config();
  check_cmd->add_option("file", check_file, "config file")->capture_default_str();
  auto* keys_cmd = config_cmd->add_subcommand("keys", "list every config key with its default, bounds and meaning");

  auto* serve_cmd = app.add_subcommand("serve", "run Squad as a service: the OpenAI-compatible API and /metrics");
  serve_cmd->add_option("--config,-c", config_file, "config file")->capture_default_str();
  std::string listen, storage;
  serve_cmd->add_option("--listen,-l", listen, "host:port to listen on (default: the config's server.listen)");
  serve_cmd->add_option("--storage", storage, "storage URL for this process (default: the config's storage.url)");
  auto* key_cmd = app.add_subcommand("key", "API key tools");
  key_cmd->require_subcommand(1);
  auto* hash_cmd =
      key_cmd->add_subcommand("hash", "print the SHA-256 of a key for server.keys (reads stdin if no key)");
  std::string key_arg;
  hash_cmd->add_option("key", key_arg, "the key (prefer standard input: arguments land in shell history)");
  auto* audit_cmd = app.add_subcommand("audit", "the audit trail");
  audit_cmd->require_subcommand(1);
  auto* export_cmd = audit_cmd->add_subcommand("export", "write the audit rows of the config's store to stdout");
  audit_export_options ao;
  export_cmd->add_option("--config,-c", config_file, "config file (its storage.url)")->capture_default_str();
  export_cmd->add_option("--storage", ao.storage, "the store's URL instead of the config's storage.url");
  export_cmd->add_option("--since", ao.since,
                         "from this time: 2026-12-01T08:00:00Z, 2026-12-01, unix ms, or 24h/7d ago");
  export_cmd->add_option("--format", ao.format, "jsonl (one JSON object a line) or csv")->capture_default_str();
  app.add_subcommand("version", "print the version");
  auto* workflows_cmd = app.add_subcommand("workflows", "list the workflows of a config");
  workflows_cmd->add_option("--config,-c", config_file, "config file")->capture_default_str();
  auto* personas_cmd = app.add_subcommand("personas", "list the personas of a config, their class and chain");
  personas_cmd->add_option("--config,-c", config_file, "config file")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" that exit 0; every bad command line exits 2 (CLI11's own codes vary).
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (run_cmd->parsed()) {
      ro.config_file = config_file;
      return run(ro);
    }
    if (check_cmd->parsed())
      return config_check(check_file);
    if (keys_cmd->parsed())
      return config_keys();
    if (serve_cmd->parsed())
      return serve(config_file, listen, storage);
    if (export_cmd->parsed()) {
      ao.config_file = config_file;
      return audit_export(ao, std::cout);
    }
    if (hash_cmd->parsed())
      return key_hash(key_arg);
    if (workflows_cmd->parsed())
      return list_workflows(config_file);
    if (personas_cmd->parsed())
      return list_personas(config_file);
    std::cout << "squad " << squad_version << " (CAF 0.17.6, C++20)\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "squad: " << e.what() << "\n";
    return 1;
  }
}
