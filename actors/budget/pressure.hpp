#pragma once
// Back-pressure as pure logic (time comes in as `now`): how loaded the gateway is, what a step of a given
// priority does about it, and how a step that still runs is made cheaper.
//
//   pressure_gauge  signals -> normal | elevated | critical, with hysteresis
//   decide()        priority x level x budget x cache -> call | cache | skip, with a reason
//   degrade()       step parameters x level -> cheaper parameters, one human line per change
//
// The gauge rises at once and falls slowly: it goes up to the highest level any single signal reaches on the
// update that sees it, and comes down one level at a time, only after every signal has stayed below
// `exit_ratio` x that level's entry thresholds for `dwell` without interruption. The gap between the entry and
// the exit threshold (hysteresis) and the dwell together stop flapping: a signal alternating just above and
// just below a threshold raises the level once and then holds it, because "just below" is still above the exit
// threshold, and even a drop below the exit threshold restarts the dwell the moment the signal bounces back.
// This needs 0 < exit_ratio < 1 and dwell > 0 (the defaults); with exit_ratio = 1 and dwell = 0 the same input
// does flap (a test shows it).
#include "actors/limiter/sliding_window.hpp"
#include "runtime/config/config.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace squad {

// -- pressure gauge ------------------------------------------------------------------------------------------------

enum class pressure_level : std::uint8_t { normal, elevated, critical };

/// "normal", "elevated", "critical".
const char* to_string(pressure_level l);

/// One sample of the load signals the gauge reads.
struct pressure_signals {
  std::int64_t wait_ms = 0;        ///< the longest estimated wait for a slot among the providers in use
  std::int64_t queue_depth = 0;    ///< calls waiting in limiter queues
  double rate_429_per_min = 0;     ///< 429 answers per minute, over all providers
  double open_breaker_share = 0;   ///< share of the providers in use whose breaker is open, 0..1
  std::int64_t p95_latency_ms = 0; ///< 95th percentile call latency
};

/// Entry thresholds per level (a signal at or above one reaches that level), and how the gauge comes back down.
struct pressure_settings {
  std::int64_t elevated_wait_ms = 2000, critical_wait_ms = 10000; ///< default 2s / 10s
  std::int64_t elevated_queue = 10, critical_queue = 50;          ///< default 10 / 50 waiting calls
  double elevated_429_per_min = 1, critical_429_per_min = 5;      ///< default 1 / 5 per minute
  double elevated_open_share = 0.25, critical_open_share = 0.5;   ///< default 25% / 50% of providers
  std::int64_t elevated_p95_ms = 20000, critical_p95_ms = 60000;  ///< default 20s / 60s
  double exit_ratio = 0.7; ///< to step down, every signal must be below exit_ratio x the level's entry threshold
  std::chrono::milliseconds dwell{5000}; ///< ... continuously for this long, default 5s
};

/// The load level with hysteresis; feed it a sample per tick. See the file comment for the rules.
class pressure_gauge {
public:
  explicit pressure_gauge(pressure_settings s = {});

  /// Takes one sample at `now` and returns the level after it. Steps down at most one level per call.
  pressure_level update(const pressure_signals& s, steady_time now);

  /// The level after the last update (normal before the first).
  pressure_level level() const { return level_; }

  /// The signal(s) behind the current level, e.g. "wait 12000ms >= 10000ms", or what holds it up while it waits
  /// to step down, e.g. "holding elevated: wait 1500ms >= 1400ms (exit)".
  std::string why() const { return why_; }

  const pressure_settings& settings() const { return s_; }

private:
  pressure_settings s_;
  pressure_level level_ = pressure_level::normal;
  std::optional<steady_time> calm_since_; ///< first sample of the current unbroken run below the exit thresholds
  std::string why_;
};

// -- shedding ------------------------------------------------------------------------------------------------------

/// call: an LLM call; cache: answer from the cache; skip: the step does not run.
enum class shed_action : std::uint8_t { call, cache, skip };

/// "call", "cache", "skip".
const char* to_string(shed_action a);

struct shed_decision {
  shed_action action;
  std::string reason; ///< for a skip it names the priority, the rule and the pressure level
};

/// What a step of priority `p` does at `level`:
///   P0  always call (no cache, no budget check)
///   P1  cache hit -> cache; budget left -> call (waiting in line if needed); else skip
///   P2  cache hit -> cache; no budget -> skip; level >= elevated -> skip; else call
///   P3  cache hit -> cache; level >= elevated -> skip; no budget -> skip; else call
shed_decision decide(priority_class p, pressure_level level, bool budget_left, bool cache_hit);

// -- degradation ---------------------------------------------------------------------------------------------------

/// The knobs of one step's LLM call that degradation may turn.
struct step_params {
  std::int64_t max_tokens;
  double temperature;         ///< below 0: not set (critical pressure caps it all the same)
  bool prefer_worker = false; ///< route to a cheaper worker model when one is configured
  bool optional = false;      ///< the workflow can do without this step
};

struct degradation {
  step_params params;
  std::vector<std::string> changes; ///< one line per changed value, e.g. "max_tokens 1024 -> 512 (pressure elevated)"
  bool drop = false;                ///< an optional step dropped
};

struct degrade_settings {
  double elevated_tokens = 0.5, critical_tokens = 0.25; ///< max_tokens factor per level, default 0.5 / 0.25
  double critical_temperature = 0.3;                    ///< temperature ceiling at critical, default 0.3
  std::int64_t min_tokens = 64; ///< scaling stops here (a value already below it is left alone), default 64
  bool drop_optional = true;    ///< drop optional steps at elevated and critical, default true
};

/// The cheaper parameters for `p` at `level`. normal: unchanged. elevated: max_tokens scaled, optional dropped.
/// critical: max_tokens scaled, temperature capped, prefer_worker set, optional dropped. Values only ever go down
/// (or towards the worker); every change gets a line, and a value already within its limit gets none.
degradation degrade(const step_params& p, pressure_level level, const degrade_settings& s = {});

} // namespace squad
