// The only Beast client file: one connection (plain TCP or TLS) carrying a pool's exchanges one at a time, with
// its phase timeouts, a resend on a stale kept-alive connection, and the response streamed to the handler. Callback
// style (no coroutines: they cost minutes to compile here). The pool is http_pool.hpp, the io threads io_runtime.cpp.
#include "runtime/net/http_pool.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <deque>

namespace squad::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using strand_t = asio::strand<asio::io_context::executor_type>;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

const char* to_string(http_failure f) {
  switch (f) {
  case http_failure::none:
    return "none";
  case http_failure::connect_failed:
    return "connect_failed";
  case http_failure::tls_failed:
    return "tls_failed";
  case http_failure::timeout_connect:
    return "connect";
  case http_failure::timeout_first_byte:
    return "first_byte";
  case http_failure::timeout_idle:
    return "idle";
  case http_failure::timeout_total:
    return "total";
  case http_failure::closed_early:
    return "closed_early";
  case http_failure::bad_http:
    return "bad_http";
  case http_failure::abandoned:
    return "abandoned";
  case http_failure::body_too_large:
    return "body_too_large";
  case http_failure::shut_down:
    return "shut_down";
  }
  return "?";
}

namespace {

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The connection ended with nothing read: on a kept-alive connection, the server closed it while idle.
bool closed_without_bytes(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

template <class Stream>
class connection_impl final : public connection, public std::enable_shared_from_this<connection_impl<Stream>> {
public:
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

  explicit connection_impl(const std::shared_ptr<pool_impl>& pool)
      : pool_(pool), opts_(pool->options()), stream_(make_stream(*pool)), resolver_(pool->strand()),
        resolve_timer_(pool->strand()) {}

  void run(std::shared_ptr<exchange> ex, bool reused) override {
    ex_ = std::move(ex);
    reused_ = reused;
    if (connected_)
      send();
    else
      resolve();
  }

  bool usable() const override { return connected_ && lowest().socket().is_open(); }

  void close() override {
    beast::error_code ignored;
    connected_ = false;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
  }

private:
  static Stream make_stream(pool_impl& pool) {
    if constexpr (is_tls)
      return Stream(pool.strand(), *pool.tls());
    else
      return Stream(pool.strand());
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  const beast::tcp_stream& lowest() const { return beast::get_lowest_layer(const_cast<Stream&>(stream_)); }

  // The next operation's deadline: the phase's own timeout, or the total deadline when that comes first.
  void arm(millis phase, http_failure kind) {
    auto phase_end = steady::now() + phase;
    if (ex_->deadline <= phase_end) {
      lowest().expires_at(ex_->deadline);
      binding_ = http_failure::timeout_total;
      binding_ms_ = ex_->total;
    } else {
      lowest().expires_at(phase_end);
      binding_ = kind;
      binding_ms_ = phase;
    }
  }

  std::string timeout_detail() const {
    const char* what = binding_ == http_failure::timeout_connect      ? "connecting"
                       : binding_ == http_failure::timeout_first_byte ? "waiting for the response head"
                       : binding_ == http_failure::timeout_idle       ? "waiting for the next piece of the body"
                                                                      : "before the response completed";
    return std::string(to_string(binding_)) + " timeout after " + ms_text(binding_ms_) + " (" + what + ")";
  }

  std::string where() const { return opts_.origin.host + ":" + opts_.origin.port; }

  void fail(http_failure f, const std::string& detail) {
    close();
    auto ex = std::move(ex_);
    auto pool = pool_.lock();
    if (ex)
      ex->finish(f, detail);
    if (pool)
      pool->release(this->shared_from_this(), false);
  }

  void resolve() {
    auto self = this->shared_from_this();
    auto phase_end = std::min(ex_->deadline, steady::now() + opts_.timeouts.connect);
    resolve_timer_.expires_at(phase_end);
    resolve_timer_.async_wait([self](beast::error_code ec) {
      if (!ec)
        self->resolver_.cancel();
    });
    resolver_.async_resolve(opts_.origin.host, opts_.origin.port,
                            [self](beast::error_code ec, tcp::resolver::results_type results) {
                              self->on_resolve(ec, std::move(results));
                            });
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    bool timed_out = resolve_timer_.expiry() <= steady::now();
    resolve_timer_.cancel();
    if (ec == asio::error::operation_aborted && timed_out) {
      arm(opts_.timeouts.connect, http_failure::timeout_connect); // for the binding's name and length
      return fail(binding_, timeout_detail() + " resolving " + opts_.origin.host);
    }
    if (ec)
      return fail(http_failure::connect_failed, "cannot resolve " + opts_.origin.host + ": " + ec.message());
    arm(opts_.timeouts.connect, http_failure::timeout_connect);
    lowest().async_connect(results, [self = this->shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      self->on_connect(ec);
    });
  }

  void on_connect(beast::error_code ec) {
    if (ec == beast::error::timeout)
      return fail(binding_, timeout_detail() + " to " + where());
    if (ec)
      return fail(http_failure::connect_failed, "cannot connect to " + where() + ": " + ec.message());
    lowest().socket().set_option(tcp::no_delay(true), ec);
    if constexpr (is_tls) {
      const auto& host = opts_.origin.host;
      if (!is_ip_literal(host) && !SSL_set_tlsext_host_name(stream_.native_handle(), host.c_str()))
        return fail(http_failure::tls_failed, "cannot set TLS SNI for " + host);
      stream_.set_verify_mode(ssl::verify_peer);
      stream_.set_verify_callback(ssl::host_name_verification(host));
      stream_.async_handshake(ssl::stream_base::client,
                              [self = this->shared_from_this()](beast::error_code ec) { self->on_handshake(ec); });
    } else {
      on_established();
    }
  }

  void on_handshake(beast::error_code ec) {
    if (ec == beast::error::timeout)
      return fail(binding_, timeout_detail() + " in the TLS handshake with " + where());
    if (ec) {
      std::string why = ec.message();
      if constexpr (is_tls) {
        long verify = SSL_get_verify_result(stream_.native_handle());
        if (verify != X509_V_OK)
          why = std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
      }
      return fail(http_failure::tls_failed, "TLS handshake with " + where() + " failed: " + why);
    }
    on_established();
  }

  void on_established() {
    connected_ = true;
    if (auto pool = pool_.lock())
      pool->count_opened();
    send();
  }

  void send() {
    auto pool = pool_.lock();
    if (!pool)
      return fail(http_failure::shut_down, "the HTTP pool was shut down");
    request_ = {};
    request_.version(11);
    request_.method_string(ex_->req.method);
    request_.target(ex_->req.target);
    request_.set(http::field::host, pool->host_header());
    request_.set(http::field::user_agent, "squad/0.1");
    for (auto& [name, value] : ex_->req.headers)
      request_.set(name, value);
    request_.body() = ex_->req.body;
    request_.keep_alive(true);
    request_.prepare_payload();
    auto head = opts_.timeouts.first_byte;
    if (ex_->req.first_byte)
      head = std::min(head, *ex_->req.first_byte);
    arm(head, http_failure::timeout_first_byte);
    http::async_write(stream_, request_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  // Before any byte of a response: a stale kept-alive connection is resent once; on a new one the server hung up.
  void fail_before_response(beast::error_code ec, const char* when) {
    if (ec == beast::error::timeout)
      return fail(binding_, timeout_detail() + " from " + where());
    if (closed_without_bytes(ec) && reused_ && !ex_->retried) {
      close();
      auto ex = std::move(ex_);
      auto pool = pool_.lock();
      if (!pool)
        return ex->finish(http_failure::shut_down, "the HTTP pool was shut down");
      pool->resend(ex); // first in line, before release() lets a queued request have the freed slot
      return pool->release(this->shared_from_this(), false);
    }
    if (closed_without_bytes(ec))
      return fail(http_failure::connect_failed, where() + " closed the connection " + when + " without a response");
    if (ec.category() == beast::error_code(http::error::end_of_stream).category())
      return fail(http_failure::bad_http, "malformed response head from " + where() + ": " + ec.message());
    return fail(http_failure::connect_failed, "connection to " + where() + " failed " + when + ": " + ec.message());
  }

  void on_write(beast::error_code ec) {
    if (ec)
      return fail_before_response(ec, "while sending the request");
    buffer_.clear();
    parser_.emplace();
    parser_->header_limit(64 * 1024);
    parser_->body_limit(opts_.max_body_bytes);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec)
      return fail_before_response(ec, "after the request was sent");
    header_list headers;
    for (const auto& field : parser_->get())
      headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    try {
      ex_->handler->on_head(parser_->get().result_int(), headers);
    } catch (...) {
    }
    body_bytes_ = 0;
    if (parser_->is_done())
      return complete();
    read_body();
  }

  void read_body() {
    arm(opts_.timeouts.idle, http_failure::timeout_idle);
    auto& body = parser_->get().body();
    body.data = chunk_.data();
    body.size = chunk_.size();
    http::async_read_some(stream_, buffer_, *parser_,
                          [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::need_buffer)
      ec = {};
    std::size_t got = chunk_.size() - parser_->get().body().size;
    if (got > 0) {
      body_bytes_ += got;
      bool wanted = true;
      try {
        ex_->handler->on_data(std::string_view(chunk_.data(), got));
        wanted = ex_->handler->wanted();
      } catch (...) {
      }
      if (!wanted)
        return fail(http_failure::abandoned, "the caller stopped reading " + where() + " after " +
                                                 std::to_string(body_bytes_) + " bytes of body");
    }
    if (ec == beast::error::timeout)
      return fail(binding_,
                  timeout_detail() + " from " + where() + " after " + std::to_string(body_bytes_) + " bytes of body");
    if (ec == http::error::body_limit)
      return fail(http_failure::body_too_large,
                  "response body from " + where() + " exceeds " + std::to_string(opts_.max_body_bytes) + " bytes");
    if (ec && (closed_without_bytes(ec) || ec == http::error::partial_message))
      return fail(http_failure::closed_early,
                  where() + " closed the connection after " + std::to_string(body_bytes_) + " bytes of body");
    if (ec)
      return fail(http_failure::bad_http, "malformed response body from " + where() + ": " + ec.message());
    if (parser_->is_done())
      return complete();
    read_body();
  }

  void complete() {
    bool keep = parser_->keep_alive();
    auto ex = std::move(ex_);
    ex->finish(http_failure::none, "");
    if (auto pool = pool_.lock())
      pool->release(this->shared_from_this(), keep);
  }

  std::weak_ptr<pool_impl> pool_;
  pool_options opts_; // a copy: a connection may outlive its pool by a few handlers
  Stream stream_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  bool connected_ = false;
  bool reused_ = false;
  std::shared_ptr<exchange> ex_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  std::array<char, 16 * 1024> chunk_{};
  std::size_t body_bytes_ = 0;
  http_failure binding_ = http_failure::timeout_total;
  millis binding_ms_{0};
};

} // namespace

std::shared_ptr<connection> pool_impl::new_connection() {
  if (tls_)
    return std::make_shared<connection_impl<tls_stream>>(shared_from_this());
  return std::make_shared<connection_impl<beast::tcp_stream>>(shared_from_this());
}

} // namespace squad::net
