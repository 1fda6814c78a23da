#pragma once
// Points in time as people write them on a command line or in a query: an RFC 3339 time
// (2026-12-01T08:00:00Z, with an offset or fractional seconds), a date (2026-12-01, UTC), unix milliseconds, or a
// duration back from now (24h, 7d). Pure: `now_ms` comes in.
#include <cstdint>
#include <optional>
#include <string>

namespace squad {

/// Unix ms of `text` at `now_ms` ("" : 0, the beginning), or nullopt when it is none of the accepted forms.
std::optional<std::int64_t> parse_since(const std::string& text, std::int64_t now_ms);

/// Unix ms as RFC 3339 UTC with milliseconds: 2026-12-01T08:00:00.000Z.
std::string iso_time(std::int64_t unix_ms);

} // namespace squad
