// The io threads (io_runtime): one io_context that every socket of the process lives on, run by 1-2 threads that may
// spin briefly before they sleep. Asio only, no Beast.
#include "runtime/net/http_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <thread>

#include <sched.h>

namespace squad::net {

namespace asio = boost::asio;

namespace {

// An io thread's loop. With `spin`, an idle thread keeps polling for that long before it sleeps, yielding the CPU
// between polls: on a VM, waking a sleeping thread costs tens of microseconds per hop, and a thread that spins
// without yielding holds a core that the client or the upstream it just woke is queued behind (measured with
// bench/gateway at one connection: added p99 +0.4-0.6 ms without the yield, +0.1 ms with it).
void run_io_thread(asio::io_context& ioc, millis spin) {
  if (spin.count() <= 0) {
    ioc.run();
    return;
  }
  while (!ioc.stopped()) {
    auto until = std::chrono::steady_clock::now() + spin;
    while (!ioc.stopped()) {
      if (ioc.poll() > 0)
        until = std::chrono::steady_clock::now() + spin;
      else if (std::chrono::steady_clock::now() < until)
        sched_yield();
      else
        break;
    }
    ioc.run_one();
  }
}

} // namespace

struct io_runtime::impl {
  // The concurrency hint: with one thread Asio queues what a handler posts on that thread without a lock.
  explicit impl(int threads) : ioc(std::make_shared<asio::io_context>(threads)) {}
  std::shared_ptr<asio::io_context> ioc;
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(*ioc);
  std::vector<std::thread> threads;
};

io_runtime::io_runtime(int threads, millis spin) : impl_(std::make_unique<impl>(std::max(1, threads))) {
  for (int i = 0; i < std::max(1, threads); ++i)
    impl_->threads.emplace_back([ioc = impl_->ioc, spin] { run_io_thread(*ioc, spin); });
}

io_runtime::~io_runtime() {
  stop();
}

void io_runtime::stop() {
  impl_->guard.reset();
  impl_->ioc->stop();
  for (auto& t : impl_->threads) {
    if (!t.joinable())
      continue;
    if (t.get_id() == std::this_thread::get_id())
      t.detach(); // stop() from one of its own handlers: that thread leaves its loop when the handler returns
    else
      t.join();
  }
}

std::shared_ptr<asio::io_context> io_runtime::context() const {
  return impl_->ioc;
}

} // namespace squad::net
