#pragma once
// Squad's HTTP/1.1 client for upstream LLM APIs: Boost.Beast on Asio io threads, no Beast in this header.
//
//   io_runtime   owns the io_context and its threads (1-2). Every socket of the process lives there; with
//                runtime.scheduler io (net/io_scheduler.hpp) the actors run on these threads too.
//   http_pool    one per provider: keep-alive connections to one origin, at most `max_connections` open;
//                requests beyond that wait in FIFO order. HTTPS verifies the certificate chain (system CA
//                store, plus `ca_file`) and the host name, and sends SNI.
//   http_handler the caller's callbacks, run on an io thread: the response head, each body piece as it
//                arrives (de-chunked), then exactly one on_done. They must be quick and must not block.
//
// Timeouts are separate: connect (DNS, TCP and TLS handshake), first byte (request sent -> response head),
// idle (gap between two body reads), and total (from submit, including the wait for a connection). Failures
// are values (http_failure), never exceptions. A pooled connection the server closed while idle is detected on
// use and the request is retried once on a new connection, only when no byte of a response had arrived.
#include "runtime/net/url.hpp"
#include "runtime/time/duration.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace squad {

/// HTTP headers as (name, value) pairs, in the order sent or received.
using header_list = std::vector<std::pair<std::string, std::string>>;

namespace net {

struct http_timeouts {
  millis connect{10000};    ///< DNS + TCP connect + TLS handshake
  millis first_byte{60000}; ///< from sending the request to the response head
  millis idle{30000};       ///< between two pieces of the body
  millis total{300000};     ///< from submit to the end of the body
};

struct pool_options {
  std::string name; ///< the provider's name, for details
  url_parts origin;
  std::optional<std::string> ca_file; ///< extra trusted CA certificates (PEM), besides the system store
  std::size_t max_connections = 4;
  http_timeouts timeouts;
  std::size_t max_body_bytes = std::size_t{16} << 20;
};

/// How an exchange failed below HTTP. `none`: a whole response arrived (whatever its status).
enum class http_failure : std::uint8_t {
  none,
  connect_failed, ///< DNS, refused, unreachable, or the server closed before sending a response
  tls_failed,     ///< handshake or certificate verification
  timeout_connect,
  timeout_first_byte,
  timeout_idle,
  timeout_total,
  closed_early, ///< the connection ended after the response head, before the end of the body
  bad_http,     ///< not a well-formed HTTP/1.x response
  body_too_large,
  shut_down, ///< the io_runtime stopped first
  abandoned, ///< the handler stopped wanting the response (its client hung up): the connection is closed
};
const char* to_string(http_failure f);

struct http_request {
  std::string method = "POST";
  std::string target;  ///< path and query, e.g. "/v1/chat/completions"
  header_list headers; ///< host, content-length and user-agent are added
  std::string body;
  std::optional<millis> total;      ///< a tighter total deadline for this request than the pool's
  std::optional<millis> first_byte; ///< a tighter wait for the response head than the pool's
};

class http_handler {
public:
  virtual ~http_handler() = default;
  virtual void on_head(int status, const header_list& headers) = 0;
  virtual void on_data(std::string_view piece) = 0;
  /// Asked after each piece of body: false ends the exchange at once (http_failure::abandoned), closing the
  /// connection, so an upstream stops generating what nobody will read.
  virtual bool wanted() const { return true; }
  /// Called exactly once. `detail` says what failed, for humans ("" when failure is none).
  virtual void on_done(http_failure failure, const std::string& detail) = 0;
};

struct pool_stats {
  std::int64_t requests = 0;           ///< submitted
  std::int64_t connections_opened = 0; ///< TCP (and TLS) connections established
  std::int64_t reused = 0;             ///< requests sent on a kept-alive connection
  std::int64_t stale_retries = 0;      ///< requests resent after a kept-alive connection turned out closed
  std::int64_t open = 0;               ///< connections open or being opened now
  std::int64_t queued = 0;             ///< requests waiting for a connection now
};

class http_pool {
public:
  virtual ~http_pool() = default;
  /// Thread-safe; never blocks. The handler is called on an io thread.
  virtual void submit(http_request req, std::shared_ptr<http_handler> handler) = 0;
  /// Thread-safe snapshot.
  virtual pool_stats stats() const = 0;
  virtual const pool_options& options() const = 0;
};

class io_runtime {
public:
  /// `spin`: how long an idle io thread polls (yielding the CPU between polls) before it sleeps; 0 sleeps at once.
  explicit io_runtime(int threads = 1, millis spin = millis{0});
  ~io_runtime(); ///< stop()
  /// Stops the io threads and waits for them; handlers of requests still in flight get no on_done. Idempotent.
  void stop();
  io_runtime(const io_runtime&) = delete;
  io_runtime& operator=(const io_runtime&) = delete;

  /// A pool for one origin; nullptr with `why` set when the TLS setup fails (e.g. an unreadable ca_file).
  std::shared_ptr<http_pool> make_pool(const pool_options& opts, std::string& why);

  /// The io_context the threads run, for the project's other Asio code (the HTTP server).
  std::shared_ptr<boost::asio::io_context> context() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace net
} // namespace squad
