#pragma once
// Internal to runtime/net: one origin's connection pool (pool_impl) and what it hands its connections (exchange).
// The pool queues exchanges and hands each to an idle or a new connection, all on one strand, so its state needs no
// lock; only the stats are atomics. Connections (Beast, plain or TLS) are http_client.cpp's.
#include "runtime/net/http_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace squad::net {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using steady = std::chrono::steady_clock;
using strand_t = asio::strand<asio::io_context::executor_type>;

inline std::string ms_text(millis d) {
  return std::to_string(d.count()) + "ms";
}

struct exchange {
  http_request req;
  std::shared_ptr<http_handler> handler;
  steady::time_point deadline;
  millis total{0};
  bool retried = false; // resent once already after a stale connection
  bool started = false;
  bool done = false;
  std::optional<asio::steady_timer> queue_timer;

  void finish(http_failure f, const std::string& detail) {
    if (done)
      return;
    done = true;
    if (queue_timer)
      queue_timer->cancel();
    try {
      handler->on_done(f, detail);
    } catch (...) {
      // A handler must not throw; nothing sensible is left to do with its exception on an io thread.
    }
  }
};

class pool_impl;

class connection {
public:
  virtual ~connection() = default;
  virtual void run(std::shared_ptr<exchange> ex, bool reused) = 0;
  virtual bool usable() const = 0;
  virtual void close() = 0;
};

class pool_impl final : public http_pool, public std::enable_shared_from_this<pool_impl> {
public:
  pool_impl(std::shared_ptr<asio::io_context> ioc, pool_options opts, std::shared_ptr<ssl::context> tls)
      : ioc_(std::move(ioc)), strand_(asio::make_strand(*ioc_)), opts_(std::move(opts)), tls_(std::move(tls)) {
    std::string host =
        opts_.origin.host.find(':') != std::string::npos ? "[" + opts_.origin.host + "]" : opts_.origin.host;
    bool default_port = opts_.origin.port == (opts_.origin.tls ? "443" : "80");
    host_header_ = default_port ? host : host + ":" + opts_.origin.port;
  }

  ~pool_impl() override {
    for (auto& c : idle_)
      c->close();
  }

  void submit(http_request req, std::shared_ptr<http_handler> handler) override {
    auto ex = std::make_shared<exchange>();
    ex->total = req.total ? std::min(*req.total, opts_.timeouts.total) : opts_.timeouts.total;
    ex->deadline = steady::now() + ex->total;
    ex->req = std::move(req);
    ex->handler = std::move(handler);
    ++requests_;
    asio::post(strand_, [self = shared_from_this(), ex] { self->enqueue(ex, false); });
  }

  pool_stats stats() const override {
    return {requests_.load(), opened_.load(), reused_.load(), stale_.load(), open_.load(), queued_.load()};
  }

  const pool_options& options() const override { return opts_; }

  // -- used by connections, on the strand --------------------------------------------------------------

  const strand_t& strand() const { return strand_; }
  const std::string& host_header() const { return host_header_; }
  ssl::context* tls() const { return tls_.get(); }
  void count_opened() { ++opened_; }

  /// A connection is done with its exchange; `keep`: it can carry another request.
  void release(const std::shared_ptr<connection>& c, bool keep) {
    if (keep && c->usable()) {
      idle_.push_back(c);
    } else {
      c->close();
      --open_count_;
    }
    pump();
  }

  /// A kept-alive connection was found closed before any byte of a response: send once more, first in line.
  void resend(const std::shared_ptr<exchange>& ex) {
    ex->retried = true;
    ex->started = false;
    ++stale_;
    enqueue(ex, true);
  }

private:
  void enqueue(const std::shared_ptr<exchange>& ex, bool front) {
    if (front)
      queue_.push_front(ex);
    else
      queue_.push_back(ex);
    pump();
    if (!ex->started && !ex->done && !ex->queue_timer) { // waits for a connection: bounded by the total deadline
      ex->queue_timer.emplace(strand_, ex->deadline);
      ex->queue_timer->async_wait([self = shared_from_this(), ex](boost::system::error_code ec) {
        if (ec || ex->started || ex->done)
          return;
        ex->finish(http_failure::timeout_total,
                   "total timeout: no connection to " + self->opts_.name + " became free within " + ms_text(ex->total));
        self->pump(); // drops it from the queue
      });
    }
  }

  std::shared_ptr<connection> new_connection();

  void pump() {
    while (!queue_.empty()) {
      auto ex = queue_.front();
      if (ex->done) {
        queue_.pop_front();
        continue;
      }
      std::shared_ptr<connection> c;
      bool reused = false;
      while (!c && !idle_.empty()) {
        c = std::move(idle_.back());
        idle_.pop_back();
        if (c->usable()) {
          reused = true;
        } else {
          c.reset();
          --open_count_;
        }
      }
      if (!c) {
        if (open_count_ >= opts_.max_connections)
          break;
        c = new_connection();
        ++open_count_;
      }
      queue_.pop_front();
      ex->started = true;
      if (ex->queue_timer)
        ex->queue_timer->cancel();
      if (reused)
        ++reused_;
      c->run(ex, reused);
    }
    queued_ = static_cast<std::int64_t>(queue_.size());
    open_ = static_cast<std::int64_t>(open_count_);
  }

  std::shared_ptr<asio::io_context> ioc_;
  strand_t strand_;
  pool_options opts_;
  std::shared_ptr<ssl::context> tls_;
  std::string host_header_;
  std::deque<std::shared_ptr<exchange>> queue_;
  std::vector<std::shared_ptr<connection>> idle_;
  std::size_t open_count_ = 0;
  std::atomic<std::int64_t> requests_{0}, opened_{0}, reused_{0}, stale_{0}, open_{0}, queued_{0};
};

} // namespace squad::net
