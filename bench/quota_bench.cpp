// bench/quota: rate governance against squad-mock-provider with strict limits (windows scaled to 2 s).
//
//   quota_bench [--mock PATH] [--scenario seed|advertised|down|all] [--latency-ms N]
//
// Four upstreams enforce 12, 60, 15 and 12 requests per 2 s window (concurrency 4, 16, 4, 2). Ten personas
// whose chains hold all four (each persona prefers a different one first) make 300 calls at once (30 tasks x
// 10 personas), through the real tree: persona actors -> dispatcher -> routing -> breaker -> limiter ->
// provider actors -> HTTP -> mock. Until `squad serve` exists the calls enter in-process (persona actors). The
// calls carry a run id, so the dispatcher does not shed them (bench/overload measures shedding), and are all P1
// (one FIFO class). QUOTA_PERSONA_PRIORITIES=1 keeps each persona's own priority (P1..P3) instead: the limiters
// then serve higher classes first, and the last P3 call can slip a window. QUOTA_API=1 sends them as API calls
// (no run id): each is then refused (shed) if its chain cannot serve it within its class's tolerable wait.
//
// Scenario "down": one task's ten calls arrive every 250 ms (7.5 s in all); upstream b is down from 1 s to 7 s.
//
// Printed per scenario: success rate, upstream 429s (as the mock counted them), calls that ever saw a 429, the
// largest window occupancy per upstream (as the mock saw it), makespan, the capacity bound (the smallest T at
// which the upstreams' windows could have admitted all calls: (ceil(calls / sum N) - 1) * W), and their ratio;
// then the clairvoyant schedule's makespan (windows, concurrency and the mean latency honoured, every answer in)
// and the ratio to it.
#include "runtime/host/squad_host.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/mock_process.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>

using namespace squad;
using clk = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {

struct upstream {
  std::string name;
  int requests;   // what the mock enforces per window
  int advertised; // what Squad's config says
  int concurrency;
};

const std::vector<std::string> personas = {"analyst", "pm",  "architect", "ux-expert", "po",
                                           "sm",      "dev", "qa",        "devops",    "tech-writer"};
const int tasks = 30;
const std::chrono::milliseconds window{2000};

std::string mock_yaml(const std::vector<upstream>& ups, int latency_ms) {
  std::string y = "upstreams:\n";
  for (auto& u : ups)
    y += "  " + u.name +
         ":\n    listen: 127.0.0.1:0\n    style: openai\n    limits: {requests: " + std::to_string(u.requests) +
         ", per: 2s, concurrency: " + std::to_string(u.concurrency) +
         "}\n    latency: {fixed: " + std::to_string(latency_ms) + "ms, jitter: " + std::to_string(latency_ms / 2) +
         "ms}\n    reply: {tokens: 16}\n";
  return y;
}

std::string squad_yaml(const std::vector<upstream>& ups, const test::mock_process& m) {
  std::string y = "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR
                  "/config/workflows\nruntime: {scheduler_threads: 2, io_threads: 1, step_timeout: 120s, "
                  "queue_wait: 30s}\nproviders:\n";
  for (auto& u : ups)
    y += "  " + u.name + ":\n    kind: openai\n    base_url: http://127.0.0.1:" + std::to_string(m.port(u.name)) +
         "/v1\n    limits: {requests: " + std::to_string(u.advertised) +
         ", per: 2s, burst: " + std::to_string(u.advertised) + ", concurrency: " + std::to_string(u.concurrency) +
         (std::getenv("QUOTA_EXPECTED_LATENCY")
              ? std::string(", expected_latency: ") + std::getenv("QUOTA_EXPECTED_LATENCY")
              : std::string{}) +
         "}\n    timeouts: {connect: 1s, first_byte: 5s, idle: 5s, total: 10s}\n"
         "    breaker: {failures: 5, cooldown: 3s}\n    models:\n      m: {id: mock-" +
         u.name + ", tier: worker}\n";
  y += "personas:\n";
  for (std::size_t p = 0; p < personas.size(); ++p) {
    y += "  " + personas[p] + ": {chain: [";
    for (std::size_t k = 0; k < ups.size(); ++k) // persona p prefers upstream p mod 4, then the others in turn
      y += (k ? ", " : "") + ups[(p + k) % ups.size()].name + "/m";
    y += "]}\n";
  }
  return y;
}

json mock_stats(const test::mock_process& m, const std::string& name) {
  auto r = test::request("GET", "127.0.0.1", m.port(name), "/stats");
  return json::parse(r.body);
}

struct outcome_counts {
  int ok = 0, failed = 0, saw_429 = 0, rerouted = 0;
  std::string slowest; // the attempts of the last call answered
  clk::duration makespan{};
  std::vector<std::string> breaker_events;
  std::string first_error;
};

using timed_action = std::pair<std::chrono::milliseconds, std::function<void()>>;

// 300 calls at once through the persona actors; waits for every answer. Each action runs once, at its time.
// With `spread` > 0, task t's ten calls arrive at t * spread instead of all at once.
outcome_counts run_calls(caf::actor_system& sys, const directory_ptr& dir, std::vector<timed_action> actions,
                         std::chrono::milliseconds spread) {
  outcome_counts out;
  caf::scoped_actor self{sys};
  auto start = clk::now();
  int sent = 0;
  auto send_task = [&](int t) {
    for (auto& p : personas) {
      call_request req;
      req.trace_id = "q" + std::to_string(sent);
      req.persona = p;
      if (!std::getenv("QUOTA_API"))
        req.run_id = "quota-bench"; // as a run's calls: no shedding by the dispatcher (bench/overload measures it)
      if (!std::getenv("QUOTA_PERSONA_PRIORITIES"))
        req.priority = 1; // every call P1: one FIFO class at every limiter
      req.messages = {{"user", "Task " + std::to_string(t) + ": write your part of the plan."}};
      req.max_tokens = 64;
      req.timeout_ms = 120000;
      req.events = caf::actor_cast<event_sink_actor>(caf::actor{self});
      self->send(dir->get()->persona(p), std::move(req));
      ++sent;
    }
  };
  int next_task = 0;
  auto send_due = [&] {
    while (next_task < tasks && clk::now() - start >= spread * next_task)
      send_task(next_task++);
  };
  send_due();
  std::size_t fired = 0;
  int answered = 0;
  while (answered < tasks * static_cast<int>(personas.size())) {
    send_due();
    self->receive(
        [&](call_result& r) {
          ++answered;
          ++out.ok;
          bool limited = false;
          out.slowest.clear();
          for (auto& a : r.attempts) {
            limited = limited || a.outcome == "limited";
            out.slowest += a.provider + ":" + a.outcome + (a.detail.empty() ? "" : "(" + a.detail + ")") + " ";
          }
          out.rerouted += limited;
          for (auto& a : r.attempts)
            if (a.outcome == "rate_limited") {
              ++out.saw_429;
              break;
            }
        },
        [&](run_event& ev) {
          if (ev.type == "provider.breaker")
            out.breaker_events.push_back(
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - start).count()) +
                "ms " + ev.message);
        },
        [&](caf::error& err) {
          ++answered;
          ++out.failed;
          if (out.first_error.empty())
            out.first_error = error_detail(sys, err);
        },
        caf::after(std::chrono::milliseconds(50)) >> [] {});
    while (fired < actions.size() && clk::now() - start >= actions[fired].first)
      actions[fired++].second();
  }
  out.makespan = clk::now() - start;
  return out;
}

// The clairvoyant schedule's makespan for `calls` identical calls all there at 0: each upstream's k-th call
// starts no sooner than its (k - N)-th start + W (the window, as the mock counts arrivals) and its (k - C)-th
// finish (concurrency), every call takes the mean latency, and each call goes to the upstream where it can start
// first (optimal for identical calls). Returns when the last answer is in, in seconds.
double schedule_bound(const std::vector<upstream>& ups, int calls, double window_s, double latency_s) {
  std::vector<std::vector<double>> starts(ups.size());
  auto next_start = [&](std::size_t u) {
    auto& s = starts[u];
    double t = s.empty() ? 0 : s.back();
    auto n = s.size(), cap = static_cast<std::size_t>(ups[u].requests),
         conc = static_cast<std::size_t>(ups[u].concurrency);
    if (n >= cap)
      t = std::max(t, s[n - cap] + window_s);
    if (n >= conc)
      t = std::max(t, s[n - conc] + latency_s);
    return t;
  };
  double last = 0;
  for (int i = 0; i < calls; ++i) {
    std::size_t best = 0;
    for (std::size_t u = 1; u < ups.size(); ++u)
      if (next_start(u) < next_start(best))
        best = u;
    auto t = next_start(best);
    starts[best].push_back(t);
    last = std::max(last, t + latency_s);
  }
  return last;
}

int scenario(const std::string& name, const std::string& mock_bin, int latency_ms) {
  std::vector<upstream> ups = {{"a", 12, 12, 4}, {"b", 60, 60, 16}, {"c", 15, 15, 4}, {"d", 12, 12, 2}};
  if (name == "advertised")
    ups[0].advertised = 30; // the config claims 30 where the upstream enforces 12
  test::mock_process mock(mock_yaml(ups, latency_ms), mock_bin);
  std::vector<config_problem> problems;
  auto sq = load_squad_text(squad_yaml(ups, mock), problems);
  if (!sq.cfg) {
    for (auto& p : problems)
      std::cerr << to_string(p) << "\n";
    return 2;
  }
  squad_host host{sq, problems}; // as `squad` boots: io threads, the actor system on them, the tree
  if (!host.ok()) {
    for (auto& p : problems)
      std::cerr << to_string(p) << "\n";
    return 2;
  }
  auto& sys = host.system();
  std::vector<timed_action> actions;
  if (name == "down") { // calls arrive over 7.5 s; b, the roomiest upstream, is down from 1 s to 7 s
    auto fault = [&mock](const char* mode) {
      test::request("POST", "127.0.0.1", mock.port("b"), "/admin/fault", std::string(R"({"mode":")") + mode + "\"}");
    };
    actions.emplace_back(std::chrono::milliseconds(1000), [fault] { fault("down"); });
    actions.emplace_back(std::chrono::milliseconds(7000), [fault] { fault("none"); });
  }
  auto spread = std::chrono::milliseconds(name == "down" ? 250 : 0);
  auto r = run_calls(sys, host.dir(), actions, spread);
  int calls = tasks * static_cast<int>(personas.size());
  // The bound: windows start at 0, W, 2W, ...; an upstream counts in a window if it is up when that window starts
  // (b, in "down": only the window at 0 and those from 8 s on).
  auto up_at = [&](const upstream& u, double t) { return !(name == "down" && u.name == "b" && t >= 1.0 && t < 7.0); };
  double bound_s = 0;
  {
    int admitted = 0;
    double w = std::chrono::duration<double>(window).count();
    for (int k = 0; admitted < calls; ++k) {
      for (auto& u : ups)
        admitted += up_at(u, k * w) ? u.requests : 0;
      bound_s = k * w;
    }
    bound_s = std::max(bound_s, std::chrono::duration<double>(spread * (tasks - 1)).count()); // the last arrival
  }
  std::int64_t rejected = 0;
  std::string occupancy;
  for (auto& u : ups) {
    auto s = mock_stats(mock, u.name);
    rejected += s["rejected"]["requests"].get<std::int64_t>() + s["rejected"]["concurrency"].get<std::int64_t>() +
                s["rejected"]["tokens"].get<std::int64_t>();
    occupancy +=
        u.name + "=" + std::to_string(s["max_window_occupancy"].get<int>()) + "/" + std::to_string(u.requests) + " ";
  }
  double makespan = std::chrono::duration<double>(r.makespan).count();
  char ratio[16] = "-", sched[16] = "-", sratio[16] = "-"; // with arrivals spread over time the bounds say little
  if (spread.count() == 0 && bound_s > 0) {
    std::snprintf(ratio, sizeof ratio, "%.3f", makespan / bound_s);
    // The mock's latency is fixed (latency_ms) + jitter in [0, latency_ms / 2]: its mean is 1.25 x latency_ms.
    double sb = schedule_bound(ups, calls, std::chrono::duration<double>(window).count(), 1.25 * latency_ms / 1000.0);
    std::snprintf(sched, sizeof sched, "%.2fs", sb);
    std::snprintf(sratio, sizeof sratio, "%.3f", makespan / sb);
  }
  std::printf("%-11s %6.1f%% %6lld %8.1f%% %-22s %8.2fs %7.2fs %6s %8s %6s\n", name.c_str(), 100.0 * r.ok / calls,
              static_cast<long long>(rejected), 100.0 * r.saw_429 / calls, occupancy.c_str(), makespan, bound_s, ratio,
              sched, sratio);
  if (std::getenv("QUOTA_VERBOSE"))
    std::printf("            %d calls re-routed after a limiter refusal; last call: %s\n", r.rerouted,
                r.slowest.c_str());
  if (!r.first_error.empty())
    std::printf("            first error: %s\n", r.first_error.c_str());
  for (auto& e : r.breaker_events)
    std::printf("            breaker: %s\n", e.c_str());
  return r.failed == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  std::string mock = test::default_mock_binary(), which = "all";
  int latency_ms = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--mock")
      mock = argv[i + 1];
    else if (k == "--scenario")
      which = argv[i + 1];
    else if (k == "--latency-ms")
      latency_ms = std::stoi(argv[i + 1]);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  std::printf("bench/quota: 300 calls at once (30 tasks x 10 personas), upstreams a,b,c,d enforce 12,60,15,12 per 2s\n"
              "window, concurrency 4,16,4,2; latency %dms + jitter %dms\n\n",
              latency_ms, latency_ms / 2);
  std::printf("%-11s %7s %6s %9s %-22s %9s %8s %6s %8s %6s\n", "scenario", "success", "429s", "saw 429",
              "max window occupancy", "makespan", "bound", "ratio", "schedule", "ratio");
  int rc = 0;
  try {
    for (std::string s : {"seed", "advertised", "down"})
      if (which == "all" || which == s)
        rc |= scenario(s, mock, latency_ms);
  } catch (const std::exception& e) {
    std::cerr << "quota_bench: " << e.what() << "\n";
    return 1;
  }
  return rc;
}
