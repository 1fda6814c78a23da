#pragma once
// Process-wide metrics in the Prometheus text exposition format (version 0.0.4), written by us: prometheus-cpp is
// not packaged in Debian 12. Counters, gauges and histograms with labels; every update is a short critical
// section, so actors and io threads update them directly (fire-and-forget, off the answer's path).
//
// A family is described once (type, help, histogram buckets); updating an undescribed family describes it as
// untyped. Label values are escaped (\\, \", \n). render() lists families in name order, each with HELP and TYPE,
// and histograms with cumulative _bucket{le=...}, _sum and _count.
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace squad::metrics {

using labels = std::vector<std::pair<std::string, std::string>>;

enum class kind { counter, gauge, histogram };

class registry {
public:
  /// The process's registry.
  static registry& global();

  void describe(const std::string& name, kind k, std::string help, std::vector<double> buckets = {});

  void inc(std::string_view name, const labels& l = {}, double by = 1);
  void set(std::string_view name, const labels& l, double value);
  void observe(std::string_view name, const labels& l, double value);

  /// The value of a counter or gauge series (0 when absent), for tests.
  double value(std::string_view name, const labels& l = {}) const;

  std::string render() const;

private:
  struct series {
    double value = 0;               // counter, gauge; histogram: sum
    std::vector<double> counts;     // histogram: per bucket (not cumulative), +Inf last
    double count = 0;               // histogram
  };
  struct family {
    kind type = kind::gauge;
    bool described = false;
    std::string help;
    std::vector<double> buckets;
    std::map<std::string, series, std::less<>> rows; // rendered label set -> series
  };
  static void render_labels(const labels& l, std::string& out);
  static std::string render_labels(const labels& l);
  family& get(std::string_view name, kind fallback);
  series& row(family& f, const labels& l); // under m_

  mutable std::mutex m_;
  std::map<std::string, family, std::less<>> families_; // heterogeneous: updates look up without a copy
  std::string scratch_;                                  // under m_: a label set being rendered
};

/// Buckets for latencies in seconds, from 50 microseconds to 60 seconds.
std::vector<double> latency_buckets();

} // namespace squad::metrics
