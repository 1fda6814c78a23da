#pragma once
// Rows on their way to the store: producers (run hubs, the audit) push, the writer actor takes everything queued
// in one go and commits it as one transaction (group commit). Pushing never blocks and never drops: over `limit`
// rows the queue says so (over_limit), and the server stops accepting new runs until the writer catches up.
// The first push into an empty queue calls `wake` (the writer is told once per batch, not once per row).
#include "runtime/store/store.hpp"

#include <atomic>
#include <functional>
#include <mutex>

namespace squad::store {

class write_queue {
public:
  explicit write_queue(std::size_t limit = 100000) : limit_(limit) {}

  void set_wake(std::function<void()> wake) {
    std::lock_guard<std::mutex> g{m_};
    wake_ = std::move(wake);
  }

  void push(write_batch&& b) {
    std::function<void()> wake;
    {
      std::lock_guard<std::mutex> g{m_};
      bool was_empty = q_.empty();
      q_.append(std::move(b));
      depth_.store(q_.size(), std::memory_order_relaxed);
      if (was_empty)
        wake = wake_;
    }
    if (wake)
      wake();
  }

  write_batch take() {
    std::lock_guard<std::mutex> g{m_};
    write_batch out = std::move(q_);
    q_ = {};
    depth_.store(0, std::memory_order_relaxed);
    return out;
  }

  std::size_t depth() const { return depth_.load(std::memory_order_relaxed); }
  bool over_limit() const { return depth() > limit_; }

  /// What the writer last saw, for /readyz (any thread reads it).
  std::atomic<bool> store_up{true};
  std::atomic<std::uint64_t> spool_bytes{0};

private:
  std::size_t limit_;
  mutable std::mutex m_;
  write_batch q_;
  std::atomic<std::size_t> depth_{0};
  std::function<void()> wake_;
};

} // namespace squad::store
