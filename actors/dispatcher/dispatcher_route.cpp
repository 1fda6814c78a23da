// Routing: which ready target of a call's chain, by its limiters' estimates (capacity-aware routing; the preferred
// target admits in the same exchange when it can), waiting for an open breaker's probe, and late binding (a call
// whose earliest slot is past the bind horizon waits here and is routed again when a provider frees a slot).
#include "actors/dispatcher/dispatcher_state.hpp"
#include "actors/dispatcher/route_choice.hpp"
#include "actors/limiter/limiter.hpp"
#include "actors/provider/chat_params.hpp"
#include "actors/provider/embeddings.hpp"
#include "runtime/metrics/registry.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace squad::dispatch {

namespace {
const metrics::counter_family parked{
    "squad_calls_unbound_total",
    "calls that waited unbound (late binding) for the first target of their chain to free"};
const metrics::lazy<metrics::counter> parked_total{metrics::resolver(parked)};
} // namespace

// A target whose breaker is open: the call waits for its half-open probe (`reopen_ms` from now) only if that
// comes within the call's deadline and its class's tolerable wait (counted from the call's start), and only once
// per target; otherwise the target leaves the walk, so a call whose chain is all open ends at once. No polling:
// the walker waits for the earliest target (one step.waiting event) or ends.
void rest_open(dispatcher_self self, pending_call& c, std::size_t target, std::int64_t reopen_ms) {
  auto now = self->clock().now();
  auto& t = c.req.chain[target];
  auto reopen = now + millis{std::max<std::int64_t>(1, reopen_ms)};
  auto cls = class_of(c.req);
  auto tolerable = self->state.opts.tolerable_wait[cls];
  auto probe_wait = self->state.opts.probe_wait.count();
  bool waited = std::find(c.probe_waits.begin(), c.probe_waits.end(), target) != c.probe_waits.end();
  bool tolerated = !past_tolerable_wait(ms_between(c.started, now), reopen_ms, tolerable);
  bool in_deadline = reopen < c.started + millis{c.req.timeout_ms};
  bool soon = reopen_ms <= probe_wait;
  bool fits = !waited && soon && in_deadline && tolerated;
  std::string detail =
      t.provider + "'s circuit breaker is open; it probes again in ~" + std::to_string(reopen_ms) + "ms";
  if (!fits) {
    if (waited)
      detail += ", and this call already waited for one probe of it";
    else if (!soon)
      detail += ", later than a call waits for a probe (" + std::to_string(probe_wait) + "ms, runtime.probe_wait)";
    else if (!in_deadline)
      detail += ", past this call's deadline of " + std::to_string(c.req.timeout_ms) + "ms";
    else
      detail += ", past what a P" + std::to_string(cls) + " call waits (" + std::to_string(tolerable.count()) +
                "ms, runtime.tolerable_wait)";
  }
  c.attempts.push_back({t.provider, t.model, "breaker_open", std::move(detail), 0, false});
  if (fits)
    c.probe_waits.push_back(target);
  else
    c.reopen_ms = c.reopen_ms < 0 ? reopen_ms : std::min(c.reopen_ms, reopen_ms);
  c.walker.rest(target, fits ? reopen : steady_time::max());
  c.last_failed = target;
}

// The persona's strategy orders the ready targets (preference: the chain's order). When it puts another target
// first than the chain would, an event names the strategy and the numbers it went by.
void order_by_strategy(dispatcher_self self, pending_call& c, std::vector<std::size_t>& ready) {
  auto s = c.req.strategy <= 3 ? static_cast<route_strategy>(c.req.strategy) : route_strategy::preference;
  if (s == route_strategy::preference || ready.size() < 2)
    return;
  auto prompt = static_cast<double>(token_estimate(c.req) - std::max<std::int64_t>(0, c.req.max_tokens));
  auto completion = static_cast<double>(c.req.max_tokens > 0 ? c.req.max_tokens : 256);
  std::vector<target_view> views;
  for (auto k : ready) {
    auto& t = c.req.chain[k];
    auto seen = self->state.seen.find(target_name(t));
    auto v = seen != self->state.seen.end() ? seen->second : target_view{};
    v.cost = (prompt * t.input_price + completion * t.output_price) / 1e6;
    views.push_back(v);
  }
  auto order = order_targets(s, views);
  if (order.front() != 0) {
    auto number = [&](std::size_t j) {
      auto& v = views[j];
      char buf[96];
      if (s == route_strategy::cost)
        std::snprintf(buf, sizeof buf, "$%.6f", v.cost);
      else if (v.samples == 0)
        std::snprintf(buf, sizeof buf, "not observed yet");
      else if (s == route_strategy::latency)
        std::snprintf(buf, sizeof buf, "EMA %.0fms", v.latency_ms);
      else
        std::snprintf(buf, sizeof buf, "EMA %.0fms, %.0f%% ok", v.latency_ms, v.success * 100);
      return std::string{buf};
    };
    auto& first = c.req.chain[ready[order.front()]];
    auto& chain_first = c.req.chain[ready.front()];
    auto data = nlohmann::json{
        {"strategy", to_string(s)}, {"chosen", target_name(first)}, {"instead_of", target_name(chain_first)}};
    for (std::size_t j = 0; j < views.size(); ++j)
      data["targets"].push_back({{"target", target_name(c.req.chain[ready[j]])},
                                 {"latency_ms", views[j].latency_ms},
                                 {"success", views[j].success},
                                 {"samples", views[j].samples},
                                 {"cost_usd", views[j].cost}});
    note_event(self, c.req.events, "step.strategy", c.req.step_id, c.req.persona,
               "strategy " + std::string{to_string(s)} + ": " + target_name(first) + " (" + number(order.front()) +
                   ") before " + target_name(chain_first) + " (" + number(0) + ")",
               data.dump());
  }
  std::vector<std::size_t> reordered;
  reordered.reserve(order.size());
  for (auto j : order)
    reordered.push_back(ready[j]);
  ready = std::move(reordered);
}

// Capacity-aware routing: ask each ready target's limiter how soon it could admit the call; keep the preferred
// (first ready, breaker not open) target unless another can serve sooner by more than the slack. Asked even
// for a single target: the answer is also the pressure gauge's wait signal.
void route(dispatcher_self self, std::uint64_t id, std::vector<std::size_t> ready) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end() || ready.empty())
    return step(self, id);
  order_by_strategy(self, i->second, ready);
  if (i->second.req.prefer_worker) // degraded under pressure: the worker tier first, the chain's order within tiers
    std::stable_partition(ready.begin(), ready.end(),
                          [&](std::size_t k) { return i->second.req.chain[k].tier != "boss"; });
  struct gather {
    std::vector<std::size_t> targets;
    std::vector<limit_grant> answers;
    std::vector<std::int64_t> routed; // calls routed to each target so far, when asked
    std::size_t pending;
    bool admitted = false; // the preferred target admitted it at once: the other answers are not needed
  };
  auto g = std::make_shared<gather>(gather{ready, std::vector<limit_grant>(ready.size()),
                                           std::vector<std::int64_t>(ready.size()), ready.size(), false});
  auto cls = class_of(i->second.req);
  auto claim = [self, cls](const std::string& provider) {
    count_queued(self, provider, cls, 1);
    ++self->state.routed[provider];
  };
  auto tokens = token_estimate(i->second.req);
  for (std::size_t k = 0; k < ready.size(); ++k) {
    auto& t = i->second.req.chain[ready[k]];
    g->routed[k] = self->state.routed[t.domain()];
    auto decide = [self, id, g, claim, cls] {
      if (--g->pending > 0 || g->admitted)
        return;
      auto c = self->state.calls.find(id);
      if (c == self->state.calls.end())
        return;
      // Calls routed there since the question was asked go first: each adds one slot to the wait.
      for (std::size_t k = 0; k < g->targets.size(); ++k) {
        auto& a = g->answers[k];
        auto since = self->state.routed[c->second.req.chain[g->targets[k]].domain()] - g->routed[k];
        if (a.wait_ms >= 0 && since > 0)
          a.wait_ms += since * a.slot_ms;
      }
      auto open = static_cast<std::uint8_t>(breaker_phase::open);
      std::vector<route_option> options;
      for (auto& a : g->answers)
        options.push_back({a.wait_ms, a.breaker == open});
      auto pick = choose_route(options, self->state.opts.route_slack.count());
      if (!pick.chosen) { // every ready target is open or can never admit
        bool rested = false;
        for (std::size_t k = 0; k < g->targets.size(); ++k)
          if (g->answers[k].breaker == open) {
            rest_open(self, c->second, g->targets[k], g->answers[k].wait_ms);
            rested = true;
          }
        if (rested) // wait once for the earliest probe that fits, or end now
          return step(self, id);
        claim(c->second.req.chain[g->targets.front()].domain()); // can never admit: try the first; it says why
        return attempt(self, id, g->targets.front());
      }
      // Outside a run, a call is refused (shed) only when its own chain cannot serve it within its class's
      // tolerable wait, counted from its arrival; the refusal says when the earliest slot is (Retry-After).
      // Judged once, at its arrival (answered in milliseconds): a call accepted is served, even when higher
      // classes arriving later push it back past that wait (refusing it then would waste the wait it spent).
      auto& req = c->second.req;
      auto tolerable = self->state.opts.tolerable_wait[cls];
      auto best = *pick.best, pref = *pick.preferred, chosen = *pick.chosen;
      auto best_wait = g->answers[best].wait_ms;
      auto now = self->clock().now();
      auto waited = ms_between(c->second.started, now);
      if (req.run_id.empty() && cls > 0 && c->second.sent == 0 && !c->second.accepted) {
        // The estimate counts the calls queued now; higher classes still arriving will go first too. Their rate
        // over the last whole seconds stretches it (a sustained overload: the call is refused now, not when its
        // wait runs out; a one-off burst is in the queue already and stretches nothing).
        // Over the whole chain: the higher classes arriving at its usable targets against their capacity.
        // The calls ahead of it anywhere on its chain (queued or parked, of its class or higher) count too:
        // parked calls bind to whichever target frees first, so a target that looks free now fills before it.
        double ahead_rate = 0, capacity = 0;
        std::int64_t ahead = 0;
        std::set<std::string> counted;
        for (std::size_t k = 0; k < g->targets.size(); ++k) {
          auto& a = g->answers[k];
          auto slot = std::max(a.sure_slot_ms, std::int64_t{1}); // not a hold time no reply has shown yet
          if (a.wait_ms < 0 || a.breaker == open || a.slot_ms <= 0)
            continue;
          auto domain = req.chain[g->targets[k]].domain();
          ahead_rate += self->state.arrivals[domain].rate_above(cls, now);
          capacity += 1000.0 / static_cast<double>(slot);
          if (counted.insert(domain).second)
            ahead += queued_ahead(self, domain, cls, true);
        }
        auto drain = capacity > 0 ? static_cast<std::int64_t>(static_cast<double>(ahead) * 1000.0 / capacity) : 0;
        auto base = std::max(best_wait, drain);
        auto forecast = capacity > 0 ? arrival_rates::forecast_wait(base, ahead_rate, 1000.0 / capacity) : base;
        if (past_tolerable_wait(waited, forecast, tolerable)) {
          char rate[64];
          std::snprintf(rate, sizeof rate, "%.1f", ahead_rate);
          char drained[96];
          std::snprintf(drained, sizeof drained, ", ~%lldms for the %lld calls ahead of it at %.1f/s",
                        static_cast<long long>(drain), static_cast<long long>(ahead), capacity);
          auto why =
              "P" + std::to_string(cls) + ": its chain's earliest slot is in ~" + std::to_string(best_wait) + "ms (" +
              target_name(req.chain[g->targets[best]]) + ")" +
              (drain > best_wait ? std::string{drained} : std::string{}) +
              (forecast != base ? ", ~" + std::to_string(forecast) + "ms with higher classes arriving at " + rate + "/s"
                                : std::string{}) +
              (waited > 0 ? " after " + std::to_string(waited) + "ms waiting" : std::string{}) + ", past the " +
              std::to_string(tolerable.count()) + "ms a P" + std::to_string(cls) + " call waits";
          return shed_waiting(self, c, std::move(why), forecast);
        }
        c->second.accepted = true;
      }
      auto horizon = self->state.opts.bind_horizon.count();
      auto deadline = c->second.started + millis{req.timeout_ms};
      if (horizon > 0 && best_wait > horizon && self->clock().now() + millis{best_wait} < deadline) {
        self->state.inputs.on_wait(best_wait); // the pressure gauge's wait signal, as for a call queued at once
        observe(self, req.events);
        return park(self, id, req.chain[g->targets[best]].domain(), best_wait); // bind when something frees
      }

      claim(c->second.req.chain[g->targets[chosen]].domain()); // queued until its limiter answers
      self->state.inputs.on_wait(g->answers[chosen].wait_ms);
      observe(self, c->second.req.events);
      if (chosen != pref) {
        {
          auto& from = c->second.req.chain[g->targets[pref]];
          auto& to = c->second.req.chain[g->targets[chosen]];
          auto note = target_name(from) + " busy for ~" + std::to_string(g->answers[pref].wait_ms) + "ms (" +
                      g->answers[pref].rule + "); " + target_name(to) + " can serve in ~" +
                      std::to_string(g->answers[chosen].wait_ms) + "ms";
          note_event(self, c->second.req.events, "step.routed", c->second.req.step_id, c->second.req.persona,
                     "routed to " + target_name(to) + ": " + note,
                     nlohmann::json{{"preferred", target_name(from)},
                                    {"chosen", target_name(to)},
                                    {"preferred_wait_ms", g->answers[pref].wait_ms},
                                    {"chosen_wait_ms", g->answers[chosen].wait_ms},
                                    {"rule", g->answers[pref].rule}}
                         .dump());
        }
      }
      attempt(self, id, g->targets[chosen], g->answers[chosen].wait_ms);
    };
    auto ahead = queued_ahead(self, t.domain(), cls, i->second.park_seq == 0);
    auto limiter = handles_of(self, t.domain()).limiter;
    auto failed = [g, k, decide](caf::error&) {
      g->answers[k].wait_ms = -1;
      decide();
    };
    if (k == 0) { // the preferred target: routing and admission in one exchange when it can take the call now
      self->request(limiter, caf::infinite, atoms::admit_v, tokens, ahead, static_cast<std::uint8_t>(cls))
          .then(
              [self, id, g, decide, limiter](limit_grant& a) {
                if (a.granted) {
                  g->admitted = true;
                  if (self->state.calls.count(id) == 0) // the call ended meanwhile (its deadline): the slot goes back
                    return caf::anon_send(limiter, atoms::release_v, a.permit, std::int64_t{-1}, limit_signals{},
                                          outcome::unavailable);
                  return admitted(self, id, g->targets.front(), a.permit, a.ticket);
                }
                g->answers[0] = std::move(a);
                decide();
              },
              failed);
      continue;
    }
    self->request(limiter, caf::infinite, atoms::query_v, tokens, ahead, static_cast<std::uint8_t>(cls))
        .then(
            [g, k, decide](limit_grant& a) {
              g->answers[k] = std::move(a);
              decide();
            },
            failed);
  }
}

void park(dispatcher_self self, std::uint64_t id, const std::string& provider, std::int64_t wait_ms) {
  auto& st = self->state;
  auto i = st.calls.find(id);
  if (i == st.calls.end())
    return;
  auto& c = i->second;
  c.parked_on = provider;
  bool first = c.park_seq == 0; // one event per call, however often it parks again
  c.park_seq = ++st.park_seq;
  ++st.parked_by_class[provider][class_of(c.req)];
  st.parked.push_back(id);
  if (first) {
    parked_total.get().inc();
    note_event(self, c.req.events, "step.waiting", c.req.step_id, c.req.persona,
               "waiting unbound: the earliest slot of its chain is in ~" + std::to_string(wait_ms) + "ms (" + provider +
                   "); it goes to whichever target of its chain frees first",
               nlohmann::json{{"reason", "unbound"}, {"wait_ms", wait_ms}, {"provider", provider}}.dump());
  }
  // If no slot frees at a provider of its chain before then, it routes again when its slot was expected.
  auto at = std::max<std::int64_t>(1, wait_ms - st.opts.bind_horizon.count());
  self->delayed_send(self, millis{at}, atoms::retry_v, id, c.park_seq);
}

bool unpark(dispatcher_self self, pending_call& c) {
  if (c.parked_on.empty())
    return false;
  auto& n = self->state.parked_by_class[c.parked_on][class_of(c.req)];
  n = std::max<std::int64_t>(0, n - 1);
  c.parked_on.clear();
  return true;
}

void wake_parked(dispatcher_self self, const std::string& domain) {
  auto& st = self->state;
  int woken = 0;
  std::vector<std::uint64_t> woke;
  // Two per freed slot: one for the slot, one to keep the limiter's queue primed for the next.
  for (auto it = st.parked.begin(); it != st.parked.end() && woken < 2;) {
    auto c = st.calls.find(*it);
    if (c == st.calls.end() || c->second.parked_on.empty()) { // answered or routed meanwhile
      it = st.parked.erase(it);
      continue;
    }
    auto& chain = c->second.req.chain;
    if (std::none_of(chain.begin(), chain.end(), [&](const chain_target& t) { return t.domain() == domain; })) {
      ++it;
      continue;
    }
    woke.push_back(*it);
    it = st.parked.erase(it);
    unpark(self, c->second);
    ++woken;
  }
  for (auto id : woke) // after the walk over the deque: a step may park again (push_back)
    step(self, id);
}

void pass_over_incapable(dispatcher_self self, pending_call& c) {
  auto now = self->clock().now();
  std::map<std::string, std::string> refusal_of; // by kind: judged once per kind, not per target
  for (std::size_t k = 0; k < c.req.chain.size(); ++k) {
    auto& t = c.req.chain[k];
    if (t.kind.empty()) // a target made by hand (tests): its provider actor judges
      continue;
    auto [it, fresh] = refusal_of.try_emplace(t.kind);
    if (fresh && !c.req.embed_input_json.empty())
      it->second = embeddings_refusal(t.kind, "of kind " + t.kind);
    else if (fresh)
      if (auto no = refuse_params(family_of(t.kind), c.req))
        it->second = no->message + " (param " + no->param + ")";
    if (it->second.empty())
      continue;
    auto why = target_name(t) + " cannot serve this call: " + it->second + "; passed over, not sent";
    c.attempts.push_back({t.provider, t.model, to_string(outcome::bad_request), why, 0, false});
    c.walker.record(k, outcome::bad_request, now, millis{0});
    note_event(self, c.req.events, "call.target_skipped", c.req.step_id, c.req.persona, why,
               nlohmann::json{{"target", target_name(t)}, {"reason", it->second}}.dump());
  }
}

} // namespace squad::dispatch
