// Blocking calls built from Beast's async operations run to completion on a private io_context, because
// only the async operations honour tcp_stream's timeout (a hung server must fail a test, not hang it).
#include "tests/integration/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <cctype>
#include <optional>

namespace squad::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

} // namespace

std::string http_result::header(std::string_view name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? std::string() : it->second;
}

struct http_connection::impl {
  std::string host;
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  // Starts one async operation and runs the io_context until it completes.
  template <class Start> beast::error_code run(Start start) {
    beast::error_code result;
    stream->expires_after(timeout);
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  void close() {
    if (!stream)
      return;
    beast::error_code ignored;
    stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream->close();
    stream.reset();
    buffer.clear();
  }
};

http_connection::http_connection(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
}

http_connection::~http_connection() {
  impl_->close();
}

bool http_connection::is_open() const {
  return impl_->stream.has_value();
}

http_result http_connection::request(const std::string& method, const std::string& target, const std::string& body,
                                     const header_list& headers, const body_callback& on_body) {
  auto& c = *impl_;
  http_result result;
  auto fail = [&](const char* stage, beast::error_code ec) {
    result.error = std::string(stage) + ": " + ec.message();
    c.close();
    return result;
  };
  if (!c.stream) {
    c.stream.emplace(c.ioc);
    tcp::endpoint at(net::ip::make_address(c.host), c.port);
    if (auto ec = c.run([&](auto handler) { c.stream->async_connect(at, handler); }))
      return fail("connect", ec);
    c.stream->socket().set_option(tcp::no_delay(true));
  }

  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, c.host + ":" + std::to_string(c.port));
  if (!body.empty())
    req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers)
    req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  if (auto ec = c.run([&](auto handler) { http::async_write(*c.stream, req, handler); }))
    return fail("write", ec);

  http::response_parser<http::string_body> parser;
  parser.body_limit(64ull * 1024 * 1024);
  if (auto ec = c.run([&](auto handler) { http::async_read_header(*c.stream, c.buffer, parser, handler); }))
    return fail("read", ec);
  const auto& res = parser.get();
  result.status = static_cast<int>(res.result_int());
  for (const auto& field : res)
    result.headers[lower(field.name_string())] = std::string(field.value());
  // Reads piece by piece so a stream's chunks reach `on_body` as they arrive.
  std::size_t seen = 0;
  beast::error_code ec;
  while (!parser.is_done()) {
    ec = c.run([&](auto handler) { http::async_read_some(*c.stream, c.buffer, parser, handler); });
    const std::string& so_far = parser.get().body();
    if (on_body && so_far.size() > seen)
      on_body(std::string_view(so_far).substr(seen));
    seen = so_far.size();
    if (ec)
      break;
  }
  result.body = parser.get().body();
  if (ec)
    return fail("read body", ec);
  result.complete = true;
  if (!parser.get().keep_alive())
    c.close();
  return result;
}

http_result request(const std::string& method, const std::string& host, std::uint16_t port, const std::string& target,
                    const std::string& body, const header_list& headers) {
  http_connection c(host, port);
  return c.request(method, target, body, headers);
}

http_result stream(const std::string& method, const std::string& host, std::uint16_t port, const std::string& target,
                   const std::string& body, const header_list& headers, const body_callback& on_body) {
  http_connection c(host, port);
  return c.request(method, target, body, headers, on_body);
}

std::vector<std::string> sse_data(std::string_view body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find('\n', pos);
    if (end == std::string_view::npos)
      end = body.size();
    auto line = body.substr(pos, end - pos);
    if (line.substr(0, 6) == "data: ")
      out.emplace_back(line.substr(6));
    pos = end + 1;
  }
  return out;
}

} // namespace squad::test
