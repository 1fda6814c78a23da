#include "actors/provider/limit_headers.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using squad::header_list;
using squad::limit_signals;
using squad::parse_http_date;
using squad::parse_limit_signals;
using squad::parse_reset_duration;
using squad::parse_retry_after;
using squad::parse_rfc3339;
using std::chrono::milliseconds;
using std::chrono::system_clock;

namespace {

// A UTC wall-clock instant.
system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s, int ms = 0) {
  using namespace std::chrono;
  return system_clock::time_point{sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s} +
                                  milliseconds{ms}};
}

// Fixed "now" for every test: Wed, 21 Oct 2015 07:27:30 GMT.
const auto now = utc(2015, 10, 21, 7, 27, 30);

std::int64_t ms(std::optional<milliseconds> v) {
  return v ? v->count() : -999;
}

} // namespace

TEST_CASE("retry-after: delta-seconds") {
  // Whole seconds, decimals (rounded up to the millisecond), and surrounding whitespace.
  struct row {
    const char* value;
    std::int64_t expected_ms;
  };
  for (auto r : std::vector<row>{{"0", 0},
                                 {"1", 1000},
                                 {"120", 120000},
                                 {" 3 ", 3000},
                                 {"1.5", 1500},
                                 {"0.25", 250},
                                 {".5", 500},
                                 {"2.", 2000},
                                 {"0.0001", 1},
                                 {"0.1234", 124},
                                 {"86400", 86400000}}) {
    INFO(r.value);
    CHECK(ms(parse_retry_after(r.value, now)) == r.expected_ms);
  }
}

TEST_CASE("retry-after: HTTP-date") {
  // An IMF-fixdate gives the time from now until then, or 0 when it has passed.
  CHECK(ms(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now)) == 30000);
  CHECK(ms(parse_retry_after("Wed, 21 Oct 2015 07:27:30 GMT", now)) == 0);
  CHECK(ms(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now)) == 0);
  CHECK(ms(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now)) == 0);
  CHECK(ms(parse_retry_after("Thu, 22 Oct 2015 07:27:30 GMT", now)) == 86400000);
  // Rounded up when now has a fraction of a second.
  CHECK(ms(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now + 250ms)) == 29750);
}

TEST_CASE("retry-after: garbage is not said") {
  // Anything that is neither form gives nothing, never a guess.
  for (const char* v :
       {"", "  ", "abc", "-1", "1s", "1,5", "1.5.2", "0x10", "Wed, 21 Oct 2015 07:28:00 UTC",
        "Wednesday, 21-Oct-15 07:28:00 GMT", "Wed Oct 21 07:28:00 2015", "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 21 Foo 2015 07:28:00 GMT", "Xyz, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 24:00:00 GMT",
        "Wed, 21 Oct 2015 07:28 GMT"}) {
    INFO("'" << v << "'");
    CHECK_FALSE(parse_retry_after(v, now).has_value());
  }
}

TEST_CASE("retry-after: an absurd number is capped, not overflowed") {
  // 10^12 ms (about 31 years) is the ceiling.
  CHECK(ms(parse_retry_after("99999999999999999999999999", now)) == 1'000'000'000'000);
  CHECK(ms(parse_retry_after("1000000000000", now)) == 1'000'000'000'000);
}

TEST_CASE("http-date: known instants") {
  // The parser agrees with the calendar, leap days included.
  CHECK(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT") == system_clock::time_point{});
  CHECK(parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT") == utc(2015, 10, 21, 7, 28, 0));
  CHECK(parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT") == utc(2024, 2, 29, 23, 59, 59));
  CHECK_FALSE(parse_http_date("Sun, 29 Feb 2015 00:00:00 GMT").has_value());
}

TEST_CASE("reset duration: the forms OpenAI-style APIs send") {
  // Go-style durations, rounded up to the millisecond; a bare number is seconds.
  struct row {
    const char* value;
    std::int64_t expected_ms;
  };
  for (auto r : std::vector<row>{{"1s", 1000},           {"6m0s", 360000},    {"1.5s", 1500},    {"20ms", 20},
                                 {"2m30.5s", 150500},    {"8.64s", 8640},     {"7m12s", 432000}, {"2m59.56s", 179560},
                                 {"1h2m3s", 3723000},    {"0s", 0},           {"0.29s", 290},    {"12.345ms", 13},
                                 {"500us", 1},           {"500\xC2\xB5s", 1}, {"250ns", 1},      {"1m1ms", 60001},
                                 {"59.9999999s", 60000}, {" 6ms ", 6},        {"2", 2000},       {"0.25", 250}}) {
    INFO(r.value);
    CHECK(ms(parse_reset_duration(r.value)) == r.expected_ms);
  }
}

TEST_CASE("reset duration: garbage is not said") {
  // Unknown units, missing numbers, signs and trailing junk give nothing.
  for (const char* v : {"", "s", "ms", "1x", "1 s", "-1s", "+1s", "1s2", "1.5.2s", "1d", "abc", "1sec", ".s"}) {
    INFO("'" << v << "'");
    CHECK_FALSE(parse_reset_duration(v).has_value());
  }
}

TEST_CASE("reset duration: an absurd value is capped") {
  // No overflow, however large the number or unit.
  CHECK(ms(parse_reset_duration("99999999999999999999h")) == 1'000'000'000'000);
  CHECK(ms(parse_reset_duration("9999999h9999999h")) == 1'000'000'000'000);
}

TEST_CASE("rfc3339: accepted forms") {
  // Z or an offset, optional fraction, 'T' or 't'.
  CHECK(parse_rfc3339("2024-08-16T10:00:01Z") == utc(2024, 8, 16, 10, 0, 1));
  CHECK(parse_rfc3339("2024-08-16t10:00:01z") == utc(2024, 8, 16, 10, 0, 1));
  CHECK(parse_rfc3339("2024-08-16T10:00:01.250Z") == utc(2024, 8, 16, 10, 0, 1, 250));
  CHECK(parse_rfc3339("2024-08-16T12:00:01+02:00") == utc(2024, 8, 16, 10, 0, 1));
  CHECK(parse_rfc3339("2024-08-16T05:30:01-04:30") == utc(2024, 8, 16, 10, 0, 1));
  CHECK(parse_rfc3339("2024-08-16T10:00:01.123456789Z") ==
        utc(2024, 8, 16, 10, 0, 1) + std::chrono::duration_cast<system_clock::duration>(123456789ns));
}

TEST_CASE("rfc3339: garbage is not said") {
  // Wrong separators, missing zone, bad dates.
  for (const char* v : {"", "2024-08-16", "2024-08-16T10:00:01", "2024-08-16T10:00:01+0200", "2024/08/16T10:00:01Z",
                        "2024-13-16T10:00:01Z", "2024-02-30T10:00:01Z", "2024-08-16T10:00:01.Z",
                        "2024-08-16T10:00:01ZZ", "Wed, 21 Oct 2015 07:28:00 GMT"}) {
    INFO("'" << v << "'");
    CHECK_FALSE(parse_rfc3339(v).has_value());
  }
}

TEST_CASE("limit signals: nothing said leaves every field -1") {
  // Headers about other things do not count as limits.
  auto s = parse_limit_signals({{"content-type", "application/json"}, {"x-request-id", "req_123"}}, now);
  CHECK(s.retry_after_ms == -1);
  CHECK(s.remaining_requests == -1);
  CHECK(s.remaining_tokens == -1);
  CHECK(s.reset_requests_ms == -1);
  CHECK(s.reset_tokens_ms == -1);
}

TEST_CASE("limit signals: an OpenAI 200 reply") {
  // The x-ratelimit-* set OpenAI sends with every reply (names as the wire has them, any case).
  header_list h = {{"Date", "Wed, 21 Oct 2015 07:27:30 GMT"},
                   {"Content-Type", "application/json"},
                   {"openai-processing-ms", "412"},
                   {"x-ratelimit-limit-requests", "10000"},
                   {"x-ratelimit-limit-tokens", "200000"},
                   {"X-RateLimit-Remaining-Requests", "9999"},
                   {"x-ratelimit-remaining-tokens", "199966"},
                   {"x-ratelimit-reset-requests", "8.64s"},
                   {"x-ratelimit-reset-tokens", "10ms"},
                   {"x-request-id", "req_7f3c2a"}};
  auto s = parse_limit_signals(h, now);
  CHECK(s.retry_after_ms == -1);
  CHECK(s.remaining_requests == 9999);
  CHECK(s.remaining_tokens == 199966);
  CHECK(s.reset_requests_ms == 8640);
  CHECK(s.reset_tokens_ms == 10);
}

TEST_CASE("limit signals: an OpenAI-style 429 with Retry-After") {
  // Groq sends retry-after in seconds beside its x-ratelimit-* headers.
  header_list h = {{"retry-after", "2"},
                   {"x-ratelimit-limit-requests", "14400"},
                   {"x-ratelimit-remaining-requests", "14370"},
                   {"x-ratelimit-remaining-tokens", "0"},
                   {"x-ratelimit-reset-requests", "2m59.56s"},
                   {"x-ratelimit-reset-tokens", "1.5s"}};
  auto s = parse_limit_signals(h, now);
  CHECK(s.retry_after_ms == 2000);
  CHECK(s.remaining_requests == 14370);
  CHECK(s.remaining_tokens == 0);
  CHECK(s.reset_requests_ms == 179560);
  CHECK(s.reset_tokens_ms == 1500);
}

TEST_CASE("limit signals: Retry-After as an HTTP-date") {
  // The date form becomes milliseconds from now.
  auto s = parse_limit_signals({{"Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"}}, now);
  CHECK(s.retry_after_ms == 30000);
}

TEST_CASE("limit signals: retry-after-ms wins over retry-after, in either order") {
  // OpenAI sends both; the millisecond one is more precise.
  CHECK(parse_limit_signals({{"retry-after", "1"}, {"retry-after-ms", "129"}}, now).retry_after_ms == 129);
  CHECK(parse_limit_signals({{"retry-after-ms", "129"}, {"retry-after", "1"}}, now).retry_after_ms == 129);
  CHECK(parse_limit_signals({{"retry-after-ms", "12.5"}}, now).retry_after_ms == 13);
  // A malformed retry-after-ms leaves retry-after to speak.
  CHECK(parse_limit_signals({{"retry-after-ms", "soon"}, {"retry-after", "1"}}, now).retry_after_ms == 1000);
}

TEST_CASE("limit signals: Anthropic headers") {
  // anthropic-ratelimit-* with RFC 3339 resets, turned into milliseconds from now.
  auto at = utc(2024, 8, 16, 10, 0, 0);
  header_list h = {{"anthropic-ratelimit-requests-limit", "50"},
                   {"anthropic-ratelimit-requests-remaining", "0"},
                   {"anthropic-ratelimit-requests-reset", "2024-08-16T10:00:01Z"},
                   {"anthropic-ratelimit-tokens-limit", "40000"},
                   {"anthropic-ratelimit-tokens-remaining", "39000"},
                   {"anthropic-ratelimit-tokens-reset", "2024-08-16T10:00:06.500Z"},
                   {"anthropic-ratelimit-input-tokens-remaining", "30000"},
                   {"retry-after", "1"},
                   {"request-id", "req_018EeWyXxfu5pfWkrYcMdjWG"}};
  auto s = parse_limit_signals(h, at);
  CHECK(s.retry_after_ms == 1000);
  CHECK(s.remaining_requests == 0);
  CHECK(s.remaining_tokens == 39000);
  CHECK(s.reset_requests_ms == 1000);
  CHECK(s.reset_tokens_ms == 6500);
}

TEST_CASE("limit signals: an Anthropic reset in the past is 0") {
  // A reset that already happened means "now", never a negative wait.
  auto s =
      parse_limit_signals({{"anthropic-ratelimit-requests-reset", "2024-08-16T09:59:00Z"}}, utc(2024, 8, 16, 10, 0, 0));
  CHECK(s.reset_requests_ms == 0);
}

TEST_CASE("limit signals: malformed values are not said") {
  // A value that does not parse leaves its field at -1.
  header_list h = {{"retry-after", "later"},
                   {"x-ratelimit-remaining-requests", "many"},
                   {"x-ratelimit-remaining-tokens", "-5"},
                   {"x-ratelimit-reset-requests", "soon"},
                   {"anthropic-ratelimit-tokens-reset", "tomorrow"}};
  auto s = parse_limit_signals(h, now);
  CHECK(s.retry_after_ms == -1);
  CHECK(s.remaining_requests == -1);
  CHECK(s.remaining_tokens == -1);
  CHECK(s.reset_requests_ms == -1);
  CHECK(s.reset_tokens_ms == -1);
}

TEST_CASE("limit signals: Cerebras' day and minute families") {
  // x-ratelimit-*-requests-day is the day's count (reset in seconds); *-tokens-minute is the token family.
  auto now = utc(2024, 8, 16, 10, 0, 0);
  header_list h = {{"x-ratelimit-limit-requests-day", "14400"},
                   {"x-ratelimit-remaining-requests-day", "14370"},
                   {"x-ratelimit-reset-requests-day", "33011.382867097855"},
                   {"x-ratelimit-limit-tokens-minute", "60000"},
                   {"x-ratelimit-remaining-tokens-minute", "0"},
                   {"x-ratelimit-reset-tokens-minute", "11.38"}};
  auto s = parse_limit_signals(h, now);
  CHECK(s.remaining_requests_day == 14370);
  CHECK(s.reset_requests_day_ms == 33011383);
  CHECK(s.remaining_requests == -1);
  CHECK(s.limit_requests == -1); // a day's limit is not the window's
  CHECK(s.remaining_tokens == 0);
  CHECK(s.reset_tokens_ms == 11380);
}

TEST_CASE("limit signals: of Anthropic's token families the one with the fewest left binds") {
  auto at = utc(2024, 8, 16, 10, 0, 0);
  header_list h = {{"anthropic-ratelimit-tokens-remaining", "39000"},
                   {"anthropic-ratelimit-tokens-reset", "2024-08-16T10:00:06Z"},
                   {"anthropic-ratelimit-input-tokens-remaining", "35000"},
                   {"anthropic-ratelimit-input-tokens-reset", "2024-08-16T10:00:04Z"},
                   {"anthropic-ratelimit-output-tokens-remaining", "0"},
                   {"anthropic-ratelimit-output-tokens-reset", "2024-08-16T10:00:02Z"}};
  auto s = parse_limit_signals(h, at);
  CHECK(s.remaining_tokens == 0);
  CHECK(s.reset_tokens_ms == 2000);
}
