// Per-key limits as pure logic: time is injected, nothing sleeps.
#include "runtime/server/auth.hpp"

#include <catch2/catch.hpp>

using namespace squad;
using namespace squad::server;
using namespace std::chrono_literals;

namespace {
api_key_config key(std::int64_t rpm, std::int64_t concurrency, std::int64_t daily) {
  api_key_config k;
  k.name = "k";
  k.sha256 = std::string(64, 'a');
  k.rpm = rpm;
  k.concurrency = concurrency;
  k.daily_calls = daily;
  return k;
}
const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
} // namespace

TEST_CASE("sha256_hex matches the published test vector") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("rpm is a sliding 60 s window; Retry-After is when the oldest admission leaves it") {
  key_limits k{key(3, 0, 0)};
  CHECK(k.admit(t0, 1, 100).ok);
  CHECK(k.admit(t0 + 10s, 1, 100).ok);
  CHECK(k.admit(t0 + 20s, 1, 100).ok);
  auto v = k.admit(t0 + 30s, 1, 100);
  CHECK_FALSE(v.ok);
  CHECK(v.retry_after_s == 30);
  CHECK(v.why.find("3 requests per minute") != std::string::npos);
  CHECK_FALSE(k.admit(t0 + 59s, 1, 100).ok);
  CHECK(k.admit(t0 + 60s, 1, 100).ok); // the first one left the window
  auto w = k.admit(t0 + 60s + 500ms, 1, 100);
  CHECK_FALSE(w.ok);
  CHECK(w.retry_after_s == 10); // rounded up, never 0
}

TEST_CASE("a verdict tells the key's limits, what is left and when they reset (the client's x-ratelimit-*)") {
  key_limits k{key(3, 0, 2)};
  auto a = k.admit(t0, 1, 100);
  CHECK(a.rpm_limit == 3);
  CHECK(a.rpm_remaining == 2);
  CHECK(a.rpm_reset_ms == 60000);
  CHECK(a.day_limit == 2);
  CHECK(a.day_remaining == 1);
  CHECK(a.day_reset_s == 100);
  auto b = k.admit(t0 + 15s, 1, 85);
  CHECK(b.rpm_remaining == 1);
  CHECK(b.rpm_reset_ms == 45000); // when the oldest admission leaves the window
  CHECK(b.day_remaining == 0);
  auto refused = k.admit(t0 + 20s, 1, 80); // the day's budget is spent
  CHECK_FALSE(refused.ok);
  CHECK(refused.day_remaining == 0);
  CHECK(refused.rpm_remaining == 1);
  key_limits unlimited{key(0, 0, 0)};
  auto u = unlimited.admit(t0, 1, 100);
  CHECK(u.rpm_limit == 0);
  CHECK(u.day_limit == 0);
}

TEST_CASE("concurrency counts requests until finish()") {
  key_limits k{key(0, 2, 0)};
  CHECK(k.admit(t0, 1, 100).ok);
  CHECK(k.admit(t0, 1, 100).ok);
  auto v = k.admit(t0, 1, 100);
  CHECK_FALSE(v.ok);
  CHECK(v.retry_after_s >= 1);
  k.finish();
  CHECK(k.in_flight() == 1);
  CHECK(k.admit(t0, 1, 100).ok);
}

TEST_CASE("the daily budget renews on the next UTC day; Retry-After is the time to midnight") {
  key_limits k{key(0, 0, 2)};
  CHECK(k.admit(t0, 7, 5000).ok);
  CHECK(k.admit(t0, 7, 5000).ok);
  auto v = k.admit(t0, 7, 5000);
  CHECK_FALSE(v.ok);
  CHECK(v.retry_after_s == 5000);
  CHECK(v.why.find("daily budget of 2") != std::string::npos);
  CHECK(k.admit(t0 + 1s, 8, 86399).ok);
}

TEST_CASE("a refused request takes no slot of any limit") {
  key_limits k{key(1, 1, 0)};
  CHECK(k.admit(t0, 1, 100).ok);
  CHECK_FALSE(k.admit(t0, 1, 100).ok); // rpm refuses
  k.finish();
  CHECK(k.in_flight() == 0);
  CHECK(k.admit(t0 + 60s, 1, 100).ok);
}
