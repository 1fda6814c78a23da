#pragma once
// What upstream response headers say about rate limits: Retry-After (both forms), OpenAI-style
// x-ratelimit-* headers (also sent by Groq, Together, OpenRouter, ...), and Anthropic's
// anthropic-ratelimit-* headers. Pure logic: the current wall-clock time is an input.
//
// Durations round up to whole milliseconds (better to wait 1ms too long than to come back too early) and are
// capped at 10^12 ms. A malformed value is "not said", never an error.
#include "actors/vocabulary.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace squad {

/// Response headers as the HTTP client hands them over; names compare case-insensitively.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// Retry-After: delta-seconds ("120", also "1.5") or an IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT");
/// a date in the past gives 0ms.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now);

/// A Go-style duration as OpenAI sends in x-ratelimit-reset-*: "1s", "6m0s", "1.5s", "20ms", "2m30.5s",
/// "1h2m3s" (units h, m, s, ms, us, ns). A bare number is taken as seconds.
std::optional<std::chrono::milliseconds> parse_reset_duration(std::string_view value);

/// An IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT" (the weekday name is not checked against the date).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view value);

/// An RFC 3339 timestamp, e.g. "2024-05-01T12:00:30Z" or "2024-05-01T14:00:30.250+02:00".
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view value);

/// Fills limit_signals from response headers; fields nothing said about stay -1. Reads retry-after,
/// retry-after-ms (preferred over retry-after: it is more precise), x-ratelimit-limit-requests,
/// x-ratelimit-{remaining,reset}-{requests,tokens}, anthropic-ratelimit-requests-limit,
/// and anthropic-ratelimit-{requests,tokens}-{remaining,reset} (reset is an RFC 3339 time, turned into ms from
/// `now`, 0 when past); Cerebras' x-ratelimit-{remaining,reset}-requests-day and -tokens-minute, and Anthropic's
/// input-tokens and output-tokens families. Of several token families, the one with the fewest left is reported.
limit_signals parse_limit_signals(const header_list& headers, std::chrono::system_clock::time_point now);

} // namespace squad
