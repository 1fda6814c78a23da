// One call's walk through its chain: step (what the walker says next), attempt (breaker, then the limiter's
// queue), send_call (the provider) and on_reply. Routing and the park are in dispatcher_route.cpp.
#include "actors/dispatcher/dispatcher_state.hpp"
#include "actors/dispatcher/route_choice.hpp"
#include "actors/limiter/limiter.hpp"
#include "runtime/metrics/registry.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace squad::dispatch {

namespace {
const metrics::counter_family held_global{"squad_global_cap_waits_total",
                                          "calls held because runtime.global_concurrency calls were upstream"};
const metrics::lazy<metrics::counter> held_global_total{metrics::resolver(held_global)};
const metrics::counter_family abandoned_family{
    "squad_calls_abandoned_total",
    "calls dropped unsent: their client closed its connection while they waited for a slot"};
const metrics::by_labels<metrics::counter_family> abandoned{abandoned_family, {"provider"}};
const metrics::histogram_family limiter_wait_family{"squad_limiter_wait_seconds",
                                                    "time calls waited in a limiter queue"};
const metrics::by_labels<metrics::histogram_family> limiter_wait{limiter_wait_family, {"provider", "class"}};
const metrics::counter_family upstream_calls_family{"squad_upstream_calls_total",
                                                    "upstream calls by provider and outcome"};
const metrics::by_labels<metrics::counter_family> upstream_calls{upstream_calls_family, {"provider", "outcome"}};
const metrics::histogram_family upstream_latency_family{"squad_upstream_latency_seconds",
                                                        "upstream exchange time by provider"};
const metrics::by_labels<metrics::histogram_family> upstream_latency{upstream_latency_family, {"provider"}};
} // namespace

void on_reply(dispatcher_self self, std::uint64_t id, std::size_t target, upstream_reply r) {
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
      ((r.text.find_first_not_of(" \t\r\n") == std::string::npos && r.tool_calls_json.empty() &&
        r.embeddings_json.empty()) ||
       r.finish_reason == "length")) {
    auto why = r.finish_reason == "length" ? "truncated answer (finish_reason length)" : "empty answer";
    c.attempts.push_back({t.provider, t.model, "bad_output", why, r.latency_ms, true});
    c.walker.record(target, outcome::bad_response, now, millis{0});
    for (std::size_t k = 0; k < c.req.chain.size(); ++k) // the worker tier has had its chance for this call
      if (c.req.chain[k].tier != "boss")
        c.walker.rest(k, steady_time::max());
    c.last_failed = target;
    return step(self, id);
  }
  c.upstream_us += r.latency_us;
  if (r.result != outcome::rate_limited) // a 429 is about capacity, not about how well the target serves
    observe_target(self->state.seen[target_name(t)], r.result == outcome::ok, static_cast<double>(r.latency_ms));
  c.attempts.push_back({t.provider, t.model, to_string(r.result), r.detail, r.latency_ms, true});
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
    res.tool_calls_json = std::move(r.tool_calls_json);
    res.system_fingerprint = std::move(r.system_fingerprint);
    res.logprobs_json = std::move(r.logprobs_json);
    res.embeddings_json = std::move(r.embeddings_json);
    res.latency_ms = ms_between(c.started, now);
    res.attempts = std::move(c.attempts);
    if (!c.cache_key.empty() && response_cache::storable(res))
      self->state.cache->put(
          c.cache_key,
          cached_answer{res.text, res.finish_reason, res.served_by, res.usage, res.simulated, res.embeddings_json},
          now);
    deliver(c, std::move(res));
    forget_call(self, i);
    return;
  }
  // An API call whose every upstream answer was a 429, twice or more, is answered 429 with the provider's own
  // Retry-After now rather than after every retry its budget allows: the client learns when to come back (a run's
  // step has its own long deadline and keeps waiting).
  if (r.result == outcome::rate_limited && c.req.run_id.empty() && c.attempts.size() >= 2 &&
      std::all_of(c.attempts.begin(), c.attempts.end(), [](auto& a) { return a.outcome == "rate_limited"; })) {
    deliver(c, squad_errc::chain_exhausted,
            "every upstream answer was a 429 (" + std::to_string(c.attempts.size()) +
                " tries): " + attempts_text(c.attempts),
            std::max<std::int64_t>(0, c.walker.next_ready_ms(now)));
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

// Refuses a call outside a run that its chain cannot serve within its class's tolerable wait: a 429 whose
// Retry-After is the earliest slot (`earliest_ms` from now), an event and a metric.
void shed_waiting(dispatcher_self self, std::map<std::uint64_t, pending_call>::iterator i, std::string why,
                  std::int64_t earliest_ms) {
  auto& c = i->second;
  auto cls = to_string(static_cast<priority_class>(class_of(c.req)));
  count_budget_decision(cls, "shed", "wait");
  note_event(self, c.req.events, "call.shed", c.req.step_id, c.req.persona, why,
             nlohmann::json{{"priority", cls},
                            {"earliest_ms", earliest_ms},
                            {"waited_ms", ms_between(c.started, self->clock().now())},
                            {"reason", "wait"}}
                 .dump());
  deliver(c, squad_errc::shed, std::move(why), earliest_ms);
  forget_call(self, i);
}

void step(dispatcher_self self, std::uint64_t id) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto now = self->clock().now();
  // A target resting for a backoff whose breaker has opened since is looked at now (it ends, or waits for the
  // probe if that fits): no call sits out a backoff for a provider already judged down.
  for (std::size_t k = 0; k < c.req.chain.size(); ++k)
    if (self->state.open_breakers.count(c.req.chain[k].provider) && c.walker.usable(k) &&
        std::find(c.probe_waits.begin(), c.probe_waits.end(), k) == c.probe_waits.end())
      c.walker.wake(k, now);
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
                              {"budget_id", c.req.budget_id}}
                   .dump());
    d.what = chain_walker::action::exhausted;
  }
  switch (d.what) {
  case chain_walker::action::exhausted: {
    auto why = std::string{"chain exhausted ("} + (spent ? spent_why : c.walker.exhausted_reason(now)) + " after " +
               std::to_string(c.walker.attempts()) + " attempts): " + attempts_text(c.attempts);
    if (!c.partial.empty()) { // better than nothing, and said so: the partial text, marked partial
      note_event(self, c.req.events, "step.partial", c.req.step_id, c.req.persona,
                 "every target failed; passing on " + std::to_string(c.partial.size()) +
                     " bytes of partial output from " + target_name(c.req.chain[c.partial_target]),
                 nlohmann::json{
                     {"bytes", c.partial.size()}, {"from", target_name(c.req.chain[c.partial_target])}, {"why", why}}
                     .dump());
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
    else if (now >= c.started + millis{c.req.timeout_ms}) // its time ran out: a timeout, not "no provider"
      deliver(c, squad_errc::deadline_exceeded, std::move(why));
    else // Retry-After: the soonest open breaker's probe, else when the first resting target is ready again
      deliver(c, squad_errc::chain_exhausted, std::move(why),
              c.reopen_ms >= 0 ? c.reopen_ms : c.walker.next_ready_ms(now));
    forget_call(self, i);
    return;
  }
  case chain_walker::action::wait: {
    auto wait_ms = ms_between(now, d.until);
    auto cls = class_of(c.req);
    auto tolerable = opts.tolerable_wait[cls];
    if (c.req.run_id.empty() && cls > 0 && c.sent == 0 && !c.accepted &&
        past_tolerable_wait(ms_between(c.started, now), wait_ms, tolerable)) { // no longer than its class tolerates
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
    note_event(
        self, c.req.events, "step.waiting", c.req.step_id, c.req.persona,
        "waiting " + std::to_string(wait_ms) + "ms: " + why,
        nlohmann::json{{"wait_ms", wait_ms}, {"attempts", c.walker.attempts()}, {"reason", reason}, {"detail", why}}
            .dump());
    c.resting = true;
    c.rest_seq = ++self->state.park_seq; // one numbering for park and rest timers
    self->delayed_send(self, d.until - now, atoms::retry_v, id, c.rest_seq);
    return;
  }
  case chain_walker::action::try_target:
    break;
  }
  route(self, id, c.walker.ready(now));
}

std::int64_t token_estimate(const call_request& req) {
  std::size_t chars = req.embed_input_json.size(); // an embeddings call's input counts like a prompt
  for (auto& m : req.messages)
    chars += m.content.size();
  return static_cast<std::int64_t>((chars + 3) / 4) + std::max<std::int64_t>(0, req.max_tokens);
}

// Records a try that never reached the upstream (breaker open, limiter queue timed out) and walks on.
void not_sent(dispatcher_self self, std::uint64_t id, std::size_t target, const char* why, std::string detail,
              millis rest) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto& t = c.req.chain[target];
  c.attempts.push_back({t.provider, t.model, why, std::move(detail), 0, false});
  c.walker.rest(target, self->clock().now() + rest);
  c.last_failed = target;
  step(self, id);
}

// A call whose API client closed its connection while it waited (call_sink::abandoned) is not sent upstream: it
// ends as cancelled, counted in squad_calls_abandoned_total. The limiter's window still counts the slot it was
// granted (Squad errs on the side of sending less, never more).
bool abandoned_by_client(dispatcher_self self, std::map<std::uint64_t, pending_call>::iterator i,
                         const std::string& provider, std::int64_t waited_ms) {
  auto& c = i->second;
  if (!c.req.sink || !c.req.sink->abandoned())
    return false;
  abandoned.get({provider}).inc();
  deliver(c, squad_errc::cancelled,
          "the client closed its connection after " + std::to_string(waited_ms) + "ms waiting for a slot at " +
              provider + "; the call was not sent");
  forget_call(self, i);
  return true;
}

// A try of `target` after a failed one is a retry, a fallback or an escalation: an event says which.
void note_attempt(dispatcher_self self, pending_call& c, std::size_t target) {
  auto& t = c.req.chain[target];
  if (c.last_failed) {
    auto& prev = c.req.chain[*c.last_failed];
    auto& last = c.attempts.back();
    bool same = *c.last_failed == target;
    bool escalated = prev.tier != "boss" && t.tier == "boss";
    const char* type = same ? "step.retry" : escalated ? "step.escalated" : "step.fallback";
    note_event(
        self, c.req.events, type, c.req.step_id, c.req.persona,
        (same ? "retrying " + target_name(t) : target_name(prev) + " -> " + target_name(t)) + " after " + last.outcome,
        nlohmann::json{
            {"from", target_name(prev)}, {"to", target_name(t)}, {"reason", last.outcome}, {"detail", last.detail}}
            .dump());
    c.last_failed.reset();
  }
}

void admitted(dispatcher_self self, std::uint64_t id, std::size_t target, std::uint64_t permit, std::uint64_t ticket) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto& provider = c.req.chain[target].provider;
  limiter_wait.get({provider, to_string(static_cast<priority_class>(class_of(c.req)))}).observe(0.0);
  self->state.inputs.on_wait(0); // the pressure gauge's wait signal
  observe(self, c.req.events);
  note_attempt(self, c, target);
  send_call(self, id, target, permit, ticket);
}

void attempt(dispatcher_self self, std::uint64_t id, std::size_t target, std::int64_t expected_wait_ms) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto now = self->clock().now();
  auto& t = c.req.chain[target];
  note_attempt(self, c, target);
  auto remaining = std::chrono::duration_cast<millis>(c.started + millis{c.req.timeout_ms} - now);
  auto provider = t.domain(); // whose limiter admits it
  auto queue_wait = std::max<std::int64_t>(0, std::min(remaining, self->state.opts.queue_wait).count());
  auto tolerable = self->state.opts.tolerable_wait[class_of(c.req)];
  // Not yet accepted (no estimate judged it): queued no longer than its class waits, then judged again.
  if (c.req.run_id.empty() && c.sent == 0 && !c.accepted && tolerable != millis::max())
    queue_wait = std::max<std::int64_t>(
        0, std::min(queue_wait, std::chrono::duration_cast<millis>(c.started + tolerable - now).count()));
  if (expected_wait_ms >= 0) // routed on an estimate: if it proves twice too hopeful (at least +1s), route again
    queue_wait = std::min(queue_wait, expected_wait_ms + std::max<std::int64_t>(expected_wait_ms / 2, 1000));
  auto priority = static_cast<std::uint8_t>(class_of(c.req));
  auto tokens = token_estimate(c.req);
  auto h = handles_of(self, provider);
  // 1. the breaker
  self->request(h.breaker, caf::infinite, atoms::allow_v, atoms::report_v)
      .then(
          [=](std::uint64_t ticket) {
            if (ticket == 0) {
              count_queued(self, provider, priority, -1);
              return not_sent(self, id, target, "breaker_open", provider + "'s circuit breaker is open", millis{1000});
            }
            // 2. the limiter: admitted now, or queued by priority until queue_wait
            self->request(h.limiter, caf::infinite, atoms::acquire_v, priority, tokens, queue_wait)
                .then(
                    [=](limit_grant& g) {
                      count_queued(self, provider, priority, -1);
                      if (!g.granted) {
                        self->send(h.breaker, atoms::cancel_v, ticket);
                        auto detail = g.wait_ms < 0 ? "the call's tokens exceed " + provider + "'s limit per window"
                                                    : "no slot within " + std::to_string(queue_wait) + "ms (" + g.rule +
                                                          "; next in ~" + std::to_string(g.wait_ms) + "ms)";
                        return not_sent(self, id, target, "limited", detail,
                                        millis{g.wait_ms < 0 ? std::int64_t{1} << 40 : g.wait_ms});
                      }
                      limiter_wait.get({provider, to_string(static_cast<priority_class>(priority))})
                          .observe(static_cast<double>(g.waited_ms) / 1000);
                      auto c = self->state.calls.find(id);
                      bool gone = c == self->state.calls.end();
                      // Only a call that waited can have been given up on (and asking costs a system call).
                      if (gone || (g.waited_ms > 0 && abandoned_by_client(self, c, provider, g.waited_ms))) {
                        // the call is gone: give the slot back unused
                        caf::anon_send(h.limiter, atoms::release_v, g.permit, std::int64_t{-1}, limit_signals{},
                                       outcome::unavailable);
                        self->send(h.breaker, atoms::cancel_v, ticket);
                        return;
                      }
                      if (g.waited_ms > 0)
                        note_event(self, c->second.req.events, "step.queued", c->second.req.step_id,
                                   c->second.req.persona,
                                   "waited " + std::to_string(g.waited_ms) + "ms for a slot at " + provider,
                                   nlohmann::json{{"provider", provider}, {"waited_ms", g.waited_ms}}.dump());
                      send_call(self, id, target, g.permit, ticket);
                    },
                    [=](caf::error& err) {
                      count_queued(self, provider, priority, -1);
                      not_sent(self, id, target, "unavailable", "limiter: " + error_detail(self->system(), err),
                               millis{1000});
                    });
          },
          [=](caf::error& err) {
            count_queued(self, provider, priority, -1);
            not_sent(self, id, target, "unavailable", "breaker: " + error_detail(self->system(), err), millis{1000});
          });
}

// 3. the provider; then, off the answer's path, the limiter and breaker learn how it went.
void send_call(dispatcher_self self, std::uint64_t id, std::size_t target, std::uint64_t permit, std::uint64_t ticket) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto& st = self->state;
  if (st.opts.global_concurrency > 0 && st.upstream_now.count(id) == 0) {
    if (static_cast<std::int64_t>(st.upstream_now.size()) >= st.opts.global_concurrency) {
      // Over the global cap: hold the permit until a call upstream answers (one event and a metric).
      auto cls = class_of(c.req);
      auto at = std::find_if(st.held.begin(), st.held.end(), [cls](auto& h) { return h.cls > cls; });
      st.held.insert(at, {id, target, permit, ticket, cls, c.req.chain[target].domain()});
      held_global_total.get().inc();
      note_event(self, c.req.events, "step.waiting", c.req.step_id, c.req.persona,
                 std::to_string(st.upstream_now.size()) +
                     " calls are upstream, the global cap (runtime.global_concurrency)" + "; " +
                     target_name(c.req.chain[target]) + " goes when one answers",
                 nlohmann::json{{"reason", "global_concurrency"},
                                {"in_flight", st.upstream_now.size()},
                                {"cap", st.opts.global_concurrency}}
                     .dump());
      return;
    }
    st.upstream_now.insert(id);
  }
  auto now = self->clock().now();
  auto& t = c.req.chain[target];
  auto remaining = c.started + millis{c.req.timeout_ms} - now;
  ++c.sent;
  if (!c.req.budget_id.empty())
    self->state.shared->sent(c.req.budget_id, now, std::exchange(c.shared_reserved, false));
  c.permit = permit;
  c.ticket = ticket;
  c.permit_provider = t.domain();
  // The limiter's window counts this call from now, when it goes upstream, not from its grant (which may have
  // waited in this mailbox): the provider counts arrivals.
  auto h = handles_of(self, t.domain());
  self->send(
      h.limiter, atoms::start_v, permit,
      static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count()));
  provider_call call{t, c.req};
  call.request.answer_direct = c.req.sink && c.attempts.empty(); // a first try: a good answer needs no judging
  call.request.timeout_ms = std::max<std::int64_t>(1, std::chrono::ceil<millis>(remaining).count()); // what is left
  // With another target still in the walk, this attempt's response head may take half of what is left: a stalled
  // upstream cannot use up the deadline its fallback needs.
  for (std::size_t k = 0; k < c.req.chain.size(); ++k)
    if (k != target && c.walker.usable(k)) {
      call.request.head_ms = std::max<std::int64_t>(1, call.request.timeout_ms / 2);
      break;
    }
  auto provider = t.provider;
  auto domain = t.domain();
  auto learn = [self, id, provider, domain, permit, ticket, h](const upstream_reply& r) {
    release_global(self, id);
    auto c = self->state.calls.find(id);
    event_sink_actor events = c != self->state.calls.end() ? c->second.req.events : event_sink_actor{};
    std::string step_id = c != self->state.calls.end() ? c->second.req.step_id : "";
    std::string persona = c != self->state.calls.end() ? c->second.req.persona : "";
    std::int64_t used = r.result == outcome::ok ? r.usage.prompt_tokens + r.usage.completion_tokens : -1;
    // A stream cut because its client hung up says nothing about the provider: the breaker is not told.
    bool client_left = r.result != outcome::ok && c != self->state.calls.end() && c->second.req.sink &&
                       c->second.req.sink->abandoned();
    upstream_calls.get({provider, client_left ? "client_left" : to_string(r.result)}).inc();
    if (r.latency_us > 0)
      upstream_latency.get({provider}).observe(static_cast<double>(r.latency_us) / 1e6);
    self->state.inputs.on_reply(r.result == outcome::rate_limited, r.result == outcome::ok, r.latency_ms,
                                self->clock().now());
    self->request(h.limiter, caf::infinite, atoms::release_v, permit, used, r.signals, r.result)
        .then(
            [self, events, step_id, persona, domain](std::string& note) {
              wake_parked(self, domain); // the slot is free at the limiter now
              if (!note.empty())
                note_event(self, events, "provider.throttled", step_id, persona, note,
                           nlohmann::json{{"provider", domain}}.dump());
            },
            [](caf::error&) {});
    if (client_left)
      return self->send(h.breaker, atoms::cancel_v, ticket);
    self->request(h.breaker, caf::infinite, atoms::report_v, r.result, ticket)
        .then(
            [self, events, step_id, persona, provider](std::string& change) {
              if (change.empty())
                return;
              note_event(self, events, "provider.breaker", step_id, persona, provider + " circuit breaker " + change,
                         nlohmann::json{{"provider", provider}, {"change", change}}.dump());
              if (change.size() > 4 && change.compare(change.size() - 4, 4, "open") == 0) {
                self->state.open_breakers.insert(provider);
                wake_resting(self, provider);
              } else {
                self->state.open_breakers.erase(provider);
              }
            },
            [](caf::error&) {});
  };
  if (!self->state.sweeping) {
    self->state.sweeping = true;
    self->delayed_send(self, std::chrono::seconds{1}, atoms::tick_v);
  }
  self->request(h.provider, caf::infinite, std::move(call))
      .then(
          [self, id, target, learn](upstream_reply& r) {
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

} // namespace squad::dispatch
