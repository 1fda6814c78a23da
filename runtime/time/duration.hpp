#pragma once
// Durations as written in config files: "500ms", "2s", "60s", "10m", "1h", "30d".
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace squad {

using millis = std::chrono::milliseconds;

/// Parses "<non-negative integer><unit>" with unit ms|s|m|h|d; nullopt on anything else.
std::optional<millis> parse_duration(std::string_view text);

/// Formats the shortest exact form: 1500ms, 2s, 10m, 1h.
std::string format_duration(millis d);

} // namespace squad
