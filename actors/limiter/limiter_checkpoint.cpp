// rate_limiter's checkpoint() and restore(), the checkpoint's JSON, and limiter_memory (limiter_checkpoint.hpp).
#include "actors/limiter/rate_limiter.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace squad {

namespace {

using nanos = std::chrono::nanoseconds;
using json = nlohmann::json;

constexpr int checkpoint_version = 1;

steady_time later(steady_time a, steady_time b) {
  return a < b ? b : a;
}

// Times in a list as gaps: the first is its age at saved_ms, each next one the gap after the one before (a full
// window of thousands of entries is then mostly one- or two-digit numbers). The list is in time order.
json gaps_of(std::int64_t saved_ms, const std::vector<std::int64_t>& times) {
  json out = json::array();
  std::int64_t prev = saved_ms;
  for (std::size_t i = 0; i < times.size(); ++i) {
    out.push_back(i == 0 ? saved_ms - times[i] : times[i] - prev);
    prev = times[i];
  }
  return out;
}

std::vector<std::int64_t> times_of(std::int64_t saved_ms, const json& gaps) {
  std::vector<std::int64_t> out;
  std::int64_t t = saved_ms;
  for (std::size_t i = 0; i < gaps.size(); ++i) {
    auto g = gaps[i].get<std::int64_t>();
    if (g < 0)
      throw std::invalid_argument("a negative gap");
    t = i == 0 ? saved_ms - g : t + g;
    out.push_back(t);
  }
  return out;
}

std::string utc(std::int64_t unix_ms) {
  auto secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

} // namespace

limiter_checkpoint rate_limiter::checkpoint(steady_time now, std::int64_t now_ms) const {
  // Rounded up to the next millisecond: a time read back is never earlier than the one taken (later is stricter for
  // every field: an entry leaves the window later, a pause or a quiet period ends later).
  auto wall = [&](steady_time t) { return now_ms + std::chrono::ceil<millis>(t - now).count(); };
  auto set = [&](steady_time t) { return t == steady_time{} ? std::int64_t{0} : wall(t); };
  limiter_checkpoint cp;
  cp.saved_ms = now_ms;
  cp.requests = s_.requests;
  cp.per_ms = s_.per.count();
  auto span = nanos(s_.per) + nanos(s_.window_margin);
  for (auto& e : window_log_) // what expire() would keep; a pending entry goes at the earliest from now
    if (e.at + span + (e.pending ? nanos(max_send_delay) : nanos::zero()) > now)
      cp.window.push_back(wall(e.pending ? later(e.at, now) : e.at));
  std::sort(cp.window.begin(), cp.window.end());
  for (auto& e : token_log_)
    if (e.at + span > now)
      cp.tokens.emplace_back(wall(e.at), e.tokens);
  if (pause_until_ > now)
    cp.paused_until_ms = wall(pause_until_);
  cp.factor = factor_;
  for (auto t : recent_429_)
    if (t + nanos(s_.throttle_period) > now)
      cp.recent_429_ms.push_back(wall(t));
  cp.last_429_ms = set(last_429_);
  cp.last_throttle_change_ms = set(last_throttle_change_);
  if (learned_conc_ > 0)
    cp.learned_concurrency = learned_conc_, cp.learned_at_ms = set(learned_conc_at_);
  cp.announced_limit = announced_.value_or(0);
  if (s_.per_day > 0 && day_start_ != steady_time{} && day_start_ + std::chrono::hours{24} > now)
    cp.day_count = day_count_, cp.day_start_ms = wall(day_start_);
  if (quota_left_ && quota_reset_ > now) {
    cp.quota_left = std::max<std::int64_t>(0, *quota_left_ - static_cast<std::int64_t>(admitted_seq_ - quota_seq_));
    cp.quota_reset_ms = wall(quota_reset_);
  }
  auto requests = announced_ ? std::min(s_.requests, *announced_) : s_.requests;
  double cap = static_cast<double>(std::max<std::int64_t>(1, std::min(s_.burst, requests)));
  cp.bucket =
      now > refilled_at_
          ? std::min(cap, bucket_ + std::chrono::duration<double>(now - refilled_at_).count() * effective_rate_per_s())
          : bucket_;
  cp.hold_ns = hold_ewma_ns_;
  return cp;
}

limiter_restore_report rate_limiter::restore(const limiter_checkpoint& cp, steady_time now, std::int64_t now_ms) {
  auto steady = [&](std::int64_t ms) { return now + millis{ms - now_ms}; };
  // A past event is never dated after now: a wall clock set back between the two processes cannot leave an entry in
  // the window for longer than its whole span from now.
  auto past = [&](std::int64_t ms) { return std::min(now, steady(ms)); };
  limiter_restore_report r;
  r.age_ms = now_ms - cp.saved_ms;
  r.limits_changed = cp.requests > 0 && (cp.requests != s_.requests || cp.per_ms != s_.per.count());
  auto span = nanos(s_.per) + nanos(s_.window_margin);
  steady_time newest{};
  bool any = false;
  for (auto ms : cp.window) {
    auto t = past(ms);
    if (t + span <= now) {
      ++r.stale;
      continue;
    }
    window_log_.push_back({t, 0, false}); // permit 0: no call of this process holds it
    newest = any ? later(newest, t) : t;
    any = true;
    ++r.in_window;
  }
  std::stable_sort(window_log_.begin(), window_log_.end(), [](auto& a, auto& b) { return a.at < b.at; });
  if (any)
    last_send_ = last_send_ ? later(*last_send_, newest) : newest;
  if (s_.tokens > 0) {
    for (auto& [ms, n] : cp.tokens)
      if (auto t = past(ms); t + span > now)
        token_log_.push_back({t, 0, n});
    std::stable_sort(token_log_.begin(), token_log_.end(), [](auto& a, auto& b) { return a.at < b.at; });
  }
  if (cp.paused_until_ms > 0)
    pause_until(steady(cp.paused_until_ms));
  refill(now); // what the bucket earned so far, at the rate before the restore
  if (auto f = std::max(s_.throttle_floor, cp.factor); f < factor_ && f > 0)
    factor_ = f; // the configured floor bounds it
  for (auto ms : cp.recent_429_ms)
    if (auto t = past(ms); t + nanos(s_.throttle_period) > now)
      recent_429_.push_back(t);
  std::sort(recent_429_.begin(), recent_429_.end());
  if (cp.last_429_ms > 0)
    last_429_ = later(last_429_, past(cp.last_429_ms));
  if (cp.last_throttle_change_ms > 0)
    last_throttle_change_ = later(last_throttle_change_, past(cp.last_throttle_change_ms));
  if (cp.learned_concurrency > 0 && cp.learned_concurrency < concurrency_now()) {
    learned_conc_ = cp.learned_concurrency;
    learned_conc_at_ = later(learned_conc_at_, past(cp.learned_at_ms));
  }
  if (cp.announced_limit > 0 && cp.announced_limit < (announced_ ? std::min(s_.requests, *announced_) : s_.requests)) {
    announced_ = cp.announced_limit;
    bucket_ = std::min(bucket_, static_cast<double>(cp.announced_limit));
  }
  if (s_.per_day > 0 && cp.day_count > 0 && cp.day_start_ms > 0) {
    auto start = past(cp.day_start_ms);
    if (start + std::chrono::hours{24} > now) {
      if (day_start_ == steady_time{} || day_start_ + std::chrono::hours{24} <= now)
        day_start_ = start, day_count_ = cp.day_count;
      else // both count: the larger count, over the window that ends later
        day_start_ = later(day_start_, start), day_count_ = std::max(day_count_, cp.day_count);
    }
  }
  if (cp.quota_left >= 0 && cp.quota_reset_ms > 0)
    if (auto reset = steady(cp.quota_reset_ms); reset > now) {
      auto left_now = quota_left_ && quota_reset_ > now
                          ? *quota_left_ - static_cast<std::int64_t>(admitted_seq_ - quota_seq_)
                          : std::numeric_limits<std::int64_t>::max();
      if (cp.quota_left < left_now) {
        quota_left_ = cp.quota_left;
        quota_seq_ = admitted_seq_; // counted from the admissions after this one
        quota_reset_ = reset;
      }
    }
  if (cp.bucket >= 0) { // what it held then, refilled since at the (restored) rate
    double cap = static_cast<double>(std::max<std::int64_t>(1, std::min(s_.burst, s_.requests)));
    auto since = now - past(cp.saved_ms);
    double level = std::min(cap, cp.bucket + std::chrono::duration<double>(since).count() * effective_rate_per_s());
    bucket_ = std::min(bucket_, level);
  }
  if (hold_ewma_ns_ == 0 && cp.hold_ns > 0)
    hold_ewma_ns_ = cp.hold_ns;
  if (pause_until_ > now) {
    r.paused_ms = std::chrono::ceil<millis>(pause_until_ - now).count();
    r.paused_until_ms = now_ms + r.paused_ms;
  }
  r.factor = factor_;
  r.concurrency = concurrency_now();
  r.day_used = day_used(now);
  return r;
}

std::string limiter_restore_report::describe(const std::string& domain, std::int64_t requests,
                                             std::int64_t per_ms) const {
  char age[48];
  std::snprintf(age, sizeof age, "%.1fs", static_cast<double>(age_ms) / 1000.0);
  std::string out = "restored limiter state for " + domain + ": " + std::to_string(in_window) + " in window";
  if (paused_ms > 0) {
    char left[48];
    std::snprintf(left, sizeof left, "%.1fs", static_cast<double>(paused_ms) / 1000.0);
    out += ", paused until " + utc(paused_until_ms) + " (" + left + ")";
  } else {
    out += ", not paused";
  }
  if (factor < 1.0) {
    char f[48];
    std::snprintf(f, sizeof f, ", throttled to %.0f%%", factor * 100);
    out += f;
  }
  out += ", concurrency " + std::to_string(concurrency);
  if (day_used > 0)
    out += ", " + std::to_string(day_used) + " today";
  out += " (checkpoint " + std::string(age) + " old";
  if (stale > 0)
    out += "; " + std::to_string(stale) + " older entries dropped";
  if (limits_changed)
    out += "; taken under other limits: the configured " + std::to_string(requests) + " per " + std::to_string(per_ms) +
           "ms apply";
  return out + ")";
}

std::string to_json(const limiter_checkpoint& cp) {
  std::vector<std::int64_t> token_times;
  json token_counts = json::array();
  for (auto& [t, n] : cp.tokens)
    token_times.push_back(t), token_counts.push_back(n);
  json j{{"v", checkpoint_version},
         {"saved_ms", cp.saved_ms},
         {"requests", cp.requests},
         {"per_ms", cp.per_ms},
         {"window", gaps_of(cp.saved_ms, cp.window)},
         {"token_times", gaps_of(cp.saved_ms, token_times)},
         {"token_counts", token_counts},
         {"paused_until_ms", cp.paused_until_ms},
         {"factor", cp.factor},
         {"recent_429", gaps_of(cp.saved_ms, cp.recent_429_ms)},
         {"last_429_ms", cp.last_429_ms},
         {"last_throttle_change_ms", cp.last_throttle_change_ms},
         {"learned_concurrency", cp.learned_concurrency},
         {"learned_at_ms", cp.learned_at_ms},
         {"announced_limit", cp.announced_limit},
         {"day_count", cp.day_count},
         {"day_start_ms", cp.day_start_ms},
         {"quota_left", cp.quota_left},
         {"quota_reset_ms", cp.quota_reset_ms},
         {"bucket", cp.bucket},
         {"hold_ns", cp.hold_ns}};
  return j.dump();
}

std::optional<limiter_checkpoint> limiter_checkpoint_from_json(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object())
    return std::nullopt;
  try {
    if (j.value("v", 0) != checkpoint_version)
      return std::nullopt;
    limiter_checkpoint cp;
    cp.saved_ms = j.at("saved_ms").get<std::int64_t>();
    cp.requests = j.value("requests", std::int64_t{0});
    cp.per_ms = j.value("per_ms", std::int64_t{0});
    cp.window = times_of(cp.saved_ms, j.at("window"));
    auto token_times = times_of(cp.saved_ms, j.value("token_times", json::array()));
    auto token_counts = j.value("token_counts", json::array());
    if (token_counts.size() != token_times.size())
      return std::nullopt;
    for (std::size_t i = 0; i < token_times.size(); ++i)
      cp.tokens.emplace_back(token_times[i], token_counts[i].get<std::int64_t>());
    cp.paused_until_ms = j.value("paused_until_ms", std::int64_t{0});
    cp.factor = j.value("factor", 1.0);
    cp.recent_429_ms = times_of(cp.saved_ms, j.value("recent_429", json::array()));
    cp.last_429_ms = j.value("last_429_ms", std::int64_t{0});
    cp.last_throttle_change_ms = j.value("last_throttle_change_ms", std::int64_t{0});
    cp.learned_concurrency = j.value("learned_concurrency", std::int64_t{0});
    cp.learned_at_ms = j.value("learned_at_ms", std::int64_t{0});
    cp.announced_limit = j.value("announced_limit", std::int64_t{0});
    cp.day_count = j.value("day_count", std::int64_t{0});
    cp.day_start_ms = j.value("day_start_ms", std::int64_t{0});
    cp.quota_left = j.value("quota_left", std::int64_t{-1});
    cp.quota_reset_ms = j.value("quota_reset_ms", std::int64_t{0});
    cp.bucket = j.value("bucket", -1.0);
    cp.hold_ns = j.value("hold_ns", 0.0);
    if (!std::isfinite(cp.factor) || !std::isfinite(cp.bucket) || !std::isfinite(cp.hold_ns))
      return std::nullopt;
    return cp;
  } catch (const std::exception&) { // a field of the wrong type, a negative gap
    return std::nullopt;
  }
}

limiter_memory::limiter_memory() : limiter_memory(options{}) {}

limiter_memory::limiter_memory(options o) : o_(std::move(o)) {
  if (!o_.wall_ms)
    o_.wall_ms = [] {
      return std::chrono::duration_cast<millis>(std::chrono::system_clock::now().time_since_epoch()).count();
    };
  if (!o_.log)
    o_.log = [](std::string line) { std::cout << "squad: " << line << std::endl; };
}

void limiter_memory::seed(const std::string& domain, limiter_checkpoint cp) {
  std::lock_guard<std::mutex> g{m_};
  latest_[domain] = std::move(cp);
}

std::optional<limiter_checkpoint> limiter_memory::latest(const std::string& domain) const {
  std::lock_guard<std::mutex> g{m_};
  auto it = latest_.find(domain);
  if (it == latest_.end())
    return std::nullopt;
  return it->second;
}

void limiter_memory::save(const std::string& domain, limiter_checkpoint cp) {
  sink to;
  {
    std::lock_guard<std::mutex> g{m_};
    if (sink_)
      to = sink_;
    else
      unsent_.insert(domain);
    latest_[domain] = cp;
  }
  if (to)
    to(domain, cp);
}

void limiter_memory::set_sink(sink s) {
  std::vector<std::pair<std::string, limiter_checkpoint>> pending;
  {
    std::lock_guard<std::mutex> g{m_};
    sink_ = s;
    if (sink_)
      for (auto& d : unsent_)
        pending.emplace_back(d, latest_.at(d));
    if (sink_)
      unsent_.clear();
  }
  for (auto& [d, cp] : pending)
    s(d, cp);
}

std::int64_t limiter_memory::wall_ms() const {
  return o_.wall_ms();
}

void limiter_memory::log(std::string line) const {
  o_.log(std::move(line));
}

} // namespace squad
