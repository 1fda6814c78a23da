// Blocking Asio SSL in one thread: tests only. Stopped by a flag plus a connection that wakes accept().
#include "tests/integration/tls_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <thread>

namespace squad::test {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct tls_server::impl {
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_server};
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::string body;
  std::atomic<bool> stopping{false};
  std::atomic<int> failed{0}, served{0};
  std::thread thread;

  void serve() {
    while (!stopping) {
      tcp::socket socket(ioc);
      boost::system::error_code ec;
      acceptor.accept(socket, ec);
      if (ec || stopping)
        continue;
      ssl::stream<tcp::socket> stream(std::move(socket), ctx);
      stream.handshake(ssl::stream_base::server, ec);
      if (ec) {
        ++failed;
        continue;
      }
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(stream, buffer, req, ec);
      if (ec)
        continue;
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(false);
      res.body() = body;
      res.prepare_payload();
      http::write(stream, res, ec);
      ++served;
      stream.shutdown(ec);
    }
  }
};

tls_server::tls_server(const std::string& cert_file, const std::string& key_file, std::string response_body)
    : impl_(std::make_unique<impl>()) {
  impl_->ctx.use_certificate_chain_file(cert_file);
  impl_->ctx.use_private_key_file(key_file, ssl::context::pem);
  impl_->body = std::move(response_body);
  impl_->thread = std::thread([this] { impl_->serve(); });
}

tls_server::~tls_server() {
  impl_->stopping = true;
  boost::system::error_code ec;
  tcp::socket wake(impl_->ioc);
  wake.connect(impl_->acceptor.local_endpoint(), ec);
  impl_->thread.join();
}

std::uint16_t tls_server::port() const {
  return impl_->acceptor.local_endpoint().port();
}
int tls_server::handshakes_failed() const {
  return impl_->failed;
}
int tls_server::requests_served() const {
  return impl_->served;
}

} // namespace squad::test
