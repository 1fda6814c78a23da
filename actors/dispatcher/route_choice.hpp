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
#include <string_view>
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

/// How a persona orders its chain's ready targets before the limiters are asked (its `strategy`):
///   preference  the chain's order
///   latency     the lowest EMA of observed latency first (a target never observed first: it is tried to learn it)
///   cost        the lowest estimated price of the call first (prices per 1M tokens from the config; ties: chain order)
///   adaptive    the highest EMA success rate per EMA latency first (seed 001's adaptive learning)
enum class route_strategy : std::uint8_t { preference, latency, cost, adaptive };
const char* to_string(route_strategy s);
std::optional<route_strategy> parse_route_strategy(std::string_view text);

/// What the dispatcher has seen of one target, and what a call would cost there.
struct target_view {
  double latency_ms = 0; ///< EMA of observed latency
  double success = 1;    ///< EMA of ok (1) against failures other than 429 (0)
  std::int64_t samples = 0;
  double cost = 0; ///< the call's estimated price there (USD)
};

/// EMA weight of a new observation.
inline constexpr double target_ema_alpha = 0.2;
/// Folds one reply into `v`.
void observe_target(target_view& v, bool ok, double latency_ms);

/// The order in which a call tries `targets` (views in chain order) under `s`: indexes into `targets`; stable, so
/// equal targets keep the chain's order.
std::vector<std::size_t> order_targets(route_strategy s, const std::vector<target_view>& targets);

/// Whether a call that waited `waited_ms` and whose earliest slot is `earliest_ms` away is past `tolerable`
/// (std::chrono::milliseconds::max(): no bound, as for P0).
bool past_tolerable_wait(std::int64_t waited_ms, std::int64_t earliest_ms, std::chrono::milliseconds tolerable);

} // namespace squad
