#include "actors/limiter/limiter.hpp"
#include "actors/registry/directory.hpp"
#include "actors/stray_errors.hpp"
#include "runtime/metrics/registry.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <map>

namespace squad {

namespace {

const metrics::counter_family checkpoints_family{
    "squad_limiter_checkpoints_total",
    "Checkpoints of a limiter's state (window log, pause, learned limits) handed to the store, by limits domain"};

struct waiter {
  caf::response_promise rp;
  std::int64_t tokens;
  steady_time queued_at;
  steady_time deadline;
};

struct limiter_state {
  std::string provider;
  std::optional<rate_limiter> limiter;
  std::map<std::pair<std::uint8_t, std::uint64_t>, waiter> queue; // (priority, arrival) -> waiter
  std::uint64_t arrivals = 0;
  std::optional<steady_time> tick_at; // the earliest wake-up already scheduled
  std::uint8_t breaker = 0;
  steady_time breaker_open_until{};
  std::uint64_t breaker_generation = 0;
  bool breaker_known = true; // false until a restarted limiter hears from its breaker: no admission on the fast path
  std::int64_t granted = 0, refused = 0, throttle_changes = 0;
  std::shared_ptr<limiter_memory> memory; // null: nothing is saved
  bool dirty = false;                     // changed since the last checkpoint
  bool save_armed = false;                // a (save) is scheduled
  metrics::counter checkpoints;
  static inline const char* name = "squad.limiter";
};

using limiter_self = limiter_actor::stateful_pointer<limiter_state>;

std::int64_t ms_waited(steady_time from, steady_time to) {
  return std::chrono::duration_cast<millis>(to - from).count();
}

std::int64_t ms_until(steady_time from, steady_time to) {
  if (to <= from)
    return 0;
  if (to == rate_limiter::never)
    return -1;
  return std::chrono::ceil<millis>(to - from).count();
}

// The state changed: a checkpoint follows within the memory's interval. One flag and, once per interval, a timer:
// no copy, no JSON on an admission.
void note_change(limiter_self self) {
  auto& st = self->state;
  if (!st.memory)
    return;
  st.dirty = true;
  if (st.save_armed)
    return;
  st.save_armed = true;
  self->delayed_send(self, st.memory->interval(), atoms::save_v);
}

void save(limiter_self self) {
  auto& st = self->state;
  if (!st.memory || !st.dirty)
    return;
  st.dirty = false;
  st.memory->save(st.provider, st.limiter->checkpoint(self->clock().now(), st.memory->wall_ms()));
  st.checkpoints.inc();
}

void schedule(limiter_self self, steady_time at) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (at == rate_limiter::never || (st.tick_at && *st.tick_at <= at && *st.tick_at > now))
    return;
  st.tick_at = at;
  self->delayed_send(self, at > now ? at - now : caf::timespan{0}, atoms::tick_v);
}

// Refuses queued waiters that can no longer be admitted by their queue deadline (the limiter's view changed,
// or higher priorities arrived), so their callers can go elsewhere now rather than at the deadline.
void reassess(limiter_self self) {
  auto& st = self->state;
  if (st.queue.empty())
    return;
  auto now = self->clock().now();
  std::vector<std::pair<std::int64_t, steady_time>> list;
  for (auto& [key, w] : st.queue)
    list.emplace_back(w.tokens, w.deadline);
  auto ok = st.limiter->feasible(now, list);
  std::size_t k = 0;
  for (auto it = st.queue.begin(); it != st.queue.end(); ++k) {
    if (ok[k]) {
      ++it;
      continue;
    }
    limit_grant g;
    auto v = st.limiter->estimate(now, static_cast<std::int64_t>(k), it->second.tokens);
    g.rule = "reassessed";
    g.wait_ms = std::max<std::int64_t>(1, ms_until(now, v));
    g.waited_ms = ms_waited(it->second.queued_at, now);
    g.breaker = st.breaker;
    it->second.rp.deliver(g);
    ++st.refused;
    it = st.queue.erase(it);
  }
}

// Admits waiters in priority order while the limiter allows; refuses those past their queue deadline. Admission
// comes first: a slot due at a waiter's deadline is its (the acquire check and feasible() count it in time), and
// queue_wait 0 on a free limiter is a grant; refusing expired waiters first turned both into "retry in 1ms".
void pump(limiter_self self) {
  auto& st = self->state;
  auto now = self->clock().now();
  st.tick_at.reset();
  auto refuse_expired = [&](auto it) {
    auto v = st.limiter->probe(now, it->second.tokens);
    limit_grant g;
    g.rule = to_string(v.blocked_by);
    g.wait_ms = std::max<std::int64_t>(1, ms_until(now, v.retry_at));
    g.waited_ms = ms_waited(it->second.queued_at, now);
    g.breaker = st.breaker;
    it->second.rp.deliver(g);
    ++st.refused;
    return st.queue.erase(it);
  };
  while (!st.queue.empty()) {
    auto it = st.queue.begin();
    auto v = st.limiter->try_acquire(now, it->second.tokens);
    if (!v.admitted) {
      if (v.blocked_by == limit_rule::too_big) {
        limit_grant g;
        g.rule = to_string(v.blocked_by);
        g.wait_ms = -1;
        it->second.rp.deliver(g);
        ++st.refused;
        st.queue.erase(it);
        continue;
      }
      if (it->second.deadline <= now) { // the next in line may still go now
        refuse_expired(it);
        continue;
      }
      // Concurrency frees on a release (which pumps); the tick then only reclaims a permit past its expiry.
      schedule(self, v.blocked_by == limit_rule::concurrency ? now + st.limiter->settings().permit_ttl : v.retry_at);
      break;
    }
    limit_grant g;
    g.granted = true;
    g.permit = v.permit;
    g.waited_ms = ms_waited(it->second.queued_at, now);
    g.breaker = st.breaker;
    it->second.rp.deliver(g);
    ++st.granted;
    st.queue.erase(it);
    note_change(self);
  }
  for (auto it = st.queue.begin(); it != st.queue.end();) // expired waiters behind a blocked head
    it = it->second.deadline <= now ? refuse_expired(it) : std::next(it);
  steady_time first_deadline = rate_limiter::never;
  for (auto& [key, w] : st.queue)
    first_deadline = std::min(first_deadline, w.deadline);
  schedule(self, first_deadline);
  if (st.limiter->factor() < 1.0) // a throttled limiter restores itself after a quiet period
    schedule(self, now + st.limiter->settings().throttle_quiet);
}

// The estimated wait of a call of class `priority` with `ahead` calls going first (the query answer).
limit_grant estimate(limiter_self self, std::int64_t tokens, std::int64_t ahead, std::uint8_t priority) {
  auto& st = self->state;
  auto now = self->clock().now();
  auto v = st.limiter->probe(now, tokens);
  std::int64_t before = 0; // waiters served before a call of `priority` (the same class or higher)
  for (auto& [key, w] : st.queue)
    before += key.first <= priority;
  auto at = st.limiter->estimate(now, std::max(ahead, before), tokens);
  limit_grant g;
  g.granted = v.admitted && st.queue.empty() && ahead == 0;
  g.rule = to_string(v.blocked_by);
  g.wait_ms = ms_until(now, at);
  if (v.blocked_by == limit_rule::concurrency && g.wait_ms == 0) // a release frees it: guess one mean gap
    g.wait_ms = static_cast<std::int64_t>(1000.0 / std::max(1e-9, st.limiter->effective_rate_per_s()));
  g.breaker = st.breaker;
  g.slot_ms = static_cast<std::int64_t>(1000.0 / std::max(1e-9, st.limiter->effective_rate_per_s()));
  // Concurrency bounds throughput too: `concurrency` calls per mean hold time.
  auto conc = std::max<std::int64_t>(1, st.limiter->concurrency_now());
  auto measured_ms = std::chrono::duration<double, std::milli>(st.limiter->mean_hold()).count();
  g.sure_slot_ms = std::max(g.slot_ms, static_cast<std::int64_t>(measured_ms / static_cast<double>(conc)));
  auto hold_ms = std::chrono::duration<double, std::milli>(st.limiter->expected_hold()).count();
  if (hold_ms > 0) {
    g.slot_ms = std::max(g.slot_ms, static_cast<std::int64_t>(hold_ms / static_cast<double>(conc)));
    auto waiting = std::max(ahead, before);
    auto over = waiting + st.limiter->in_flight() + 1 - conc; // calls that must wait for a permit first
    if (g.wait_ms >= 0 && over > 0)
      g.wait_ms = std::max(g.wait_ms, static_cast<std::int64_t>(
                                          std::ceil(static_cast<double>(over) / static_cast<double>(conc)) * hold_ms));
  }
  if (st.breaker == static_cast<std::uint8_t>(breaker_phase::open)) {
    if (now >= st.breaker_open_until) // the cooldown is over: the breaker lets a probe through when asked
      g.breaker = static_cast<std::uint8_t>(breaker_phase::half_open);
    else if (g.wait_ms >= 0)
      g.wait_ms = std::max(g.wait_ms, ms_until(now, st.breaker_open_until));
  }
  return g;
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): CAF passes a function actor's arguments by value
limiter_actor::behavior_type limiter(limiter_self self, provider_config cfg, bool confirm_sends,
                                     std::shared_ptr<directory> dir, std::shared_ptr<limiter_memory> memory) {
  survive_stray_errors(self, "limiter");
  self->state.provider = cfg.name;
  if (dir) { // a restarted limiter asks its breaker for the phase; a first start hears from the breaker's own start
    self->state.breaker_known = false;
    if (auto* h = dir->get()->provider(cfg.name); h && h->breaker)
      self->send(h->breaker, atoms::phase_v);
  }
  auto settings = limiter_settings_from(cfg);
  settings.confirm_sends = confirm_sends; // the dispatcher tells (start, permit, at) when a granted call goes upstream
  self->state.limiter.emplace(settings, self->clock().now());
  if (memory) { // a restart (of the process or of this actor) begins where the last checkpoint left off
    self->state.memory = memory;
    self->state.checkpoints = checkpoints_family.with({{"provider", cfg.name}});
    if (auto cp = memory->latest(cfg.name)) {
      auto report = self->state.limiter->restore(*cp, self->clock().now(), memory->wall_ms());
      memory->log(report.describe(cfg.name, settings.requests, settings.per.count()));
    }
  }
  return {
      [self](atoms::acquire, std::uint8_t priority, std::int64_t tokens,
             std::int64_t queue_wait_ms) -> caf::result<limit_grant> {
        auto& st = self->state;
        auto now = self->clock().now();
        auto deadline = now + millis{std::max<std::int64_t>(0, queue_wait_ms)};
        if (auto v = st.limiter->probe(now, tokens); !v.admitted && v.blocked_by != limit_rule::concurrency &&
                                                     (v.retry_at > deadline || v.blocked_by == limit_rule::too_big)) {
          limit_grant g; // no slot can come in time: say so now, so the caller falls back at once
          g.rule = to_string(v.blocked_by);
          g.wait_ms = v.blocked_by == limit_rule::too_big ? -1 : std::max<std::int64_t>(1, ms_until(now, v.retry_at));
          g.breaker = st.breaker;
          ++st.refused;
          return g;
        }
        auto rp = self->make_response_promise<limit_grant>();
        st.queue.emplace(std::make_pair(priority, st.arrivals++), waiter{rp, tokens, now, deadline});
        pump(self);
        return rp;
      },
      [self](atoms::admit, std::int64_t tokens, std::int64_t ahead, std::uint8_t priority) {
        auto& st = self->state;
        auto closed = static_cast<std::uint8_t>(breaker_phase::closed);
        if (st.queue.empty() && ahead == 0 && st.breaker_known && st.breaker == closed) {
          auto v = st.limiter->try_acquire(self->clock().now(), tokens);
          if (v.admitted) { // routing and admission in one exchange: the breaker is closed, so it need not be asked
            limit_grant g;
            g.granted = true;
            g.permit = v.permit;
            g.breaker = closed;
            g.ticket = st.breaker_generation + 1;
            ++st.granted;
            note_change(self);
            return g;
          }
        }
        auto g = estimate(self, tokens, ahead, priority);
        g.granted = false; // an estimate only: nothing was taken
        return g;
      },
      [self](atoms::query, std::int64_t tokens, std::int64_t ahead, std::uint8_t priority) {
        return estimate(self, tokens, ahead, priority);
      },
      [self](atoms::release, std::uint64_t permit, std::int64_t tokens, const limit_signals& signals,
             outcome result) -> std::string {
        auto& st = self->state;
        auto now = self->clock().now();
        bool changed = st.limiter->on_signals(permit, now, signals, result == outcome::rate_limited);
        // The dispatcher gives a permit back unused as (tokens -1, unavailable): the call never went upstream.
        st.limiter->release(permit, now, tokens, !(tokens < 0 && result == outcome::unavailable));
        // Waiters are reassessed (a simulation over the whole queue) when the limiter's view got worse: a throttle
        // step, a 429, or the provider's own count now binding. Not on every reply that carries headers: with
        // hundreds queued that cost more than the calls it routes.
        if (changed || result == outcome::rate_limited ||
            (signals.remaining_requests >= 0 && st.limiter->probe(now, 0).blocked_by == limit_rule::quota))
          reassess(self);
        pump(self);
        note_change(self);
        if (!changed)
          return {};
        ++st.throttle_changes;
        return st.provider + " " + st.limiter->change_note();
      },
      [self](atoms::start, std::uint64_t permit, std::int64_t sent_at_ns) {
        self->state.limiter->sent(permit, steady_time{std::chrono::nanoseconds{sent_at_ns}});
        note_change(self);
      },
      [self](atoms::phase, std::uint8_t phase, std::int64_t open_ms, std::uint64_t generation) {
        self->state.breaker = phase;
        self->state.breaker_generation = generation;
        self->state.breaker_known = true;
        self->state.breaker_open_until = self->clock().now() + millis{open_ms};
      },
      [self](atoms::tick) {
        auto& st = self->state;
        if (st.limiter->maybe_restore(self->clock().now()))
          note_change(self);
        pump(self);
      },
      [self](atoms::stats) {
        auto& st = self->state;
        auto now = self->clock().now();
        auto& l = *st.limiter;
        return nlohmann::json{{"provider", st.provider},
                              {"effective_rate_per_s", l.effective_rate_per_s()},
                              {"throttle_factor", l.factor()},
                              {"window_cap", l.effective_window_cap()},
                              {"concurrency", l.concurrency_now()},
                              {"window_occupancy", l.window_occupancy(now)},
                              {"queue_depth", st.queue.size()},
                              {"in_flight", l.in_flight()},
                              {"paused_ms", ms_until(now, l.paused_until())},
                              {"day_used", l.day_used(now)},
                              {"day_cap", l.settings().per_day},
                              {"granted", st.granted},
                              {"refused", st.refused},
                              {"throttle_changes", st.throttle_changes},
                              {"permits_reclaimed", l.reclaimed()}}
            .dump();
      },
      [](atoms::crash) { throw std::runtime_error("crash requested (test hook)"); },
      [self](atoms::save) {
        self->state.save_armed = false;
        save(self);
      },
      [self](atoms::done) {
        save(self);
        return self->state.memory != nullptr;
      },
  };
}

} // namespace

limiter_actor spawn_limiter(caf::local_actor* parent, const provider_config& cfg, bool confirm_sends,
                            std::shared_ptr<directory> dir, std::shared_ptr<limiter_memory> memory) {
  return parent->spawn(limiter, cfg, confirm_sends, std::move(dir), std::move(memory));
}

} // namespace squad
