#pragma once
// The directory: every long-lived actor's typed handle by role (persona <id>, provider <p>'s provider, limiter and
// breaker, the dispatcher, the runs and personas supervisors), so that no call travels the tree by string path.
//
// Written only where actors are spawned: a child spec's factory announces the handle it spawned, at the first start
// and at every restart (so a restarted limiter is found at once, under its new handle). Read from any thread: the
// io threads (the gateway hands a call straight to its persona), and the actors themselves. A read is one atomic
// load of an immutable snapshot; a reader that keeps a snapshot refreshes it when version() moves.
// In a cluster the same roles resolve to another node's handles (the design's registry); the call path does not
// change, only where a handle points.
#include "actors/breaker/breaker.hpp"
#include "actors/dispatcher/dispatcher.hpp"
#include "actors/limiter/limiter.hpp"
#include "actors/persona/persona.hpp"
#include "actors/provider/provider.hpp"
#include "actors/supervisor/supervisor.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace squad {

/// One provider's three actors (each its own actor, restarted on its own).
struct provider_handles {
  provider_actor provider;
  limiter_actor limiter;
  breaker_actor breaker;
};

class directory {
public:
  /// What the directory knew at one moment. Never changes once published.
  struct snapshot {
    std::uint64_t version = 0;
    std::map<std::string, persona_actor, std::less<>> personas;
    std::map<std::string, provider_handles, std::less<>> providers;
    dispatcher_actor dispatcher;
    supervisor_actor runs;                ///< runs are started as its children
    supervisor_actor personas_supervisor; ///< restarts of personas are followed here
    /// The persona `id`, or null (unknown, or not started yet).
    persona_actor persona(std::string_view id) const;
    /// Provider `name`'s handles, or null (unknown, or not started yet). `name` may be a model's own limits
    /// domain ("provider/model"): then its limiter, with its provider's provider actor and breaker.
    const provider_handles* provider(std::string_view name) const;
    /// Every limiter of provider `name`: its own and those of its models with their own limits.
    std::vector<limiter_actor> limiters_of(std::string_view name) const;
  };

  directory();

  /// The current snapshot (never null).
  std::shared_ptr<const snapshot> get() const { return current_.load(std::memory_order_acquire); }
  /// Moves on every announcement: a reader holding a snapshot of another version refreshes it.
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

  void announce(const std::string& persona_id, persona_actor h);
  void announce(const std::string& provider_name, provider_actor h);
  /// `domain`: a provider's name, or a model's own limits domain "provider/model".
  void announce(const std::string& domain, limiter_actor h);
  void announce(const std::string& provider_name, breaker_actor h);
  void announce(dispatcher_actor h);
  /// `role` is "runs" or "personas".
  void announce(const std::string& role, supervisor_actor h);

private:
  void update(const std::function<void(snapshot&)>& change);

  std::mutex write_; // writers are rare (start, restarts): copy, change, publish
  std::atomic<std::shared_ptr<const snapshot>> current_;
  std::atomic<std::uint64_t> version_{0};
};

using directory_ptr = std::shared_ptr<directory>;

/// A reader's cached snapshot: refreshed only when the directory's version moved (one atomic load per use).
class directory_view {
public:
  explicit directory_view(directory_ptr dir = nullptr) : dir_(std::move(dir)) {}
  const directory::snapshot& operator*() {
    if (!snap_ || snap_->version != dir_->version())
      snap_ = dir_->get();
    return *snap_;
  }
  const directory::snapshot* operator->() { return &**this; }
  const directory_ptr& dir() const { return dir_; }

private:
  directory_ptr dir_;
  std::shared_ptr<const directory::snapshot> snap_;
};

} // namespace squad
