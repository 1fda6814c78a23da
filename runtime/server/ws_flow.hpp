#pragma once
// What a WebSocket session sends of its runs' events when the client reads slowly, as pure logic: a step.delta
// is dropped while the session's send queue holds `lag_at` messages or more, and counted; the run's next message
// that does go out is preceded by a `lagged` marker with that count. Lifecycle events (everything but step.delta)
// are never dropped; a run's end event also ends its tracking.
#include <cstddef>
#include <map>
#include <string>

namespace squad::server {

class ws_flow {
public:
  explicit ws_flow(std::size_t lag_at) : lag_at_(lag_at) {}

  void track(const std::string& run) { runs_.emplace(run, 0); }
  void untrack(const std::string& run) { runs_.erase(run); }
  bool tracks(const std::string& run) const { return runs_.count(run) > 0; }
  std::size_t runs() const { return runs_.size(); }

  struct decision {
    bool tracked = false;   ///< false: not a run of this session (the caller unsubscribes)
    bool send = false;      ///< send the event
    std::size_t lagged = 0; ///< > 0: first send a lagged marker for this many dropped deltas
  };

  /// One event of `run`, with `queued` messages waiting in the session's send queue.
  decision on_event(const std::string& run, bool is_delta, bool is_end, std::size_t queued) {
    decision d;
    auto it = runs_.find(run);
    if (it == runs_.end())
      return d;
    d.tracked = true;
    if (is_delta && queued >= lag_at_) {
      ++it->second;
      return d;
    }
    d.send = true;
    d.lagged = it->second;
    it->second = 0;
    if (is_end)
      runs_.erase(it);
    return d;
  }

private:
  std::size_t lag_at_;
  std::map<std::string, std::size_t> runs_; // run id -> deltas dropped since its last message sent
};

} // namespace squad::server
