#pragma once
// Process-wide metrics in the Prometheus text exposition format (version 0.0.4), written by us: prometheus-cpp is
// not packaged in Debian 12. Counters, gauges and histograms with labels, updated by actors and io threads alike.
//
// Two ways to update a series:
// - a handle (counter, gauge, histogram), resolved once per label set from a family declared next to the code that
//   updates it (counter_family and friends), at once or on first use (lazy): an update is then one or two relaxed
//   atomic operations, no lock, no lookup, no label vector. This is the way for hot paths.
// - by name (inc, set, observe): a lookup under the registry's mutex per update, for code that has not moved yet.
// Both reach the same series. A family is described once (type, help, histogram buckets); updating an undescribed
// family by name describes it as untyped-by-use. Label values are escaped (\\, \", \n). render() lists families in
// name order, each with HELP and TYPE, and histograms with cumulative _bucket{le=...}, _sum and _count.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace squad::metrics {

using labels = std::vector<std::pair<std::string, std::string>>;

enum class kind { counter, gauge, histogram };

/// One series' storage: stable for the process's life once created, updated with atomics.
struct series {
  std::atomic<double> value{0};                         ///< counter, gauge; histogram: the sum
  std::shared_ptr<const std::vector<double>> bounds;    ///< histogram: its upper bounds (+Inf implied)
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts; ///< histogram: per bucket (not cumulative), +Inf last
};

/// A counter series, resolved once. Default-constructed: unbound, updates do nothing. Trivially copyable, so it can
/// sit in a std::atomic (a table of handles filled lazily).
class counter {
public:
  counter() = default;
  void inc(double by = 1) const {
    if (s_)
      s_->value.fetch_add(by, std::memory_order_relaxed);
  }
  explicit operator bool() const { return s_ != nullptr; }

private:
  friend class registry;
  explicit counter(series* s) : s_(s) {}
  series* s_ = nullptr;
};

/// A gauge series, resolved once (unbound when default-constructed).
class gauge {
public:
  gauge() = default;
  void set(double v) const {
    if (s_)
      s_->value.store(v, std::memory_order_relaxed);
  }
  void add(double by) const {
    if (s_)
      s_->value.fetch_add(by, std::memory_order_relaxed);
  }
  explicit operator bool() const { return s_ != nullptr; }

private:
  friend class registry;
  explicit gauge(series* s) : s_(s) {}
  series* s_ = nullptr;
};

/// A histogram series, resolved once (unbound when default-constructed).
class histogram {
public:
  histogram() = default;
  void observe(double v) const;
  explicit operator bool() const { return s_ != nullptr; }

private:
  friend class registry;
  explicit histogram(series* s) : s_(s) {}
  series* s_ = nullptr;
};

class registry {
public:
  /// The process's registry.
  static registry& global();

  void describe(const std::string& name, kind k, std::string help, std::vector<double> buckets = {});

  /// Handles to one series of a family (created when absent). One lookup under the lock, here only.
  metrics::counter counter(std::string_view name, const labels& l = {});
  metrics::gauge gauge(std::string_view name, const labels& l = {});
  metrics::histogram histogram(std::string_view name, const labels& l = {});

  // Updates by name: a lookup under the lock each time (prefer handles on hot paths).
  void inc(std::string_view name, const labels& l = {}, double by = 1);
  void set(std::string_view name, const labels& l, double value);
  void observe(std::string_view name, const labels& l, double value);

  /// The value of a counter or gauge series, or a histogram's count (0 when absent), for tests.
  double value(std::string_view name, const labels& l = {}) const;

  std::string render() const;

private:
  struct family {
    kind type = kind::gauge;
    bool described = false;
    std::string help;
    std::shared_ptr<const std::vector<double>> buckets;
    std::map<std::string, series, std::less<>> rows; // rendered label set -> series (nodes never move)
  };
  static void render_labels(const labels& l, std::string& out);
  static std::string render_labels(const labels& l);
  family& get(std::string_view name, kind fallback); // under m_
  series& row(family& f, const labels& l);           // under m_

  mutable std::mutex m_;                                // guards the maps, not the values
  std::map<std::string, family, std::less<>> families_; // heterogeneous: lookups without a copy
  std::string scratch_;                                 // under m_: a label set being rendered
};

/// A counter family declared where it is updated: describes itself on construction; with() resolves a handle.
class counter_family {
public:
  counter_family(std::string name, std::string help, registry& r = registry::global());
  metrics::counter with(const labels& l = {}) const { return r_.counter(name_, l); }
  const std::string& name() const { return name_; }

private:
  std::string name_;
  registry& r_;
};

/// A gauge family declared where it is updated.
class gauge_family {
public:
  gauge_family(std::string name, std::string help, registry& r = registry::global());
  metrics::gauge with(const labels& l = {}) const { return r_.gauge(name_, l); }
  const std::string& name() const { return name_; }

private:
  std::string name_;
  registry& r_;
};

/// A histogram family declared where it is updated (buckets: latency_buckets() when empty).
class histogram_family {
public:
  histogram_family(std::string name, std::string help, std::vector<double> buckets = {},
                   registry& r = registry::global());
  metrics::histogram with(const labels& l = {}) const { return r_.histogram(name_, l); }
  const std::string& name() const { return name_; }

private:
  std::string name_;
  registry& r_;
};

/// A handle resolved on its first use, so that a series never updated stays out of the exposition (as with updates by
/// name); after that a use is one atomic load. Racing first uses may each resolve: they get the same series.
template <class Handle> class lazy {
public:
  explicit lazy(std::function<Handle()> resolve) : resolve_(std::move(resolve)) {}
  lazy(const lazy&) = delete;
  lazy& operator=(const lazy&) = delete;

  Handle get() const {
    auto h = h_.load(std::memory_order_acquire);
    if (!h) {
      h = resolve_();
      h_.store(h, std::memory_order_release);
    }
    return h;
  }

private:
  std::function<Handle()> resolve_;
  mutable std::atomic<Handle> h_{};
};

/// A counter of `family` with labels `l`, resolved on its first use.
inline std::function<counter()> resolver(const counter_family& family, labels l = {}) {
  return [&family, l = std::move(l)] { return family.with(l); };
}
/// A gauge of `family` with labels `l`, resolved on its first use.
inline std::function<gauge()> resolver(const gauge_family& family, labels l = {}) {
  return [&family, l = std::move(l)] { return family.with(l); };
}

/// A family's handles by the values of its labels (their names given once): each label set is resolved once per
/// thread, after which an update finds its handle in the calling thread's own small map (no lock, no label vector).
/// For families whose label values are only known at run time (an event type, a provider's name). Each table has an
/// id of its own, never reused, so a thread's maps never hand out a handle of a table (and registry) that is gone.
template <class Family> class by_labels {
public:
  using handle = decltype(std::declval<const Family&>().with());
  by_labels(const Family& family, std::vector<std::string> names)
      : family_(family), names_(std::move(names)), id_(next_id().fetch_add(1, std::memory_order_relaxed)) {}
  by_labels(const by_labels&) = delete;
  by_labels& operator=(const by_labels&) = delete;

  /// The handle for these label values, in the order of the names.
  handle get(std::initializer_list<std::string_view> values) const {
    thread_local std::string key;
    key.clear();
    for (auto v : values) { // length-prefixed: no two label sets share a key
      auto n = static_cast<std::uint32_t>(v.size());
      key.append(reinterpret_cast<const char*>(&n), sizeof n).append(v);
    }
    thread_local std::vector<std::unordered_map<std::string, handle>> tables; // by table id
    if (tables.size() <= id_)
      tables.resize(id_ + 1);
    auto& mine = tables[id_];
    if (auto it = mine.find(key); it != mine.end())
      return it->second;
    labels l;
    std::size_t i = 0;
    for (auto v : values)
      l.emplace_back(names_.at(i++), std::string(v));
    auto h = family_.with(l);
    mine.emplace(key, h);
    return h;
  }

private:
  static std::atomic<std::size_t>& next_id() {
    static std::atomic<std::size_t> id{0};
    return id;
  }
  const Family& family_;
  std::vector<std::string> names_;
  std::size_t id_;
};

/// Buckets for latencies in seconds, from 50 microseconds to 60 seconds.
std::vector<double> latency_buckets();

} // namespace squad::metrics
