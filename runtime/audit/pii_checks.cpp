#include "runtime/audit/pii_checks.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace squad::audit {

namespace {

bool digit(char c) {
  return c >= '0' && c <= '9';
}
bool upper(char c) {
  return c >= 'A' && c <= 'Z';
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (!digit(c))
      return false;
  return !s.empty();
}

bool one_char_repeated(std::string_view s) {
  return s.find_first_not_of(s.front()) == std::string_view::npos;
}

// A card network's issuer prefixes [lo, hi] of `width` digits, and the lengths it issues (bit n: length n).
struct issuer {
  std::uint32_t lo;
  std::uint32_t hi;
  std::size_t width;
  std::uint32_t lengths;
};

constexpr std::uint32_t len(std::size_t n) {
  return 1u << n;
}
constexpr std::uint32_t lens(std::size_t from, std::size_t to) {
  std::uint32_t mask = 0;
  for (std::size_t n = from; n <= to; ++n)
    mask |= len(n);
  return mask;
}

constexpr issuer issuers[] = {
    {4, 4, 1, len(13) | len(16) | len(19)}, // Visa (and Elo's 4xxx ranges)
    {51, 55, 2, len(16)},                   // Mastercard
    {2221, 2720, 4, len(16)},               // Mastercard 2-series
    {34, 34, 2, len(15)},                   // American Express
    {37, 37, 2, len(15)},
    {6011, 6011, 4, lens(16, 19)}, // Discover
    {644, 649, 3, lens(16, 19)},
    {65, 65, 2, lens(16, 19)},     // Discover, Elo, RuPay
    {300, 305, 3, lens(14, 19)},   // Diners Club
    {36, 36, 2, lens(14, 19)},     // Diners Club International
    {38, 39, 2, lens(14, 19)},     // Diners Club, Hipercard 3841
    {3528, 3589, 4, lens(16, 19)}, // JCB
    {62, 62, 2, lens(16, 19)},     // UnionPay, Elo 6277
    {60, 60, 2, len(16)},          // Hipercard 606282, RuPay
    {50, 50, 2, lens(13, 19)},     // Maestro, Elo 50xx
    {56, 58, 2, lens(13, 19)},     // Maestro
    {63, 63, 2, lens(13, 19)},     // Maestro, Elo 636x
    {67, 67, 2, lens(13, 19)},     // Maestro
    {2200, 2204, 4, lens(16, 19)}, // Mir
};

struct iban_country {
  std::string_view code;
  std::size_t length;
};

// ISO 13616 registry (SWIFT IBAN registry), the countries an IBAN is likely to come from.
constexpr iban_country iban_countries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22},
    {"BR", 29}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28}, {"EE", 20},
    {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18},
    {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30},
    {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24},
    {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24}, {"PL", 28},
    {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24},
    {"SM", 27}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VG", 24}, {"XK", 20},
};

// Digits allowed in a full E.164 number (country code included).
struct e164_span {
  std::size_t min = 8;
  std::size_t max = 15;
};

struct calling_code {
  std::string_view code;
  e164_span span;
};

// Full-number lengths (country code included) for the calling codes we see most; others get E.164's 8..15.
constexpr calling_code calling_codes[] = {
    {"1", {11, 11}},  {"7", {11, 11}},  {"27", {11, 11}},  {"30", {12, 12}},  {"31", {11, 11}},  {"32", {10, 11}},
    {"33", {11, 11}}, {"34", {11, 11}}, {"351", {12, 12}}, {"353", {10, 12}}, {"39", {8, 13}},   {"41", {11, 11}},
    {"44", {11, 12}}, {"45", {10, 10}}, {"46", {9, 12}},   {"47", {10, 10}},  {"48", {11, 11}},  {"49", {8, 15}},
    {"52", {12, 12}}, {"54", {12, 13}}, {"55", {12, 13}},  {"56", {11, 11}},  {"57", {12, 12}},  {"61", {11, 11}},
    {"81", {11, 12}}, {"82", {10, 12}}, {"86", {12, 13}},  {"91", {12, 12}},  {"598", {11, 11}}, {"595", {12, 12}},
};

// The allowed length for the calling code the digits start with (codes are prefix-free); E.164's 8..15 otherwise.
e164_span e164_length(std::string_view digits) {
  for (const auto& c : calling_codes)
    if (digits.starts_with(c.code))
      return c.span;
  return {};
}

// Check digit of the CPF / CNPJ family: weighted sum mod 11, with `cpf` the CPF convention for remainders.
int mod11_digit(std::string_view chars, const int* weights, bool cpf) {
  int sum = 0;
  for (std::size_t i = 0; i < chars.size(); ++i)
    sum += (chars[i] - '0') * weights[i];
  if (cpf) {
    int r = sum * 10 % 11;
    return r == 10 ? 0 : r;
  }
  int r = sum % 11;
  return r < 2 ? 0 : 11 - r;
}

bool hex_group(std::string_view g) {
  return !g.empty() && g.size() <= 4 && g.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

// Counts the ':'-separated groups of one side of an IPv6 address; a dotted IPv4 tail counts as two.
bool ipv6_groups(std::string_view part, bool v4_tail_allowed, int& groups) {
  groups = 0;
  if (part.empty())
    return true;
  while (true) {
    auto colon = part.find(':');
    std::string_view g = part.substr(0, colon);
    if (colon == std::string_view::npos && v4_tail_allowed && g.find('.') != std::string_view::npos) {
      if (!ipv4_valid(g))
        return false;
      groups += 2;
      return true;
    }
    if (!hex_group(g))
      return false;
    ++groups;
    if (colon == std::string_view::npos)
      return true;
    part.remove_prefix(colon + 1);
  }
}

int base64url_value(char c) {
  static constexpr std::string_view abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto i = abc.find(c);
  return i == std::string_view::npos ? -1 : static_cast<int>(i);
}

} // namespace

bool luhn_valid(std::string_view digits) {
  if (!all_digits(digits))
    return false;
  int sum = 0;
  bool twice = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (twice)
      d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

bool card_issuer_known(std::string_view digits) {
  if (!all_digits(digits) || digits.size() > 31)
    return false;
  for (const auto& i : issuers) {
    if (digits.size() < i.width || !(i.lengths & len(digits.size())))
      continue;
    std::uint32_t prefix = 0;
    for (std::size_t k = 0; k < i.width; ++k)
      prefix = prefix * 10 + static_cast<std::uint32_t>(digits[k] - '0');
    if (prefix >= i.lo && prefix <= i.hi)
      return true;
  }
  return false;
}

std::size_t iban_length(std::string_view country) {
  for (const auto& c : iban_countries)
    if (c.code == country)
      return c.length;
  return 0;
}

bool iban_valid(std::string_view compact) {
  if (compact.size() < 15 || iban_length(compact.substr(0, 2)) != compact.size())
    return false;
  if (!digit(compact[2]) || !digit(compact[3]))
    return false;
  // ISO 7064 mod 97-10: the first four characters move to the end, letters count as 10..35.
  int rest = 0;
  for (std::size_t k = 0; k < compact.size(); ++k) {
    char c = compact[(k + 4) % compact.size()];
    if (digit(c))
      rest = (rest * 10 + (c - '0')) % 97;
    else if (upper(c))
      rest = (rest * 100 + (c - 'A' + 10)) % 97;
    else
      return false;
  }
  return rest == 1;
}

bool cpf_valid(std::string_view digits) {
  if (digits.size() != 11 || !all_digits(digits) || one_char_repeated(digits))
    return false;
  static constexpr int w1[] = {10, 9, 8, 7, 6, 5, 4, 3, 2};
  static constexpr int w2[] = {11, 10, 9, 8, 7, 6, 5, 4, 3, 2};
  return mod11_digit(digits.substr(0, 9), w1, true) == digits[9] - '0' &&
         mod11_digit(digits.substr(0, 10), w2, true) == digits[10] - '0';
}

bool cnpj_valid(std::string_view chars) {
  if (chars.size() != 14 || !all_digits(chars.substr(12)) || one_char_repeated(chars))
    return false;
  for (char c : chars.substr(0, 12))
    if (!digit(c) && !upper(c))
      return false;
  // Letters weigh their ASCII code minus '0' (the Receita Federal's rule for the alphanumeric CNPJ).
  static constexpr int w1[] = {5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2};
  static constexpr int w2[] = {6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2};
  return mod11_digit(chars.substr(0, 12), w1, false) == chars[12] - '0' &&
         mod11_digit(chars.substr(0, 13), w2, false) == chars[13] - '0';
}

bool ipv4_valid(std::string_view text) {
  int octets = 0;
  while (true) {
    auto dot = text.find('.');
    std::string_view o = text.substr(0, dot);
    if (o.empty() || o.size() > 3 || !all_digits(o) || (o.size() > 1 && o[0] == '0'))
      return false;
    if (std::stoi(std::string(o)) > 255)
      return false;
    ++octets;
    if (dot == std::string_view::npos)
      return octets == 4;
    text.remove_prefix(dot + 1);
  }
}

bool ipv6_valid(std::string_view text) {
  auto gap = text.find("::");
  if (gap == std::string_view::npos) {
    int groups = 0;
    return ipv6_groups(text, true, groups) && groups == 8;
  }
  if (text.find("::", gap + 1) != std::string_view::npos)
    return false; // a second "::" (or ":::")
  int left = 0;
  int right = 0;
  if (!ipv6_groups(text.substr(0, gap), false, left) || !ipv6_groups(text.substr(gap + 2), true, right))
    return false;
  return left + right <= 7;
}

bool jwt_header_valid(std::string_view segment) {
  std::string json;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : segment.substr(0, 1024)) {
    int v = base64url_value(c);
    if (v < 0)
      return false;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      json += static_cast<char>((bits >> count) & 0xff);
    }
  }
  auto start = json.find_first_not_of(" \t\r\n");
  return start != std::string::npos && json[start] == '{' && json.find("\"alg\"") != std::string::npos;
}

double shannon_entropy(std::string_view text) {
  if (text.empty())
    return 0;
  std::array<std::size_t, 256> counts{};
  for (unsigned char c : text)
    ++counts[c];
  double bits = 0;
  for (std::size_t n : counts) {
    if (n == 0)
      continue;
    double p = static_cast<double>(n) / static_cast<double>(text.size());
    bits -= p * std::log2(p);
  }
  return bits;
}

bool looks_random(std::string_view text) {
  std::size_t letters = 0;
  std::size_t flips = 0;
  bool digits = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool letter = upper(text[i]) || (text[i] >= 'a' && text[i] <= 'z');
    letters += letter ? 1 : 0;
    digits = digits || digit(text[i]);
    // In random base62 about every other pair of letters changes case.
    if (letter && i > 0 && (upper(text[i - 1]) || (text[i - 1] >= 'a' && text[i - 1] <= 'z')))
      flips += upper(text[i - 1]) != upper(text[i]) ? 1 : 0;
  }
  return text.size() >= 16 && letters > 0 && (digits || flips * 4 >= letters) && shannon_entropy(text) >= 3.0;
}

std::size_t card_number_length(std::string_view run) {
  // Groups only while a prefix can still be 19 digits or fewer: a long run costs no more than a short one.
  std::vector<std::string_view> parts;
  char sep = 0;
  std::size_t start = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < run.size() && count <= 19; ++i) {
    if (digit(run[i])) {
      ++count;
      continue;
    }
    if (sep != 0 && run[i] != sep)
      return 0;
    sep = run[i];
    parts.push_back(run.substr(start, i - start));
    start = i + 1;
  }
  if (count <= 19)
    parts.push_back(run.substr(start));
  // Longest first: trailing groups may be cut ("... 1111 12/28": the expiry is not part of the number).
  for (std::size_t k = parts.size(); k >= 1; --k) {
    std::string digits;
    for (std::size_t g = 0; g < k; ++g)
      digits += parts[g];
    if (digits.size() < 13 || digits.size() > 19)
      continue;
    auto size = [&](std::size_t g) { return parts[g].size(); };
    bool fours = size(k - 1) >= 3 && size(k - 1) <= 4;
    for (std::size_t g = 0; g + 1 < k; ++g)
      fours = fours && size(g) == 4;
    bool amex = k == 3 && size(0) == 4 && size(1) == 6 && size(2) >= 4 && size(2) <= 5;
    if ((k == 1 || fours || amex) && card_issuer_known(digits) && luhn_valid(digits))
      return static_cast<std::size_t>(parts[k - 1].data() - run.data()) + parts[k - 1].size();
  }
  return 0;
}

std::size_t e164_number_length(std::string_view number) {
  std::string digits;
  std::vector<std::pair<std::size_t, std::size_t>> runs; // [start, stop) of each digit group
  for (std::size_t i = 1; i < number.size();) {
    if (!digit(number[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < number.size() && digit(number[j]))
      ++j;
    bool trunk = j == i + 1 && number[i] == '0' && number[i - 1] == '(' && j < number.size() && number[j] == ')';
    if (!trunk) { // +44 (0)20 7946 0958
      runs.emplace_back(i, j);
      digits += number.substr(i, j - i);
    }
    i = j;
  }
  e164_span span = e164_length(digits);
  std::size_t total = 0;
  std::size_t best = 0;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    std::size_t n = runs[r].second - runs[r].first;
    total += n;
    if (total > span.max)
      break;
    if (total >= span.min && (n >= 2 || r == 0)) // a lone trailing digit is a count, not part of the number
      best = runs[r].second;
  }
  return best;
}

bool one_separator(std::string_view number) {
  char sep = 0;
  for (char c : number) {
    if (digit(c) || c == '(' || c == ')')
      continue;
    if (sep != 0 && c != sep)
      return false;
    sep = c;
  }
  return true;
}

} // namespace squad::audit
