#pragma once
// A rate limiter's state as plain data, so that it outlives the process (docs/storage.md, "Limiter state"): taken by
// rate_limiter::checkpoint(), stored by the host as JSON (one row per limits domain), handed back to
// rate_limiter::restore() when the limiter starts again. Times are unix milliseconds (the wall clock): a steady
// clock's epoch does not survive a restart, a wall clock does, so a restart turns each time back into an age.
//
// limiter_memory keeps the latest checkpoint of each of a process's limiters: seeded from the store at start,
// updated by every limiter as it saves, read by a limiter when it starts (a supervisor's restart included), and
// forwarded to a sink (the store's write queue). Pure logic, thread-safe, no CAF.
#include "runtime/time/duration.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace squad {

/// What a limiter must not forget across a restart. 0 (or -1 where said) means "none" for each optional field.
struct limiter_checkpoint {
  std::int64_t saved_ms = 0;                                 ///< when it was taken
  std::int64_t requests = 0, per_ms = 0;                     ///< the configured window it was taken under
  std::vector<std::int64_t> window;                          ///< window log entries, oldest first (see checkpoint())
  std::vector<std::pair<std::int64_t, std::int64_t>> tokens; ///< token reservations in the window: (time, tokens)
  std::int64_t paused_until_ms = 0;                          ///< a Retry-After pause's end
  double factor = 1.0;                                       ///< the adaptive throttle
  std::vector<std::int64_t> recent_429_ms;                   ///< 429s counting towards the next throttle step
  std::int64_t last_429_ms = 0, last_throttle_change_ms = 0; ///< the quiet periods count from these
  std::int64_t learned_concurrency = 0, learned_at_ms = 0;   ///< a concurrency learned from 429s, and since when
  std::int64_t announced_limit = 0;                          ///< a request limit the provider announced
  std::int64_t day_count = 0, day_start_ms = 0;              ///< limits.per_day's window
  std::int64_t quota_left = -1, quota_reset_ms = 0;          ///< the provider's own count left (-1: none), until
  double bucket = -1;                                        ///< the token bucket's level at saved_ms (-1: none)
  double hold_ns = 0;                                        ///< the measured mean permit hold time
};

/// What restore() did, for the line a start prints.
struct limiter_restore_report {
  std::int64_t in_window = 0; ///< window entries restored
  std::int64_t stale = 0;     ///< entries older than the window, dropped
  std::int64_t paused_ms = 0; ///< pause left after the restore (0: none)
  std::int64_t paused_until_ms = 0;
  double factor = 1.0;
  std::int64_t concurrency = 0; ///< the concurrency in force after it
  std::int64_t day_used = 0;    ///< admissions in the per_day window
  bool limits_changed = false;  ///< taken under other limits.requests / limits.per than the config's now
  std::int64_t age_ms = 0;      ///< how old the checkpoint was
  std::string describe(const std::string& domain, std::int64_t requests, std::int64_t per_ms) const;
};

/// The checkpoint as one JSON object (times as offsets from saved_ms, so a full window stays small), and back
/// (nullopt: not a checkpoint of a version this binary reads).
std::string to_json(const limiter_checkpoint& cp);
std::optional<limiter_checkpoint> limiter_checkpoint_from_json(std::string_view text);

/// The latest checkpoint of each limiter of a process, by limits domain (a provider, or "provider/model").
class limiter_memory {
public:
  using sink = std::function<void(const std::string& domain, const limiter_checkpoint& cp)>;
  struct options {
    millis interval{250};                  ///< a changed limiter saves at most this often
    std::function<std::int64_t()> wall_ms; ///< unix ms (default: the system clock)
    std::function<void(std::string)> log;  ///< a restore's line (default: standard output)
  };

  limiter_memory();
  explicit limiter_memory(options o);

  /// A checkpoint loaded at start, before any limiter runs.
  void seed(const std::string& domain, limiter_checkpoint cp);
  /// The latest checkpoint of `domain` (loaded, or saved since); nullopt when none.
  std::optional<limiter_checkpoint> latest(const std::string& domain) const;
  /// A limiter saved `cp`: kept as the latest, and handed to the sink (if one is set).
  void save(const std::string& domain, limiter_checkpoint cp);
  /// Where saves go from now on; the latest checkpoint of each domain saved before it was set goes there at once.
  void set_sink(sink s);

  millis interval() const { return o_.interval; }
  std::int64_t wall_ms() const;
  void log(std::string line) const;

private:
  options o_;
  mutable std::mutex m_;
  std::map<std::string, limiter_checkpoint, std::less<>> latest_;
  std::set<std::string, std::less<>> unsent_; // saved while no sink was set
  sink sink_;
};

} // namespace squad
