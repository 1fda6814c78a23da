#pragma once
// Internal to the HTTP server (http_server.cpp, http_sessions.cpp): the server, its HTTP and WebSocket sessions
// and the responder. The only Beast server code, in one header and two files.
#include "runtime/metrics/registry.hpp"
#include "runtime/server/http_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include <sys/socket.h>

namespace squad::server::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

/// A response head: status line, the headers, the framing header, Connection: close when `close`.
std::string head_text(int status, const header_list& headers, std::string_view framing, bool close);
/// An OpenAI-style error body for the server's own refusals (408, 413, 431, ...).
std::string json_error(int status, const char* type, const std::string& message);

class server_impl;

// -- WebSocket ------------------------------------------------------------------------------------------------------

class ws_session final : public ws_connection, public std::enable_shared_from_this<ws_session> {
public:
  ws_session(tcp::socket&& socket, std::shared_ptr<server_impl> srv);
  void run(const http::request<http::string_body>& upgrade, std::shared_ptr<ws_handler> handler);
  bool send(std::string text) override;
  std::size_t queued() const override { return queued_.load(); }
  void close() override;

private:
  void read();
  void write_next();
  void finish();

  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<server_impl> srv_; // sessions keep the server alive: they touch its counters to the end
  beast::flat_buffer buffer_;
  std::shared_ptr<ws_handler> handler_;
  std::deque<std::string> out_; // on the strand
  bool writing_ = false;
  std::atomic<std::size_t> queued_{0};
  std::atomic<bool> gone_{false};
  bool finished_ = false;
};

// -- HTTP -----------------------------------------------------------------------------------------------------------

class session;

class responder_impl final : public responder {
public:
  explicit responder_impl(std::shared_ptr<session> s) : s_(std::move(s)) {}
  ~responder_impl() override;
  void reply(int status, header_list headers, std::string body) override;
  void start_stream(int status, header_list headers) override;
  void write(std::string piece) override;
  void end() override;
  bool gone() const override;
  bool hung_up() const override;

private:
  std::shared_ptr<session> s_;
  std::mutex m_;
  enum class phase { fresh, streaming, done } phase_ = phase::fresh;
};

class server_impl final : public http_server, public std::enable_shared_from_this<server_impl> {
public:
  server_impl(std::shared_ptr<asio::io_context> ioc, server_options opts, request_fn on_request, ws_accept_fn on_ws)
      : ioc_(std::move(ioc)), acceptor_(asio::make_strand(*ioc_)), accept_pause_(acceptor_.get_executor()),
        opts_(std::move(opts)), on_request_(std::move(on_request)), on_ws_(std::move(on_ws)) {}

  bool listen(std::string& why) {
    beast::error_code ec;
    auto addr = asio::ip::make_address(opts_.host, ec);
    if (ec) {
      why = "server.listen: bad address " + opts_.host + ": " + ec.message();
      return false;
    }
    unsigned long port = 0;
    try {
      port = std::stoul(opts_.port);
    } catch (...) {
      port = 70000;
    }
    if (port > 65535) {
      why = "server.listen: bad port " + opts_.port;
      return false;
    }
    tcp::endpoint ep{addr, static_cast<unsigned short>(port)};
    acceptor_.open(ep.protocol(), ec);
    if (!ec)
      acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
      acceptor_.bind(ep, ec);
    if (!ec)
      acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      why = "server.listen: cannot listen on " + opts_.host + ":" + opts_.port + ": " + ec.message();
      return false;
    }
    port_ = acceptor_.local_endpoint().port();
    return true;
  }

  void accept() {
    acceptor_.async_accept(asio::make_strand(*ioc_), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (self->stopped_)
        return;
      if (!ec) {
        self->on_accept(std::move(s));
        return self->accept();
      }
      // Out of file descriptors (or memory) the connection stays in the backlog and every retry fails at once: pause
      // instead of spinning, count it, and try again (the connections already open go on being served meanwhile).
      auto reason = ec == asio::error::no_descriptors                                    ? "no_descriptors"
                    : ec == asio::error::no_buffer_space || ec == asio::error::no_memory ? "no_memory"
                                                                                         : "other";
      server_metrics().accept_by_reason.get({reason}).inc();
      self->accept_pause_.expires_after(std::chrono::milliseconds{50});
      self->accept_pause_.async_wait([self](beast::error_code) {
        if (!self->stopped_)
          self->accept();
      });
    });
  }

  void on_accept(tcp::socket s);

  unsigned short port() const override { return port_; }

  void stop() override;

  server_stats stats() const override { return {connections_.load(), in_flight_.load(), ws_open_.load()}; }

  const server_options& opts() const { return opts_; }
  const request_fn& on_request() const { return on_request_; }
  const ws_accept_fn& on_ws() const { return on_ws_; }
  bool stopped() const { return stopped_; }

  /// A connection from `peer` starts reading its first request head; past the bound the oldest such one from
  /// the same address is closed (returned, to be closed by the caller on its own strand).
  std::shared_ptr<session> first_read_started(const std::string& peer, std::weak_ptr<session> s);
  /// It got its first request head (or ended).
  void first_read_done(const std::string& peer, const session* s);

  std::atomic<std::int64_t> connections_{0}, in_flight_{0}, ws_open_{0};
  std::mutex first_reads_m_;
  std::map<std::string, std::deque<std::weak_ptr<session>>> first_reads_; // by address, oldest first
  std::mutex sessions_m_;
  std::set<std::weak_ptr<session>, std::owner_less<std::weak_ptr<session>>> sessions_;
  std::set<std::weak_ptr<ws_session>, std::owner_less<std::weak_ptr<ws_session>>> ws_sessions_;

private:
  std::shared_ptr<asio::io_context> ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_pause_; // after a failed accept (e.g. out of file descriptors)
  server_options opts_;
  request_fn on_request_;
  ws_accept_fn on_ws_;
  unsigned short port_ = 0;
  std::atomic<bool> stopped_{false};
};

class session final : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& s, std::shared_ptr<server_impl> srv)
      : stream_(std::move(s)), srv_(std::move(srv)), read_timer_(stream_.get_executor()) {}

  void start() {
    beast::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    {
      std::lock_guard g{fd_m_};
      fd_ = stream_.socket().native_handle();
    }
    auto ep = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? "" : ep.address().to_string();
    first_pending_ = true;
    if (auto oldest = srv_->first_read_started(peer_, weak_from_this()))
      asio::post(oldest->stream_.get_executor(), [oldest] { oldest->evict(); });
    read(true);
  }

  // Closed to make room: it had not sent its first request head while newer connections from its address came.
  void evict() {
    if (closed_ || !first_pending_)
      return;
    static const metrics::lazy<metrics::counter> slow_first{
        metrics::resolver(server_metrics().evicted, {{"reason", "slow_first_request"}})};
    slow_first.get().inc();
    shutdown();
  }

  void first_done() {
    if (std::exchange(first_pending_, false))
      srv_->first_read_done(peer_, this);
  }

  // -- called through responder_impl; every step runs on the strand
  void post(std::function<void()> fn) { asio::post(stream_.get_executor(), std::move(fn)); }
  void queue(std::string bytes, bool last) {
    if (gone_)
      return;
    queued_bytes_ += bytes.size();
    if (queued_bytes_ > srv_->opts().stream_max_queued) { // a client that reads slower than its stream grows
      gone_ = true;                                       // nothing here: it is cut off (gone() turns true)
      static const metrics::lazy<metrics::counter> slow_http{
          metrics::resolver(server_metrics().slow_cut, {{"kind", "http"}})};
      slow_http.get().inc();
      if (!writing_) { // else the write in flight fails on the closed socket and its handler cleans up
        out_.clear();
        finish_answer();
      }
      return shutdown();
    }
    out_.push_back(std::move(bytes));
    if (last)
      answer_done_ = true;
    write_next();
  }
  bool close_after() const { return close_after_; }
  bool gone() const { return gone_.load(); }
  // Whether the client closed its end (or reset the connection) while it waits for its answer: a non-blocking
  // peek that reads nothing, so any thread may ask (a call about to leave a provider's queue does). A pipelined
  // next request reads as "still there". A client that half-closes after its request counts as gone, as nginx
  // counts it (its 499).
  bool hung_up() const {
    if (gone_.load())
      return true;
    std::lock_guard g{fd_m_}; // the socket cannot be closed (and its number reused) during the peek
    if (fd_ < 0)
      return true;
    char c;
    auto n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0)
      return n == 0;
    return errno == ECONNRESET || errno == ENOTCONN || errno == EPIPE || errno == ETIMEDOUT || errno == EBADF ||
           errno == ENOTSOCK;
  }
  void answered_without_reply() { // the application dropped its responder without answering
    queue(head_text(500, {{"Content-Type", "application/json"}},
                    "Content-Length: " +
                        std::to_string(json_error(500, "server_error", "the request was not answered").size()) + "\r\n",
                    close_after_) +
              json_error(500, "server_error", "the request was not answered"),
          true);
  }
  void close_if_idle() {
    post([self = shared_from_this()] {
      self->close_after_ = true;
      if (self->idle_)
        self->shutdown();
    });
  }

private:
  // The read deadline is our own timer, not the stream's expiry (which would close the socket before a 408 could
  // be written): when it fires, the pending read is cancelled and on_error answers 408 if a request had begun.
  void arm_read_timer(std::chrono::milliseconds d) {
    read_timed_out_ = false;
    auto gen = ++read_gen_;
    read_timer_.expires_after(d);
    read_timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      // Cancelled, or fired after its read finished (the completion was already queued): not a timeout, and
      // cancelling now would abort the answer's write instead.
      if (ec || gen != self->read_gen_)
        return;
      self->read_timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }

  void read(bool first) {
    idle_ = true;
    parser_.emplace();
    parser_->body_limit(srv_->opts().body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(srv_->opts().header_limit));
    stream_.expires_never();
    arm_read_timer(first ? srv_->opts().read_timeout : srv_->opts().idle_timeout);
    // Wait for the first bytes under the idle timeout, then the whole request under the read timeout.
    http::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->idle_ = false;
      self->first_done();
      if (ec)
        return self->on_error(ec);
      if (self->parser_->is_done())
        return self->on_request();
      self->arm_read_timer(self->srv_->opts().read_timeout);
      http::async_read(self->stream_, self->buffer_, *self->parser_, [self](beast::error_code ec, std::size_t) {
        if (ec)
          return self->on_error(ec);
        self->on_request();
      });
    });
  }

  void on_error(beast::error_code ec) {
    ++read_gen_;
    read_timer_.cancel();
    if (read_timed_out_) {
      if (parser_ && parser_->got_some())
        return refuse(408, "invalid_request_error", "the request did not arrive in time");
      return shutdown();
    }
    if (ec == http::error::body_limit)
      return refuse(413, "invalid_request_error",
                    "the request body is over the limit of " + std::to_string(srv_->opts().body_limit) + " bytes");
    if (ec == http::error::header_limit)
      return refuse(431, "invalid_request_error",
                    "the request headers are over the limit of " + std::to_string(srv_->opts().header_limit) +
                        " bytes");
    if (ec == beast::error::timeout && parser_ && parser_->got_some())
      return refuse(408, "invalid_request_error", "the request did not arrive in time");
    bool http_error = ec.category() == http::make_error_code(http::error::bad_target).category();
    if (http_error && ec != http::error::end_of_stream && ec != http::error::partial_message)
      return refuse(400, "invalid_request_error", "malformed HTTP request: " + ec.message());
    shutdown();
  }

  void refuse(int status, const char* type, const std::string& message) {
    close_after_ = true;
    linger_ = true; // the rest of the request may still be on its way: read it away after the answer
    srv_->in_flight_++;
    counted_ = true;
    auto body = json_error(status, type, message);
    queue(head_text(status, {{"Content-Type", "application/json"}},
                    "Content-Length: " + std::to_string(body.size()) + "\r\n", true) +
              body,
          true);
  }

  void on_request() {
    ++read_gen_;
    read_timer_.cancel();
    stream_.expires_never();
    auto msg = parser_->release();
    parser_.reset();
    if (!msg.keep_alive() || srv_->stopped())
      close_after_ = true;
    request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (auto& f : msg)
      req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.peer = peer_; // read once, at start
    srv_->in_flight_++;
    counted_ = true;
    if (websocket::is_upgrade(msg))
      return upgrade(std::move(msg), std::move(req));
    req.body = std::move(msg.body());
    srv_->on_request()(std::move(req), std::make_shared<responder_impl>(shared_from_this()));
  }

  void upgrade(http::request<http::string_body> msg, const request& req);

  void write_next() {
    if (writing_ || out_.empty())
      return;
    if (gone_) {
      out_.clear();
      return;
    }
    writing_ = true;
    stream_.expires_after(srv_->opts().write_timeout);
    asio::async_write(stream_, asio::buffer(out_.front()),
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->writing_ = false;
                        self->queued_bytes_ -= std::min(self->queued_bytes_, self->out_.front().size());
                        self->out_.pop_front();
                        if (ec) {
                          self->gone_ = true;
                          self->out_.clear();
                          self->finish_answer();
                          return self->shutdown();
                        }
                        if (!self->out_.empty())
                          return self->write_next();
                        self->stream_.expires_never();
                        if (!self->answer_done_)
                          return;
                        self->finish_answer();
                        if (self->close_after_ || self->srv_->stopped())
                          self->shutdown();
                        else
                          self->read(false);
                      });
  }

  void finish_answer() {
    answer_done_ = false;
    if (counted_) {
      counted_ = false;
      srv_->in_flight_--;
    }
  }

  void shutdown() {
    if (closed_)
      return;
    first_done();
    closed_ = true;
    gone_ = true;
    read_timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    {
      std::lock_guard g{fd_m_};
      fd_ = -1;
    }
    if (linger_ && !ec) {
      linger_until_ = std::chrono::steady_clock::now() + srv_->opts().linger_time;
      return discard();
    }
    stream_.close();
  }

  // Lingering close: reads and drops what the client still sends until it closes, or a bound is reached.
  void discard() {
    auto left = linger_until_ - std::chrono::steady_clock::now();
    if (discarded_ >= srv_->opts().linger_bytes || left <= std::chrono::steady_clock::duration::zero())
      return stream_.close();
    stream_.expires_after(std::min<std::chrono::steady_clock::duration>(left, srv_->opts().linger_timeout));
    if (!sink_)
      sink_ = std::make_unique<std::array<char, 16384>>();
    stream_.async_read_some(asio::buffer(*sink_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      if (ec)
        return self->stream_.close();
      self->discarded_ += n;
      self->discard();
    });
  }

public:
  ~session() {
    if (counted_)
      srv_->in_flight_--;
    srv_->connections_--;
  }

private:
  beast::tcp_stream stream_;
  std::shared_ptr<server_impl> srv_; // sessions keep the server alive: they touch its counters to the end
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::steady_timer read_timer_;
  bool read_timed_out_ = false;
  std::uint64_t read_gen_ = 0;   // which read the read timer belongs to
  std::size_t queued_bytes_ = 0; // answer bytes not yet written
  std::deque<std::string> out_;
  bool writing_ = false, answer_done_ = false, close_after_ = false, idle_ = false, closed_ = false, counted_ = false;
  bool linger_ = false;        // close lingering (a refused request's rest may still arrive)
  bool first_pending_ = false; // counted among its address's connections without a first request head
  std::chrono::steady_clock::time_point linger_until_{};
  std::size_t discarded_ = 0;
  std::unique_ptr<std::array<char, 16384>> sink_;
  std::string peer_;              // the client's address
  mutable std::mutex fd_m_;       // hung_up() peeks (any thread) vs. closing (the session's strand)
  int fd_ = -1;                   // the socket, for hung_up(); -1 once closed or handed to a WebSocket session
  std::atomic<bool> gone_{false}; // cut off, or a write failed: nothing more is written
  friend class responder_impl;
};

} // namespace squad::server::detail
