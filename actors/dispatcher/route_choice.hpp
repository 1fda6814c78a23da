#pragma once
// Which ready target of a chain a call goes to, as pure logic: the limiters' answers in, a choice out.
//
//   preferred  the first target (in chain order) whose breaker is not open and that can ever admit the call
//   best       the one with the shortest estimated wait
//   chosen     best when it is sooner than the preferred by more than `slack`, else the preferred
// With no usable target, the choice is empty and the caller looks at why (open breakers: wait for a probe or
// end; a call too big for every limiter: try one, which says so).
//
// The tolerable-wait rule for calls outside a run lives here too: a call of class P1..P3 that has not gone
// upstream yet is refused when the time it has waited plus its earliest slot passes its class's tolerable wait.
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace squad {

/// One ready target's answer: its estimated wait (-1: can never admit) and whether its breaker is open.
struct route_option {
  std::int64_t wait_ms = 0;
  bool open = false;
};

struct route_pick {
  std::optional<std::size_t> preferred, best, chosen; ///< indexes into the options; empty: none usable
};

/// The choice among `options` (in chain order) with `slack_ms` of preference for chain order.
route_pick choose_route(const std::vector<route_option>& options, std::int64_t slack_ms);

/// Whether a call that waited `waited_ms` and whose earliest slot is `earliest_ms` away is past `tolerable`
/// (std::chrono::milliseconds::max(): no bound, as for P0).
bool past_tolerable_wait(std::int64_t waited_ms, std::int64_t earliest_ms, std::chrono::milliseconds tolerable);

} // namespace squad
