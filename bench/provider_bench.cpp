// bench/provider: what the provider actor path costs over a raw Beast client, against squad-mock-provider on
// loopback (latency 0, no limits, so only the client side is measured).
//
//   provider_bench [--mock PATH] [--calls N] [--seconds S]
//
// Prints: p50/p99 of one call at a time through (a) a raw keep-alive Beast client and (b) a provider actor
// (scoped actor -> provider actor -> io thread -> upstream -> io thread -> provider actor -> scoped actor), the
// difference, calls per second with 32 in flight for both, and the connections each opened.
#include "actors/provider/provider.hpp"
#include "runtime/host/squad_tree.hpp"
#include "tests/integration/http_client.hpp"
#include "tests/integration/mock_process.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

using namespace squad;
using clk = std::chrono::steady_clock;

namespace {

struct options {
  std::string mock = test::default_mock_binary();
  int calls = 3000;
  double seconds = 3;
};

double us(clk::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
}

struct system_config : caf::actor_system_config {
  system_config() { configure_actor_system(*this, 2); }
};

std::string prompt_body() {
  return R"({"model":"gpt-mock","messages":[{"role":"system","content":"You are terse."},)"
         R"({"role":"user","content":"Write one line about rate limits."}],"max_tokens":64,"temperature":0.5,"stream":false})";
}

provider_call make_call() {
  provider_call c;
  c.target = {"bench", "m", "gpt-mock", "worker"};
  c.request.messages = {{"system", "You are terse."}, {"user", "Write one line about rate limits."}};
  c.request.max_tokens = 64;
  c.request.temperature = 0.5;
  c.request.timeout_ms = 10000;
  return c;
}

int connections(const test::mock_process& m) {
  auto r = test::request("GET", "127.0.0.1", m.port("bench"), "/stats");
  return nlohmann::json::parse(r.body)["connections_opened"].get<int>();
}

} // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--mock")
      o.mock = argv[i + 1];
    else if (k == "--calls")
      o.calls = std::stoi(argv[i + 1]);
    else if (k == "--seconds")
      o.seconds = std::stod(argv[i + 1]);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  try {
    test::mock_process mock("upstreams:\n  bench:\n    listen: 127.0.0.1:0\n    style: openai\n"
                            "    limits: {requests: 100000000, per: 1s, concurrency: 0}\n    latency: {fixed: 0ms}\n   "
                            " reply: {tokens: 24}\n",
                            o.mock);
    auto port = mock.port("bench");
    const std::string body = prompt_body();
    const int warmup = 200;

    // (a) raw Beast, one keep-alive connection, one call at a time.
    int conns0 = connections(mock);
    std::vector<double> raw;
    {
      test::http_connection conn("127.0.0.1", port);
      for (int i = 0; i < warmup + o.calls; ++i) {
        auto t0 = clk::now();
        auto r = conn.request("POST", "/v1/chat/completions", body);
        auto t1 = clk::now();
        if (r.status != 200)
          throw std::runtime_error("raw call failed: " + std::to_string(r.status) + " " + r.error);
        if (i >= warmup)
          raw.push_back(us(t1 - t0));
      }
    }
    int raw_conns = connections(mock) - conns0 - 1; // minus the /stats request itself

    // (b) the provider actor path.
    system_config cfg;
    caf::actor_system sys{cfg};
    net::io_runtime io{1};
    provider_config p;
    p.name = "bench";
    p.kind = "openai";
    p.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
    p.limits.concurrency = 32;
    p.models.push_back({"m", "gpt-mock", "worker"});
    std::string why;
    auto pool = make_provider_pool(io, p, why);
    if (!pool)
      throw std::runtime_error(why);
    caf::scoped_actor self{sys};
    auto prov = caf::actor_cast<caf::actor>(spawn_http_provider(self.ptr(), p, pool));
    std::vector<double> actor;
    for (int i = 0; i < warmup + o.calls; ++i) {
      auto t0 = clk::now();
      bool ok = false;
      self->request(prov, std::chrono::seconds(10), make_call())
          .receive([&](upstream_reply& r) { ok = r.result == outcome::ok; }, [&](caf::error&) {});
      auto t1 = clk::now();
      if (!ok)
        throw std::runtime_error("provider call failed");
      if (i >= warmup)
        actor.push_back(us(t1 - t0));
    }

    // The same calls made from an event-based actor, as the dispatcher makes them (no blocking receive).
    std::vector<double> from_actor;
    {
      struct loop {
        static void next(caf::event_based_actor* me, caf::actor prov, int left, std::vector<double>* out,
                         caf::response_promise rp, int skip) {
          if (left == 0)
            return rp.deliver(true);
          auto t0 = clk::now();
          me->request(prov, std::chrono::seconds(10), make_call()).then([=](upstream_reply& r) mutable {
            if (r.result != outcome::ok)
              return rp.deliver(false);
            if (skip <= 0)
              out->push_back(us(clk::now() - t0));
            next(me, prov, left - 1, out, rp, skip - 1);
          });
        }
      };
      auto driver = sys.spawn([&](caf::event_based_actor* me) -> caf::behavior {
        return {[=, &from_actor](atoms::start) -> caf::result<bool> {
          auto rp = me->make_response_promise<bool>();
          loop::next(me, prov, warmup + o.calls, &from_actor, rp, warmup);
          return rp;
        }};
      });
      bool ok = false;
      self->request(driver, std::chrono::seconds(120), atoms::start_v)
          .receive([&](bool b) { ok = b; }, [&](caf::error&) {});
      caf::anon_send_exit(driver, caf::exit_reason::user_shutdown);
      if (!ok)
        throw std::runtime_error("provider call from the driver actor failed");
    }

    // Throughput with 32 in flight through the provider actor.
    const int in_flight = 32;
    auto conns1 = connections(mock);
    long done = 0, failed = 0;
    auto start = clk::now();
    auto until = start + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(o.seconds));
    for (int i = 0; i < in_flight; ++i)
      self->send(prov, make_call());
    int outstanding = in_flight;
    while (outstanding > 0) {
      self->receive([&](upstream_reply& r) {
        --outstanding;
        (r.result == outcome::ok ? done : failed)++;
        if (clk::now() < until) {
          self->send(prov, make_call());
          ++outstanding;
        }
      });
    }
    double actor_rps = done / std::chrono::duration<double>(clk::now() - start).count();
    int actor_conns = connections(mock) - conns1 - 1;

    // The same load from 32 raw Beast clients (one thread and one connection each).
    std::atomic<long> raw_done{0};
    auto rstart = clk::now();
    auto runtil = rstart + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(o.seconds));
    {
      std::vector<std::thread> threads;
      for (int i = 0; i < in_flight; ++i)
        threads.emplace_back([&] {
          test::http_connection conn("127.0.0.1", port);
          while (clk::now() < runtil)
            if (conn.request("POST", "/v1/chat/completions", body).status == 200)
              ++raw_done;
        });
      for (auto& t : threads)
        t.join();
    }
    double raw_rps = raw_done / std::chrono::duration<double>(clk::now() - rstart).count();

    auto s = pool->stats();
    std::printf("bench/provider: squad-mock-provider on loopback, latency 0, 24-token replies, %d calls each\n",
                o.calls);
    std::printf("%-34s %10s %10s\n", "one call at a time", "p50 us", "p99 us");
    std::printf("%-34s %10.1f %10.1f\n", "raw Beast client (keep-alive)", pct(raw, .5), pct(raw, .99));
    std::printf("%-34s %10.1f %10.1f\n", "provider actor, from scoped_actor", pct(actor, .5), pct(actor, .99));
    std::printf("%-34s %10.1f %10.1f\n", "provider actor, called by an actor", pct(from_actor, .5),
                pct(from_actor, .99));
    std::printf("%-34s %10.1f %10.1f\n", "added, called by an actor", pct(from_actor, .5) - pct(raw, .5),
                pct(from_actor, .99) - pct(raw, .99));
    std::printf("%-34s %10.1f %10.1f\n", "added, called by a blocking thread", pct(actor, .5) - pct(raw, .5),
                pct(actor, .99) - pct(raw, .99));
    std::printf("\n%d in flight for %.1fs              calls/s   failed\n", in_flight, o.seconds);
    std::printf("%-34s %10.0f %8ld\n", "provider actor (1 io thread)", actor_rps, failed);
    std::printf("%-34s %10.0f %8d\n", "32 raw Beast clients (32 threads)", raw_rps, 0);
    std::printf(
        "\nconnections opened: raw sequential %d; provider pool %lld in all (mock saw %d during the 32-in-flight "
        "run), %lld requests on reused connections, %lld stale retries\n",
        raw_conns, static_cast<long long>(s.connections_opened), actor_conns, static_cast<long long>(s.reused),
        static_cast<long long>(s.stale_retries));
    caf::anon_send_exit(prov, caf::exit_reason::user_shutdown);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "provider_bench: " << e.what() << "\n";
    return 1;
  }
}
