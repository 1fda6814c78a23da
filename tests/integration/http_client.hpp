#pragma once
// A small blocking HTTP/1.1 client for integration tests (Beast inside, none in this header).
// Network failures are results, not exceptions: a test asserts on `status`, `complete` and `error`.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace squad::test {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_result {
  int status = 0;                             ///< 0 when no response head arrived
  std::map<std::string, std::string> headers; ///< names in lower case
  std::string body;                           ///< what arrived, even when cut short
  bool complete = false;                      ///< the whole message arrived
  std::string error;                          ///< "" when the exchange succeeded

  /// The header's value or "" (name in any case).
  std::string header(std::string_view name) const;
};

/// Called with each piece of the body as it arrives.
using body_callback = std::function<void(std::string_view piece)>;

/// One keep-alive connection; requests go one after another. Every operation times out after `timeout`.
class http_connection {
public:
  http_connection(std::string host, std::uint16_t port,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  ~http_connection();
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  /// Sends a request (connecting first if needed) and reads the whole response. A non-empty body is
  /// sent as application/json unless `headers` says otherwise.
  http_result request(const std::string& method, const std::string& target, const std::string& body = "",
                      const header_list& headers = {}, const body_callback& on_body = {});

  /// True while the connection is open (the server did not close it and no error happened).
  bool is_open() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// One request on a fresh connection, closed afterwards.
http_result request(const std::string& method, const std::string& host, std::uint16_t port, const std::string& target,
                    const std::string& body = "", const header_list& headers = {});

/// The streaming read helper: like request(), calling `on_body` with each piece of the body as it arrives.
http_result stream(const std::string& method, const std::string& host, std::uint16_t port, const std::string& target,
                   const std::string& body, const header_list& headers, const body_callback& on_body);

/// The `data:` payloads of an SSE body, in order ("[DONE]" included).
std::vector<std::string> sse_data(std::string_view body);

} // namespace squad::test
