#include "runtime/net/url.hpp"

#include <algorithm>

namespace squad::net {

std::optional<url_parts> parse_url(std::string_view url, std::string& why) {
  url_parts out;
  std::string_view rest;
  if (url.starts_with("https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    why = "must start with http:// or https://";
    return std::nullopt;
  }
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  auto path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    why = "must not contain user information (put keys in api_key)";
    return std::nullopt;
  }
  if (path.find_first_of("?#") != std::string_view::npos || authority.find_first_of("?#") != std::string_view::npos) {
    why = "must not contain a query or a fragment";
    return std::nullopt;
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      why = "has an unclosed '[' in its host";
      return std::nullopt;
    }
    out.host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      why = "has text after the IPv6 host";
      return std::nullopt;
    }
    if (!after.empty()) {
      port = after.substr(1);
      if (port.empty()) {
        why = "has an empty port";
        return std::nullopt;
      }
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    out.host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) { // "http://fe80::1" would be host "fe80:", port "1"
      why = "has an IPv6 host without brackets (write [::1]:8080)";
      return std::nullopt;
    }
    if (port.empty()) {
      why = "has an empty port";
      return std::nullopt;
    }
  } else {
    out.host = authority;
  }
  if (out.host.empty()) {
    why = "has no host";
    return std::nullopt;
  }
  if (!port.empty()) {
    bool digits =
        port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
      why = "has an invalid port \"" + std::string(port) + "\"";
      return std::nullopt;
    }
    out.port = port;
  } else {
    out.port = out.tls ? "443" : "80";
  }
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  out.path = path;
  return out;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

} // namespace squad::net
