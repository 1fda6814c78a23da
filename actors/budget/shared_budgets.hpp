#pragma once
// The budgets of API calls that share an id (X-Squad-Run: <id>): together they may make `calls` LLM calls, as
// pure logic (time comes in as `now`). Reserve at admission, so concurrent calls cannot overshoot; the
// reservation turns into a send, or comes back when the call ends without one. Ids unused for `ttl` are
// forgotten (their budget starts afresh); at most `max_ids` are remembered at once.
#include "actors/limiter/sliding_window.hpp" // steady_time

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace squad {

class shared_budgets {
public:
  shared_budgets(std::int64_t calls, std::chrono::milliseconds ttl, std::size_t max_ids = 100000)
      : calls_(calls), ttl_(ttl), max_ids_(max_ids) {}

  enum class verdict { ok, spent, too_many_ids };

  /// Admits a call under `id` at `now`; with `reserve` (below P0) it holds a reservation until sent() or
  /// unreserve(). P0 calls pass `reserve` false and are never refused as spent.
  verdict admit(const std::string& id, steady_time now, bool reserve, bool p0);
  /// A call under `id` went upstream; `reserved`: it held a reservation, which the send replaces.
  void sent(const std::string& id, steady_time now, bool reserved);
  /// A reserved call ended without going upstream.
  void unreserve(const std::string& id);
  /// Whether `id`'s budget is spent (sends only, or sends plus reservations when `reserving`).
  bool spent(const std::string& id, bool reserving = false) const;
  /// Forgets ids idle for `ttl` with nothing reserved; at most once a minute does it walk them all.
  void prune(steady_time now);

  std::int64_t calls() const { return calls_; }
  std::size_t max_ids() const { return max_ids_; }
  std::size_t size() const { return ids_.size(); }

private:
  struct entry {
    std::int64_t sent = 0;     // LLM calls made under this id
    std::int64_t reserved = 0; // calls admitted under it that have not sent yet
    steady_time last_used{};
  };
  std::int64_t calls_;
  std::chrono::milliseconds ttl_;
  std::size_t max_ids_;
  steady_time pruned_{};
  std::map<std::string, entry> ids_;
};

} // namespace squad
