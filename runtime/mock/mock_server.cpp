// Callback-style Beast server over plain TCP. Beast parses requests; responses are rendered by the pure
// mock_upstream as bytes and written with asio::async_write, which keeps template instantiation (and the
// compile time on a 2-core machine) small.
#include "runtime/mock/mock_server.hpp"

#include "runtime/mock/mock_upstream.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <csignal>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace squad::mock {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr std::uint64_t body_limit = 16ull * 1024 * 1024;

// One upstream's logic, shared by its connections. The mutex is uncontended with one thread.
struct upstream_slot {
  explicit upstream_slot(const mock_upstream_config& cfg) : logic(cfg) {}
  mock_upstream logic;
  std::mutex mutex;
};

// One connection. Exactly one operation is pending at a time (read, wait or write), so even with several
// io threads the session's handlers never run concurrently and need no strand.
class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket socket, upstream_slot& up)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), up_(up) {}

  // A connection that dies mid-response still gives its in-flight slot back.
  ~session() { release(); }

  void read() {
    parser_.emplace();
    parser_->body_limit(body_limit);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

private:
  using step = void (session::*)();

  void on_read(beast::error_code ec) {
    if (ec)
      return close(); // end of stream, reset, malformed HTTP or body too large: drop the connection
    auto& req = parser_->get();
    mock_request in;
    in.method = std::string(req.method_string());
    in.target = std::string(req.target());
    in.body = std::move(req.body());
    in.authorization = std::string(req[http::field::authorization]);
    in.api_key = std::string(req["x-api-key"]);
    keep_alive_ = req.keep_alive();
    {
      std::lock_guard lock(up_.mutex);
      reply_ = up_.logic.handle(in, std::chrono::steady_clock::now());
    }
    held_ = reply_.admitted;
    if (reply_.drop)
      return close();
    wait(reply_.delay, &session::write_head);
  }

  void write_head() {
    bool cut = reply_.cut_after.has_value();
    // A cut is a surprise to the client: the head still promises keep-alive.
    close_after_ = !keep_alive_ || cut;
    out_ = render_head(reply_, keep_alive_);
    if (!reply_.stream) {
      out_ += cut ? reply_.body.substr(0, reply_.body.size() / 2) : reply_.body;
      return write(&session::finish);
    }
    frame_ = 0;
    write(&session::next_frame);
  }

  void next_frame() {
    if (cut_reached())
      return finish();
    if (frame_ == reply_.frames.size()) {
      out_ = render_chunk({});
      return write(&session::finish);
    }
    wait(frame_delay(), &session::write_frames);
  }

  // Frames due at the same moment go out in one write: without a per-token delay a whole stream is a
  // single send, which keeps the mock from being the bottleneck of a streaming benchmark.
  void write_frames() {
    out_.clear();
    do
      out_ += render_chunk(reply_.frames[frame_++].data);
    while (frame_ < reply_.frames.size() && !cut_reached() && frame_delay().count() == 0);
    if (frame_ == reply_.frames.size() && !cut_reached()) {
      out_ += render_chunk({});
      return write(&session::finish);
    }
    write(&session::next_frame);
  }

  bool cut_reached() const { return reply_.cut_after && frame_ >= *reply_.cut_after; }
  millis frame_delay() const { return reply_.frames[frame_].token ? reply_.per_token : millis{0}; }

  void finish() {
    release();
    if (close_after_)
      return close();
    read();
  }

  void write(step next) {
    net::async_write(socket_, net::buffer(out_), [self = shared_from_this(), next](beast::error_code ec, std::size_t) {
      if (ec)
        return self->close();
      ((*self).*next)();
    });
  }

  void wait(millis d, step next) {
    if (d.count() <= 0)
      return (this->*next)();
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this(), next](beast::error_code ec) {
      if (!ec)
        ((*self).*next)();
    });
  }

  void close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  void release() {
    if (!held_)
      return;
    held_ = false;
    std::lock_guard lock(up_.mutex);
    up_.logic.release();
  }

  tcp::socket socket_;
  net::steady_timer timer_;
  upstream_slot& up_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_; // fresh per request
  mock_reply reply_;
  std::string out_; // the bytes being written; lives until the write completes
  std::size_t frame_ = 0;
  bool keep_alive_ = true;
  bool close_after_ = false;
  bool held_ = false; // this connection holds an in-flight slot
};

class listener : public std::enable_shared_from_this<listener> {
public:
  listener(net::io_context& ioc, const tcp::endpoint& at, upstream_slot& up) : acceptor_(ioc), retry_(ioc), up_(up) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void accept() {
    acceptor_.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted)
        return;
      if (ec) {
        // Out of descriptors and the like: back off briefly instead of spinning.
        self->retry_.expires_after(std::chrono::milliseconds(50));
        self->retry_.async_wait([self](beast::error_code) { self->accept(); });
        return;
      }
      beast::error_code ignored;
      // Heads and SSE frames are small separate writes; Nagle would hold them back.
      socket.set_option(tcp::no_delay(true), ignored);
      {
        std::lock_guard lock(self->up_.mutex);
        self->up_.logic.connection_opened();
      }
      std::make_shared<session>(std::move(socket), self->up_)->read();
      self->accept();
    });
  }

private:
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  upstream_slot& up_;
};

} // namespace

void run_mock_server(const mock_config& cfg, int threads,
                     const std::function<void(const std::vector<listening_upstream>&)>& on_listening) {
  // Declared before the io_context: sessions destroyed with it still release their slots.
  std::vector<std::unique_ptr<upstream_slot>> slots;
  net::io_context ioc{threads};
  // Signals are caught before the ports are announced, so a test may send SIGTERM as soon as it sees them.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });

  std::vector<std::shared_ptr<listener>> listeners;
  std::vector<listening_upstream> bound;
  for (const auto& u : cfg.upstreams) {
    slots.push_back(std::make_unique<upstream_slot>(u));
    try {
      tcp::endpoint at(net::ip::make_address_v4(u.host), u.port);
      listeners.push_back(std::make_shared<listener>(ioc, at, *slots.back()));
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("upstream " + u.name + ": cannot listen on " + u.listen + ": " + e.code().message());
    }
    bound.push_back({u.name, u.host, listeners.back()->port()});
  }
  on_listening(bound);
  for (auto& l : listeners)
    l->accept();

  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i)
    pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool)
    t.join();
}

} // namespace squad::mock
