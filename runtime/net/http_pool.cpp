// The connection pool's one out-of-line piece besides the class (http_pool.hpp): io_runtime::make_pool, which sets up
// an origin's TLS context (system CAs, or the provider's ca_file) and starts its pool. Asio only, no Beast.
#include "runtime/net/http_pool.hpp"

namespace squad::net {

std::shared_ptr<http_pool> io_runtime::make_pool(const pool_options& opts, std::string& why) {
  std::shared_ptr<ssl::context> tls;
  if (opts.origin.tls) {
    tls = std::make_shared<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    tls->set_default_verify_paths(ec);
    if (ec) {
      why = "cannot load the system CA store: " + ec.message();
      return nullptr;
    }
    if (opts.ca_file) {
      tls->load_verify_file(*opts.ca_file, ec);
      if (ec) {
        why = "cannot load ca_file " + *opts.ca_file + ": " + ec.message();
        return nullptr;
      }
    }
    tls->set_verify_mode(ssl::verify_peer);
  }
  return std::make_shared<pool_impl>(context(), opts, std::move(tls));
}

} // namespace squad::net
