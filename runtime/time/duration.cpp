#include "runtime/time/duration.hpp"

#include <cstdint>
#include <limits>

namespace squad {

namespace {

struct unit {
  std::string_view suffix;
  std::int64_t ms;
};

// Largest first, so format_duration picks the shortest exact form.
constexpr unit units[] = {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}};

} // namespace

std::optional<millis> parse_duration(std::string_view text) {
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  std::size_t i = 0;
  std::int64_t value = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    int digit = text[i] - '0';
    if (value > (max - digit) / 10)
      return std::nullopt;
    value = value * 10 + digit;
  }
  if (i == 0)
    return std::nullopt; // no digits: "-1s", "s", ".5s", " 1s"
  std::string_view suffix = text.substr(i);
  for (const auto& u : units) {
    if (suffix != u.suffix)
      continue;
    if (value > max / u.ms)
      return std::nullopt;
    return millis{value * u.ms};
  }
  return std::nullopt;
}

std::string format_duration(millis d) {
  std::int64_t count = d.count();
  // Work on the magnitude as unsigned so the most negative value does not overflow on negation.
  std::uint64_t magnitude = count < 0 ? 0 - static_cast<std::uint64_t>(count) : static_cast<std::uint64_t>(count);
  std::string sign = count < 0 ? "-" : "";
  if (magnitude == 0)
    return "0s";
  for (const auto& u : units) {
    auto unit_ms = static_cast<std::uint64_t>(u.ms);
    if (magnitude % unit_ms == 0)
      return sign + std::to_string(magnitude / unit_ms) + std::string(u.suffix);
  }
  return {}; // unreachable: every count is a whole number of ms
}

} // namespace squad
