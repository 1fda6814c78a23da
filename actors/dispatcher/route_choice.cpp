#include "actors/dispatcher/route_choice.hpp"

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

bool past_tolerable_wait(std::int64_t waited_ms, std::int64_t earliest_ms, std::chrono::milliseconds tolerable) {
  if (tolerable == std::chrono::milliseconds::max())
    return false;
  return waited_ms + earliest_ms > tolerable.count();
}

} // namespace squad
