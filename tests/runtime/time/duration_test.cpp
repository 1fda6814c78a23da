#include "runtime/time/duration.hpp"

#include <catch2/catch.hpp>

#include <limits>

using namespace squad;
using namespace std::chrono_literals;

TEST_CASE("parse_duration accepts an integer with a unit", "[config][duration]") {
  // Every unit parses to the right number of milliseconds.
  struct row {
    const char* text;
    millis expected;
  };
  const row rows[] = {
      {"0ms", 0ms},          {"500ms", 500ms},
      {"2s", 2000ms},        {"60s", 60000ms},
      {"10m", 600000ms},     {"1h", 3600000ms},
      {"30d", 2592000000ms}, {"007s", 7000ms},
      {"1500ms", 1500ms},    {"9223372036854775807ms", millis{std::numeric_limits<std::int64_t>::max()}},
  };
  for (const auto& r : rows) {
    INFO(r.text);
    auto d = parse_duration(r.text);
    REQUIRE(d.has_value());
    CHECK(*d == r.expected);
  }
}

TEST_CASE("parse_duration rejects anything else", "[config][duration]") {
  // Negatives, fractions, missing or unknown units, spaces and overflow are all refused.
  const char* rows[] = {
      "",
      "60",
      "s",
      "ms",
      "-1s",
      "+1s",
      "1.5s",
      ".5s",
      "1 s",
      " 1s",
      "1s ",
      "1S",
      "1sec",
      "1w",
      "1us",
      "1m1s",
      "1e3ms",
      "0x10s",
      "9223372036854775808ms",
      "9223372036854776s",
      "99999999999999999999h",
  };
  for (const char* text : rows) {
    INFO('"' << text << '"');
    CHECK_FALSE(parse_duration(text).has_value());
  }
}

TEST_CASE("format_duration picks the largest exact unit", "[config][duration]") {
  // The shortest exact spelling, never rounding.
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(2000ms) == "2s");
  CHECK(format_duration(90000ms) == "90s");
  CHECK(format_duration(600000ms) == "10m");
  CHECK(format_duration(3600000ms) == "1h");
  CHECK(format_duration(5400000ms) == "90m");
  CHECK(format_duration(1ms) == "1ms");
  CHECK(format_duration(0ms) == "0s");
  CHECK(format_duration(86400000ms) == "1d");
  CHECK(format_duration(90000000ms) == "25h");
  CHECK(format_duration(-2000ms) == "-2s");
  CHECK(format_duration(millis{std::numeric_limits<std::int64_t>::min()}) == "-9223372036854775808ms");
}

TEST_CASE("format_duration output parses back to the same value", "[config][duration]") {
  // Round trip for a spread of values.
  for (std::int64_t v : {0LL, 1LL, 999LL, 1000LL, 61000LL, 60000LL, 7200000LL, 86400000LL}) {
    INFO(v);
    auto back = parse_duration(format_duration(millis{v}));
    REQUIRE(back.has_value());
    CHECK(back->count() == v);
  }
}
