#include "runtime/net/http_client.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using squad::net::parse_url;
using squad::net::url_parts;

namespace {

// Parses a URL that must be accepted.
url_parts accepted(const std::string& url) {
  INFO(url);
  std::string why;
  auto parts = parse_url(url, why);
  REQUIRE(parts);
  CHECK(why.empty());
  return *parts;
}

// The reason a URL is refused ("" when it was accepted, which the caller's CHECK then reports).
std::string refusal(const std::string& url) {
  std::string why;
  auto parts = parse_url(url, why);
  return parts ? std::string{} : why;
}

} // namespace

TEST_CASE("parse_url: scheme and default ports") {
  // https means TLS on 443, http plain on 80, when the URL names no port.
  auto s = accepted("https://api.openai.com/v1");
  CHECK(s.tls);
  CHECK(s.host == "api.openai.com");
  CHECK(s.port == "443");
  CHECK(s.path == "/v1");
  auto p = accepted("http://localhost");
  CHECK_FALSE(p.tls);
  CHECK(p.host == "localhost");
  CHECK(p.port == "80");
  CHECK(p.path.empty());
}

TEST_CASE("parse_url: an explicit port") {
  // Kept as written, also when it is the scheme's default.
  auto a = accepted("http://127.0.0.1:11434/v1");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == "11434");
  CHECK(a.path == "/v1");
  CHECK(accepted("https://api.anthropic.com:443").port == "443");
  CHECK(accepted("http://h:1").port == "1");
  CHECK(accepted("http://h:65535").port == "65535");
  CHECK_FALSE(accepted("http://h:443").tls); // the port does not pick the scheme
}

TEST_CASE("parse_url: IPv6 literals") {
  // Brackets in the URL, none in the host.
  auto a = accepted("http://[::1]:8080/v1");
  CHECK(a.host == "::1");
  CHECK(a.port == "8080");
  CHECK(a.path == "/v1");
  auto b = accepted("https://[2001:db8::7]");
  CHECK(b.tls);
  CHECK(b.host == "2001:db8::7");
  CHECK(b.port == "443");
  CHECK(b.path.empty());
}

TEST_CASE("parse_url: the path is kept without trailing slashes") {
  // Callers append "/chat/completions" to it.
  CHECK(accepted("https://openrouter.ai/api/v1").path == "/api/v1");
  CHECK(accepted("https://openrouter.ai/api/v1/").path == "/api/v1");
  CHECK(accepted("https://openrouter.ai/api/v1///").path == "/api/v1");
  CHECK(accepted("http://h/").path.empty());
  CHECK(accepted("http://h//").path.empty());
  CHECK(accepted("http://h:8000/").path.empty());
  CHECK(accepted("http://[::1]:8000/v1/").path == "/v1");
}

TEST_CASE("parse_url: refusals say why") {
  // Anything that is not a plain http(s) base URL is refused with a reason.
  struct row {
    std::string url;
    std::string why_part;
  };
  const std::vector<row> rows = {
      {"api.openai.com/v1", "http:// or https://"},
      {"", "http:// or https://"},
      {"ftp://files.example.com", "http:// or https://"},
      {"//api.openai.com", "http:// or https://"},
      {"https:/api.openai.com", "http:// or https://"},
      {"https://user:pw@api.openai.com/v1", "user information"},
      {"https://sk-abc@api.openai.com", "user information"},
      {"https://api.openai.com/v1?a=1", "query or a fragment"},
      {"https://api.openai.com?a=1", "query or a fragment"},
      {"https://api.openai.com/v1#frag", "query or a fragment"},
      {"https://api.openai.com#frag", "query or a fragment"},
      {"https://", "no host"},
      {"https:///v1", "no host"},
      {"http://:8080", "no host"},
      {"http://[]:8080", "no host"},
      {"http://host:0", "invalid port"},
      {"http://host:00000", "invalid port"},
      {"http://host:70000", "invalid port"},
      {"http://host:65536", "invalid port"},
      {"http://host:123456", "invalid port"},
      {"http://host:abc", "invalid port"},
      {"http://host:-1", "invalid port"},
      {"http://host:8o", "invalid port"},
      {"http://[::1]:0", "invalid port"},
      {"http://[::1]:abc", "invalid port"},
      {"http://host:", "empty port"},
      {"http://host:/v1", "empty port"},
      {"http://[::1]:", "empty port"},
      {"http://[::1]:/v1", "empty port"},
      {"http://[::1", "unclosed"},
      {"http://[::1]x:80", "after the IPv6 host"},
      {"http://::1", "brackets"},
      {"http://fe80::1:8080/v1", "brackets"},
  };
  for (const auto& r : rows) {
    INFO(r.url);
    auto why = refusal(r.url);
    CHECK_FALSE(why.empty());
    CHECK(why.find(r.why_part) != std::string::npos);
  }
}
