#include "runtime/net/io_scheduler.hpp"

#include "runtime/net/http_client.hpp"

#include <boost/asio/defer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/actor_system.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/execution_unit.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

namespace squad::net {

namespace {

namespace asio = boost::asio;

class io_coordinator final : public caf::scheduler::abstract_coordinator {
public:
  io_coordinator(caf::actor_system& sys, io_runtime& io, std::size_t max_throughput)
      : abstract_coordinator(sys), io_(io), ioc_(io.context()), unit_(this, &sys), turn_(max_throughput) {}

  void enqueue(caf::resumable* job) override { schedule(job); }

  caf::actor_clock& clock() noexcept override { return clock_; }

  void start() override {
    clock_thread_ = std::thread{[this] {
      system().thread_started();
      clock_.run_dispatch_loop();
      system().thread_terminates();
    }};
    abstract_coordinator::start();
  }

  // Called by the actor system's destructor (never on an io thread: it joins them) after every actor of its own
  // is done: what may still be queued are the last turns of actors that just ended and of the utility actors.
  void stop() override {
    if (ioc_->get_executor().running_in_this_thread()) { // it would wait for its own turn, then join itself
      std::cerr << "squad: the actor system was destroyed on one of its io threads\n";
      std::abort();
    }
    stop_actors();
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds{5};
    while (busy_.load() > 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    if (busy_.load() > 0)
      std::cerr << "squad: " << busy_.load() << " actor turn(s) still queued or running 5s into shutdown\n";
    io_.stop(); // joins the io threads: no handler runs from here on
    clock_.cancel_dispatch_loop();
    clock_thread_.join();
    std::deque<caf::resumable*> left;
    {
      std::lock_guard lock{mtx_};
      stopped_ = true;
      left.swap(jobs_);
    }
    // As CAF's own coordinator does with the jobs its workers never ran. Not under mtx_: cleaning up an actor
    // bounces its pending requests, which may schedule the requesters (then released at once, below).
    for (auto* job : left)
      cleanup_and_release(job);
  }

  void schedule(caf::resumable* job) {
    {
      std::unique_lock lock{mtx_};
      if (stopped_) {
        lock.unlock();
        cleanup_and_release(job);
        return;
      }
      jobs_.push_back(job);
      busy_.fetch_add(1, std::memory_order_relaxed); // before any thread can run it and count it down
    }
    // One handler per job, each running the oldest: the jobs keep their order, and any left when the io threads
    // stop are still in jobs_ for stop() to release.
    auto turn = [this] { run_oldest(); };
    if (ioc_->get_executor().running_in_this_thread())
      asio::defer(*ioc_, std::move(turn)); // after the current handler, without waking another thread
    else
      asio::post(*ioc_, std::move(turn));
  }

private:
  // What CAF's own workers do with a resumable (caf/scheduler/worker.hpp).
  void run_oldest() {
    caf::resumable* job = nullptr;
    {
      std::lock_guard lock{mtx_};
      if (jobs_.empty())
        return;
      job = jobs_.front();
      jobs_.pop_front();
    }
    switch (job->resume(&unit_, turn_)) {
    case caf::resumable::resume_later:
      schedule(job); // keeps its reference
      break;
    case caf::resumable::done:
    case caf::resumable::awaiting_message:
      caf::intrusive_ptr_release(job);
      break;
    case caf::resumable::shutdown_execution_unit: // only CAF's own coordinators send these
      break;
    }
    busy_.fetch_sub(1, std::memory_order_acq_rel);
  }

  struct unit final : caf::execution_unit {
    unit(io_coordinator* owner, caf::actor_system* sys) : caf::execution_unit(sys), owner(owner) {}
    void exec_later(caf::resumable* job) override { owner->schedule(job); }
    io_coordinator* owner;
  };

  io_runtime& io_;
  std::shared_ptr<asio::io_context> ioc_;
  unit unit_;
  std::size_t turn_;
  std::mutex mtx_;
  std::deque<caf::resumable*> jobs_; // scheduled, not yet resumed
  bool stopped_ = false;
  std::atomic<std::int64_t> busy_{0}; // jobs scheduled and not yet through their turn
  caf::detail::thread_safe_actor_clock clock_;
  std::thread clock_thread_;
};

} // namespace

void run_actors_on_io_threads(caf::actor_system_config& cfg, io_runtime& io, std::size_t max_throughput) {
  cfg.module_factories.push_back([&io, max_throughput](caf::actor_system& sys) -> caf::actor_system::module* {
    return new io_coordinator(sys, io, max_throughput);
  });
}

} // namespace squad::net
