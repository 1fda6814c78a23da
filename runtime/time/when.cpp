#include "runtime/time/when.hpp"
#include "runtime/time/duration.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

namespace squad {

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// YYYY-MM-DD[THH:MM:SS[.fff](Z|+HH:MM|-HH:MM)]
std::optional<std::int64_t> parse_time(const std::string& s) {
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
    return std::nullopt;
  std::size_t pos = 10;
  std::int64_t offset_s = 0, ms = 0;
  if (pos < s.size()) {
    if ((s[pos] != 'T' && s[pos] != ' ') ||
        std::sscanf(s.c_str() + pos + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &used) != 3 || used != 8)
      return std::nullopt;
    pos += 9;
    if (pos < s.size() && s[pos] == '.') {
      std::size_t end = pos + 1;
      std::string frac;
      while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end])))
        frac += s[end++];
      if (frac.empty())
        return std::nullopt;
      ms = std::stoll((frac + "00").substr(0, 3));
      pos = end;
    }
    if (pos == s.size() || (s[pos] == 'Z' && pos + 1 == s.size())) {
      // UTC
    } else if ((s[pos] == '+' || s[pos] == '-') && s.size() == pos + 6 && s[pos + 3] == ':') {
      int oh = 0, om = 0;
      if (std::sscanf(s.c_str() + pos + 1, "%2d:%2d", &oh, &om) != 2)
        return std::nullopt;
      offset_s = (s[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    } else {
      return std::nullopt;
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return std::nullopt;
  tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = sec;
  auto t = timegm(&tm);
  return (static_cast<std::int64_t>(t) - offset_s) * 1000 + ms;
}

} // namespace

std::string iso_time(std::int64_t ms) {
  auto t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

std::optional<std::int64_t> parse_since(const std::string& text, std::int64_t now_ms) {
  if (text.empty())
    return 0;
  if (all_digits(text))
    return std::stoll(text);
  if (auto d = parse_duration(text))
    return now_ms - d->count();
  return parse_time(text);
}

} // namespace squad
