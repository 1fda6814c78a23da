#include "actors/budget/budget.hpp"
#include "actors/budget/budget_ledger.hpp"
#include "actors/budget/money_ledger.hpp"
#include "actors/budget/pressure.hpp"
#include "actors/registry/directory.hpp"
#include "runtime/metrics/registry.hpp"

#include <nlohmann/json.hpp>

#include <map>

namespace squad {

namespace {

const metrics::counter_family decisions_family{
    "squad_budget_decisions_total",
    "budget allocator decisions by priority class, action (call, cache, skip, shed) and reason"};
const metrics::by_labels<metrics::counter_family> decisions{decisions_family, {"class", "action", "reason"}};

} // namespace

void count_budget_decision(std::string_view cls, std::string_view action, std::string_view reason) {
  decisions.get({cls, action, reason}).inc();
}

namespace {

struct budget_state {
  std::optional<budget_ledger> ledger;
  std::optional<money_ledger> money;
  double worst_in = 0, worst_out = 0; // USD per 1M tokens
  directory_view dir;
  std::int64_t granted = 0, degraded = 0, cache_only = 0;
  std::map<std::string, std::int64_t> skips; // by reason
  static inline const char* name = "squad.budget";
};

using budget_self = budget_actor::stateful_pointer<budget_state>;

budget_grant decide_grant_inner(budget_self self, std::uint8_t priority, std::int64_t tokens, std::int64_t max_tokens,
                                double temperature, bool optional, pressure_level level);

// Every decision is counted by class, action and a short reason (metrics), then returned.
budget_grant decide_grant(budget_self self, std::uint8_t priority, std::int64_t tokens, std::int64_t max_tokens,
                          double temperature, bool optional, pressure_level level) {
  auto g = decide_grant_inner(self, priority, tokens, max_tokens, temperature, optional, level);
  auto cls = static_cast<priority_class>(std::min<int>(priority, 3));
  std::string reason = g.action == "call"                              ? (g.degraded.empty() ? "granted" : "degraded")
                       : g.reason.find("dropped") != std::string::npos ? "optional_dropped"
                       : g.reason.find("budget") != std::string::npos  ? "budget_spent"
                                                                       : "pressure";
  count_budget_decision(to_string(cls), g.action, reason);
  return g;
}

budget_grant decide_grant_inner(budget_self self, std::uint8_t priority, std::int64_t tokens, std::int64_t max_tokens,
                                double temperature, bool optional, pressure_level level) {
  auto& st = self->state;
  auto cls = static_cast<priority_class>(std::min<int>(priority, 3));
  budget_grant g;
  g.pressure = to_string(level);
  auto deg = degrade(step_params{max_tokens, temperature, false, optional}, level);
  if (deg.drop) {
    g.action = "skip";
    g.reason = "optional step dropped (pressure " + g.pressure + ")";
    ++st.skips[g.reason];
    return g;
  }
  // Would the ledger grant it? A refusal means no budget left for this class.
  auto r = st.ledger->reserve(cls, tokens);
  bool budget_left = r.granted && !r.over_budget;
  // The allocator cannot see the cache: it asks what a miss would get. A call is looked up in the cache on its way
  // anyway (below P0); where a miss means skip but a hit would be served, the step may use the cache only.
  auto d = decide(cls, level, budget_left || cls == priority_class::p0, false);
  if (d.action != shed_action::call) {
    if (r.granted)
      st.ledger->cancel(r.id);
    g.reason = !r.granted && cls != priority_class::p0 ? r.reason : d.reason;
    if (decide(cls, level, budget_left, true).action == shed_action::cache) {
      g.action = "cache";
      ++st.cache_only;
      return g;
    }
    g.action = "skip";
    ++st.skips[g.reason];
    return g;
  }
  if (st.money->limited()) { // the worst case this call could cost must fit, for every class
    auto prompt = std::max<std::int64_t>(0, tokens - max_tokens);
    auto worst = (static_cast<double>(prompt) * st.worst_in +
                  static_cast<double>(std::max<std::int64_t>(deg.params.max_tokens, 0)) * st.worst_out) /
                 1e6;
    if (std::string why; !st.money->reserve(r.id, worst, why)) {
      st.ledger->cancel(r.id);
      g.action = "skip";
      g.reason = why;
      ++st.skips[g.reason];
      return g;
    }
  }
  g.granted = true;
  g.action = "call";
  g.id = r.id;
  g.reason = r.over_budget ? r.reason : d.reason;
  g.max_tokens = deg.params.max_tokens;
  g.temperature = deg.params.temperature;
  g.prefer_worker = deg.params.prefer_worker;
  g.degraded = std::move(deg.changes);
  st.degraded += g.degraded.empty() ? 0 : 1;
  ++st.granted;
  return g;
}

budget_actor::behavior_type budget(budget_self self, budget_options opts, std::shared_ptr<directory> dir) {
  self->state.ledger.emplace(budget_limits{opts.calls, opts.tokens, opts.p0_reserve});
  self->state.ledger->spent_before(opts.spent_calls, opts.spent_tokens);
  self->state.money.emplace(opts.usd);
  self->state.money->spent_before(opts.spent_usd);
  self->state.worst_in = opts.worst_input_price;
  self->state.worst_out = opts.worst_output_price;
  self->state.dir = directory_view{std::move(dir)};
  return {
      [self](atoms::acquire, std::uint8_t priority, std::int64_t tokens, std::int64_t max_tokens, double temperature,
             bool optional) -> caf::result<budget_grant> {
        auto rp = self->make_response_promise<budget_grant>();
        self->request(self->state.dir->dispatcher, caf::infinite, atoms::phase_v)
            .then(
                [=](std::uint8_t level, const std::string&) mutable {
                  rp.deliver(decide_grant(self, priority, tokens, max_tokens, temperature, optional,
                                          static_cast<pressure_level>(std::min<int>(level, 2))));
                },
                [=](caf::error&) mutable { // no pressure reading: decide as under normal pressure
                  rp.deliver(
                      decide_grant(self, priority, tokens, max_tokens, temperature, optional, pressure_level::normal));
                });
        return rp;
      },
      [self](atoms::release, std::uint64_t id, std::int64_t actual_tokens) {
        self->state.ledger->settle(id, actual_tokens);
        self->state.money->settle(id, -1);
      },
      [self](atoms::release, std::uint64_t id, std::int64_t actual_tokens, double usd) {
        self->state.ledger->settle(id, actual_tokens);
        self->state.money->settle(id, usd);
      },
      [self](atoms::cancel, std::uint64_t id) {
        self->state.ledger->cancel(id);
        self->state.money->cancel(id);
      },
      [self](atoms::stats) {
        auto& st = self->state;
        auto& l = *st.ledger;
        return nlohmann::json{{"granted", st.granted},
                              {"calls_spent", l.calls_spent()},
                              {"calls_reserved", l.calls_reserved()},
                              {"calls_left", l.calls_left()},
                              {"over_budget_calls", l.over_budget_calls()},
                              {"usd_spent", st.money->spent()},
                              {"usd_reserved", st.money->reserved()},
                              {"usd_left", st.money->limited() ? nlohmann::json(st.money->left()) : nlohmann::json()},
                              {"degraded_calls", st.degraded},
                              {"cache_only", st.cache_only},
                              {"skips", st.skips}}
            .dump();
      },
  };
}

} // namespace

budget_actor spawn_budget(caf::local_actor* parent, budget_options opts, std::shared_ptr<directory> dir) {
  return parent->spawn(budget, opts, std::move(dir));
}

} // namespace squad
