#include "actors/budget/pressure.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace squad {

namespace {

// How a signal prints: "wait 12000ms", "queue 60", "429s 6/min", "open breakers 50%", "p95 70000ms".
enum class unit : std::uint8_t { ms, count, per_min, share };

struct reading {
  const char* name;
  unit u;
  double value;
  double threshold; // the level's entry threshold
};

std::string number(double v) {
  std::ostringstream out;
  out << std::setprecision(10) << v;
  return out.str();
}

std::string show(unit u, double v) {
  switch (u) {
  case unit::ms:
    return number(v) + "ms";
  case unit::count:
    return number(v);
  case unit::per_min:
    return number(v) + "/min";
  case unit::share:
    return number(v * 100) + "%";
  }
  return number(v);
}

// The five signals against `level`'s entry thresholds (level is elevated or critical).
std::array<reading, 5> readings(const pressure_signals& s, const pressure_settings& t, pressure_level level) {
  const bool crit = level == pressure_level::critical;
  return {{
      {"wait", unit::ms, static_cast<double>(s.wait_ms),
       static_cast<double>(crit ? t.critical_wait_ms : t.elevated_wait_ms)},
      {"queue", unit::count, static_cast<double>(s.queue_depth),
       static_cast<double>(crit ? t.critical_queue : t.elevated_queue)},
      {"429s", unit::per_min, s.rate_429_per_min, crit ? t.critical_429_per_min : t.elevated_429_per_min},
      {"open breakers", unit::share, s.open_breaker_share, crit ? t.critical_open_share : t.elevated_open_share},
      {"p95", unit::ms, static_cast<double>(s.p95_latency_ms),
       static_cast<double>(crit ? t.critical_p95_ms : t.elevated_p95_ms)},
  }};
}

// "wait 12000ms >= 10000ms; queue 60 >= 50" for every signal at or above `scale` x its threshold; empty if none.
// A NaN signal compares false everywhere, so it neither raises the level nor counts as calm (see is_calm).
std::string at_or_above(const std::array<reading, 5>& rs, double scale, const char* suffix) {
  std::string out;
  for (const auto& r : rs) {
    const double limit = scale * r.threshold;
    if (r.value >= limit) {
      if (!out.empty())
        out += "; ";
      out += std::string{r.name} + " " + show(r.u, r.value) + " >= " + show(r.u, limit) + suffix;
    }
  }
  return out;
}

bool reaches(const pressure_signals& s, const pressure_settings& t, pressure_level level) {
  return !at_or_above(readings(s, t, level), 1.0, "").empty();
}

// Every signal strictly below exit_ratio x `level`'s entry threshold.
bool is_calm(const pressure_signals& s, const pressure_settings& t, pressure_level level) {
  const auto rs = readings(s, t, level);
  return std::all_of(rs.begin(), rs.end(), [&](const reading& r) { return r.value < t.exit_ratio * r.threshold; });
}

pressure_level reached_level(const pressure_signals& s, const pressure_settings& t) {
  if (reaches(s, t, pressure_level::critical))
    return pressure_level::critical;
  if (reaches(s, t, pressure_level::elevated))
    return pressure_level::elevated;
  return pressure_level::normal;
}

pressure_level one_below(pressure_level l) {
  return l == pressure_level::critical ? pressure_level::elevated : pressure_level::normal;
}

std::int64_t whole_ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

} // namespace

const char* to_string(pressure_level l) {
  switch (l) {
  case pressure_level::normal:
    return "normal";
  case pressure_level::elevated:
    return "elevated";
  case pressure_level::critical:
    return "critical";
  }
  return "?";
}

pressure_gauge::pressure_gauge(pressure_settings s) : s_(s), why_("all signals below elevated thresholds") {}

pressure_level pressure_gauge::update(const pressure_signals& s, steady_time now) {
  const auto reached = reached_level(s, s_);
  if (reached > level_) {
    level_ = reached;
    calm_since_.reset();
  } else if (level_ != pressure_level::normal) {
    if (!is_calm(s, s_, level_)) {
      calm_since_.reset(); // a signal at or back above the exit threshold restarts the dwell
    } else {
      if (!calm_since_)
        calm_since_ = now;
      if (now - *calm_since_ >= s_.dwell) {
        level_ = one_below(level_);
        calm_since_.reset();
        // The next level's dwell starts now, never earlier: one level per dwell at most.
        if (level_ != pressure_level::normal && is_calm(s, s_, level_))
          calm_since_ = now;
      }
    }
  }

  // Explain the level as it now stands.
  const char* name = to_string(level_);
  if (level_ == pressure_level::normal) {
    why_ = "all signals below elevated thresholds";
  } else if (auto entry = at_or_above(readings(s, s_, level_), 1.0, ""); !entry.empty()) {
    why_ = entry;
  } else if (auto hot = at_or_above(readings(s, s_, level_), s_.exit_ratio, " (exit)"); !hot.empty()) {
    why_ = std::string{"holding "} + name + ": " + hot;
  } else if (calm_since_) {
    why_ = std::string{"holding "} + name + ": all signals below exit thresholds for " +
           std::to_string(whole_ms(now - *calm_since_)) + "ms of " + std::to_string(s_.dwell.count()) + "ms";
  } else {
    // Only reachable with a NaN signal: neither at a threshold nor below one.
    why_ = std::string{"holding "} + name + ": a signal is not a number";
  }
  return level_;
}

// -- shedding ------------------------------------------------------------------------------------------------------

const char* to_string(shed_action a) {
  switch (a) {
  case shed_action::call:
    return "call";
  case shed_action::cache:
    return "cache";
  case shed_action::skip:
    return "skip";
  }
  return "?";
}

shed_decision decide(priority_class p, pressure_level level, bool budget_left, bool cache_hit) {
  const std::string who = to_string(p);
  const std::string at = std::string{"(pressure "} + to_string(level) + ")";
  const auto budget_spent = [&] { return shed_decision{shed_action::skip, who + ": budget spent " + at}; };
  const auto cached = [&] { return shed_decision{shed_action::cache, who + ": cache hit"}; };
  const bool loaded = level >= pressure_level::elevated;

  switch (p) {
  case priority_class::p0:
    return {shed_action::call, "P0 always runs"};
  case priority_class::p1:
    if (cache_hit)
      return cached();
    if (budget_left)
      return {shed_action::call, "P1: an LLM call, waiting in line if needed"};
    return budget_spent();
  case priority_class::p2:
    if (cache_hit)
      return cached();
    if (!budget_left)
      return budget_spent();
    if (loaded)
      return {shed_action::skip, who + ": pressure " + to_string(level) + ": enrichment skipped"};
    return {shed_action::call, who + ": an LLM call " + at};
  case priority_class::p3:
    if (cache_hit)
      return cached();
    if (loaded)
      return {shed_action::skip, who + ": pressure " + to_string(level) + ": cosmetic step skipped"};
    if (!budget_left)
      return budget_spent();
    return {shed_action::call, who + ": an LLM call " + at};
  }
  return {shed_action::skip, who + ": unknown priority " + at};
}

// -- degradation ---------------------------------------------------------------------------------------------------

degradation degrade(const step_params& p, pressure_level level, const degrade_settings& s) {
  degradation d{p, {}, false};
  if (level == pressure_level::normal)
    return d;

  const std::string at = std::string{" (pressure "} + to_string(level) + ")";
  const bool crit = level == pressure_level::critical;

  // Scale down to no less than min_tokens; never raise a value that is already small.
  const double factor = crit ? s.critical_tokens : s.elevated_tokens;
  const auto scaled = static_cast<std::int64_t>(std::floor(static_cast<double>(p.max_tokens) * factor));
  d.params.max_tokens = std::min(p.max_tokens, std::max(s.min_tokens, scaled));
  if (d.params.max_tokens != p.max_tokens)
    d.changes.push_back("max_tokens " + std::to_string(p.max_tokens) + " -> " + std::to_string(d.params.max_tokens) +
                        at);

  if (crit) {
    if (p.temperature < 0 || p.temperature > s.critical_temperature) { // < 0: not set, the provider's default applies
      d.params.temperature = s.critical_temperature;
      d.changes.push_back("temperature " + (p.temperature < 0 ? std::string{"unset"} : number(p.temperature)) + " -> " +
                          number(d.params.temperature) + at);
    }
    if (!p.prefer_worker) {
      d.params.prefer_worker = true;
      d.changes.push_back("prefer_worker false -> true" + at);
    }
  }

  if (p.optional && s.drop_optional) {
    d.drop = true;
    d.changes.push_back("optional step dropped" + at);
  }
  return d;
}

} // namespace squad
