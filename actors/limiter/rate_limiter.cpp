#include "actors/limiter/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace squad {

namespace {

using nanos = std::chrono::nanoseconds;

steady_time later(steady_time a, steady_time b) {
  return a < b ? b : a;
}

} // namespace

limiter_settings limiter_settings_from(const limits_config& l) {
  limiter_settings s;
  s.requests = l.requests;
  s.per = l.per;
  s.burst = l.burst;
  s.concurrency = l.concurrency;
  s.min_interval = l.min_interval;
  s.tokens = l.tokens;
  s.per_day = l.per_day;
  s.window_margin = std::clamp(millis{l.per.count() / 100}, millis{5}, millis{1000});
  s.throttle_after = l.throttle.after;
  s.throttle_period = l.throttle.period;
  s.throttle_step = l.throttle.step;
  s.throttle_floor = l.throttle.floor;
  s.throttle_quiet = l.throttle.quiet;
  return s;
}

limiter_settings limiter_settings_from(const provider_config& p) {
  auto s = limiter_settings_from(p.limits);
  if (p.limits.expected_latency.count() > 0)
    s.hold_prior = p.limits.expected_latency;
  else if (p.kind == "sim")
    s.hold_prior = p.sim.latency + p.sim.jitter / 2 + p.sim.per_token * (p.sim.max_tokens / 2);
  else
    s.hold_prior = millis{1000};
  return s;
}

const char* to_string(limit_rule r) {
  switch (r) {
  case limit_rule::none:
    return "none";
  case limit_rule::pause:
    return "pause";
  case limit_rule::quota:
    return "quota";
  case limit_rule::bucket:
    return "bucket";
  case limit_rule::window:
    return "window";
  case limit_rule::interval:
    return "interval";
  case limit_rule::concurrency:
    return "concurrency";
  case limit_rule::tokens:
    return "tokens";
  case limit_rule::too_big:
    return "too_big";
  case limit_rule::day:
    return "day";
  }
  return "?";
}

rate_limiter::rate_limiter(limiter_settings s, steady_time now)
    : s_(s), bucket_(static_cast<double>(std::max<std::int64_t>(1, s.burst))), refilled_at_(now) {}

namespace {
std::int64_t requests_now(const limiter_settings& s, const std::optional<std::int64_t>& announced) {
  return announced ? std::min(s.requests, *announced) : s.requests;
}
} // namespace

double rate_limiter::effective_rate_per_s() const {
  return factor_ * static_cast<double>(requests_now(s_, announced_)) / std::chrono::duration<double>(s_.per).count();
}

std::int64_t rate_limiter::effective_window_cap() const {
  auto n = static_cast<double>(requests_now(s_, announced_));
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::floor(factor_ * n + 1e-9)));
}

std::int64_t rate_limiter::window_occupancy(steady_time now) {
  expire(now);
  return static_cast<std::int64_t>(window_log_.size());
}

void rate_limiter::expire(steady_time now) {
  auto span = nanos(s_.per) + nanos(s_.window_margin);
  // A pending entry whose send was never confirmed (its dispatcher died holding the grant) leaves the window
  // max_send_delay after it would have, rather than only when its permit is reclaimed minutes later.
  auto leaves = [&](const window_entry& e) {
    return e.at + span + (e.pending ? nanos(max_send_delay) : nanos::zero());
  };
  while (!window_log_.empty() && leaves(window_log_.front()) <= now)
    window_log_.pop_front();
  while (!token_log_.empty() && token_log_.front().at + nanos(s_.per) + nanos(s_.window_margin) <= now)
    token_log_.pop_front();
  for (auto it = permits_.begin(); it != permits_.end();) {
    if (it->second.started + nanos(s_.permit_ttl) <= now) {
      if (auto w = pending_entry(it->first, it->second.started); w != window_log_.end())
        confirm(w, now); // a lost call: count it as sent now
      it = permits_.erase(it);
      ++reclaimed_;
    } else {
      ++it;
    }
  }
  if (quota_left_ && quota_reset_ <= now)
    quota_left_.reset();
}

void rate_limiter::refill(steady_time now) {
  if (now <= refilled_at_)
    return;
  double cap = static_cast<double>(std::max<std::int64_t>(1, std::min(s_.burst, requests_now(s_, announced_))));
  bucket_ = std::min(cap, bucket_ + std::chrono::duration<double>(now - refilled_at_).count() * effective_rate_per_s());
  refilled_at_ = now;
}

nanos rate_limiter::bucket_wait() const {
  // The one test for "a token is there" (wait 0) and "when": with separate float expressions the two disagreed
  // by a nanosecond either way (a call refused at its own retry_at). Float error under a picosecond is forgiven.
  double ns = (1.0 - bucket_) / effective_rate_per_s() * 1e9;
  return nanos(static_cast<std::int64_t>(std::ceil(std::clamp(ns - 1e-3, 0.0, 1e18))));
}

std::int64_t rate_limiter::tokens_in_window() const {
  std::int64_t sum = 0;
  for (auto& e : token_log_)
    sum += e.tokens;
  return sum;
}

rate_limiter::verdict rate_limiter::check(steady_time now, std::int64_t tokens) {
  expire(now);
  refill(now);
  verdict v;
  steady_time at = now;
  limit_rule by = limit_rule::none;
  auto consider = [&](steady_time t, limit_rule r) {
    if (t > at) {
      at = t;
      by = r;
    }
  };
  if (s_.tokens > 0 && tokens > s_.tokens) {
    v.blocked_by = limit_rule::too_big; // can never run here
    return v;
  }
  consider(pause_until_, limit_rule::pause);
  if (quota_left_ && static_cast<std::int64_t>(admitted_seq_ - quota_seq_) >= *quota_left_)
    consider(quota_reset_, limit_rule::quota);
  if (auto wait = bucket_wait(); wait > nanos::zero())
    consider(now + wait, limit_rule::bucket);
  auto cap = static_cast<std::size_t>(effective_window_cap());
  if (window_log_.size() >= cap) { // a pending entry is about to be sent: it counts from now
    auto& e = window_log_[window_log_.size() - cap];
    consider((e.pending ? later(e.at, now) : e.at) + nanos(s_.per) + nanos(s_.window_margin), limit_rule::window);
  }
  if (last_send_ && s_.min_interval.count() > 0)
    consider(*last_send_ + nanos(s_.min_interval), limit_rule::interval);
  if (s_.per_day > 0 && day_count_ >= s_.per_day && day_start_ + std::chrono::hours{24} > now)
    consider(day_start_ + std::chrono::hours{24}, limit_rule::day);
  if (s_.tokens > 0) {
    std::int64_t used = tokens_in_window();
    for (auto& e : token_log_) { // the time when enough old reservations have left the window
      if (used + tokens <= s_.tokens)
        break;
      used -= e.tokens;
      consider(e.at + nanos(s_.per) + nanos(s_.window_margin), limit_rule::tokens);
    }
  }
  if (static_cast<std::int64_t>(permits_.size()) >= concurrency_now()) {
    steady_time first_back = never; // the first permit expected back: after the hold time, at worst at its expiry
    auto hold = expected_hold();
    for (auto& [id, p] : permits_) {
      auto expiry = p.started + nanos(s_.permit_ttl);
      auto back = hold > nanos::zero() ? std::min(expiry, later(p.started + hold, now + millis{1})) : expiry;
      first_back = std::min(first_back, back);
    }
    if (at == now) { // concurrency is the only rule in the way
      by = limit_rule::concurrency;
      at = first_back;
    }
    v.blocked_by = by == limit_rule::none ? limit_rule::concurrency : by;
    v.retry_at = later(at, now);
    return v;
  }
  v.blocked_by = by;
  v.retry_at = at;
  v.admitted = by == limit_rule::none;
  return v;
}

rate_limiter::verdict rate_limiter::probe(steady_time now, std::int64_t tokens) {
  return check(now, tokens);
}

rate_limiter::verdict rate_limiter::try_acquire(steady_time now, std::int64_t tokens) {
  auto v = check(now, tokens);
  if (!v.admitted)
    return v;
  bucket_ -= 1.0;
  v.permit = next_permit_++;
  window_log_.push_back({now, v.permit, s_.confirm_sends});
  last_send_ = now;
  auto together = static_cast<std::int64_t>(permits_.size()) + 1;
  permits_.emplace(v.permit,
                   permit_info{now, ++admitted_seq_, tokens, together, static_cast<std::int64_t>(window_log_.size())});
  if (s_.per_day > 0) {
    if (day_start_ == steady_time{} || day_start_ + std::chrono::hours{24} <= now)
      day_start_ = now, day_count_ = 0;
    ++day_count_;
  }
  if (s_.tokens > 0)
    token_log_.push_back({now, v.permit, tokens});
  return v;
}

rate_limiter rate_limiter::simulation(steady_time now) const {
  rate_limiter sim = *this;
  // What-ifs start now: a pending entry is taken as sent now (it is, give or take the messages in between).
  for (auto& e : sim.window_log_)
    if (e.pending)
      e = {later(e.at, now), e.permit, false};
  std::stable_sort(sim.window_log_.begin(), sim.window_log_.end(), [](auto& a, auto& b) { return a.at < b.at; });
  if (auto hold = expected_hold(); hold > nanos::zero()) { // permits come back after the expected hold time
    sim.s_.permit_ttl = std::chrono::duration_cast<millis>(hold) + millis{1};
  } else { // nothing known about hold times: concurrency is left out
    sim.permits_.clear();
    sim.s_.concurrency = std::numeric_limits<std::int64_t>::max();
    sim.learned_conc_ = 0;
  }
  return sim;
}

std::int64_t rate_limiter::headroom(steady_time now) const {
  if (s_.tokens > 0 || s_.min_interval.count() > 0 || pause_until_ > now || s_.per_day > 0)
    return 0; // rules the quick count does not model: the caller simulates
  auto span = nanos(s_.per) + nanos(s_.window_margin);
  std::int64_t live = 0; // entries after now - span, and pending ones (not sent yet: they stay)
  for (auto& e : window_log_)
    live += e.pending || e.at > now - span;
  auto n = effective_window_cap() - live;
  if (quota_left_ && quota_reset_ > now)
    n = std::min(n, *quota_left_ - static_cast<std::int64_t>(admitted_seq_ - quota_seq_));
  double cap = static_cast<double>(std::max<std::int64_t>(1, std::min(s_.burst, requests_now(s_, announced_))));
  double bucket =
      now > refilled_at_
          ? std::min(cap, bucket_ + std::chrono::duration<double>(now - refilled_at_).count() * effective_rate_per_s())
          : bucket_;
  n = std::min(n, static_cast<std::int64_t>(std::floor(bucket + 1e-9)));
  std::int64_t held = 0;
  for (auto& [id, p] : permits_)
    held += p.started + nanos(s_.permit_ttl) > now;
  n = std::min(n, concurrency_now() - held);
  return std::max<std::int64_t>(0, n);
}

steady_time rate_limiter::estimate(steady_time now, std::int64_t ahead, std::int64_t tokens) const {
  // The common case, without copying the limiter: every rule lets `ahead` + 1 calls through right now.
  if (headroom(now) > std::max<std::int64_t>(0, ahead))
    return now;
  rate_limiter sim = simulation(now);
  auto t = now;
  // The simulation walks admission by admission: its cost grows with `ahead`, and it runs on the routing path of
  // every call. Past `walk` admissions the limiter is in its steady state (one slot per 1/rate, or per
  // hold/concurrency when concurrency binds): the rest is extrapolated at that pace.
  constexpr std::int64_t walk = 128;
  auto n = std::min<std::int64_t>(ahead, walk);
  for (std::int64_t i = 0;;) {
    auto v = sim.check(t, tokens);
    if (v.admitted) {
      if (i == n)
        break;
      sim.try_acquire(t, tokens);
      ++i;
    } else if (v.retry_at == never || v.retry_at <= t || v.blocked_by == limit_rule::too_big) {
      return never;
    } else {
      t = v.retry_at;
    }
  }
  if (ahead <= n)
    return t;
  double slot_s = 1.0 / std::max(1e-9, effective_rate_per_s());
  if (auto hold = expected_hold(); hold > nanos::zero() && s_.concurrency < std::numeric_limits<std::int64_t>::max())
    slot_s = std::max(slot_s, std::chrono::duration<double>(hold).count() /
                                  static_cast<double>(std::max<std::int64_t>(1, concurrency_now())));
  auto rest = std::chrono::duration<double>(slot_s * static_cast<double>(ahead - n));
  if (rest > std::chrono::hours{24})
    return never;
  return t + std::chrono::duration_cast<nanos>(rest);
}

bool rate_limiter::release(std::uint64_t permit, steady_time now, std::int64_t actual_tokens, bool sent) {
  expire(now);
  auto it = permits_.find(permit);
  if (it == permits_.end())
    return false; // reclaimed: its entries were settled then
  auto since = it->second.started;
  if (actual_tokens >= 0) // the token log is in admission order: its entry is among the ones admitted since
    for (auto e = token_log_.rbegin(); e != token_log_.rend() && e->at >= since; ++e)
      if (e->permit == permit) {
        e->tokens = actual_tokens;
        break;
      }
  if (auto w = pending_entry(permit, since); w != window_log_.end())
    confirm(w, now); // ended: it went by now, or never will
  auto held = static_cast<double>(std::chrono::duration_cast<nanos>(now - it->second.started).count());
  if (sent)
    hold_ewma_ns_ = hold_ewma_ns_ == 0 ? held : 0.8 * hold_ewma_ns_ + 0.2 * held;
  permits_.erase(it);
  return true;
}

void rate_limiter::confirm(std::deque<window_entry>::iterator it, steady_time at) {
  it->at = later(it->at, at);
  it->pending = false;
  for (auto next = std::next(it); next != window_log_.end() && next->at < it->at; ++it, ++next)
    std::iter_swap(it, next); // keep time order: the entry moves back past earlier ones
}

void rate_limiter::sent(std::uint64_t permit, steady_time at) {
  auto it = permits_.find(permit);
  if (it == permits_.end())
    return;
  if (auto w = pending_entry(permit, it->second.started); w != window_log_.end())
    confirm(w, at);
}

std::deque<rate_limiter::window_entry>::iterator rate_limiter::pending_entry(std::uint64_t permit, steady_time since) {
  // The log is in time order, an entry never dated before its admission: from the newest back to `since`, a walk as
  // long as the calls in flight, not the window (a second's worth at thousands a second).
  for (auto w = window_log_.rbegin(); w != window_log_.rend() && w->at >= since; ++w)
    if (w->permit == permit)
      return w->pending ? std::prev(w.base()) : window_log_.end();
  return window_log_.end();
}

void rate_limiter::pause_until(steady_time until) {
  pause_until_ = later(pause_until_, until);
}

bool rate_limiter::on_signals(std::uint64_t permit, steady_time now, const limit_signals& s, bool rate_limited) {
  expire(now);
  auto it = permits_.find(permit);
  std::uint64_t seq = it != permits_.end() ? it->second.seq : admitted_seq_; // unknown: assume the latest
  bool changed = false;
  auto note = [&](std::string text) {
    change_note_ = std::move(text);
    changed = true;
  };
  if (s.limit_requests > 0 && s.limit_requests < requests_now(s_, announced_)) {
    refill(now); // the time so far earned at the old rate
    announced_ = s.limit_requests;
    bucket_ = std::min(bucket_, static_cast<double>(s.limit_requests));
    note("announces " + std::to_string(s.limit_requests) + " requests per window, below the configured " +
         std::to_string(s_.requests));
  } else if (announced_ && s.limit_requests > *announced_) {
    // It allows more again: believed once every announcement for a whole window said so (one reply of another
    // key or model does not undo what the others said), and never above the configured limit.
    if (!raise_since_)
      raise_since_ = now, raise_to_ = s.limit_requests;
    raise_to_ = std::min(raise_to_, s.limit_requests);
    if (now - *raise_since_ >= nanos(s_.per)) {
      refill(now);
      announced_ = raise_to_ < s_.requests ? std::optional<std::int64_t>{raise_to_} : std::nullopt;
      raise_since_.reset();
      note("announces " + std::to_string(raise_to_) + " requests per window again, for a whole window (configured " +
           std::to_string(s_.requests) + ")");
    }
  } else if (s.limit_requests > 0) {
    raise_since_.reset();
  }
  if (it != permits_.end()) {
    auto k = it->second.together;
    if (ok_together_at_ + std::chrono::minutes{1} <= now)
      ok_together_ = 0;
    if (!rate_limited) {
      if (k >= ok_together_)
        ok_together_ = k, ok_together_at_ = now;
    } else if (k > 1 && ok_together_ > 0 && ok_together_ < k && ok_together_ < concurrency_now() &&
               it->second.window_at * 2 < effective_window_cap() && s.remaining_requests != 0 &&
               s.remaining_tokens != 0) {
      // Fewer at once went through, this one was refused with nothing else near its limit: concurrency.
      learned_conc_ = ok_together_;
      learned_conc_at_ = now;
      note("allows " + std::to_string(learned_conc_) + " calls at once, below the configured " +
           std::to_string(s_.concurrency) + " (a 429 with " + std::to_string(k) + " in flight)");
    }
  }
  // The window's count, or the day's when fewer are left of it (Cerebras sends both).
  auto left = s.remaining_requests, reset_ms = s.reset_requests_ms;
  bool day =
      s.remaining_requests_day >= 0 && s.reset_requests_day_ms >= 0 && (left < 0 || s.remaining_requests_day < left);
  if (day)
    left = s.remaining_requests_day, reset_ms = s.reset_requests_day_ms;
  if (left >= 0 && reset_ms >= 0 && (!quota_left_ || seq >= quota_seq_)) {
    quota_left_ = left;
    quota_seq_ = seq;
    quota_reset_ = now + millis{reset_ms};
    // The reset names when the provider's window is empty again; its oldest entry (ours, as far as we know)
    // leaves sooner, and from then on the window rule knows as much as the quota does.
    if (!window_log_.empty() && !day) // (a day's count does not come back with our window)
      quota_reset_ =
          std::min(quota_reset_, later(window_log_.front().at, window_log_.front().pending ? now : steady_time{}) +
                                     nanos(s_.per) + nanos(s_.window_margin));
  }
  if (s.remaining_tokens == 0 && s.reset_tokens_ms >= 0)
    pause_until(now + millis{s.reset_tokens_ms});
  if (rate_limited) {
    pause_until(now + millis{s.retry_after_ms >= 0 ? s.retry_after_ms : 1000});
    last_429_ = now;
    recent_429_.push_back(now);
    while (!recent_429_.empty() && recent_429_.front() + nanos(s_.throttle_period) <= now)
      recent_429_.pop_front();
    if (static_cast<std::int64_t>(recent_429_.size()) >= s_.throttle_after && factor_ > s_.throttle_floor) {
      refill(now); // the time so far earned at the old rate
      factor_ = std::max(s_.throttle_floor, factor_ * (1.0 - s_.throttle_step));
      recent_429_.clear();
      last_throttle_change_ = now;
      char buf[120];
      std::snprintf(buf, sizeof buf, "throttled to %.0f%% of its rate (%.2f requests/s) after repeated 429s",
                    factor_ * 100, effective_rate_per_s());
      note(buf);
    }
  }
  return changed;
}

std::vector<bool> rate_limiter::feasible(steady_time now,
                                         const std::vector<std::pair<std::int64_t, steady_time>>& waiters) const {
  rate_limiter sim = simulation(now);
  std::vector<bool> out;
  auto t = now;
  for (auto& [tokens, deadline] : waiters) {
    auto u = t;
    bool ok = false;
    for (;;) {
      if (u > deadline)
        break;
      auto v = sim.check(u, tokens);
      if (v.admitted) {
        ok = true;
        break;
      }
      if (v.retry_at == never || v.retry_at <= u || v.blocked_by == limit_rule::too_big)
        break;
      u = v.retry_at;
    }
    out.push_back(ok);
    if (ok) { // it takes its slot; later waiters come after it
      sim.try_acquire(u, tokens);
      t = u;
    }
  }
  return out;
}

bool rate_limiter::maybe_restore(steady_time now) {
  bool changed = false;
  if (learned_conc_ > 0 && now - later(last_429_, learned_conc_at_) >= nanos(s_.throttle_quiet)) {
    learned_conc_at_ = now;
    if (++learned_conc_ >= s_.concurrency) {
      learned_conc_ = 0;
      change_note_ = "concurrency back to the configured " + std::to_string(s_.concurrency);
    } else {
      change_note_ = "concurrency recovers to " + std::to_string(learned_conc_) + " (configured " +
                     std::to_string(s_.concurrency) + ")";
    }
    changed = true;
  }
  if (factor_ >= 1.0)
    return changed;
  auto quiet_since = later(last_429_, last_throttle_change_);
  if (now - quiet_since < nanos(s_.throttle_quiet))
    return changed;
  refill(now); // the time so far earned at the old rate
  factor_ = std::min(1.0, factor_ / (1.0 - s_.throttle_step));
  if (factor_ > 0.999)
    factor_ = 1.0;
  last_throttle_change_ = now;
  char buf[120];
  std::snprintf(buf, sizeof buf, "rate restored to %.0f%% (%.2f requests/s)", factor_ * 100, effective_rate_per_s());
  change_note_ = buf;
  return true;
}

} // namespace squad
