// The Prometheus text exposition we write ourselves: types, escaping, cumulative histogram buckets.
#include "runtime/metrics/registry.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

using squad::metrics::kind;
using squad::metrics::registry;

TEST_CASE("counters and gauges render with HELP, TYPE and escaped labels") {
  registry r;
  r.describe("t_requests_total", kind::counter, "requests");
  r.inc("t_requests_total", {{"route", "chat"}, {"status", "200"}});
  r.inc("t_requests_total", {{"route", "chat"}, {"status", "200"}}, 2);
  r.describe("t_depth", kind::gauge, "depth");
  r.set("t_depth", {{"provider", "a\"b\\c\nd"}}, 4);
  auto text = r.render();
  CHECK(text.find("# HELP t_requests_total requests\n# TYPE t_requests_total counter\n") != std::string::npos);
  CHECK(text.find("t_requests_total{route=\"chat\",status=\"200\"} 3\n") != std::string::npos);
  CHECK(text.find("t_depth{provider=\"a\\\"b\\\\c\\nd\"} 4\n") != std::string::npos);
  CHECK(r.value("t_requests_total", {{"route", "chat"}, {"status", "200"}}) == 3);
  CHECK(r.value("t_requests_total", {{"route", "none"}}) == 0);
}

TEST_CASE("histograms render cumulative buckets, +Inf, _sum and _count") {
  registry r;
  r.describe("t_seconds", kind::histogram, "latency", {0.1, 1});
  r.observe("t_seconds", {}, 0.05);
  r.observe("t_seconds", {}, 0.5);
  r.observe("t_seconds", {}, 5);
  auto text = r.render();
  INFO(text);
  CHECK(text.find("# TYPE t_seconds histogram\n") != std::string::npos);
  CHECK(text.find("t_seconds_bucket{le=\"0.1\"} 1\n") != std::string::npos);
  CHECK(text.find("t_seconds_bucket{le=\"1\"} 2\n") != std::string::npos);
  CHECK(text.find("t_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(text.find("t_seconds_sum 5.55\n") != std::string::npos);
  CHECK(text.find("t_seconds_count 3\n") != std::string::npos);
}

TEST_CASE("a described family with no series is left out of the exposition") {
  registry r;
  r.describe("t_unused", kind::counter, "never used");
  CHECK(r.render().find("t_unused") == std::string::npos);
}

TEST_CASE("handles resolved once update the same series as updates by name") {
  // A counter, gauge and histogram handle each reach the series the by-name calls reach, and render with it.
  registry r;
  squad::metrics::counter_family requests{"t_handled_total", "handled", r};
  squad::metrics::gauge_family depth{"t_handle_depth", "depth", r};
  squad::metrics::histogram_family seconds{"t_handle_seconds", "latency", {0.1, 1}, r};
  auto c = requests.with({{"route", "chat"}});
  c.inc();
  c.inc(2);
  r.inc("t_handled_total", {{"route", "chat"}});
  CHECK(r.value("t_handled_total", {{"route", "chat"}}) == 4);
  auto g = depth.with();
  g.set(7);
  g.add(-2);
  CHECK(r.value("t_handle_depth") == 5);
  auto h = seconds.with();
  h.observe(0.05);
  h.observe(3);
  r.observe("t_handle_seconds", {}, 0.5);
  auto text = r.render();
  INFO(text);
  CHECK(text.find("# TYPE t_handled_total counter\n") != std::string::npos);
  CHECK(text.find("t_handle_seconds_bucket{le=\"0.1\"} 1\n") != std::string::npos);
  CHECK(text.find("t_handle_seconds_bucket{le=\"1\"} 2\n") != std::string::npos);
  CHECK(text.find("t_handle_seconds_count 3\n") != std::string::npos);
  CHECK(text.find("t_handle_seconds_sum 3.55\n") != std::string::npos);
}

TEST_CASE("an unbound handle ignores updates, and a histogram handle to a counter family is unbound") {
  // Default-constructed handles are safe no-ops; a name of another type gives no histogram to write into.
  registry r;
  squad::metrics::counter{}.inc();
  squad::metrics::histogram{}.observe(1);
  r.describe("t_kind_total", kind::counter, "a counter");
  auto h = r.histogram("t_kind_total");
  CHECK_FALSE(h);
  h.observe(1);
  CHECK(r.render().find("t_kind_total") == std::string::npos);
}

TEST_CASE("handles count exactly under concurrent updates from several threads") {
  // Four threads add 10,000 each through their own copies of one handle: no update is lost without a lock.
  registry r;
  auto c = r.counter("t_parallel_total");
  auto h = r.histogram("t_parallel_seconds");
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([c, h] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.001);
      }
    });
  for (auto& t : ts)
    t.join();
  CHECK(r.value("t_parallel_total") == 40000);
  CHECK(r.value("t_parallel_seconds") == 40000);
}

TEST_CASE("a lazy handle creates its series on first use, not before") {
  // A family with a lazy counter renders nothing until the counter is used, then the series with its count.
  registry r;
  squad::metrics::counter_family refusals{"t_lazy_total", "refusals", r};
  squad::metrics::lazy<squad::metrics::counter> missing{squad::metrics::resolver(refusals, {{"reason", "missing"}})};
  CHECK(r.render().find("t_lazy_total") == std::string::npos);
  missing.get().inc();
  missing.get().inc();
  CHECK(r.value("t_lazy_total", {{"reason", "missing"}}) == 2);
  CHECK(r.render().find("t_lazy_total{reason=\"missing\"} 2\n") != std::string::npos);
}

TEST_CASE("a table by label values resolves each set once and counts across threads") {
  // Label values known only at run time (an event type, a provider): each thread resolves a set once, and the counts
  // land in the one series per set that render() shows, with no update lost.
  registry r;
  squad::metrics::counter_family events{"t_events_total", "events", r};
  squad::metrics::by_labels<squad::metrics::counter_family> by_type{events, {"type", "provider"}};
  CHECK(r.render().find("t_events_total") == std::string::npos);
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t)
    ts.emplace_back([&by_type] {
      for (int i = 0; i < 1000; ++i) {
        by_type.get({"call.shed", "a"}).inc();
        by_type.get({i % 2 ? "call.cached" : "call.shed", "b"}).inc();
      }
    });
  for (auto& t : ts)
    t.join();
  CHECK(r.value("t_events_total", {{"type", "call.shed"}, {"provider", "a"}}) == 3000);
  CHECK(r.value("t_events_total", {{"type", "call.shed"}, {"provider", "b"}}) == 1500);
  CHECK(r.value("t_events_total", {{"type", "call.cached"}, {"provider", "b"}}) == 1500);
  // "ab" + "" and "a" + "b" are different label sets, not one key.
  by_type.get({"ab", ""}).inc();
  CHECK(r.value("t_events_total", {{"type", "a"}, {"provider", "b"}}) == 0);
  CHECK(r.render().find("t_events_total{type=\"call.shed\",provider=\"a\"} 3000\n") != std::string::npos);
}

TEST_CASE("a table made where an earlier one was gives its own handles, not the earlier one's") {
  // Two tables in turn at (likely) the same address, each over its own registry: the second counts in its registry.
  for (int round = 0; round < 2; ++round) {
    registry r;
    squad::metrics::counter_family f{"t_round_total", "rounds", r};
    squad::metrics::by_labels<squad::metrics::counter_family> t{f, {"k"}};
    t.get({"x"}).inc();
    CHECK(r.value("t_round_total", {{"k", "x"}}) == 1);
  }
}
