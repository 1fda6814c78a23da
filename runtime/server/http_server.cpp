// The HTTP server: requests, status lines, the server (accept, stop). Its sessions are in http_sessions.cpp.
#include "runtime/server/http_detail.hpp"

#include <algorithm>

namespace squad::server {

const server_families& server_metrics() {
  static const server_families f;
  return f;
}

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

std::string_view request::header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (beast::iequals(k, name))
      return v;
  return {};
}

std::string_view request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

const char* reason_phrase(int status) {
  switch (status) {
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 413:
    return "Payload Too Large";
  case 415:
    return "Unsupported Media Type";
  case 426:
    return "Upgrade Required";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 499:
    return "Client Closed Request"; // nginx's: the client hung up before its answer
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}
namespace detail {

std::string head_text(int status, const header_list& headers, std::string_view framing, bool close) {
  std::string out;
  out.reserve(256);
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\n";
  for (auto& [k, v] : headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += framing;
  if (close)
    out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

std::string json_error(int status, const char* type, const std::string& message) {
  std::string escaped;
  for (char c : message)
    if (c == '"' || c == '\\')
      escaped += '\\', escaped += c;
    else if (static_cast<unsigned char>(c) >= 0x20)
      escaped += c;
  const char* code = status == 400   ? "bad_request"
                     : status == 408 ? "request_timeout"
                     : status == 413 ? "body_too_large"
                     : status == 431 ? "headers_too_large"
                                     : "server_error";
  return "{\"error\":{\"message\":\"" + escaped + "\",\"type\":\"" + type + "\",\"param\":null,\"code\":\"" + code +
         "\"}}";
}

// -- server ---------------------------------------------------------------------------------------------------------

void server_impl::on_accept(tcp::socket s) {
  connections_++;
  auto sess = std::make_shared<session>(std::move(s), shared_from_this());
  {
    std::lock_guard<std::mutex> g{sessions_m_};
    for (auto it = sessions_.begin(); it != sessions_.end();) // forget the ended ones now and then
      it = it->expired() ? sessions_.erase(it) : std::next(it);
    sessions_.insert(sess);
  }
  sess->start();
}

std::shared_ptr<session> server_impl::first_read_started(const std::string& peer, std::weak_ptr<session> s) {
  std::lock_guard<std::mutex> g{first_reads_m_};
  auto& q = first_reads_[peer];
  q.push_back(std::move(s));
  auto cap = opts_.max_client_header_reads;
  while (cap > 0 && q.size() > cap) {
    auto oldest = q.front().lock();
    q.pop_front();
    if (oldest)
      return oldest;
  }
  return nullptr;
}

void server_impl::first_read_done(const std::string& peer, const session* s) {
  std::lock_guard<std::mutex> g{first_reads_m_};
  auto it = first_reads_.find(peer);
  if (it == first_reads_.end())
    return;
  auto& q = it->second;
  q.erase(std::remove_if(q.begin(), q.end(),
                         [s](const std::weak_ptr<session>& w) {
                           auto p = w.lock();
                           return !p || p.get() == s; // this one, and any that ended meanwhile
                         }),
          q.end());
  if (q.empty())
    first_reads_.erase(it);
}

void server_impl::stop() {
  if (stopped_.exchange(true))
    return;
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ec;
    self->acceptor_.close(ec);
    self->accept_pause_.cancel();
  });
  std::lock_guard<std::mutex> g{sessions_m_};
  for (auto& w : sessions_)
    if (auto s = w.lock())
      s->close_if_idle();
  for (auto& w : ws_sessions_)
    if (auto s = w.lock())
      s->close();
}
} // namespace detail

std::shared_ptr<http_server> start_http_server(net::io_runtime& io, const server_options& opts, request_fn on_request,
                                               ws_accept_fn on_ws, std::string& why) {
  auto srv = std::make_shared<detail::server_impl>(io.context(), opts, std::move(on_request), std::move(on_ws));
  if (!srv->listen(why))
    return nullptr;
  srv->accept();
  return srv;
}

} // namespace squad::server
