#include "actors/dispatcher/dispatcher.hpp"
#include "actors/dispatcher/route_choice.hpp"
#include "actors/budget/pressure.hpp"
#include "actors/budget/shared_budgets.hpp"
#include "actors/limiter/limiter.hpp"
#include "runtime/metrics/registry.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <deque>
#include <map>

namespace squad {

void emit_event(caf::event_based_actor* self, const caf::actor& sink, std::string type, const std::string& step_id,
                const std::string& persona, std::string message, std::string data_json) {
  metrics::registry::global().inc("squad_events_total", {{"type", type}}); // fallbacks, sheds, degradations, ...
  if (!sink)
    return;
  run_event ev;
  ev.type = std::move(type);
  ev.step_id = step_id;
  ev.persona = persona;
  ev.message = std::move(message);
  ev.data_json = std::move(data_json);
  self->send(sink, std::move(ev));
}

namespace {

struct pending_call {
  caf::response_promise rp;
  call_request req;
  chain_walker walker;
  std::vector<attempt_info> attempts;
  steady_time started;
  std::optional<std::size_t> last_failed; // target of the last failed attempt
  std::string partial;                     // the longest text a failed stream delivered, if any
  std::size_t partial_target = 0;
  usage_info partial_usage;
  std::string cache_key; // empty: not to be stored
  std::int64_t sent = 0; // LLM calls sent for it
  std::int64_t upstream_us = 0; // time in upstream exchanges
  bool shared_reserved = false; // holds a reservation on its X-Squad-Run budget until its first send
  std::uint64_t permit = 0, ticket = 0; // of the attempt awaiting its provider's answer (0: none)
  std::string permit_provider;
  std::vector<std::size_t> probe_waits; // targets whose half-open probe this call already waited for
};

// The answer goes to the requester, and to the call's sink when the caller is not an actor.
void deliver(pending_call& c, call_result res) {
  res.upstream_us = c.upstream_us;
  if (c.req.sink) {
    c.req.sink->done(res);
    c.req.sink.reset();
  }
  c.rp.deliver(std::move(res));
}

void deliver(pending_call& c, squad_errc code, std::string why, std::int64_t retry_after_ms = -1) {
  if (c.req.sink) {
    if (retry_after_ms >= 0)
      c.req.sink->failed(code, why, retry_after_ms);
    else
      c.req.sink->failed(code, why);
    c.req.sink.reset();
  }
  c.rp.deliver(make_squad_error(code, std::move(why)));
}

struct dispatcher_state {
  caf::actor root;
  dispatch_options opts;
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, pending_call> calls;
  std::map<std::string, std::int64_t> queued; // by provider: routed there and not yet answered by its limiter
  std::map<std::string, std::array<std::int64_t, 4>> queued_by_class; // the same, by class P0..P3
  std::map<std::string, std::int64_t> routed; // by provider: calls routed there, ever
  // Pressure: what the dispatcher sees of waits, queues, 429s, breakers and latency.
  pressure_gauge gauge;
  std::int64_t last_wait_ms = 0;
  double open_share = 0;
  std::deque<steady_time> recent_429;
  std::deque<std::int64_t> latencies; // the last 200 answered calls, ms
  std::map<std::string, std::int64_t> counts; // events emitted, by type (metrics: fallbacks, sheds, ...)
  std::optional<response_cache> cache;
  std::map<std::string, caf::actor> handles; // "providers/<p>:limiter" etc. -> the actor, once looked up (null: asking)
  std::optional<shared_budgets> shared; // by call_request::budget_id (X-Squad-Run)
  bool sweeping = false; // a deadline sweep is scheduled
  static inline const char* name = "squad.dispatcher";
};

using dispatcher_actor = caf::stateful_actor<dispatcher_state>;

// The actor at `path` under root ("providers/<p>", "providers/<p>:limiter", ...), once known: messages then go
// straight to it rather than through root and the providers supervisor (two hops and two path lookups fewer per
// message). Not known yet: null, and a lookup starts; a restarted child is looked up again after its down message.
caf::actor handle_of(dispatcher_actor* self, const std::string& path) {
  auto& st = self->state;
  if (auto it = st.handles.find(path); it != st.handles.end())
    return it->second;
  st.handles.emplace(path, caf::actor{});
  auto slash = path.find('/');
  self->request(st.root, caf::infinite, atoms::forward_v, path.substr(0, slash),
                caf::make_message(atoms::whereis_v, path.substr(slash + 1)))
    .then(
      [self, path](const caf::actor& a) {
        self->state.handles[path] = a;
        self->monitor(a);
      },
      [self, path](caf::error&) { self->state.handles.erase(path); });
  return {};
}

/// A request to the actor at `path` under root (directly when its handle is known).
template <class... Ts>
auto ask(dispatcher_actor* self, caf::duration timeout, const std::string& path, Ts&&... xs) {
  if (auto to = handle_of(self, path))
    return self->request(to, timeout, std::forward<Ts>(xs)...);
  return self->request(self->state.root, timeout, atoms::forward_v, path, caf::make_message(std::forward<Ts>(xs)...));
}

/// A one-way message to the actor at `path` under root.
template <class... Ts>
void tell(dispatcher_actor* self, const std::string& path, Ts&&... xs) {
  if (auto to = handle_of(self, path))
    self->send(to, std::forward<Ts>(xs)...);
  else
    self->send(self->state.root, atoms::forward_v, path, caf::make_message(std::forward<Ts>(xs)...));
}

// Every event the dispatcher emits is also counted by type: the counts are its metrics ((stats)).
void note_event(dispatcher_actor* self, const caf::actor& sink, std::string type, const std::string& step_id,
                const std::string& persona, std::string message, std::string data_json = "{}") {
  ++self->state.counts[type];
  emit_event(self, sink, std::move(type), step_id, persona, std::move(message), std::move(data_json));
}

std::int64_t ms_between(steady_time a, steady_time b) {
  return std::chrono::duration_cast<millis>(b - a).count();
}

std::string target_name(const chain_target& t) { return t.provider + "/" + t.model; }

// Each target once, in the order first tried, with its last outcome (and how many tries, when more than one):
// a failure that repeats does not repeat its text.
std::string attempts_text(const std::vector<attempt_info>& attempts) {
  std::vector<std::pair<std::string, std::pair<const attempt_info*, int>>> last; // target -> (last try, tries)
  for (auto& a : attempts) {
    auto name = a.provider + "/" + a.model;
    auto it = std::find_if(last.begin(), last.end(), [&](auto& e) { return e.first == name; });
    if (it == last.end())
      last.push_back({name, {&a, 1}});
    else
      it->second = {&a, it->second.second + 1};
  }
  std::string out;
  for (auto& [name, tried] : last) {
    auto& a = *tried.first;
    out += out.empty() ? "" : "; ";
    out += name + ": " + a.outcome + (a.detail.empty() ? "" : " (" + a.detail + ")");
    if (tried.second > 1)
      out += " [" + std::to_string(tried.second) + " tries]";
  }
  return out.empty() ? "no attempt was possible" : out;
}

void step(dispatcher_actor* self, std::uint64_t id);

std::size_t class_of(const call_request& req) { return req.priority > 3 ? 1 : req.priority; } // 255: P1

// A call routed to `provider` waits for its limiter's answer: counted in the queue (and taken off with -1).
void count_queued(dispatcher_actor* self, const std::string& provider, std::size_t cls, std::int64_t delta) {
  self->state.queued[provider] += delta;
  self->state.queued_by_class[provider][cls] += delta;
}

// Calls queued for `provider` that its limiter serves before one of class `cls` (the same class or higher).
std::int64_t queued_ahead(dispatcher_actor* self, const std::string& provider, std::size_t cls) {
  auto it = self->state.queued_by_class.find(provider);
  if (it == self->state.queued_by_class.end())
    return 0;
  std::int64_t n = 0;
  for (std::size_t k = 0; k <= cls; ++k)
    n += std::max<std::int64_t>(0, it->second[k]);
  return n;
}

// Updates the pressure level from the latest signals; a change is an event on `events` (the call that saw it).
pressure_level observe(dispatcher_actor* self, const caf::actor& events = {}) {
  auto& st = self->state;
  auto now = self->clock().now();
  while (!st.recent_429.empty() && st.recent_429.front() + std::chrono::minutes{1} <= now)
    st.recent_429.pop_front();
  pressure_signals sig;
  sig.wait_ms = st.last_wait_ms;
  for (auto& [provider, n] : st.queued)
    sig.queue_depth += std::max<std::int64_t>(0, n);
  sig.rate_429_per_min = static_cast<double>(st.recent_429.size());
  // Open breakers are judged per chain (a call whose targets are all open ends or waits for a probe; one with a
  // healthy target is routed there), not as a global signal that would shed calls a healthy chain can serve.
  sig.open_breaker_share = 0;
  if (!st.latencies.empty()) {
    std::vector<std::int64_t> v(st.latencies.begin(), st.latencies.end());
    auto k = std::min(v.size() - 1, v.size() * 95 / 100);
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    sig.p95_latency_ms = v[k];
  }
  auto before = st.gauge.level();
  auto after = st.gauge.update(sig, now);
  if (after != before)
    note_event(self, events, "pressure.changed", "", "",
               std::string("pressure ") + to_string(before) + " -> " + to_string(after) + ": " + st.gauge.why(),
               nlohmann::json{{"from", to_string(before)}, {"to", to_string(after)}, {"why", st.gauge.why()}}.dump());
  return after;
}
void route(dispatcher_actor* self, std::uint64_t id, std::vector<std::size_t> ready);
void attempt(dispatcher_actor* self, std::uint64_t id, std::size_t target, std::int64_t expected_wait_ms = -1);
void send_call(dispatcher_actor* self, std::uint64_t id, std::size_t target, std::uint64_t permit,
               std::uint64_t ticket);

void forget_call(dispatcher_actor* self, std::map<std::uint64_t, pending_call>::iterator i);

void on_reply(dispatcher_actor* self, std::uint64_t id, std::size_t target, upstream_reply r) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto now = self->clock().now();
  auto& t = c.req.chain[target];
  // The output check: an empty or truncated answer from a worker-tier target escalates to the boss tier.
  bool boss_left = false;
  for (std::size_t k = 0; k < c.req.chain.size(); ++k)
    boss_left = boss_left || (k != target && c.req.chain[k].tier == "boss" && c.walker.usable(k));
  if (r.result == outcome::ok && t.tier != "boss" && boss_left &&
      (r.text.find_first_not_of(" \t\r\n") == std::string::npos || r.finish_reason == "length")) {
    auto why = r.finish_reason == "length" ? "truncated answer (finish_reason length)" : "empty answer";
    c.attempts.push_back({t.provider, t.model, "bad_output", why, r.latency_ms});
    c.walker.record(target, outcome::bad_response, now, millis{0});
    for (std::size_t k = 0; k < c.req.chain.size(); ++k) // the worker tier has had its chance for this call
      if (c.req.chain[k].tier != "boss")
        c.walker.rest(k, steady_time::max());
    c.last_failed = target;
    return step(self, id);
  }
  c.upstream_us += r.latency_us;
  c.attempts.push_back({t.provider, t.model, to_string(r.result), r.detail, r.latency_ms});
  c.walker.record(target, r.result, now, millis{std::max<std::int64_t>(0, r.signals.retry_after_ms)});
  if (r.result != outcome::ok && r.partial_text.size() > c.partial.size()) {
    c.partial = std::move(r.partial_text);
    c.partial_target = target;
    c.partial_usage = r.usage;
  }
  if (r.result == outcome::ok) {
    call_result res;
    res.text = std::move(r.text);
    res.finish_reason = std::move(r.finish_reason);
    res.served_by = t;
    res.usage = r.usage;
    res.simulated = r.simulated;
    res.latency_ms = ms_between(c.started, now);
    res.attempts = std::move(c.attempts);
    if (!c.cache_key.empty() && response_cache::storable(res))
      self->state.cache->put(c.cache_key, cached_answer{res.text, res.finish_reason, res.served_by, res.usage, res.simulated},
                             now);
    deliver(c, std::move(res));
    forget_call(self, i);
    return;
  }
  if (c.req.sink && c.req.sink->committed()) { // the client already has part of this answer: no fallback
    deliver(c, squad_errc::chain_exhausted,
            target_name(t) + " failed after the answer began streaming (" + to_string(r.result) +
              (r.detail.empty() ? "" : ": " + r.detail) + ")");
    forget_call(self, i);
    return;
  }
  c.last_failed = target;
  step(self, id);
}

// Whether a call's shared budget (X-Squad-Run) is spent. P0 runs beyond it, as in a run.
bool shared_spent(dispatcher_actor* self, const call_request& req) {
  return !req.budget_id.empty() && req.priority != 0 && self->state.shared->spent(req.budget_id);
}

// Ends a call's bookkeeping: its unused budget reservation comes back.
void forget_call(dispatcher_actor* self, std::map<std::uint64_t, pending_call>::iterator i) {
  auto& c = i->second;
  if (c.shared_reserved)
    self->state.shared->unreserve(c.req.budget_id);
  self->state.calls.erase(i);
}

// One deadline per call, checked by a sweep every second while calls are in flight (not a timer per request:
// CAF keeps each request timeout in its clock until it fires, which at 15k calls/s and 60 s deadlines held
// ~100 MB). Provider calls need it only as a safety net: HTTP exchanges carry the deadline themselves.

void sweep(dispatcher_actor* self) {
  auto& st = self->state;
  st.sweeping = false;
  auto now = self->clock().now();
  for (auto it = st.calls.begin(); it != st.calls.end();) {
    auto& c = it->second;
    if (c.started + millis{c.req.timeout_ms} + std::chrono::seconds{1} <= now) {
      deliver(c, squad_errc::deadline_exceeded,
              "no answer within the call's deadline of " + std::to_string(c.req.timeout_ms) + "ms (" +
                attempts_text(c.attempts) + ")");
      if (c.permit) { // its provider never answered (it died holding the call): free the slot and the probe
        tell(self, "providers/" + c.permit_provider + ":limiter", atoms::release_v, c.permit, std::int64_t{-1},
             limit_signals{}, outcome::timeout);
        tell(self, "providers/" + c.permit_provider + ":breaker", atoms::cancel_v, c.ticket);
      }
      auto dead = it++;
      forget_call(self, dead);
    } else {
      ++it;
    }
  }
  st.shared->prune(now); // X-Squad-Run ids unused past their ttl
  if (!st.calls.empty()) {
    st.sweeping = true;
    self->delayed_send(self, std::chrono::seconds{1}, atoms::tick_v);
  }
}

// Refuses a call outside a run that its chain cannot serve within its class's tolerable wait: a 429 whose
// Retry-After is the earliest slot (`earliest_ms` from now), an event and a metric.
void shed_waiting(dispatcher_actor* self, std::map<std::uint64_t, pending_call>::iterator i, std::string why,
                  std::int64_t earliest_ms) {
  auto& c = i->second;
  auto cls = to_string(static_cast<priority_class>(class_of(c.req)));
  metrics::registry::global().inc("squad_budget_decisions_total", {{"class", cls}, {"action", "shed"}, {"reason", "wait"}});
  note_event(self, c.req.events, "call.shed", c.req.step_id, c.req.persona, why,
             nlohmann::json{{"priority", cls}, {"earliest_ms", earliest_ms},
                            {"waited_ms", ms_between(c.started, self->clock().now())}, {"reason", "wait"}}.dump());
  deliver(c, squad_errc::shed, std::move(why), earliest_ms);
  forget_call(self, i);
}

void step(dispatcher_actor* self, std::uint64_t id) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto now = self->clock().now();
  auto d = c.walker.next(now);
  auto& opts = self->state.opts;
  std::string spent_why;
  if (c.req.run_id.empty() && c.sent >= opts.request_calls)
    spent_why = "the request's budget of " + std::to_string(opts.request_calls) + " LLM calls is spent";
  else if (shared_spent(self, c.req))
    spent_why = "the budget of " + std::to_string(opts.shared_calls) + " LLM calls of X-Squad-Run " + c.req.budget_id +
                " is spent";
  bool spent = !spent_why.empty();
  if (spent && d.what != chain_walker::action::exhausted) {
    note_event(self, c.req.events, "call.budget_spent", c.req.step_id, c.req.persona, spent_why,
               nlohmann::json{{"calls", c.req.budget_id.empty() ? opts.request_calls : opts.shared_calls},
                              {"budget_id", c.req.budget_id}}.dump());
    d.what = chain_walker::action::exhausted;
  }
  switch (d.what) {
    case chain_walker::action::exhausted: {
      auto why = std::string{"chain exhausted ("} +
                 (spent ? spent_why : c.walker.exhausted_reason(now)) +
                 " after " + std::to_string(c.walker.attempts()) + " attempts): " + attempts_text(c.attempts);
      if (!c.partial.empty()) { // better than nothing, and said so: the partial text, marked partial
        note_event(self, c.req.events, "step.partial", c.req.step_id, c.req.persona,
                   "every target failed; passing on " + std::to_string(c.partial.size()) + " bytes of partial output from " +
                     target_name(c.req.chain[c.partial_target]),
                   nlohmann::json{{"bytes", c.partial.size()}, {"from", target_name(c.req.chain[c.partial_target])},
                                  {"why", why}}.dump());
        call_result res;
        res.text = std::move(c.partial);
        res.finish_reason = "partial";
        res.partial = true;
        res.served_by = c.req.chain[c.partial_target];
        res.usage = c.partial_usage;
        res.latency_ms = ms_between(c.started, now);
        res.attempts = std::move(c.attempts);
        deliver(c, std::move(res));
        forget_call(self, i);
        return;
      }
      if (shared_spent(self, c.req)) // a spent shared budget is a 429 (budget_spent), not "no provider"
        deliver(c, squad_errc::budget_spent, spent_why);
      else
        deliver(c, squad_errc::chain_exhausted, std::move(why));
      forget_call(self, i);
      return;
    }
    case chain_walker::action::wait: {
      auto wait_ms = ms_between(now, d.until);
      auto cls = class_of(c.req);
      auto tolerable = opts.tolerable_wait[cls];
      if (c.req.run_id.empty() && cls > 0 && c.sent == 0 && tolerable != millis::max() &&
          d.until - c.started > tolerable) { // outside a run, a call waits no longer than its class tolerates
        auto why = "P" + std::to_string(cls) + ": no target of its chain is ready for another " +
                   std::to_string(wait_ms) + "ms, past the " + std::to_string(tolerable.count()) + "ms a P" +
                   std::to_string(cls) + " call waits (" + attempts_text(c.attempts) + ")";
        return shed_waiting(self, i, std::move(why), wait_ms);
      }
      // Why: an open breaker's probe, a backoff after a failed attempt, or targets busy (limiters refused in time).
      std::string reason = "busy", why = "every target is busy";
      if (!c.attempts.empty()) {
        auto& last = c.attempts.back();
        if (last.outcome == "breaker_open")
          reason = "breaker_open", why = last.detail;
        else if (last.outcome != "limited")
          reason = "backoff", why = "backing off after " + last.provider + "/" + last.model + ": " + last.outcome;
      }
      note_event(self, c.req.events, "step.waiting", c.req.step_id, c.req.persona,
                 "waiting " + std::to_string(wait_ms) + "ms: " + why,
                 nlohmann::json{{"wait_ms", wait_ms}, {"attempts", c.walker.attempts()}, {"reason", reason},
                                {"detail", why}}.dump());
      self->delayed_send(self, d.until - now, atoms::retry_v, id);
      return;
    }
    case chain_walker::action::try_target:
      break;
  }
  route(self, id, c.walker.ready(now));
}

std::int64_t token_estimate(const call_request& req) {
  std::size_t chars = 0;
  for (auto& m : req.messages)
    chars += m.content.size();
  return static_cast<std::int64_t>((chars + 3) / 4) + std::max<std::int64_t>(0, req.max_tokens);
}

// A target whose breaker is open: the call waits for its half-open probe (`reopen_ms` from now) only if that
// comes within the call's deadline and its class's tolerable wait (counted from the call's start), and only once
// per target; otherwise the target leaves the walk, so a call whose chain is all open ends at once. No polling:
// the walker waits for the earliest target (one step.waiting event) or ends.
void rest_open(dispatcher_actor* self, pending_call& c, std::size_t target, std::int64_t reopen_ms) {
  auto now = self->clock().now();
  auto& t = c.req.chain[target];
  auto reopen = now + millis{std::max<std::int64_t>(1, reopen_ms)};
  auto cls = std::min<int>(c.req.priority, 3);
  auto tolerable = self->state.opts.tolerable_wait[static_cast<std::size_t>(cls)];
  bool waited = std::find(c.probe_waits.begin(), c.probe_waits.end(), target) != c.probe_waits.end();
  bool tolerated = tolerable == millis::max() || reopen - c.started <= tolerable; // max: P0's "no bound"
  bool fits = !waited && reopen < c.started + millis{c.req.timeout_ms} && tolerated;
  std::string detail = t.provider + "'s circuit breaker is open; it probes again in ~" + std::to_string(reopen_ms) + "ms";
  if (!fits)
    detail += waited ? ", and this call already waited for one probe of it"
                     : ", past what a P" + std::to_string(cls) + " call waits (" +
                         (reopen >= c.started + millis{c.req.timeout_ms}
                            ? "its deadline of " + std::to_string(c.req.timeout_ms) + "ms)"
                            : std::to_string(tolerable.count()) + "ms, runtime.tolerable_wait)");
  c.attempts.push_back({t.provider, t.model, "breaker_open", std::move(detail), 0});
  if (fits)
    c.probe_waits.push_back(target);
  c.walker.rest(target, fits ? reopen : steady_time::max());
  c.last_failed = target;
}

// Capacity-aware routing: ask each ready target's limiter how soon it could admit the call; keep the preferred
// (first ready, breaker not open) target unless another can serve sooner by more than the slack. Asked even
// for a single target: the answer is also the pressure gauge's wait signal.
void route(dispatcher_actor* self, std::uint64_t id, std::vector<std::size_t> ready) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end() || ready.empty())
    return step(self, id);
  if (i->second.req.prefer_worker) // degraded under pressure: the worker tier first, the chain's order within tiers
    std::stable_partition(ready.begin(), ready.end(),
                          [&](std::size_t k) { return i->second.req.chain[k].tier != "boss"; });
  struct gather {
    std::vector<std::size_t> targets;
    std::vector<limit_grant> answers;
    std::vector<std::int64_t> routed; // calls routed to each target so far, when asked
    std::size_t pending;
  };
  auto g = std::make_shared<gather>(
    gather{ready, std::vector<limit_grant>(ready.size()), std::vector<std::int64_t>(ready.size()), ready.size()});
  auto cls = class_of(i->second.req);
  auto claim = [self, cls](const std::string& provider) {
    count_queued(self, provider, cls, 1);
    ++self->state.routed[provider];
  };
  auto tokens = token_estimate(i->second.req);
  for (std::size_t k = 0; k < ready.size(); ++k) {
    auto& t = i->second.req.chain[ready[k]];
    g->routed[k] = self->state.routed[t.provider];
    auto decide = [self, id, g, claim, cls] {
      if (--g->pending > 0)
        return;
      auto c = self->state.calls.find(id);
      if (c == self->state.calls.end())
        return;
      // Calls routed there since the question was asked go first: each adds one slot to the wait.
      for (std::size_t k = 0; k < g->targets.size(); ++k) {
        auto& a = g->answers[k];
        auto since = self->state.routed[c->second.req.chain[g->targets[k]].provider] - g->routed[k];
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
        claim(c->second.req.chain[g->targets.front()].provider); // can never admit: try the first; it says why
        return attempt(self, id, g->targets.front());
      }
      std::size_t open_count = 0;
      for (auto& a : g->answers)
        open_count += a.breaker == open;
      self->state.open_share = static_cast<double>(open_count) / static_cast<double>(g->answers.size());
      // Outside a run, a call is refused (shed) only when its own chain cannot serve it within its class's
      // tolerable wait, counted from its arrival; the refusal says when the earliest slot is (Retry-After).
      // Judged at each routing until the call first goes upstream: at arrival (answered in milliseconds), and
      // again when a queued call was pushed back (later arrivals of a higher class go first) past its wait.
      auto& req = c->second.req;
      auto tolerable = self->state.opts.tolerable_wait[cls];
      auto best = *pick.best, pref = *pick.preferred, chosen = *pick.chosen;
      auto best_wait = g->answers[best].wait_ms;
      auto waited = ms_between(c->second.started, self->clock().now());
      if (req.run_id.empty() && cls > 0 && c->second.sent == 0 && past_tolerable_wait(waited, best_wait, tolerable)) {
        auto why = "P" + std::to_string(cls) + ": its chain's earliest slot is in ~" + std::to_string(best_wait) +
                   "ms (" + target_name(req.chain[g->targets[best]]) + ")" +
                   (waited > 0 ? " after " + std::to_string(waited) + "ms waiting" : std::string{}) + ", past the " +
                   std::to_string(tolerable.count()) + "ms a P" + std::to_string(cls) + " call waits";
        return shed_waiting(self, c, std::move(why), best_wait);
      }

      claim(c->second.req.chain[g->targets[chosen]].provider); // queued until its limiter answers
      self->state.last_wait_ms = g->answers[chosen].wait_ms;
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
                     nlohmann::json{{"preferred", target_name(from)}, {"chosen", target_name(to)},
                                    {"preferred_wait_ms", g->answers[pref].wait_ms},
                                    {"chosen_wait_ms", g->answers[chosen].wait_ms},
                                    {"rule", g->answers[pref].rule}}
                       .dump());
        }
      }
      attempt(self, id, g->targets[chosen], g->answers[chosen].wait_ms);
    };
    ask(self, caf::infinite, "providers/" + t.provider + ":limiter", atoms::query_v, tokens,
        queued_ahead(self, t.provider, cls), static_cast<std::uint8_t>(cls))
      .then([g, k, decide](limit_grant& a) { g->answers[k] = std::move(a); decide(); },
            [g, k, decide](caf::error&) { g->answers[k].wait_ms = -1; decide(); });
  }
}

// Records a try that never reached the upstream (breaker open, limiter queue timed out) and walks on.
void not_sent(dispatcher_actor* self, std::uint64_t id, std::size_t target, const char* why, std::string detail,
              millis rest) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto& t = c.req.chain[target];
  c.attempts.push_back({t.provider, t.model, why, std::move(detail), 0});
  c.walker.rest(target, self->clock().now() + rest);
  c.last_failed = target;
  step(self, id);
}

// A call whose API client closed its connection while it waited (call_sink::abandoned) is not sent upstream: it
// ends as cancelled, counted in squad_calls_abandoned_total. The limiter's window still counts the slot it was
// granted (Squad errs on the side of sending less, never more).
bool abandoned_by_client(dispatcher_actor* self, std::map<std::uint64_t, pending_call>::iterator i,
                         const std::string& provider, std::int64_t waited_ms) {
  auto& c = i->second;
  if (!c.req.sink || !c.req.sink->abandoned())
    return false;
  metrics::registry::global().inc("squad_calls_abandoned_total", {{"provider", provider}});
  deliver(c, squad_errc::cancelled,
          "the client closed its connection after " + std::to_string(waited_ms) + "ms waiting for a slot at " +
            provider + "; the call was not sent");
  forget_call(self, i);
  return true;
}

void attempt(dispatcher_actor* self, std::uint64_t id, std::size_t target, std::int64_t expected_wait_ms) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto now = self->clock().now();
  auto& t = c.req.chain[target];
  if (c.last_failed) {
    auto& prev = c.req.chain[*c.last_failed];
    auto& last = c.attempts.back();
    bool same = *c.last_failed == target;
    bool escalated = prev.tier != "boss" && t.tier == "boss";
    const char* type = same ? "step.retry" : escalated ? "step.escalated" : "step.fallback";
    note_event(self, c.req.events, type, c.req.step_id, c.req.persona,
               (same ? "retrying " + target_name(t) : target_name(prev) + " -> " + target_name(t)) + " after "
                 + last.outcome,
               nlohmann::json{{"from", target_name(prev)}, {"to", target_name(t)}, {"reason", last.outcome},
                              {"detail", last.detail}}
                 .dump());
    c.last_failed.reset();
  }
  auto remaining = std::chrono::duration_cast<millis>(c.started + millis{c.req.timeout_ms} - now);
  auto provider = t.provider;
  auto queue_wait = std::max<std::int64_t>(0, std::min(remaining, self->state.opts.queue_wait).count());
  auto tolerable = self->state.opts.tolerable_wait[class_of(c.req)];
  if (c.req.run_id.empty() && c.sent == 0 && tolerable != millis::max()) // queued no longer than its class waits
    queue_wait = std::max<std::int64_t>(
      0, std::min(queue_wait, std::chrono::duration_cast<millis>(c.started + tolerable - now).count()));
  if (expected_wait_ms >= 0) // routed on an estimate: if it proves twice too hopeful (at least +1s), route again
    queue_wait = std::min(queue_wait, expected_wait_ms + std::max<std::int64_t>(expected_wait_ms / 2, 1000));
  auto priority = static_cast<std::uint8_t>(class_of(c.req));
  auto tokens = token_estimate(c.req);
  // 1. the breaker
  ask(self, caf::infinite, "providers/" + provider + ":breaker", atoms::allow_v, atoms::report_v)
    .then(
      [=](std::uint64_t ticket) {
        if (ticket == 0) {
          count_queued(self, provider, priority, -1);
          return not_sent(self, id, target, "breaker_open", provider + "'s circuit breaker is open", millis{1000});
        }
        // 2. the limiter: admitted now, or queued by priority until queue_wait
        ask(self, caf::infinite, "providers/" + provider + ":limiter", atoms::acquire_v, priority, tokens, queue_wait)
          .then(
            [=](limit_grant& g) {
              count_queued(self, provider, priority, -1);
              if (!g.granted) {
                tell(self, "providers/" + provider + ":breaker", atoms::cancel_v, ticket);
                auto detail = g.wait_ms < 0 ? "the call's tokens exceed " + provider + "'s limit per window"
                                            : "no slot within " + std::to_string(queue_wait) + "ms (" + g.rule +
                                                "; next in ~" + std::to_string(g.wait_ms) + "ms)";
                return not_sent(self, id, target, "limited", detail,
                                millis{g.wait_ms < 0 ? std::int64_t{1} << 40 : g.wait_ms});
              }
              metrics::registry::global().observe(
                "squad_limiter_wait_seconds",
                {{"provider", provider}, {"class", to_string(static_cast<priority_class>(priority))}},
                static_cast<double>(g.waited_ms) / 1000);
              auto c = self->state.calls.find(id);
              bool gone = c == self->state.calls.end();
              // Only a call that waited can have been given up on (and asking costs a system call).
              if (gone || (g.waited_ms > 0 && abandoned_by_client(self, c, provider, g.waited_ms))) {
                // the call is gone: give the slot back unused
                tell(self, "providers/" + provider + ":limiter", atoms::release_v, g.permit, std::int64_t{-1}, limit_signals{},
                     outcome::unavailable);
                tell(self, "providers/" + provider + ":breaker", atoms::cancel_v, ticket);
                return;
              }
              if (g.waited_ms > 0)
                note_event(self, c->second.req.events, "step.queued", c->second.req.step_id, c->second.req.persona,
                           "waited " + std::to_string(g.waited_ms) + "ms for a slot at " + provider,
                           nlohmann::json{{"provider", provider}, {"waited_ms", g.waited_ms}}.dump());
              send_call(self, id, target, g.permit, ticket);
            },
            [=](caf::error& err) {
              count_queued(self, provider, priority, -1);
              not_sent(self, id, target, "unavailable", "limiter: " + error_detail(self->system(), err), millis{1000});
            });
      },
      [=](caf::error& err) {
        count_queued(self, provider, priority, -1);
        not_sent(self, id, target, "unavailable", "breaker: " + error_detail(self->system(), err), millis{1000});
      });
}

// 3. the provider; then, off the answer's path, the limiter and breaker learn how it went.
void send_call(dispatcher_actor* self, std::uint64_t id, std::size_t target, std::uint64_t permit,
               std::uint64_t ticket) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto now = self->clock().now();
  auto& t = c.req.chain[target];
  auto remaining = c.started + millis{c.req.timeout_ms} - now;
  ++c.sent;
  if (!c.req.budget_id.empty())
    self->state.shared->sent(c.req.budget_id, now, std::exchange(c.shared_reserved, false));
  c.permit = permit;
  c.ticket = ticket;
  c.permit_provider = t.provider;
  // The limiter's window counts this call from now, when it goes upstream, not from its grant (which may have
  // waited in this mailbox): the provider counts arrivals.
  tell(self, "providers/" + t.provider + ":limiter", atoms::start_v, permit,
       static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count()));
  provider_call call{t, c.req};
  call.request.answer_direct = c.req.sink && c.attempts.empty(); // a first try: a good answer needs no judging
  call.request.timeout_ms = std::max<std::int64_t>(1, std::chrono::ceil<millis>(remaining).count()); // what is left
  auto provider = t.provider;
  auto learn = [self, id, provider, permit, ticket](const upstream_reply& r) {
    auto c = self->state.calls.find(id);
    caf::actor events = c != self->state.calls.end() ? c->second.req.events : caf::actor{};
    std::string step_id = c != self->state.calls.end() ? c->second.req.step_id : "";
    std::string persona = c != self->state.calls.end() ? c->second.req.persona : "";
    std::int64_t used = r.result == outcome::ok ? r.usage.prompt_tokens + r.usage.completion_tokens : -1;
    // A stream cut because its client hung up says nothing about the provider: the breaker is not told.
    bool client_left = r.result != outcome::ok && c != self->state.calls.end() && c->second.req.sink &&
                       c->second.req.sink->abandoned();
    auto& m = metrics::registry::global();
    m.inc("squad_upstream_calls_total",
          {{"provider", provider}, {"outcome", client_left ? "client_left" : to_string(r.result)}});
    if (r.latency_us > 0)
      m.observe("squad_upstream_latency_seconds", {{"provider", provider}}, static_cast<double>(r.latency_us) / 1e6);
    if (r.result == outcome::rate_limited)
      self->state.recent_429.push_back(self->clock().now());
    if (r.result == outcome::ok) {
      self->state.latencies.push_back(r.latency_ms);
      if (self->state.latencies.size() > 200)
        self->state.latencies.pop_front();
    }
    ask(self, caf::infinite, "providers/" + provider + ":limiter", atoms::release_v, permit, used, r.signals, r.result)
      .then([self, events, step_id, persona, provider](std::string& note) {
        if (!note.empty())
          note_event(self, events, "provider.throttled", step_id, persona, note,
                     nlohmann::json{{"provider", provider}}.dump());
      }, [](caf::error&) {});
    if (client_left)
      return tell(self, "providers/" + provider + ":breaker", atoms::cancel_v, ticket);
    ask(self, caf::infinite, "providers/" + provider + ":breaker", atoms::report_v, r.result, ticket)
      .then([self, events, step_id, persona, provider](std::string& change) {
        if (!change.empty())
          note_event(self, events, "provider.breaker", step_id, persona,
                     provider + " circuit breaker " + change,
                     nlohmann::json{{"provider", provider}, {"change", change}}.dump());
      }, [](caf::error&) {});
  };
  if (!self->state.sweeping) {
    self->state.sweeping = true;
    self->delayed_send(self, std::chrono::seconds{1}, atoms::tick_v);
  }
  ask(self, caf::infinite, "providers/" + t.provider, std::move(call))
    .then([self, id, target, learn](upstream_reply& r) {
            if (auto c = self->state.calls.find(id); c != self->state.calls.end())
              c->second.permit = 0; // answered: learn() releases it
            learn(r);
            on_reply(self, id, target, std::move(r));
          },
          [self, id, target, learn](caf::error& err) {
            if (auto c = self->state.calls.find(id); c != self->state.calls.end())
              c->second.permit = 0;
            upstream_reply r;
            r.result = err == caf::sec::request_timeout ? outcome::timeout : outcome::unavailable;
            r.detail = error_detail(self->system(), err);
            learn(r);
            on_reply(self, id, target, std::move(r));
          });
}

caf::behavior dispatcher(dispatcher_actor* self, caf::actor root, dispatch_options opts) {
  self->state.root = std::move(root);
  self->state.opts = opts;
  self->state.cache.emplace(opts.cache);
  self->state.shared.emplace(opts.shared_calls, opts.shared_ttl);
  self->set_down_handler([self](caf::down_msg& msg) { // a provider, limiter or breaker stopped: look it up again
    auto& h = self->state.handles;
    for (auto it = h.begin(); it != h.end();)
      it = it->second && it->second.address() == msg.source ? h.erase(it) : std::next(it);
  });
  return {
    [self](call_request& req) -> caf::result<call_result> {
      auto refuse = [&req](squad_errc code, std::string why) -> caf::result<call_result> {
        if (req.sink)
          std::exchange(req.sink, nullptr)->failed(code, why);
        return make_squad_error(code, std::move(why));
      };
      if (req.chain.empty())
        return refuse(squad_errc::chain_exhausted, "the call has no targets");
      auto& st = self->state;
      std::string key;
      bool p0 = req.priority == 0;
      if (st.cache->settings().enabled && req.cache_mode != cache_bypass) {
        key = response_cache::key_of(req);
        if (auto hit = p0 ? nullptr : st.cache->get(key, req.max_tokens, self->clock().now())) {
          note_event(self, req.events, "call.cached", req.step_id, req.persona,
                     "answered from the response cache (no LLM call)",
                     nlohmann::json{{"served_by", target_name(hit->served_by)}}.dump());
          call_result res;
          res.text = hit->text;
          res.finish_reason = hit->finish_reason;
          res.served_by = hit->served_by;
          res.usage = hit->usage;
          res.simulated = hit->simulated;
          res.cached = true;
          if (req.sink)
            std::exchange(req.sink, nullptr)->done(res);
          return res;
        }
      }
      if (req.cache_mode == cache_only)
        return refuse(squad_errc::shed, st.cache->settings().enabled ? "no cached answer"
                                                                      : "no cached answer (the cache is off)");
      bool reserve = !req.budget_id.empty() && req.priority != 0;
      if (!req.budget_id.empty()) { // a shared budget: refuse when it is spent, or when too many ids are in use
        auto v = st.shared->admit(req.budget_id, self->clock().now(), reserve, req.priority == 0);
        auto cls = to_string(static_cast<priority_class>(class_of(req)));
        if (v == shared_budgets::verdict::too_many_ids) {
          metrics::registry::global().inc("squad_budget_decisions_total",
                                          {{"class", cls}, {"action", "shed"}, {"reason", "too_many_budget_ids"}});
          return refuse(squad_errc::budget_spent, std::to_string(st.shared->max_ids()) +
                                                    " X-Squad-Run ids are in use; reuse one, or wait until some are idle an hour");
        }
        if (v == shared_budgets::verdict::spent) {
          auto why = "the budget of " + std::to_string(st.opts.shared_calls) + " LLM calls of X-Squad-Run " +
                     req.budget_id + " is spent";
          metrics::registry::global().inc("squad_budget_decisions_total",
                                          {{"class", cls}, {"action", "shed"}, {"reason", "budget_spent"}});
          note_event(self, req.events, "call.budget_spent", req.step_id, req.persona, why,
                     nlohmann::json{{"calls", st.opts.shared_calls}, {"budget_id", req.budget_id}}.dump());
          return refuse(squad_errc::budget_spent, why);
        }
      }
      if (req.run_id.empty()) // outside a run: shed only by what the call's chain can deliver, at its routing
        observe(self, req.events); // the pressure level is still followed (metrics, pressure.changed)
      auto now = self->clock().now();
      auto id = self->state.next_id++;
      chain_walker walker{req.chain.size(), now + millis{req.timeout_ms}, self->state.opts.walker};
      auto rp = self->make_response_promise();
      auto [slot, fresh] = self->state.calls.emplace(
        id, pending_call{rp, std::move(req), std::move(walker), {}, now, std::nullopt, {}, 0, {}, std::move(key), 0, 0, false, 0, 0, {}});
      slot->second.shared_reserved = reserve;
      if (!st.sweeping) { // every call is under the deadline sweep from its arrival
        st.sweeping = true;
        self->delayed_send(self, std::chrono::seconds{1}, atoms::tick_v);
      }
      step(self, id);
      return caf::delegated<call_result>{};
    },
    [self](atoms::retry, std::uint64_t id) { step(self, id); },
    [self](atoms::tick) { sweep(self); },
    [self](atoms::stats) {
      auto& st = self->state;
      std::int64_t queued = 0;
      for (auto& [provider, n] : st.queued)
        queued += n;
      return nlohmann::json{{"pressure", to_string(st.gauge.level())}, {"pressure_why", st.gauge.why()},
                            {"calls_in_flight", st.calls.size()}, {"queued_at_limiters", queued},
                            {"events", st.counts},
                            {"cache", {{"hits", st.cache->hits()}, {"misses", st.cache->misses()},
                                       {"entries", st.cache->size()}, {"bytes", st.cache->bytes()},
                                       {"evictions", st.cache->evictions()}}}}
        .dump();
    },
    [self](atoms::phase) {
      auto level = observe(self);
      return caf::make_message(static_cast<std::uint8_t>(level), self->state.gauge.why());
    },
  };
}

} // namespace

caf::actor spawn_dispatcher(caf::local_actor* parent, caf::actor root, dispatch_options opts) {
  return parent->spawn(dispatcher, std::move(root), opts);
}

} // namespace squad
