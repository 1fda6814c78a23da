#include "runtime/server/auth.hpp"

#include <openssl/evp.h>

namespace squad::server {

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

key_verdict key_limits::admit(std::chrono::steady_clock::time_point now, std::int64_t day,
                              std::int64_t seconds_to_midnight) {
  using namespace std::chrono;
  while (!minute_.empty() && minute_.front() + seconds{60} <= now)
    minute_.pop_front();
  if (day != day_)
    day_ = day, today_ = 0;
  key_verdict v;
  // What the client is told either way: the limits, what is left after this request, and when they reset.
  auto tell = [&] {
    if (cfg_.rpm > 0) {
      v.rpm_limit = cfg_.rpm;
      v.rpm_remaining = std::max<std::int64_t>(0, cfg_.rpm - static_cast<std::int64_t>(minute_.size()));
      v.rpm_reset_ms = minute_.empty()
                           ? 0
                           : std::max<std::int64_t>(0, ceil<milliseconds>(minute_.front() + seconds{60} - now).count());
    }
    if (cfg_.daily_calls > 0) {
      v.day_limit = cfg_.daily_calls;
      v.day_remaining = std::max<std::int64_t>(0, cfg_.daily_calls - today_);
      v.day_reset_s = std::max<std::int64_t>(1, seconds_to_midnight);
    }
    return v;
  };
  if (cfg_.daily_calls > 0 && today_ >= cfg_.daily_calls) {
    v.ok = false;
    v.retry_after_s = std::max<std::int64_t>(1, seconds_to_midnight);
    v.why = "key " + cfg_.name + " has used its daily budget of " + std::to_string(cfg_.daily_calls) +
            " requests (it renews at 00:00 UTC)";
    return tell();
  }
  if (cfg_.rpm > 0 && static_cast<std::int64_t>(minute_.size()) >= cfg_.rpm) {
    v.ok = false;
    auto wait = ceil<seconds>(minute_.front() + seconds{60} - now).count();
    v.retry_after_s = std::max<std::int64_t>(1, wait);
    v.why = "key " + cfg_.name + " is over its limit of " + std::to_string(cfg_.rpm) + " requests per minute";
    return tell();
  }
  if (cfg_.concurrency > 0 && in_flight_ >= cfg_.concurrency) {
    v.ok = false;
    v.retry_after_s = 1;
    v.why = "key " + cfg_.name + " already has " + std::to_string(in_flight_) + " requests in flight (its limit)";
    return tell();
  }
  minute_.push_back(now);
  ++today_;
  ++in_flight_;
  return tell();
}

void key_limits::finish() {
  if (in_flight_ > 0)
    --in_flight_;
}

} // namespace squad::server
