// libFuzzer target: the rate-limit header parser (Retry-After, x-ratelimit-*, anthropic-ratelimit-*). The input
// is split into header lines "name: value"; every line is parsed, none may crash it.
#include "actors/provider/limit_headers.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  squad::header_list headers;
  std::size_t at = 0;
  while (at <= in.size()) {
    auto end = in.find('\n', at);
    auto line = in.substr(at, end == std::string::npos ? std::string::npos : end - at);
    auto colon = line.find(':');
    if (colon != std::string::npos)
      headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    if (end == std::string::npos)
      break;
    at = end + 1;
  }
  auto now = std::chrono::system_clock::time_point{} + std::chrono::hours{24 * 365 * 55};
  (void)squad::parse_limit_signals(headers, now);
  for (auto& [name, value] : headers) {
    (void)squad::parse_retry_after(value, now);
    (void)squad::parse_reset_duration(value);
    (void)squad::parse_http_date(value);
    (void)squad::parse_rfc3339(value);
  }
  return 0;
}
