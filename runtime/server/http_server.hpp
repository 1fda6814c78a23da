#pragma once
// Squad's HTTP/1.1 + WebSocket server: Boost.Beast on the io_runtime's threads, no Beast in this header.
//
// Beast parses requests (with header and body limits) and runs the WebSocket protocol; responses are written as
// plain HTTP/1.1 text (Content-Length, or chunked for streams). The application sees a `request` and answers
// through a `responder`, from any thread, exactly once: reply(), or start_stream() + write()... + end().
// Keep-alive: one request at a time per connection; the next is read when the answer is written.
//
// Limits, each answered before the application sees the request: a body over `body_limit` is 413, headers
// over `header_limit` are 431, a request that does not arrive within `read_timeout` ends the connection (a
// partly sent one gets 408), and a connection idle between requests for `idle_timeout` is closed.
// stop() stops accepting, closes idle connections and lets each one in flight finish its answer first.
#include "runtime/metrics/registry.hpp"
#include "runtime/net/http_client.hpp"

#include <functional>
#include <memory>

namespace squad::server {

/// The families the HTTP server updates (counted where it happens: accept errors, evictions, slow readers cut; the
/// WebSocket session counts its own slow readers in the last, kind ws).
struct server_families {
  metrics::counter_family accept_errors{
      "squad_accept_errors_total",
      "connections not accepted at once (reason no_descriptors: out of file descriptors; retried after 50ms)"};
  metrics::counter_family evicted{"squad_connections_evicted_total",
                                  "connections closed because newer ones from their address came while they had not "
                                  "sent a first request head (server.max_client_header_reads)"};
  metrics::counter_family slow_cut{"squad_slow_clients_cut_total",
                                   "connections cut off because the client read too slowly (http: over 8 MiB of "
                                   "answer queued; ws: its send queue full of lifecycle events)"};
  metrics::by_labels<metrics::counter_family> accept_by_reason{accept_errors, {"reason"}};
};
const server_families& server_metrics();

struct request {
  std::string method; ///< "GET", "POST", ...
  std::string target; ///< path and query
  header_list headers;
  std::string body;
  std::string peer; ///< the client's address

  /// The value of a header (case-insensitive name), or "".
  std::string_view header(std::string_view name) const;
  /// The path without the query.
  std::string_view path() const;
};

/// Answers one request. Thread-safe; calls after the answer ended (or after the client left) are ignored.
class responder {
public:
  virtual ~responder() = default;
  virtual void reply(int status, header_list headers, std::string body) = 0;
  /// Sends the head of a chunked response; then write() pieces and end().
  virtual void start_stream(int status, header_list headers) = 0;
  virtual void write(std::string piece) = 0;
  virtual void end() = 0;
  /// Whether the client is gone (a write failed or the connection closed).
  virtual bool gone() const = 0;
  /// gone(), or the client closed its end while waiting for the answer (a non-blocking check of the socket that
  /// reads nothing; any thread may ask). Off the fast path: a system call each time.
  virtual bool hung_up() const { return gone(); }
};

/// A responder that wraps another: every call goes through to `inner_` unless a wrapper overrides it.
class forwarding_responder : public responder {
public:
  explicit forwarding_responder(std::shared_ptr<responder> inner) : inner_(std::move(inner)) {}
  void reply(int status, header_list headers, std::string body) override {
    inner_->reply(status, std::move(headers), std::move(body));
  }
  void start_stream(int status, header_list headers) override { inner_->start_stream(status, std::move(headers)); }
  void write(std::string piece) override { inner_->write(std::move(piece)); }
  void end() override { inner_->end(); }
  bool gone() const override { return inner_->gone(); }
  bool hung_up() const override { return inner_->hung_up(); }

protected:
  std::shared_ptr<responder> inner_;
};

/// One WebSocket connection, for the application. Thread-safe.
class ws_connection {
public:
  virtual ~ws_connection() = default;
  /// Queues a text message; false when the connection is gone or its queue is full (`max_queued` messages).
  virtual bool send(std::string text) = 0;
  /// Messages queued and not yet written.
  virtual std::size_t queued() const = 0;
  virtual void close() = 0;
};

/// What the application does with a WebSocket connection: called on an io thread, one call at a time.
class ws_handler {
public:
  virtual ~ws_handler() = default;
  virtual void on_open(std::shared_ptr<ws_connection> conn) = 0;
  virtual void on_message(std::string text) = 0;
  virtual void on_close() = 0;
};

struct server_options {
  std::string host = "127.0.0.1";
  std::string port = "8080"; ///< "0": any free port
  std::size_t body_limit = std::size_t{1} << 20;
  std::size_t header_limit = std::size_t{16} * 1024;
  millis read_timeout{30000};                           ///< to receive a whole request once it started
  millis idle_timeout{120000};                          ///< between requests on a kept-alive connection
  millis write_timeout{60000};                          ///< for one write to complete (a client that does not read)
  std::size_t stream_max_queued = std::size_t{8} << 20; ///< answer bytes queued for a slow reader before it is cut off
  std::size_t ws_max_message = std::size_t{1} << 20;
  std::size_t ws_max_queued = 1024;
  millis ws_ping_interval{30000};
  /// Lingering close (nginx's): a connection closed while the client may still be sending (a refused request: 413,
  /// 431, 400, 408) is shut for writing, then read and discarded, so the client reads its answer instead of a reset.
  millis linger_time{30000};                        ///< at most this long in all
  millis linger_timeout{5000};                      ///< at most this long waiting for more
  std::size_t linger_bytes = std::size_t{64} << 20; ///< at most this many bytes discarded
  /// Connections from one address that have not sent a whole first request head yet (slow or dripping clients):
  /// past this many, the oldest of them is closed for each new one, so a flood of slow connections cannot starve
  /// the accept path and the clients that do send their requests (0: no bound).
  std::size_t max_client_header_reads = 256;
};

using request_fn = std::function<void(request, std::shared_ptr<responder>)>;
/// A refused WebSocket upgrade: the HTTP answer instead (a JSON body).
struct ws_refusal {
  int status = 404;
  header_list headers;
  std::string body;
};
/// Accepts a WebSocket upgrade (returns a handler) or refuses it (returns nullptr and fills `refusal`).
using ws_accept_fn = std::function<std::shared_ptr<ws_handler>(const request&, ws_refusal& refusal)>;

struct server_stats {
  std::int64_t connections_open = 0;
  std::int64_t requests_in_flight = 0;
  std::int64_t ws_open = 0;
};

class http_server {
public:
  virtual ~http_server() = default;
  /// The port it listens on (useful with port "0").
  virtual unsigned short port() const = 0;
  /// Stops accepting and closes idle connections; requests in flight finish. Thread-safe.
  virtual void stop() = 0;
  virtual server_stats stats() const = 0;
};

/// Binds and starts accepting on `io`'s threads; nullptr with `why` set when the address cannot be bound.
std::shared_ptr<http_server> start_http_server(net::io_runtime& io, const server_options& opts, request_fn on_request,
                                               ws_accept_fn on_ws, std::string& why);

/// "HTTP/1.1 <status> <reason>" reason phrases for the statuses Squad uses.
const char* reason_phrase(int status);

} // namespace squad::server
