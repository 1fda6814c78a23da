// Points in time as a command line or a query writes them (runtime/time/when.hpp).
#include "runtime/time/when.hpp"

#include <catch2/catch.hpp>

using namespace squad;

TEST_CASE("parse_since reads RFC 3339 times, dates, unix ms and durations back from now") {
  const std::int64_t now = 1796299200000; // 2026-12-03T12:00:00Z
  CHECK(parse_since("", now) == 0);
  CHECK(parse_since("2026-12-03", now) == 1796256000000);
  CHECK(parse_since("2026-12-03T12:00:00Z", now) == now);
  CHECK(parse_since("2026-12-03T12:00:00.250Z", now) == now + 250);
  CHECK(parse_since("2026-12-03T14:00:00+02:00", now) == now);
  CHECK(parse_since("2026-12-03 12:00:00", now) == now);
  CHECK(parse_since("1796299200000", now) == now);
  CHECK(parse_since("24h", now) == now - 86400000);
  CHECK(parse_since("7d", now) == now - 7 * 86400000);
  CHECK(iso_time(now + 5) == "2026-12-03T12:00:00.005Z");
  for (const char* bad : {"yesterday", "2026-13-01", "2026-12-03T25:00:00Z", "2026-12-3", "2026-12-03T12:00Z",
                          "2026-12-03T12:00:00+0200", "-5", "12.5"})
    CHECK_FALSE(parse_since(bad, now).has_value());
}
