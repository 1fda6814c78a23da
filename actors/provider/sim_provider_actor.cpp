#include "actors/limiter/sliding_window.hpp"
#include "actors/provider/chat_params.hpp"
#include "actors/provider/embeddings.hpp"
#include "actors/provider/provider.hpp"
#include "actors/provider/sim_model.hpp"
#include "actors/stray_errors.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace squad {

namespace {

// What the simulated upstream enforces for one limits domain (the provider's, or a model's with its own limits).
struct sim_domain {
  sliding_window window;
  std::int64_t concurrency;
  std::int64_t in_flight = 0;
  std::multiset<steady_time> due; // completion times of its calls in flight
};

struct sim_state {
  provider_config cfg;
  std::map<std::string, sim_domain> domains;
  std::map<std::uint64_t, std::string> domain_of; // calls in flight
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, caf::response_promise> pending;
  std::map<std::uint64_t, upstream_reply> replies;
  std::map<std::uint64_t, std::shared_ptr<call_sink>> sinks; // calls that asked to stream
  std::int64_t calls = 0;                                    // answered so far (for sim.fault_every)
  static inline const char* name = "squad.sim_provider";
};

using sim_actor = provider_actor::stateful_pointer<sim_state>;

upstream_reply limited(const sim_state& st, caf::timespan wait, const char* what) {
  upstream_reply r;
  r.result = outcome::rate_limited;
  r.simulated = true;
  auto ms = std::max<std::int64_t>(1, std::chrono::ceil<millis>(wait).count());
  r.detail = st.cfg.name + ": " + what + "; retry after " + std::to_string(ms) + "ms";
  r.signals.retry_after_ms = ms;
  r.signals.remaining_requests = 0;
  return r;
}

std::string last_of_role(const std::vector<chat_message>& msgs, const char* role) {
  for (auto i = msgs.rbegin(); i != msgs.rend(); ++i)
    if (i->role == role)
      return i->content;
  return {};
}

sim_domain& domain_for(sim_state& st, const chain_target& t) {
  auto it = st.domains.find(t.domain());
  if (it != st.domains.end())
    return it->second;
  const limits_config* l = &st.cfg.limits;
  for (const auto& m : st.cfg.models)
    if (m.name == t.model && m.limits && !t.limits.empty())
      l = &*m.limits;
  return st.domains.emplace(t.domain(), sim_domain{sliding_window{l->requests, l->per}, l->concurrency, 0, {}})
      .first->second;
}

provider_actor::behavior_type sim_provider(sim_actor self, provider_config cfg) {
  survive_stray_errors(self, "provider");
  self->state.cfg = std::move(cfg);
  return {
      [self](provider_call& call) -> caf::result<upstream_reply> {
        auto& st = self->state;
        bool embed = !call.request.embed_input_json.empty();
        if (auto no = embed ? std::nullopt
                            : refuse_params(provider_family::sim, call.request)) { // tools...: said, never dropped
          upstream_reply r;
          r.result = outcome::bad_request;
          r.simulated = true;
          r.detail = no->message + " (param " + no->param + ")";
          return r;
        }
        auto now = self->clock().now();
        auto& d = domain_for(st, call.target);
        while (!d.due.empty() && *d.due.begin() <= now) // calls whose answer is due have finished
          d.due.erase(d.due.begin());
        if (d.in_flight >= d.concurrency)
          return limited(st, d.due.empty() ? caf::timespan{millis{1}} : *d.due.begin() - now,
                         "concurrency limit reached");
        if (!d.window.try_admit(now))
          return limited(st, d.window.earliest_admit(now) - now, "request window full");
        auto answer = make_sim_answer(st.cfg.name, call.target.model_id, last_of_role(call.request.messages, "system"),
                                      last_of_role(call.request.messages, "user"), call.request.max_tokens, st.cfg.sim);
        upstream_reply r;
        if (embed) { // vectors of `dimensions` numbers (8 unless asked), deterministic per input
          auto params =
              nlohmann::json::parse(call.request.params_json.empty() ? "{}" : call.request.params_json, nullptr, false);
          auto dims = params.is_object() ? params.value("dimensions", std::int64_t{8}) : std::int64_t{8};
          r = sim_embeddings(call.request.embed_input_json, std::clamp<std::int64_t>(dims, 1, 4096));
        } else {
          r.text = std::move(answer.text);
          r.finish_reason = answer.finish_reason;
          r.usage = {answer.prompt_tokens, answer.completion_tokens};
        }
        r.simulated = true;
        r.latency_ms = answer.latency.count();
        r.latency_us = r.latency_ms * 1000;
        r.signals.remaining_requests = d.window.limit() - d.window.occupancy(now);
        auto id = st.next_id++;
        ++d.in_flight;
        st.domain_of.emplace(id, call.target.domain());
        st.pending.emplace(id, self->make_response_promise());
        st.replies.emplace(id, std::move(r));
        if (call.request.stream && call.request.sink)
          st.sinks.emplace(id, call.request.sink);
        d.due.insert(now + answer.latency);
        self->delayed_send(self, answer.latency, atoms::done_v, id);
        return caf::delegated<upstream_reply>{};
      },
      [self](atoms::done, std::uint64_t id) {
        auto& st = self->state;
        auto p = st.pending.find(id);
        auto r = st.replies.find(id);
        if (p == st.pending.end() || r == st.replies.end())
          return;
        if (st.cfg.sim.fault != "none" && ++st.calls % st.cfg.sim.fault_every == 0) { // sim.fault
          auto& reply = r->second;
          reply.result = st.cfg.sim.fault == "cut" ? outcome::stream_cut : outcome::server_error;
          reply.detail = st.cfg.name + ": simulated " + st.cfg.sim.fault + " (sim.fault)";
          if (reply.result == outcome::stream_cut) { // a few words got through before the cut
            auto cut = reply.text.find(' ', reply.text.find(' ') + 1);
            reply.partial_text = reply.text.substr(0, std::min(cut, reply.text.size()));
            if (auto s = st.sinks.find(id); s != st.sinks.end())
              s->second->delta(reply.partial_text);
          }
          reply.text.clear();
          reply.finish_reason.clear();
          st.sinks.erase(id);
        }
        if (auto s = st.sinks.find(id); s != st.sinks.end()) { // "streams" the answer in pieces of a few words
          std::string_view text = r->second.text;
          while (!text.empty()) {
            std::size_t cut = 0;
            for (int words = 0; words < 4 && cut < text.size(); ++words) {
              cut = text.find(' ', cut + 1);
              if (cut == std::string_view::npos)
                cut = text.size();
            }
            s->second->delta(text.substr(0, cut));
            text.remove_prefix(cut);
          }
          st.sinks.erase(s);
        }
        p->second.deliver(std::move(r->second));
        if (auto dm = st.domain_of.find(id); dm != st.domain_of.end()) {
          --st.domains.at(dm->second).in_flight;
          st.domain_of.erase(dm);
        }
        st.pending.erase(p);
        st.replies.erase(r);
      },
      [](atoms::done, std::uint64_t, upstream_reply&) {}, // an HTTP provider's: never sent here
      [](atoms::crash) { throw std::runtime_error("crash requested (test hook)"); },
  };
}

} // namespace

provider_actor spawn_sim_provider(caf::local_actor* parent, const provider_config& cfg) {
  return parent->spawn(sim_provider, cfg);
}

provider_actor spawn_provider(caf::local_actor* parent, const provider_config& cfg, const provider_pools& pools,
                              std::string& why) {
  if (cfg.kind == "sim")
    return spawn_sim_provider(parent, cfg);
  if (auto it = pools.find(cfg.name); it != pools.end() && it->second)
    return spawn_http_provider(parent, cfg, it->second);
  why = "providers." + cfg.name + ": no HTTP pool was made for this " + cfg.kind + " provider";
  return {};
}

} // namespace squad
