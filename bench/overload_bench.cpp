// bench/overload: demand at three times the combined capacity, mixed priorities, against squad-mock-provider.
//
//   overload_bench [--mock PATH] [--seconds S] [--factor F] [--latency-ms N]
//
// Four upstreams enforce 12, 60, 15 and 12 requests per 2 s window (49.5 calls/s in all). Calls arrive evenly at
// F x that rate for S seconds (defaults 3 x, 10 s), each of class P0 (10%), P1 (30%), P2 (30%) or P3 (30%) drawn
// from a fixed seed. They are API calls outside a run (persona "analyst", its chain holding all four upstreams), so
// the dispatcher sheds them by class and pressure. Printed per class: sent, served, shed, other failures, the
// share shed, the wait of served calls (p50/p99, from arrival to answer) and the time to answer a shed call
// (p99/max); then the upstreams' 429s and the largest window occupancy each saw.
#include "runtime/host/squad_host.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/mock_process.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <iostream>
#include <random>

using namespace squad;
using clk = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {

struct upstream {
  std::string name;
  int requests;
  int concurrency;
};

double ms(clk::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double pct(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct per_class {
  int sent = 0, served = 0, shed = 0, failed = 0;
  std::vector<double> wait_ms, shed_ms;
  std::string first_failure, first_shed;
};

} // namespace

int main(int argc, char** argv) {
  std::string mock_bin = test::default_mock_binary();
  double seconds = 10, factor = 3;
  int latency_ms = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--mock")
      mock_bin = argv[i + 1];
    else if (k == "--seconds")
      seconds = std::stod(argv[i + 1]);
    else if (k == "--factor")
      factor = std::stod(argv[i + 1]);
    else if (k == "--latency-ms")
      latency_ms = std::stoi(argv[i + 1]);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  try {
    std::vector<upstream> ups = {{"a", 12, 4}, {"b", 60, 16}, {"c", 15, 4}, {"d", 12, 2}};
    std::string my = "upstreams:\n";
    double capacity = 0;
    for (auto& u : ups) {
      my += "  " + u.name +
            ":\n    listen: 127.0.0.1:0\n    style: openai\n    limits: {requests: " + std::to_string(u.requests) +
            ", per: 2s, concurrency: " + std::to_string(u.concurrency) +
            "}\n    latency: {fixed: " + std::to_string(latency_ms) + "ms, jitter: " + std::to_string(latency_ms / 2) +
            "ms}\n    reply: {tokens: 16}\n";
      capacity += u.requests / 2.0;
    }
    test::mock_process mock(my, mock_bin);
    std::string sy = "personas_dir: " SQUAD_SOURCE_DIR "/personas\nworkflows_dir: " SQUAD_SOURCE_DIR
                     "/config/workflows\nproviders:\n";
    for (auto& u : ups)
      sy += "  " + u.name + ":\n    kind: openai\n    base_url: http://127.0.0.1:" + std::to_string(mock.port(u.name)) +
            "/v1\n    limits: {requests: " + std::to_string(u.requests) +
            ", per: 2s, burst: " + std::to_string(u.requests) + ", concurrency: " + std::to_string(u.concurrency) +
            "}\n    timeouts: {connect: 1s, first_byte: 5s, idle: 5s, total: 10s}\n    models:\n      m: {id: mock-" +
            u.name + ", tier: worker}\n";
    sy += "personas:\n  analyst: {chain: [a/m, b/m, c/m, d/m]}\n";
    std::vector<config_problem> problems;
    auto sq = load_squad_text(sy, problems);
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
    auto analyst = host.dir()->get()->persona("analyst");
    caf::scoped_actor self{sys};

    const double rate = factor * capacity; // calls per second
    const int total = static_cast<int>(rate * seconds);
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> pick(0, 99);
    std::vector<int> cls(total);
    for (auto& c : cls) {
      int x = pick(rng);
      c = x < 10 ? 0 : x < 40 ? 1 : x < 70 ? 2 : 3;
    }
    std::vector<clk::time_point> sent_at(total);
    std::array<per_class, 4> by;
    auto start = clk::now();
    auto gap = std::chrono::duration<double>(1.0 / rate);
    // An event-based driver sends each call at its arrival time and collects the answers.
    struct driver_state {
      int next = 0, answered = 0;
      caf::response_promise done;
    };
    auto driver = sys.spawn([&](caf::stateful_actor<driver_state>* me) -> caf::behavior {
      return {
          [&, me](atoms::start) -> caf::result<bool> {
            me->state.done = me->make_response_promise();
            me->send(me, atoms::tick_v);
            return caf::delegated<bool>{};
          },
          [&, me](atoms::tick) {
            auto& st = me->state;
            auto now = clk::now();
            while (st.next < total && now - start >= std::chrono::duration_cast<clk::duration>(gap * st.next)) {
              int n = st.next++;
              call_request req;
              req.trace_id = std::to_string(n);
              req.persona = "analyst";
              req.priority = static_cast<std::uint8_t>(cls[n]);
              req.messages = {{"user", "Call " + std::to_string(n)}};
              req.max_tokens = 32;
              req.timeout_ms = 60000;
              sent_at[n] = clk::now();
              ++by[cls[n]].sent;
              me->request(analyst, std::chrono::seconds(90), std::move(req))
                  .then(
                      [&, me, n](call_result&) {
                        by[cls[n]].served++;
                        by[cls[n]].wait_ms.push_back(ms(clk::now() - sent_at[n]));
                        if (++me->state.answered == total)
                          me->state.done.deliver(true);
                      },
                      [&, me, n](caf::error& err) {
                        auto& c = by[cls[n]];
                        if (err == squad_errc::shed) {
                          ++c.shed;
                          c.shed_ms.push_back(ms(clk::now() - sent_at[n]));
                          if (c.first_shed.empty())
                            c.first_shed = error_detail(sys, err);
                        } else {
                          ++c.failed;
                          if (c.first_failure.empty())
                            c.first_failure = error_detail(sys, err);
                        }
                        if (++me->state.answered == total)
                          me->state.done.deliver(true);
                      });
            }
            if (st.next < total)
              me->delayed_send(me, std::chrono::milliseconds(1), atoms::tick_v);
          },
      };
    });
    self->request(driver, std::chrono::seconds(600), atoms::start_v).receive([](bool) {}, [](caf::error&) {});
    caf::anon_send_exit(driver, caf::exit_reason::user_shutdown);
    auto makespan = ms(clk::now() - start);

    std::int64_t rejected = 0;
    std::string occupancy;
    for (auto& u : ups) {
      auto s = json::parse(test::request("GET", "127.0.0.1", mock.port(u.name), "/stats").body);
      rejected += s["rejected"]["requests"].get<std::int64_t>() + s["rejected"]["concurrency"].get<std::int64_t>();
      if (s["rejected"]["concurrency"].get<std::int64_t>() > 0)
        occupancy += "(" + u.name + ": " + std::to_string(s["rejected"]["concurrency"].get<std::int64_t>()) +
                     " over its concurrency cap) ";
      if (s["rejected"]["requests"].get<std::int64_t>() > 0)
        occupancy +=
            "(" + u.name + ": " + std::to_string(s["rejected"]["requests"].get<std::int64_t>()) + " over its window) ";
      occupancy +=
          u.name + "=" + std::to_string(s["max_window_occupancy"].get<int>()) + "/" + std::to_string(u.requests) + " ";
    }
    std::printf("bench/overload: %.1fx the combined capacity (%.1f calls/s) for %.0fs: %d calls, 10%% P0, 30%% P1, "
                "30%% P2, 30%% P3; latency %dms\n\n",
                factor, capacity, seconds, total, latency_ms);
    std::printf("%-5s %6s %7s %6s %7s %7s %11s %11s %11s %12s %11s %9s\n", "class", "sent", "served", "shed", "failed",
                "shed %", "wait p50", "wait p99", "shed p50", "shed p99", "shed max", "<=50ms");
    for (int c = 0; c < 4; ++c) {
      auto& x = by[c];
      auto fast = std::count_if(x.shed_ms.begin(), x.shed_ms.end(), [](double ms) { return ms <= 50; });
      std::printf("P%-4d %6d %7d %6d %7d %6.1f%% %9.0fms %9.0fms %9.1fms %10.1fms %9.1fms %8.1f%%\n", c, x.sent,
                  x.served, x.shed, x.failed, x.sent ? 100.0 * x.shed / x.sent : 0.0, pct(x.wait_ms, .5),
                  pct(x.wait_ms, .99), pct(x.shed_ms, .5), pct(x.shed_ms, .99),
                  x.shed_ms.empty() ? 0.0 : *std::max_element(x.shed_ms.begin(), x.shed_ms.end()),
                  x.shed_ms.empty() ? 100.0
                                    : 100.0 * static_cast<double>(fast) / static_cast<double>(x.shed_ms.size()));
    }
    std::printf("\nupstream 429s: %lld; max window occupancy: %s; all answered after %.1fs\n",
                static_cast<long long>(rejected), occupancy.c_str(), makespan / 1000);
    for (int c = 0; c < 4; ++c) {
      if (!by[c].first_shed.empty())
        std::printf("P%d shed, e.g.: %s\n", c, by[c].first_shed.c_str());
      if (!by[c].first_failure.empty())
        std::printf("P%d failed, e.g.: %s\n", c, by[c].first_failure.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "overload_bench: " << e.what() << "\n";
    return 1;
  }
}
