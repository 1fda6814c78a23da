#pragma once
// Base URLs of upstream APIs taken apart. Pure and free of Beast, so config validation can check a base_url
// the same way the HTTP client will read it.
#include <optional>
#include <string>
#include <string_view>

namespace squad::net {

/// An http:// or https:// base URL taken apart.
struct url_parts {
  bool tls = false;
  std::string host; ///< without brackets for IPv6 literals
  std::string port; ///< "443" / "80" when the URL named none
  std::string path; ///< "" or "/v1", never ending in '/'
};

/// Parses "http[s]://host[:port][/path]"; nullopt with `why` set on anything else (userinfo, query and
/// fragment are refused: a base URL has none).
std::optional<url_parts> parse_url(std::string_view url, std::string& why);

/// A header value without the optional whitespace (spaces and tabs) around it (RFC 9110, section 5.6.3).
std::string_view trim_ows(std::string_view s);

} // namespace squad::net
