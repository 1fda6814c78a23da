#pragma once
// A tiny HTTPS server for the TLS tests: serves one canned HTTP response to every request, on 127.0.0.1 and
// an ephemeral port, with the certificate and key files given. Connections whose handshake fails are dropped.
#include <cstdint>
#include <memory>
#include <string>

namespace squad::test {

class tls_server {
public:
  tls_server(const std::string& cert_file, const std::string& key_file, std::string response_body);
  ~tls_server();
  tls_server(const tls_server&) = delete;
  tls_server& operator=(const tls_server&) = delete;

  std::uint16_t port() const;
  int handshakes_failed() const;
  int requests_served() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace squad::test
