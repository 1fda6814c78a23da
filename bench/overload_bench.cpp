// bench/overload: demand at three times the combined capacity, mixed priorities, against squad-mock-provider.
//
//   overload_bench [--mock PATH] [--seconds S] [--factor F] [--latency-ms N] [--pattern even|burst]
//
// Four upstreams enforce 12, 60, 15 and 12 requests per 2 s window (49.5 calls/s in all). Calls arrive evenly at
// F x that rate for S seconds (defaults 3 x, 10 s), each of class P0 (10%), P1 (30%), P2 (30%) or P3 (30%) drawn
// from a fixed seed. They are API calls outside a run (persona "analyst", its chain holding all four upstreams), so
// the dispatcher sheds them by class and pressure. Printed per class: sent, served, shed, other failures, the
// share shed, the wait of served calls (p50/p99, from arrival to answer) and the time to answer a shed call
// (p99/max); then the upstreams' 429s and the largest window occupancy each saw.
//
// Retry-After: each refusal's Retry-After (the sink's retry_after_ms) is set against the earliest slot the call
// could really have had, found afterwards from what happened: the first moment at or after the refusal when no
// accepted call that would have gone before it (a higher class, or its own class arrived earlier) was still
// waiting to be sent. Printed per class: that slot's ratio to Retry-After (p10/p50/p90) and the share within 20%.
// With `--pattern even` the overload lasts `seconds`, which the refusal cannot know (its forecast assumes the
// arrivals it sees go on for 5 s); with `--pattern burst` every P0-P2 call arrives at once at 0 s and the P3
// calls evenly after, so the earliest slot is set by what is queued when the call is refused.
#include "runtime/host/squad_host.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/mock_process.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
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

// One call's answer, as its sink saw it (as the gateway's sink does: a good first answer arrives straight from
// the io thread, and the dispatcher's own delivery afterwards is ignored).
struct outcome_of {
  clk::time_point sent_at, answered_at;
  bool served = false;
  double upstream_ms = 0; // time in upstream exchanges: answered_at minus this is when it went upstream
  call_failure failure;
};

class bench_sink final : public call_sink {
public:
  bench_sink(outcome_of& out, std::function<void()> finish) : out_(out), finish_(std::move(finish)) {}
  ~bench_sink() override {
    if (!answered_) // released without an answer (its message was lost): counted as a failure, not waited for
      failed(call_failure{
          squad_errc::cancelled, "the call's sink was released without an answer", -1, failure_class::unknown, {}});
  }
  void delta(std::string_view) override {}
  bool committed() const override { return false; }
  void done(call_result r) override {
    if (answered_.exchange(true)) // the dispatcher's delivery after a direct answer from the io thread
      return;
    out_.answered_at = clk::now();
    out_.served = true;
    out_.upstream_ms = static_cast<double>(r.upstream_us) / 1000.0;
    finish_();
  }
  void failed(call_failure f) override {
    if (answered_.exchange(true))
      return;
    out_.answered_at = clk::now();
    out_.failure = std::move(f);
    finish_();
  }

private:
  outcome_of& out_;
  std::function<void()> finish_;
  std::atomic<bool> answered_{false}; // the first answer counts (a sink may be told twice, from two threads)
};

struct driver_state {
  int next = 0;
};

struct accuracy_of {
  std::vector<double> ratio; // Retry-After / the earliest real slot, per refusal
  std::vector<double> real_ms;
};

// For each refusal: the earliest moment at or after it when no accepted call that goes before it (a higher class,
// or its own class arrived before it) was still waiting to go upstream; against the refusal's Retry-After.
std::array<accuracy_of, 4> retry_after_accuracy(const std::vector<outcome_of>& out, const std::vector<int>& cls,
                                                clk::time_point start, double end_ms) {
  struct served_call {
    double arrived, sent;
    int cls;
  };
  std::vector<served_call> served;
  for (std::size_t n = 0; n < out.size(); ++n)
    if (out[n].served)
      served.push_back({ms(out[n].sent_at - start), ms(out[n].answered_at - start) - out[n].upstream_ms, cls[n]});
  std::array<accuracy_of, 4> acc;
  for (int c = 1; c < 4; ++c) {
    // The spans when no call of a higher class was waiting: [from, to).
    std::vector<std::pair<double, int>> steps;
    for (auto& s : served)
      if (s.cls < c && s.sent > s.arrived) {
        steps.emplace_back(s.arrived, +1);
        steps.emplace_back(s.sent, -1);
      }
    std::sort(steps.begin(), steps.end());
    std::vector<std::pair<double, double>> idle;
    int level = 0;
    double from = 0;
    for (auto& [at, d] : steps) {
      if (level == 0 && d > 0 && at > from)
        idle.emplace_back(from, at);
      level += d;
      if (level == 0)
        from = at;
    }
    idle.emplace_back(from, std::max(from, end_ms) + 1e9);
    for (std::size_t n = 0; n < out.size(); ++n) {
      if (cls[n] != c || out[n].served || out[n].failure.code != squad_errc::shed || out[n].failure.retry_after_ms < 0)
        continue;
      double t = ms(out[n].answered_at - start), arrived = ms(out[n].sent_at - start), q = t;
      for (auto& s : served) // its own class, arrived before it and still waiting, goes first
        if (s.cls == c && s.arrived <= arrived)
          q = std::max(q, s.sent);
      double slot = q;
      for (auto& [a, b] : idle)
        if (b > q) {
          slot = std::max(q, a);
          break;
        }
      double real = std::max(1.0, slot - t);
      acc[c].real_ms.push_back(real);
      acc[c].ratio.push_back(static_cast<double>(out[n].failure.retry_after_ms) / real);
    }
  }
  return acc;
}

} // namespace

int main(int argc, char** argv) {
  std::string mock_bin = test::default_mock_binary();
  double seconds = 10, factor = 3;
  int latency_ms = 20;
  std::string pattern = "even";
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
    else if (k == "--pattern" && (std::string(argv[i + 1]) == "even" || std::string(argv[i + 1]) == "burst"))
      pattern = argv[i + 1];
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

    const double rate = factor * capacity; // calls per second
    const int total = static_cast<int>(rate * seconds);
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> pick(0, 99);
    std::vector<int> cls(total);
    for (auto& c : cls) {
      int x = pick(rng);
      c = x < 10 ? 0 : x < 40 ? 1 : x < 70 ? 2 : 3;
    }
    // When each call arrives (ms from the start): evenly, or (burst) every P0-P2 call at 0 and the P3 calls evenly.
    std::vector<double> arrive_ms(total);
    int p3 = static_cast<int>(std::count(cls.begin(), cls.end(), 3)), nth3 = 0;
    for (int n = 0; n < total; ++n)
      arrive_ms[n] = pattern == "even" ? 1000.0 * n / rate
                     : cls[n] == 3     ? 1000.0 * seconds * nth3++ / std::max(1, p3)
                                       : 0.0;
    std::vector<int> order(total);
    for (int n = 0; n < total; ++n)
      order[n] = n;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return arrive_ms[a] < arrive_ms[b]; });

    // Each call's answer arrives at its sink (as the HTTP gateway's does), with the refusal's Retry-After.
    std::vector<outcome_of> out(total);
    std::mutex m;
    std::condition_variable cv;
    int answered = 0;
    auto finish = [&] {
      std::lock_guard<std::mutex> lock(m);
      if (++answered == total)
        cv.notify_all();
    };
    auto start = clk::now();
    auto driver = sys.spawn([&](caf::stateful_actor<driver_state>* me) -> caf::behavior {
      return {
          [&, me](atoms::tick) {
            auto& st = me->state;
            auto now = clk::now();
            while (st.next < total && ms(now - start) >= arrive_ms[order[st.next]]) {
              int n = order[st.next++];
              call_request req;
              req.trace_id = std::to_string(n);
              req.persona = "analyst";
              req.priority = static_cast<std::uint8_t>(cls[n]);
              req.messages = {{"user", "Call " + std::to_string(n)}};
              req.max_tokens = 32;
              req.timeout_ms = 60000;
              out[n].sent_at = clk::now();
              req.sink = std::make_shared<bench_sink>(out[n], finish);
              // The sink has the answer; the reply to the request is dropped (an unhandled error would end me).
              me->request(analyst, std::chrono::seconds(90), std::move(req))
                  .then([](call_result&) {}, [](caf::error&) {});
            }
            if (st.next < total)
              me->delayed_send(me, std::chrono::milliseconds(1), atoms::tick_v);
          },
      };
    });
    caf::anon_send(driver, atoms::tick_v);
    {
      std::unique_lock<std::mutex> lock(m);
      if (!cv.wait_for(lock, std::chrono::seconds(180), [&] { return answered == total; })) {
        std::fprintf(stderr, "overload_bench: %d of %d calls unanswered after 180 s\n", total - answered, total);
        return 1;
      }
    }
    caf::anon_send_exit(driver, caf::exit_reason::user_shutdown);
    auto makespan = ms(clk::now() - start);
    std::array<per_class, 4> by;
    for (int n = 0; n < total; ++n) {
      auto& c = by[cls[n]];
      auto& o = out[n];
      ++c.sent;
      if (o.served) {
        ++c.served;
        c.wait_ms.push_back(ms(o.answered_at - o.sent_at));
      } else if (o.failure.code == squad_errc::shed) {
        ++c.shed;
        c.shed_ms.push_back(ms(o.answered_at - o.sent_at));
        if (c.first_shed.empty())
          c.first_shed = o.failure.detail;
      } else {
        ++c.failed;
        if (c.first_failure.empty())
          c.first_failure = o.failure.detail;
      }
    }
    auto accuracy = retry_after_accuracy(out, cls, start, makespan);

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
                "30%% P2, 30%% P3, arriving %s; latency %dms\n\n",
                factor, capacity, seconds, total, pattern == "even" ? "evenly" : "P0-P2 at once, P3 evenly",
                latency_ms);
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
    std::printf("\nRetry-After against the earliest real slot (found afterwards, see the header):\n");
    std::printf("%-5s %8s %13s %13s %13s %12s %11s\n", "class", "refused", "ratio p10", "ratio p50", "ratio p90",
                "within 20%", "slot p50");
    for (int c = 1; c < 4; ++c) {
      auto& a = accuracy[c];
      if (a.ratio.empty())
        continue;
      auto within = std::count_if(a.ratio.begin(), a.ratio.end(), [](double r) { return r >= 0.8 && r <= 1.2; });
      std::printf("P%-4d %8zu %13.2f %13.2f %13.2f %11.1f%% %9.0fms\n", c, a.ratio.size(), pct(a.ratio, .1),
                  pct(a.ratio, .5), pct(a.ratio, .9),
                  100.0 * static_cast<double>(within) / static_cast<double>(a.ratio.size()), pct(a.real_ms, .5));
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
