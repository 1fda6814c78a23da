#include "runtime/metrics/registry.hpp"

#include <cmath>
#include <cstdio>

namespace squad::metrics {

registry& registry::global() {
  static registry r;
  return r;
}

std::vector<double> latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,     0.25,   0.5,     1,      2.5,   5,      10,    30,   60};
}

namespace {

std::string number(double v) {
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v))
    return "NaN";
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void escape_into(std::string_view v, std::string& out) {
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

const char* type_name(kind k) {
  switch (k) {
  case kind::counter:
    return "counter";
  case kind::gauge:
    return "gauge";
  case kind::histogram:
    return "histogram";
  }
  return "untyped";
}

// Joins a rendered label set with one more label (for le="...").
std::string with_label(const std::string& rendered, const std::string& extra) {
  if (rendered.empty())
    return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

} // namespace

void registry::render_labels(const labels& l, std::string& out) {
  out.clear();
  if (l.empty())
    return;
  out += '{';
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (i)
      out += ',';
    out += l[i].first;
    out += "=\"";
    escape_into(l[i].second, out);
    out += '"';
  }
  out += '}';
}

std::string registry::render_labels(const labels& l) {
  std::string out;
  render_labels(l, out);
  return out;
}

void histogram::observe(double v) const {
  if (!s_)
    return;
  auto& b = *s_->bounds;
  std::size_t i = 0;
  while (i < b.size() && v > b[i])
    ++i;
  s_->counts[i].fetch_add(1, std::memory_order_relaxed);
  s_->value.fetch_add(v, std::memory_order_relaxed);
}

series& registry::row(family& f, const labels& l) {
  render_labels(l, scratch_); // reuses one buffer: no allocation once it has grown
  auto it = f.rows.find(scratch_);
  if (it == f.rows.end())
    it = f.rows.try_emplace(scratch_).first;
  auto& s = it->second;
  if (f.type == kind::histogram && !s.counts) { // sized once; a later describe() does not resize a live series
    s.bounds = f.buckets;
    s.counts = std::make_unique<std::atomic<std::uint64_t>[]>(f.buckets->size() + 1);
  }
  return s;
}

registry::family& registry::get(std::string_view name, kind fallback) {
  auto it = families_.find(name);
  if (it == families_.end())
    it = families_.try_emplace(std::string(name)).first;
  auto& f = it->second;
  if (!f.described)
    f.type = fallback;
  if (f.type == kind::histogram && !f.buckets)
    f.buckets = std::make_shared<const std::vector<double>>(latency_buckets());
  return f;
}

void registry::describe(const std::string& name, kind k, std::string help, std::vector<double> buckets) {
  std::lock_guard<std::mutex> g{m_};
  auto& f = families_[name];
  f.type = k;
  f.help = std::move(help);
  f.described = true;
  if (k == kind::histogram)
    f.buckets = std::make_shared<const std::vector<double>>(buckets.empty() ? latency_buckets() : std::move(buckets));
}

counter registry::counter(std::string_view name, const labels& l) {
  std::lock_guard<std::mutex> g{m_};
  return metrics::counter{&row(get(name, kind::counter), l)};
}

gauge registry::gauge(std::string_view name, const labels& l) {
  std::lock_guard<std::mutex> g{m_};
  return metrics::gauge{&row(get(name, kind::gauge), l)};
}

histogram registry::histogram(std::string_view name, const labels& l) {
  std::lock_guard<std::mutex> g{m_};
  auto& f = get(name, kind::histogram);
  if (f.type != kind::histogram)
    return {}; // a counter or gauge of that name exists: no histogram handle to it
  return metrics::histogram{&row(f, l)};
}

void registry::inc(std::string_view name, const labels& l, double by) {
  counter(name, l).inc(by);
}

void registry::set(std::string_view name, const labels& l, double value) {
  gauge(name, l).set(value);
}

void registry::observe(std::string_view name, const labels& l, double value) {
  histogram(name, l).observe(value);
}

double registry::value(std::string_view name, const labels& l) const {
  std::lock_guard<std::mutex> g{m_};
  auto f = families_.find(name);
  if (f == families_.end())
    return 0;
  auto r = f->second.rows.find(render_labels(l));
  if (r == f->second.rows.end())
    return 0;
  auto& s = r->second;
  if (!s.counts)
    return s.value.load(std::memory_order_relaxed);
  double n = 0;
  for (std::size_t i = 0; i <= s.bounds->size(); ++i)
    n += static_cast<double>(s.counts[i].load(std::memory_order_relaxed));
  return n;
}

std::string registry::render() const {
  std::lock_guard<std::mutex> g{m_};
  std::string out;
  for (auto& [name, f] : families_) {
    if (f.rows.empty()) // nothing observed yet
      continue;
    out += "# HELP " + name + " " + (f.help.empty() ? name : f.help) + "\n";
    out += "# TYPE " + name + " " + type_name(f.type) + "\n";
    for (auto& [lbl, s] : f.rows) {
      if (!s.counts) {
        out += name + lbl + " " + number(s.value.load(std::memory_order_relaxed)) + "\n";
        continue;
      }
      // _count is the +Inf bucket as read here, so the two always agree while observations go on.
      double cum = 0;
      auto& bounds = *s.bounds;
      for (std::size_t i = 0; i < bounds.size(); ++i) {
        cum += static_cast<double>(s.counts[i].load(std::memory_order_relaxed));
        out += name + "_bucket" + with_label(lbl, "le=\"" + number(bounds[i]) + "\"") + " " + number(cum) + "\n";
      }
      cum += static_cast<double>(s.counts[bounds.size()].load(std::memory_order_relaxed));
      out += name + "_bucket" + with_label(lbl, "le=\"+Inf\"") + " " + number(cum) + "\n";
      out += name + "_sum" + lbl + " " + number(s.value.load(std::memory_order_relaxed)) + "\n";
      out += name + "_count" + lbl + " " + number(cum) + "\n";
    }
  }
  return out;
}

counter_family::counter_family(std::string name, std::string help, registry& r) : name_(std::move(name)), r_(r) {
  r_.describe(name_, kind::counter, std::move(help));
}

gauge_family::gauge_family(std::string name, std::string help, registry& r) : name_(std::move(name)), r_(r) {
  r_.describe(name_, kind::gauge, std::move(help));
}

histogram_family::histogram_family(std::string name, std::string help, std::vector<double> buckets, registry& r)
    : name_(std::move(name)), r_(r) {
  r_.describe(name_, kind::histogram, std::move(help), std::move(buckets));
}

} // namespace squad::metrics
