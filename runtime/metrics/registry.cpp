#include "runtime/metrics/registry.hpp"

#include <cmath>
#include <cstdio>

namespace squad::metrics {

registry& registry::global() {
  static registry r;
  return r;
}

std::vector<double> latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
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
    case kind::counter: return "counter";
    case kind::gauge: return "gauge";
    case kind::histogram: return "histogram";
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

registry::series& registry::row(family& f, const labels& l) {
  render_labels(l, scratch_); // reuses one buffer: no allocation once it has grown
  auto it = f.rows.find(scratch_);
  if (it == f.rows.end())
    it = f.rows.emplace(scratch_, series{}).first;
  return it->second;
}

registry::family& registry::get(std::string_view name, kind fallback) {
  auto it = families_.find(name);
  if (it == families_.end())
    it = families_.emplace(std::string(name), family{}).first;
  auto& f = it->second;
  if (!f.described) {
    f.type = fallback;
    if (fallback == kind::histogram && f.buckets.empty())
      f.buckets = latency_buckets();
  }
  return f;
}

void registry::describe(const std::string& name, kind k, std::string help, std::vector<double> buckets) {
  std::lock_guard<std::mutex> g{m_};
  auto& f = families_[name];
  f.type = k;
  f.help = std::move(help);
  f.described = true;
  if (k == kind::histogram)
    f.buckets = buckets.empty() ? latency_buckets() : std::move(buckets);
}

void registry::inc(std::string_view name, const labels& l, double by) {
  std::lock_guard<std::mutex> g{m_};
  row(get(name, kind::counter), l).value += by;
}

void registry::set(std::string_view name, const labels& l, double value) {
  std::lock_guard<std::mutex> g{m_};
  row(get(name, kind::gauge), l).value = value;
}

void registry::observe(std::string_view name, const labels& l, double value) {
  std::lock_guard<std::mutex> g{m_};
  auto& f = get(name, kind::histogram);
  auto& s = row(f, l);
  if (s.counts.empty())
    s.counts.assign(f.buckets.size() + 1, 0);
  std::size_t i = 0;
  while (i < f.buckets.size() && value > f.buckets[i])
    ++i;
  s.counts[i] += 1;
  s.value += value;
  s.count += 1;
}

double registry::value(std::string_view name, const labels& l) const {
  std::lock_guard<std::mutex> g{m_};
  auto f = families_.find(name);
  if (f == families_.end())
    return 0;
  auto r = f->second.rows.find(render_labels(l));
  return r == f->second.rows.end() ? 0 : (f->second.type == kind::histogram ? r->second.count : r->second.value);
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
      if (f.type != kind::histogram) {
        out += name + lbl + " " + number(s.value) + "\n";
        continue;
      }
      double cum = 0;
      for (std::size_t i = 0; i < f.buckets.size(); ++i) {
        cum += s.counts[i];
        out += name + "_bucket" + with_label(lbl, "le=\"" + number(f.buckets[i]) + "\"") + " " + number(cum) + "\n";
      }
      cum += s.counts.back();
      out += name + "_bucket" + with_label(lbl, "le=\"+Inf\"") + " " + number(cum) + "\n";
      out += name + "_sum" + lbl + " " + number(s.value) + "\n";
      out += name + "_count" + lbl + " " + number(s.count) + "\n";
    }
  }
  return out;
}

} // namespace squad::metrics
