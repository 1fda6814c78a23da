#include "actors/dispatcher/dispatcher_state.hpp"
#include "actors/limiter/limiter.hpp"
#include "actors/stray_errors.hpp"
#include "runtime/metrics/registry.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace squad {

namespace {

const metrics::counter_family events_family{
    "squad_events_total",
    "run and call events by type: step.fallback, step.degraded, call.shed, call.skipped, call.cached, ..."};
const metrics::by_labels<metrics::counter_family> events_by_type{events_family, {"type"}};
const metrics::histogram_family call_duration_family{
    "squad_call_duration_seconds", "time from a call's arrival at the dispatcher to its answer (waits, fallbacks and "
                                   "upstream included), by priority class"};
const metrics::by_labels<metrics::histogram_family> call_duration{call_duration_family, {"class"}};

} // namespace

void emit_event(const event_sink_actor& sink, std::string type, const std::string& step_id, const std::string& persona,
                std::string message, std::string data_json) {
  events_by_type.get({type}).inc(); // fallbacks, sheds, degradations, ...
  if (!sink)
    return;
  run_event ev;
  ev.type = std::move(type);
  ev.step_id = step_id;
  ev.persona = persona;
  ev.message = std::move(message);
  ev.data_json = std::move(data_json);
  caf::anon_send(sink, std::move(ev)); // run event sinks are dynamically typed (a boss, a listener, squad run)
}

namespace dispatch {

// The answer goes to the requester, and to the call's sink when the caller is not an actor.
void deliver(pending_call& c, call_result res) {
  res.upstream_us = c.upstream_us;
  if (c.req.sink) {
    c.req.sink->done(res);
    c.req.sink.reset();
  }
  c.rp.deliver(std::move(res));
}

void deliver(pending_call& c, squad_errc code, std::string why, std::int64_t retry_after_ms) {
  if (c.req.sink) {
    // The typed class of the failure (what the attempts add up to) picks the API's status, never the text.
    auto cls = code == squad_errc::chain_exhausted ? classify_attempts(c.attempts) : failure_class::unknown;
    c.req.sink->failed(call_failure{code, why, retry_after_ms, cls, c.attempts});
    c.req.sink.reset();
  }
  c.rp.deliver(make_squad_error(code, std::move(why)));
}

provider_handles handles_of(dispatcher_self self, const std::string& provider) {
  if (auto* h = self->state.dir->provider(provider))
    return *h;
  return {};
}

// Every event the dispatcher emits is also counted by type: the counts are its metrics ((stats)).
void note_event(dispatcher_self self, const event_sink_actor& sink, std::string type, const std::string& step_id,
                const std::string& persona, std::string message, std::string data_json) {
  ++self->state.counts[type];
  emit_event(sink, std::move(type), step_id, persona, std::move(message), std::move(data_json));
}

std::int64_t ms_between(steady_time a, steady_time b) {
  return std::chrono::duration_cast<millis>(b - a).count();
}

std::string target_name(const chain_target& t) {
  return t.provider + "/" + t.model;
}

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

std::size_t class_of(const call_request& req) {
  return req.priority > 3 ? 1 : req.priority;
} // 255: P1

// A call routed to `provider` waits for its limiter's answer: counted in the queue (and taken off with -1).
void count_queued(dispatcher_self self, const std::string& provider, std::size_t cls, std::int64_t delta) {
  self->state.queued[provider] += delta;
  self->state.queued_by_class[provider][cls] += delta;
}

// Calls queued for `provider` that its limiter serves before one of class `cls` (the same class or higher).
std::int64_t queued_ahead(dispatcher_self self, const std::string& provider, std::size_t cls, bool parked_too) {
  auto it = self->state.queued_by_class.find(provider);
  if (it == self->state.queued_by_class.end())
    return 0;
  std::int64_t n = 0;
  for (std::size_t k = 0; k <= cls; ++k)
    n += std::max<std::int64_t>(0, it->second[k]);
  if (!parked_too)
    return n;
  if (auto p = self->state.parked_by_class.find(provider); p != self->state.parked_by_class.end())
    for (std::size_t k = 0; k <= cls; ++k) // parked calls of its class or higher come first too
      n += std::max<std::int64_t>(0, p->second[k]);
  return n;
}

// Updates the pressure level from the latest signals; a change is an event on `events` (the call that saw it).
pressure_level observe(dispatcher_self self, const event_sink_actor& events) {
  auto& st = self->state;
  auto now = self->clock().now();
  std::int64_t waiting = 0;
  for (auto& [provider, n] : st.queued)
    waiting += std::max<std::int64_t>(0, n);
  for (auto& [provider, by_class] : st.parked_by_class) // parked calls wait as much as queued ones
    for (auto n : by_class)
      waiting += std::max<std::int64_t>(0, n);
  auto sig = st.inputs.signals(now, waiting);
  auto before = st.gauge.level();
  auto after = st.gauge.update(sig, now);
  if (after != before)
    note_event(self, events, "pressure.changed", "", "",
               std::string("pressure ") + to_string(before) + " -> " + to_string(after) + ": " + st.gauge.why(),
               nlohmann::json{{"from", to_string(before)}, {"to", to_string(after)}, {"why", st.gauge.why()}}.dump());
  return after;
}

// Whether a call's shared budget (X-Squad-Run) is spent. P0 runs beyond it, as in a run.
bool shared_spent(dispatcher_self self, const call_request& req) {
  return !req.budget_id.empty() && req.priority != 0 && self->state.shared->spent(req.budget_id);
}

// Ends a call's bookkeeping: its unused budget reservation comes back.
void forget_call(dispatcher_self self, std::map<std::uint64_t, pending_call>::iterator i) {
  auto& c = i->second;
  if (c.shared_reserved)
    self->state.shared->unreserve(c.req.budget_id);
  // Arrival to answer (or end), waits, fallbacks and upstream included, by class: what a caller of each class sees.
  call_duration.get({to_string(static_cast<priority_class>(class_of(c.req)))})
      .observe(std::chrono::duration<double>(self->clock().now() - c.started).count());
  unpark(self, c);
  auto id = i->first;
  self->state.calls.erase(i);
  release_global(self, id); // after the erase: a call held for the cap is given back, not sent
}

// One deadline per call, checked by a sweep every second while calls are in flight (not a timer per request:
// CAF keeps each request timeout in its clock until it fires, which at 15k calls/s and 60 s deadlines held
// ~100 MB). Provider calls need it only as a safety net: HTTP exchanges carry the deadline themselves.

void sweep(dispatcher_self self) {
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
        auto h = handles_of(self, c.permit_provider);
        caf::anon_send(h.limiter, atoms::release_v, c.permit, std::int64_t{-1}, limit_signals{}, outcome::timeout);
        caf::anon_send(h.breaker, atoms::cancel_v, c.ticket);
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

} // namespace dispatch

namespace {

using namespace dispatch;

// NOLINTNEXTLINE(performance-unnecessary-value-param): CAF passes a function actor's arguments by value
dispatcher_actor::behavior_type dispatcher(dispatcher_self self, std::shared_ptr<directory> dir,
                                           dispatch_options opts) {
  survive_stray_errors(self, "dispatcher");
  self->state.dir = directory_view{std::move(dir)};
  self->state.opts = opts;
  self->state.cache.emplace(opts.cache);
  self->state.shared.emplace(opts.shared_calls, opts.shared_ttl);
  return {
      [self](call_request& req) -> caf::result<call_result> {
        auto refuse = [&req](squad_errc code, std::string why) -> caf::result<call_result> {
          if (req.sink)
            std::exchange(req.sink, nullptr)->failed(call_failure{code, why, -1, failure_class::unknown, {}});
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
            res.embeddings_json = hit->embeddings_json;
            res.cached = true;
            if (req.sink)
              std::exchange(req.sink, nullptr)->done(res);
            return res;
          }
        }
        if (req.cache_mode == cache_only)
          return refuse(squad_errc::shed,
                        st.cache->settings().enabled ? "no cached answer" : "no cached answer (the cache is off)");
        bool reserve = !req.budget_id.empty() && req.priority != 0;
        if (!req.budget_id.empty()) { // a shared budget: refuse when it is spent, or when too many ids are in use
          auto v = st.shared->admit(req.budget_id, self->clock().now(), reserve, req.priority == 0);
          auto cls = to_string(static_cast<priority_class>(class_of(req)));
          if (v == shared_budgets::verdict::too_many_ids) {
            count_budget_decision(cls, "shed", "too_many_budget_ids");
            return refuse(squad_errc::budget_spent,
                          std::to_string(st.shared->max_ids()) +
                              " X-Squad-Run ids are in use; reuse one, or wait until some are idle an hour");
          }
          if (v == shared_budgets::verdict::spent) {
            auto why = "the budget of " + std::to_string(st.opts.shared_calls) + " LLM calls of X-Squad-Run " +
                       req.budget_id + " is spent";
            count_budget_decision(cls, "shed", "budget_spent");
            note_event(self, req.events, "call.budget_spent", req.step_id, req.persona, why,
                       nlohmann::json{{"calls", st.opts.shared_calls}, {"budget_id", req.budget_id}}.dump());
            return refuse(squad_errc::budget_spent, why);
          }
        }
        if (req.run_id.empty())      // outside a run: shed only by what the call's chain can deliver, at its routing
          observe(self, req.events); // the pressure level is still followed (metrics, pressure.changed)
        auto now = self->clock().now();
        auto id = self->state.next_id++;
        // Counted once, at its chain's first provider: a chain's shed forecast adds up its providers' arrivals.
        st.arrivals[req.chain.front().domain()].add(class_of(req), now);
        std::vector<retry_policy> policies;
        for (const auto& t : req.chain) {
          auto p = st.opts.retry.find(t.provider);
          policies.push_back(p != st.opts.retry.end() ? p->second : st.opts.walker.retry);
        }
        chain_walker walker{req.chain.size(), now + millis{req.timeout_ms}, st.opts.walker, std::move(policies)};
        auto rp = self->make_response_promise();
        auto [slot, fresh] = self->state.calls.emplace(id, pending_call{rp,
                                                                        std::move(req),
                                                                        std::move(walker),
                                                                        {},
                                                                        now,
                                                                        std::nullopt,
                                                                        {},
                                                                        0,
                                                                        {},
                                                                        std::move(key),
                                                                        0,
                                                                        0,
                                                                        false,
                                                                        0,
                                                                        0,
                                                                        {},
                                                                        {},
                                                                        {},
                                                                        0});
        slot->second.shared_reserved = reserve;
        pass_over_incapable(self, slot->second);
        if (!st.sweeping) { // every call is under the deadline sweep from its arrival
          st.sweeping = true;
          self->delayed_send(self, std::chrono::seconds{1}, atoms::tick_v);
        }
        step(self, id);
        return caf::delegated<call_result>{};
      },
      [self](atoms::retry, std::uint64_t id) { step(self, id); },
      [self](atoms::retry, std::uint64_t id, std::uint64_t seq) { // a rest or a park is over: route it again
        auto i = self->state.calls.find(id);
        if (i == self->state.calls.end())
          return;
        auto& c = i->second;
        if (c.resting && c.rest_seq == seq) { // (not when a breaker's opening woke it already)
          c.resting = false;
          step(self, id);
        } else if (c.park_seq == seq && unpark(self, c)) {
          step(self, id);
        }
      },
      [self](atoms::tick) { sweep(self); },
      [self](atoms::stats) {
        auto& st = self->state;
        std::int64_t queued = 0;
        for (auto& [provider, n] : st.queued)
          queued += n;
        return nlohmann::json{{"pressure", to_string(st.gauge.level())},
                              {"pressure_why", st.gauge.why()},
                              {"calls_in_flight", st.calls.size()},
                              {"queued_at_limiters", queued},
                              {"events", st.counts},
                              {"cache",
                               {{"hits", st.cache->hits()},
                                {"misses", st.cache->misses()},
                                {"entries", st.cache->size()},
                                {"bytes", st.cache->bytes()},
                                {"evictions", st.cache->evictions()}}}}
            .dump();
      },
      [self](atoms::phase) -> caf::result<std::uint8_t, std::string> {
        auto level = observe(self);
        return {static_cast<std::uint8_t>(level), self->state.gauge.why()};
      },
  };
}

} // namespace

dispatcher_actor spawn_dispatcher(caf::local_actor* parent, std::shared_ptr<directory> dir, dispatch_options opts) {
  return parent->spawn(dispatcher, std::move(dir), std::move(opts));
}

} // namespace squad
