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
#include <memory>
#include <thread>

namespace squad::net {

namespace {

namespace asio = boost::asio;

class io_coordinator final : public caf::scheduler::abstract_coordinator {
public:
  io_coordinator(caf::actor_system& sys, std::shared_ptr<asio::io_context> ioc, std::size_t max_throughput)
    : abstract_coordinator(sys), ioc_(std::move(ioc)), unit_(this, &sys), turn_(max_throughput) {}

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

  void stop() override {
    // The system stops its scheduler after every actor of its own is done; what may still be queued are the
    // last turns of actors that just ended and of the utility actors stopped here.
    stop_actors();
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds{5};
    while (queued_.load() > 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    ioc_->stop();
    clock_.cancel_dispatch_loop();
    clock_thread_.join();
  }

  void schedule(caf::resumable* job) {
    ++queued_;
    auto turn = [this, job] { resume(job); };
    if (ioc_->get_executor().running_in_this_thread())
      asio::defer(*ioc_, std::move(turn));
    else
      asio::post(*ioc_, std::move(turn));
  }

private:
  // What CAF's own workers do with a resumable (caf/scheduler/worker.hpp).
  void resume(caf::resumable* job) {
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
    --queued_;
  }

  struct unit final : caf::execution_unit {
    unit(io_coordinator* owner, caf::actor_system* sys) : caf::execution_unit(sys), owner(owner) {}
    void exec_later(caf::resumable* job) override { owner->schedule(job); }
    io_coordinator* owner;
  };

  std::shared_ptr<asio::io_context> ioc_;
  unit unit_;
  std::size_t turn_;
  std::atomic<std::int64_t> queued_{0};
  caf::detail::thread_safe_actor_clock clock_;
  std::thread clock_thread_;
};

} // namespace

void run_actors_on_io_threads(caf::actor_system_config& cfg, io_runtime& io, std::size_t max_throughput) {
  cfg.module_factories.push_back(
    [ioc = io.context(), max_throughput](caf::actor_system& sys) -> caf::actor_system::module* {
      return new io_coordinator(sys, ioc, max_throughput);
    });
}

} // namespace squad::net
