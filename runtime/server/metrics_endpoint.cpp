#include "runtime/server/metrics_endpoint.hpp"
#include "runtime/server/tree_link.hpp"

#include <caf/actor_system.hpp>
#include <nlohmann/json.hpp>

#include <mutex>
#include <optional>

namespace squad::server {

namespace {

using metrics::counter_family;
using metrics::gauge_family;
using metrics::histogram_family;

// The gauges a scrape sets, one family each.
struct scrape_families {
  gauge_family connections{"squad_http_connections", "HTTP connections open"};
  gauge_family ws_sessions{"squad_ws_sessions", "WebSocket sessions open"};
  gauge_family queue_depth{"squad_limiter_queue_depth", "calls waiting in a provider's limiter queue"};
  gauge_family in_flight{"squad_limiter_in_flight", "calls holding a provider's concurrency permit"};
  gauge_family rate{"squad_limiter_effective_rate_per_second", "a provider's admitted rate after throttling"};
  gauge_family throttle{"squad_limiter_throttle_factor", "adaptive throttle (1: none, 0.5: halved)"};
  gauge_family occupancy{"squad_limiter_window_occupancy", "calls in a provider's current limit window"};
  gauge_family cap{"squad_limiter_window_cap",
                   "calls a provider's limit window admits now (its requests limit after throttling)"};
  gauge_family paused{"squad_limiter_paused_seconds", "time left in a Retry-After pause"};
  gauge_family day_used{"squad_limiter_day_used", "calls in a provider's current per_day window (limits.per_day)"};
  gauge_family day_cap{"squad_limiter_day_cap", "calls a provider's per_day window admits (limits.per_day; 0: off)"};
  gauge_family breaker_state{"squad_breaker_state", "circuit breaker: 0 closed, 1 open, 2 half-open"};
  gauge_family pressure{"squad_pressure_level", "0 normal, 1 elevated, 2 critical"};
  gauge_family calls_in_flight{"squad_calls_in_flight", "calls inside the dispatcher"};
  gauge_family cache_entries{"squad_cache_entries", "answers in the response cache"};
  // Counters the actors keep themselves: a scrape copies their totals.
  counter_family breaker_opens{"squad_breaker_opens_total",
                               "times a provider's breaker opened (from 0 again when its actor restarts)"};
  counter_family cache_hits{"squad_cache_hits_total", "response cache hits"};
  counter_family cache_misses{"squad_cache_misses_total", "response cache misses"};
};

const scrape_families& families() {
  static const scrape_families f;
  return f;
}

using lazy_gauge = metrics::lazy<metrics::gauge>;

// A counter the actors keep themselves, copied at each scrape: a gauge handle onto the counter family's series.
std::function<metrics::gauge()> copied_total(const counter_family& f, metrics::labels l = {}) {
  return [&f, l = std::move(l)] { return metrics::registry::global().gauge(f.name(), l); };
}

// The dispatcher's and the server's gauges, each resolved on its first use.
struct dispatcher_gauges {
  lazy_gauge connections{metrics::resolver(families().connections)};
  lazy_gauge ws_sessions{metrics::resolver(families().ws_sessions)};
  lazy_gauge pressure{metrics::resolver(families().pressure)};
  lazy_gauge calls_in_flight{metrics::resolver(families().calls_in_flight)};
  lazy_gauge cache_entries{metrics::resolver(families().cache_entries)};
  lazy_gauge cache_hits{copied_total(families().cache_hits)};
  lazy_gauge cache_misses{copied_total(families().cache_misses)};
};

const dispatcher_gauges& dispatcher() {
  static const dispatcher_gauges g;
  return g;
}

metrics::labels of(const std::string& provider) {
  return {{"provider", provider}};
}

} // namespace

// One provider's gauges, each resolved on its first use (a limiter that never answered shows none).
struct metrics_endpoint::provider_gauges {
  explicit provider_gauges(std::string p) : provider(std::move(p)) {}
  const std::string provider;
  lazy_gauge queue_depth{metrics::resolver(families().queue_depth, of(provider))};
  lazy_gauge in_flight{metrics::resolver(families().in_flight, of(provider))};
  lazy_gauge rate{metrics::resolver(families().rate, of(provider))};
  lazy_gauge throttle{metrics::resolver(families().throttle, of(provider))};
  lazy_gauge occupancy{metrics::resolver(families().occupancy, of(provider))};
  lazy_gauge cap{metrics::resolver(families().cap, of(provider))};
  lazy_gauge paused{metrics::resolver(families().paused, of(provider))};
  lazy_gauge day_used{metrics::resolver(families().day_used, of(provider))};
  lazy_gauge day_cap{metrics::resolver(families().day_cap, of(provider))};
  lazy_gauge breaker_state{metrics::resolver(families().breaker_state, of(provider))};
  lazy_gauge breaker_opens{copied_total(families().breaker_opens, of(provider))};
};

metrics_endpoint::metrics_endpoint(caf::actor_system& sys, std::shared_ptr<directory> dir,
                                   std::vector<std::string> providers)
    : sys_(sys), dir_(std::move(dir)), paths_(stats_paths(providers)),
      providers_(std::make_shared<std::vector<std::unique_ptr<provider_gauges>>>()) {
  families();
  for (auto& p : providers)
    providers_->push_back(std::make_unique<provider_gauges>(p));
}

namespace {

using provider_table = std::vector<std::unique_ptr<metrics_endpoint::provider_gauges>>;

void apply_to(const provider_table& providers, const std::string& path, const std::string& stats_json) {
  using json = nlohmann::json;
  using provider_gauges = metrics_endpoint::provider_gauges;
  auto j = json::parse(stats_json, nullptr, false);
  if (!j.is_object())
    return;
  bool limiter = path.ends_with(":limiter"), breaker = path.ends_with(":breaker");
  if (limiter || breaker) {
    auto name = j.value("provider", "");
    const provider_gauges* g = nullptr;
    for (auto& pg : providers)
      if (pg->provider == name)
        g = pg.get();
    std::optional<provider_gauges> other; // a provider not in the config at start: resolved for this answer only
    if (!g)
      g = &other.emplace(name);
    if (limiter) {
      g->queue_depth.get().set(j.value("queue_depth", 0.0));
      g->in_flight.get().set(j.value("in_flight", 0.0));
      g->rate.get().set(j.value("effective_rate_per_s", 0.0));
      g->throttle.get().set(j.value("throttle_factor", 1.0));
      g->occupancy.get().set(j.value("window_occupancy", 0.0));
      g->cap.get().set(j.value("window_cap", 0.0));
      g->paused.get().set(j.value("paused_ms", 0.0) / 1000);
      g->day_used.get().set(j.value("day_used", 0.0));
      g->day_cap.get().set(j.value("day_cap", 0.0));
    } else {
      auto phase = j.value("phase", "closed");
      g->breaker_state.get().set(phase == "closed" ? 0 : phase == "open" ? 1 : 2);
      g->breaker_opens.get().set(j.value("opens", 0.0));
    }
    return;
  }
  auto& d = dispatcher();
  auto p = j.value("pressure", "normal");
  d.pressure.get().set(p == "normal" ? 0 : p == "elevated" ? 1 : 2);
  d.calls_in_flight.get().set(j.value("calls_in_flight", 0.0));
  if (j.contains("cache")) {
    d.cache_entries.get().set(j["cache"].value("entries", 0.0));
    d.cache_hits.get().set(j["cache"].value("hits", 0.0));
    d.cache_misses.get().set(j["cache"].value("misses", 0.0));
  }
}

} // namespace

void metrics_endpoint::apply(const std::string& path, const std::string& stats_json) {
  apply_to(*providers_, path, stats_json);
}

void metrics_endpoint::serve(std::shared_ptr<responder> out, const std::shared_ptr<http_server>& server) {
  if (server) {
    auto s = server->stats();
    dispatcher().connections.get().set(static_cast<double>(s.connections_open));
    dispatcher().ws_sessions.get().set(static_cast<double>(s.ws_open));
  }
  ask_stats(
      sys_, dir_, paths_,
      [table = providers_](const std::string& path, const std::string& text) { apply_to(*table, path, text); },
      [out] {
        out->reply(200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}},
                   metrics::registry::global().render());
      });
}

} // namespace squad::server
