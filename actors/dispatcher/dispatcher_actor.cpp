#include "actors/dispatcher/dispatcher.hpp"

#include <nlohmann/json.hpp>

#include <map>

namespace squad {

void emit_event(caf::event_based_actor* self, const caf::actor& sink, std::string type, const std::string& step_id,
                const std::string& persona, std::string message, std::string data_json) {
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
};

struct dispatcher_state {
  caf::actor root;
  walker_options opts;
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, pending_call> calls;
  static inline const char* name = "squad.dispatcher";
};

using dispatcher_actor = caf::stateful_actor<dispatcher_state>;

std::int64_t ms_between(steady_time a, steady_time b) {
  return std::chrono::duration_cast<millis>(b - a).count();
}

std::string target_name(const chain_target& t) { return t.provider + "/" + t.model; }

std::string attempts_text(const std::vector<attempt_info>& attempts) {
  std::string out;
  for (auto& a : attempts) {
    out += out.empty() ? "" : "; ";
    out += a.provider + "/" + a.model + ": " + a.outcome + (a.detail.empty() ? "" : " (" + a.detail + ")");
  }
  return out.empty() ? "no attempt was possible" : out;
}

void step(dispatcher_actor* self, std::uint64_t id);

void on_reply(dispatcher_actor* self, std::uint64_t id, std::size_t target, upstream_reply r) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto now = self->clock().now();
  auto& t = c.req.chain[target];
  c.attempts.push_back({t.provider, t.model, to_string(r.result), r.detail, r.latency_ms});
  c.walker.record(target, r.result, now, millis{std::max<std::int64_t>(0, r.signals.retry_after_ms)});
  if (r.result == outcome::ok) {
    call_result res;
    res.text = std::move(r.text);
    res.finish_reason = std::move(r.finish_reason);
    res.served_by = t;
    res.usage = r.usage;
    res.simulated = r.simulated;
    res.latency_ms = ms_between(c.started, now);
    res.attempts = std::move(c.attempts);
    c.rp.deliver(std::move(res));
    self->state.calls.erase(i);
    return;
  }
  c.last_failed = target;
  step(self, id);
}

void step(dispatcher_actor* self, std::uint64_t id) {
  auto i = self->state.calls.find(id);
  if (i == self->state.calls.end())
    return;
  auto& c = i->second;
  auto now = self->clock().now();
  auto d = c.walker.next(now);
  switch (d.what) {
    case chain_walker::action::exhausted: {
      auto why = std::string{"chain exhausted ("} + c.walker.exhausted_reason(now) + " after "
                 + std::to_string(c.walker.attempts()) + " attempts): " + attempts_text(c.attempts);
      c.rp.deliver(make_squad_error(squad_errc::chain_exhausted, why));
      self->state.calls.erase(i);
      return;
    }
    case chain_walker::action::wait: {
      auto wait_ms = ms_between(now, d.until);
      emit_event(self, c.req.events, "step.waiting", c.req.step_id, c.req.persona,
                 "every target is busy; waiting " + std::to_string(wait_ms) + "ms",
                 nlohmann::json{{"wait_ms", wait_ms}, {"attempts", c.walker.attempts()}}.dump());
      self->delayed_send(self, d.until - now, atoms::retry_v, id);
      return;
    }
    case chain_walker::action::try_target:
      break;
  }
  auto& t = c.req.chain[d.target];
  if (c.last_failed) {
    auto& prev = c.req.chain[*c.last_failed];
    auto& last = c.attempts.back();
    bool same = *c.last_failed == d.target;
    emit_event(self, c.req.events, same ? "step.retry" : "step.fallback", c.req.step_id, c.req.persona,
               (same ? "retrying " + target_name(t) : target_name(prev) + " -> " + target_name(t)) + " after "
                 + last.outcome,
               nlohmann::json{{"from", target_name(prev)}, {"to", target_name(t)}, {"reason", last.outcome},
                              {"detail", last.detail}}
                 .dump());
  }
  auto remaining = c.started + millis{c.req.timeout_ms} - now;
  provider_call call{t, c.req};
  call.request.timeout_ms = std::max<std::int64_t>(1, std::chrono::ceil<millis>(remaining).count()); // what is left
  auto target = d.target;
  self->request(self->state.root, remaining, atoms::forward_v, "providers/" + t.provider, caf::make_message(std::move(call)))
    .then([self, id, target](upstream_reply& r) { on_reply(self, id, target, std::move(r)); },
          [self, id, target](caf::error& err) {
            upstream_reply r;
            r.result = err == caf::sec::request_timeout ? outcome::timeout : outcome::unavailable;
            r.detail = error_detail(self->system(), err);
            on_reply(self, id, target, std::move(r));
          });
}

caf::behavior dispatcher(dispatcher_actor* self, caf::actor root, walker_options opts) {
  self->state.root = std::move(root);
  self->state.opts = opts;
  return {
    [self](call_request& req) -> caf::result<call_result> {
      if (req.chain.empty())
        return make_squad_error(squad_errc::chain_exhausted, "the call has no targets");
      auto now = self->clock().now();
      auto id = self->state.next_id++;
      chain_walker walker{req.chain.size(), now + millis{req.timeout_ms}, self->state.opts};
      auto rp = self->make_response_promise();
      self->state.calls.emplace(id, pending_call{rp, std::move(req), std::move(walker), {}, now, std::nullopt});
      step(self, id);
      return caf::delegated<call_result>{};
    },
    [self](atoms::retry, std::uint64_t id) { step(self, id); },
  };
}

} // namespace

caf::actor spawn_dispatcher(caf::local_actor* parent, caf::actor root, walker_options opts) {
  return parent->spawn(dispatcher, std::move(root), opts);
}

} // namespace squad
