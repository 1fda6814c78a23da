// The Prometheus text exposition we write ourselves: types, escaping, cumulative histogram buckets.
#include "runtime/metrics/registry.hpp"

#include <catch2/catch.hpp>

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
