#include "actors/dispatcher/route_choice.hpp"

#include <algorithm>

namespace squad {

route_pick choose_route(const std::vector<route_option>& options, std::int64_t slack_ms) {
  route_pick p;
  for (std::size_t k = 0; k < options.size(); ++k) {
    auto& o = options[k];
    if (o.open || o.wait_ms < 0)
      continue;
    if (!p.preferred)
      p.preferred = k;
    if (!p.best || o.wait_ms < options[*p.best].wait_ms)
      p.best = k;
  }
  if (p.preferred)
    p.chosen = options[*p.best].wait_ms + slack_ms < options[*p.preferred].wait_ms ? p.best : p.preferred;
  return p;
}

const char* to_string(route_strategy s) {
  switch (s) {
  case route_strategy::preference:
    return "preference";
  case route_strategy::latency:
    return "latency";
  case route_strategy::cost:
    return "cost";
  case route_strategy::adaptive:
    return "adaptive";
  }
  return "?";
}

std::optional<route_strategy> parse_route_strategy(std::string_view text) {
  for (auto s : {route_strategy::preference, route_strategy::latency, route_strategy::cost, route_strategy::adaptive})
    if (text == to_string(s))
      return s;
  return std::nullopt;
}

void observe_target(target_view& v, bool ok, double latency_ms) {
  if (v.samples == 0) {
    v.latency_ms = latency_ms;
    v.success = ok ? 1 : 0;
  } else {
    v.latency_ms += target_ema_alpha * (latency_ms - v.latency_ms);
    v.success += target_ema_alpha * ((ok ? 1.0 : 0.0) - v.success);
  }
  ++v.samples;
}

std::vector<std::size_t> order_targets(route_strategy s, const std::vector<target_view>& targets) {
  std::vector<std::size_t> order(targets.size());
  for (std::size_t k = 0; k < order.size(); ++k)
    order[k] = k;
  // A target never observed sorts first under latency and adaptive (it is tried once to be learned).
  auto key = [&](std::size_t k) -> double {
    auto& t = targets[k];
    switch (s) {
    case route_strategy::preference:
      return 0;
    case route_strategy::latency:
      return t.samples == 0 ? -1 : t.latency_ms;
    case route_strategy::cost:
      return t.cost;
    case route_strategy::adaptive: // latency per unit of success: lower is better
      return t.samples == 0 ? -1 : std::max(1.0, t.latency_ms) / std::max(0.001, t.success);
    }
    return 0;
  };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  return order;
}

bool past_tolerable_wait(std::int64_t waited_ms, std::int64_t earliest_ms, std::chrono::milliseconds tolerable) {
  if (tolerable == std::chrono::milliseconds::max())
    return false;
  return waited_ms + earliest_ms > tolerable.count();
}

} // namespace squad
