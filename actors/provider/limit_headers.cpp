#include "actors/provider/limit_headers.hpp"
#include "runtime/net/url.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace squad {

namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

constexpr std::int64_t max_ms = 1'000'000'000'000;  // 10^12 ms, about 31 years
constexpr std::int64_t max_ns = max_ms * 1'000'000; // fits in int64 with room for one more addition

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// A non-negative decimal number: whole part, and at most six fraction digits (the rest are dropped).
struct decimal {
  std::int64_t whole = 0;
  std::int64_t frac = 0;
  std::int64_t frac_scale = 1; // 10^(fraction digits kept)
  bool huge = false;           // the whole part went past max_ns
};

// Reads digits[.digits] at s[pos], moving pos past them; false when there was no digit at all.
bool read_decimal(std::string_view s, std::size_t& pos, decimal& d) {
  std::size_t start = pos;
  for (; pos < s.size() && is_digit(s[pos]); ++pos) {
    if (d.whole > max_ns / 10)
      d.huge = true;
    else
      d.whole = d.whole * 10 + (s[pos] - '0');
  }
  bool any = pos > start;
  if (pos < s.size() && s[pos] == '.') {
    std::size_t frac_start = ++pos;
    for (; pos < s.size() && is_digit(s[pos]); ++pos) {
      if (d.frac_scale < 1'000'000) {
        d.frac = d.frac * 10 + (s[pos] - '0');
        d.frac_scale *= 10;
      }
    }
    any = any || pos > frac_start;
  }
  return any;
}

// d * unit_ns nanoseconds, capped at max_ns. frac < 10^6 and unit_ns <= 3.6 * 10^12, so frac * unit_ns fits.
std::int64_t to_ns(const decimal& d, std::int64_t unit_ns) {
  if (d.huge || d.whole > max_ns / unit_ns)
    return max_ns;
  return std::min(max_ns, d.whole * unit_ns + d.frac * unit_ns / d.frac_scale);
}

milliseconds ceil_ms(std::int64_t ns) {
  return milliseconds{(ns + 999'999) / 1'000'000};
}

// Milliseconds from `now` until `t`, rounded up; 0 when `t` is not in the future.
milliseconds ms_until(system_clock::time_point t, system_clock::time_point now) {
  if (t <= now)
    return milliseconds{0};
  return std::min(std::chrono::ceil<milliseconds>(t - now), milliseconds{max_ms});
}

// A whole number written with exactly `n` digits at s[pos].
std::optional<int> fixed_digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size())
    return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!is_digit(s[i]))
      return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

std::optional<system_clock::time_point> make_time(int y, int mo, int d, int h, int mi, int s) {
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  // Years past what system_clock's nanoseconds hold (1678..2262) are not a reset time anyone means (found by
  // tests/fuzz: "1012-05-01T14:00:30Z" overflowed the conversion).
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60 || y < 1970 || y > 2200) // 60: a leap second
    return std::nullopt;
  return system_clock::time_point{sys_days{ymd} + hours{h} + minutes{mi} + seconds{s}};
}

// A count such as x-ratelimit-remaining-requests: digits only.
std::int64_t parse_count(std::string_view value) {
  value = net::trim_ows(value);
  if (value.empty() || value.size() > 18 || !std::all_of(value.begin(), value.end(), is_digit))
    return -1;
  std::int64_t v = 0;
  for (char c : value)
    v = v * 10 + (c - '0');
  return v;
}

// A whole decimal number and nothing else, scaled by unit_ns.
std::optional<milliseconds> parse_plain_number(std::string_view value, std::int64_t unit_ns) {
  decimal d;
  std::size_t pos = 0;
  if (!read_decimal(value, pos, d) || pos != value.size())
    return std::nullopt;
  return ceil_ms(to_ns(d, unit_ns));
}

} // namespace

std::optional<milliseconds> parse_retry_after(std::string_view value, system_clock::time_point now) {
  value = net::trim_ows(value);
  if (value.empty())
    return std::nullopt;
  if (is_digit(value.front()) || value.front() == '.')
    return parse_plain_number(value, 1'000'000'000);
  if (auto date = parse_http_date(value))
    return ms_until(*date, now);
  return std::nullopt;
}

std::optional<milliseconds> parse_reset_duration(std::string_view value) {
  value = net::trim_ows(value);
  if (value.empty())
    return std::nullopt;
  if (value.find_first_not_of("0123456789.") == std::string_view::npos)
    return parse_plain_number(value, 1'000'000'000); // a bare number: seconds
  std::int64_t total = 0;
  std::size_t pos = 0;
  while (pos < value.size()) {
    decimal d;
    if (!read_decimal(value, pos, d))
      return std::nullopt;
    auto rest = value.substr(pos);
    std::int64_t unit_ns = 0;
    std::size_t unit_len = 0;
    if (rest.starts_with("ms")) {
      unit_ns = 1'000'000, unit_len = 2;
    } else if (rest.starts_with("us") || rest.starts_with("\xC2\xB5s") || rest.starts_with("\xCE\xBCs")) {
      unit_ns = 1'000, unit_len = rest.front() == 'u' ? 2 : 3;
    } else if (rest.starts_with("ns")) {
      unit_ns = 1, unit_len = 2;
    } else if (rest.starts_with("h")) {
      unit_ns = 3'600'000'000'000, unit_len = 1;
    } else if (rest.starts_with("m")) {
      unit_ns = 60'000'000'000, unit_len = 1;
    } else if (rest.starts_with("s")) {
      unit_ns = 1'000'000'000, unit_len = 1;
    } else {
      return std::nullopt;
    }
    total = std::min(max_ns, total + to_ns(d, unit_ns));
    pos += unit_len;
  }
  return ceil_ms(total);
}

std::optional<system_clock::time_point> parse_http_date(std::string_view v) {
  // "Wed, 21 Oct 2015 07:28:00 GMT": fixed positions.
  static constexpr std::string_view weekdays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  v = net::trim_ows(v);
  if (v.size() != 29 || v.substr(3, 2) != ", " || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[19] != ':' ||
      v[22] != ':' || v.substr(25) != " GMT")
    return std::nullopt;
  if (std::find(std::begin(weekdays), std::end(weekdays), v.substr(0, 3)) == std::end(weekdays))
    return std::nullopt;
  auto month = std::find(std::begin(months), std::end(months), v.substr(8, 3));
  if (month == std::end(months))
    return std::nullopt;
  auto d = fixed_digits(v, 5, 2), y = fixed_digits(v, 12, 4), h = fixed_digits(v, 17, 2), mi = fixed_digits(v, 20, 2),
       s = fixed_digits(v, 23, 2);
  if (!d || !y || !h || !mi || !s)
    return std::nullopt;
  return make_time(*y, static_cast<int>(month - std::begin(months)) + 1, *d, *h, *mi, *s);
}

std::optional<system_clock::time_point> parse_rfc3339(std::string_view v) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  v = net::trim_ows(v);
  if (v.size() < 20 || v[4] != '-' || v[7] != '-' || (v[10] != 'T' && v[10] != 't' && v[10] != ' ') || v[13] != ':' ||
      v[16] != ':')
    return std::nullopt;
  auto y = fixed_digits(v, 0, 4), mo = fixed_digits(v, 5, 2), d = fixed_digits(v, 8, 2), h = fixed_digits(v, 11, 2),
       mi = fixed_digits(v, 14, 2), s = fixed_digits(v, 17, 2);
  if (!y || !mo || !d || !h || !mi || !s)
    return std::nullopt;
  auto t = make_time(*y, *mo, *d, *h, *mi, *s);
  if (!t)
    return std::nullopt;
  std::size_t pos = 19;
  if (v[pos] == '.') {
    std::int64_t ns = 0, scale = 1'000'000'000;
    std::size_t start = ++pos;
    for (; pos < v.size() && is_digit(v[pos]); ++pos) {
      if (scale > 1) {
        scale /= 10;
        ns += (v[pos] - '0') * scale;
      }
    }
    if (pos == start)
      return std::nullopt;
    *t += std::chrono::duration_cast<system_clock::duration>(std::chrono::nanoseconds{ns});
  }
  auto zone = v.substr(pos);
  if (zone == "Z" || zone == "z")
    return t;
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':')
    return std::nullopt;
  auto oh = fixed_digits(zone, 1, 2), om = fixed_digits(zone, 4, 2);
  if (!oh || !om || *oh > 23 || *om > 59)
    return std::nullopt;
  auto offset = std::chrono::hours{*oh} + std::chrono::minutes{*om};
  // Local time = UTC + offset, so UTC = local - offset.
  return zone[0] == '+' ? *t - offset : *t + offset;
}

limit_signals parse_limit_signals(const header_list& headers, system_clock::time_point now) {
  limit_signals out;
  std::optional<milliseconds> retry_after, retry_after_ms;
  auto set_ms = [](std::int64_t& field, std::optional<milliseconds> ms) {
    if (ms)
      field = ms->count();
  };
  auto set_until = [&](std::int64_t& field, std::string_view value) {
    if (auto t = parse_rfc3339(value))
      field = ms_until(*t, now).count();
  };
  // Token counts come in families (OpenAI's tokens, Cerebras' tokens-minute, Anthropic's tokens, input-tokens and
  // output-tokens): the one with the fewest left is the one that binds.
  struct count_family {
    std::int64_t remaining = -1, reset_ms = -1;
  };
  std::array<count_family, 4> tokens{};
  // The header names of each family, spelled out once (this runs for every header of every upstream reply).
  struct family_names {
    std::string_view remaining, reset, anthropic_remaining, anthropic_reset;
  };
  static constexpr std::array<family_names, 4> families{{
      {"x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "anthropic-ratelimit-tokens-remaining",
       "anthropic-ratelimit-tokens-reset"},
      {"x-ratelimit-remaining-tokens-minute", "x-ratelimit-reset-tokens-minute", "", ""},
      {"", "", "anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"},
      {"", "", "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset"},
  }};
  auto family_of = [](std::string_view n, bool& reset) -> int {
    for (int i = 0; i < 4; ++i) {
      auto& f = families[static_cast<std::size_t>(i)];
      if ((!f.remaining.empty() && iequals(n, f.remaining)) ||
          (!f.anthropic_remaining.empty() && iequals(n, f.anthropic_remaining))) {
        reset = false;
        return i;
      }
      if ((!f.reset.empty() && iequals(n, f.reset)) || (!f.anthropic_reset.empty() && iequals(n, f.anthropic_reset))) {
        reset = true;
        return i;
      }
    }
    return -1;
  };
  for (const auto& [name, value] : headers) {
    bool is_reset = false;
    if (iequals(name, "retry-after"))
      retry_after = parse_retry_after(value, now);
    else if (iequals(name, "retry-after-ms"))
      retry_after_ms = parse_plain_number(net::trim_ows(value), 1'000'000);
    else if (iequals(name, "x-ratelimit-remaining-requests") || iequals(name, "anthropic-ratelimit-requests-remaining"))
      out.remaining_requests = parse_count(value);
    else if (iequals(name, "x-ratelimit-limit-requests") || iequals(name, "anthropic-ratelimit-requests-limit"))
      out.limit_requests = parse_count(value);
    else if (iequals(name, "x-ratelimit-reset-requests"))
      set_ms(out.reset_requests_ms, parse_reset_duration(value));
    else if (iequals(name, "anthropic-ratelimit-requests-reset"))
      set_until(out.reset_requests_ms, value);
    else if (iequals(name, "x-ratelimit-remaining-requests-day"))
      out.remaining_requests_day = parse_count(value);
    else if (iequals(name, "x-ratelimit-reset-requests-day"))
      set_ms(out.reset_requests_day_ms, parse_reset_duration(value));
    else if (auto f = family_of(name, is_reset); f >= 0) {
      auto& fam = tokens[static_cast<std::size_t>(f)];
      if (!is_reset)
        fam.remaining = parse_count(value);
      else if (iequals(std::string_view{name}.substr(0, 10), "anthropic-"))
        set_until(fam.reset_ms, value);
      else
        set_ms(fam.reset_ms, parse_reset_duration(value));
    }
  }
  // Families that say both how many are left and when they come back first; a count alone only if none does.
  auto take_fewest = [&](bool need_reset) {
    for (auto& fam : tokens)
      if (fam.remaining >= 0 && (!need_reset || fam.reset_ms >= 0) &&
          (out.remaining_tokens < 0 || fam.remaining < out.remaining_tokens ||
           (fam.remaining == out.remaining_tokens && fam.reset_ms > out.reset_tokens_ms))) {
        out.remaining_tokens = fam.remaining;
        out.reset_tokens_ms = fam.reset_ms;
      }
  };
  take_fewest(true);
  if (out.remaining_tokens < 0)
    take_fewest(false);
  if (out.remaining_tokens < 0) // a reset said without a count: still reported
    for (auto& fam : tokens)
      if (fam.reset_ms >= 0 && out.reset_tokens_ms < 0)
        out.reset_tokens_ms = fam.reset_ms;
  set_ms(out.retry_after_ms, retry_after_ms ? retry_after_ms : retry_after);
  return out;
}

} // namespace squad
