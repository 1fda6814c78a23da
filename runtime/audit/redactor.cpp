#include "runtime/audit/redactor.hpp"
#include "runtime/audit/pii_checks.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <stdexcept>

namespace squad::audit {

namespace {

using re2::RE2;

constexpr std::string_view no_joiners = {};

bool digit(char c) {
  return c >= '0' && c <= '9';
}
bool alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool alnum(char c) {
  return digit(c) || alpha(c);
}
bool word(char c) {
  return alnum(c) || c == '_';
}
bool token_char(char c) {
  return word(c) || c == '-';
}

// True when the character before `off` makes the span part of a longer token: a word character, or one of
// `joiners` with an alphanumeric before it (1.2.3.4 inside 5.1.2.3.4, 415-555-2671 inside INV-415-555-2671).
bool glued_before(std::string_view t, std::size_t off, std::string_view joiners) {
  if (off == 0)
    return false;
  char p = t[off - 1];
  return word(p) || (joiners.find(p) != std::string_view::npos && off >= 2 && alnum(t[off - 2]));
}

// The same on the right of a span ending at `end`.
bool glued_after(std::string_view t, std::size_t end, std::string_view joiners) {
  if (end >= t.size())
    return false;
  char n = t[end];
  return word(n) || (joiners.find(n) != std::string_view::npos && end + 1 < t.size() && alnum(t[end + 1]));
}

// "+55 11912345678": digits right after a "+<calling code> " are the rest of a phone number.
bool after_calling_code(std::string_view t, std::size_t off) {
  if (off > 0 && t[off - 1] == '+')
    return true;
  std::size_t i = off;
  if (i > 0 && (t[i - 1] == ' ' || t[i - 1] == '-' || t[i - 1] == '.'))
    --i;
  std::size_t j = i;
  while (j > 0 && digit(t[j - 1]) && i - j < 3)
    --j;
  return j < i && j > 0 && t[j - 1] == '+';
}

// "version 1.0.0.4", "build 10.0.0.12", "section 23.2.3.1": a dotted quad after one of these words is a version
// or a clause number, not an address.
bool after_version_word(std::string_view t, std::size_t off) {
  std::size_t i = off;
  while (i > 0 && std::string_view(" \t:=\"'([)").find(t[i - 1]) != std::string_view::npos)
    --i;
  std::size_t j = i;
  while (j > 0 && (alnum(t[j - 1]) || static_cast<unsigned char>(t[j - 1]) >= 0x80))
    --j;
  std::string w(t.substr(j, i - j));
  for (auto& c : w)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  if (w.ends_with("version") || w.ends_with("versão") || w.ends_with("versao")) // AssemblyVersion("1.0.0.0")
    return true;
  for (std::string_view v :
       {"versions",  "ver",      "v",         "build",   "release",  "rev",      "revision", "firmware", "patch",
        "policy",    "standard", "standards", "section", "sections", "clause",   "clauses",  "chapter",  "part",
        "paragraph", "item",     "seção",     "secao",   "capítulo", "capitulo", "artigo",   "§"})
    if (w == v)
      return true;
  return false;
}

// What follows a dotted quad makes it a package version: "3.16.2.1-2", "2.10.0.27-0.cvs"; "10.0.0.1-10.0.0.9"
// is a range of two addresses.
bool version_suffix(std::string_view t, std::size_t end) {
  if (end + 1 >= t.size() || t[end] != '-' || !alnum(t[end + 1]))
    return false;
  std::size_t k = end + 1;
  while (k < t.size() && (digit(t[k]) || t[k] == '.'))
    ++k;
  return !ipv4_valid(t.substr(end + 1, k - end - 1));
}

std::size_t count_if_char(std::string_view s, bool (*pred)(char)) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), pred));
}

std::string_view trim_trailing_dots(std::string_view s) {
  while (!s.empty() && s.back() == '.')
    s.remove_suffix(1);
  return s;
}

struct candidate {
  pii_kind kind;
  int rank; // lower wins an overlap
  std::size_t offset;
  std::size_t length;
};

constexpr int max_groups = 8;
using groups = std::array<re2::StringPiece, max_groups>;

// Runs `take(match)` on each match of `re`; take returns where to search next (0: just after the match start).
template <class Take> void each_match(const RE2& re, std::string_view text, Take&& take) {
  re2::StringPiece input(text.data(), text.size());
  groups m;
  int n = std::min(re.NumberOfCapturingGroups() + 1, max_groups);
  std::size_t pos = 0;
  while (pos < text.size() && re.Match(input, pos, text.size(), RE2::UNANCHORED, m.data(), n)) {
    auto off = static_cast<std::size_t>(m[0].data() - text.data());
    std::size_t next = take(m, off, off + m[0].size());
    pos = std::max(next, off + 1);
  }
}

std::size_t offset_in(std::string_view text, const re2::StringPiece& piece) {
  return static_cast<std::size_t>(piece.data() - text.data());
}

} // namespace

struct redactor::patterns {
  RE2 jwt{R"(eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*)"};
  RE2 api_key{R"((?:sk-(?:proj-|ant-|svcacct-|admin-)?|sk_live_|sk_test_|rk_live_|rk_test_|gsk_|xai-|glpat-|hf_))"
              R"([A-Za-z0-9_-]{16,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"
              R"(|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"};
  RE2 bearer{R"((?i)\bbearer[ \t]+([A-Za-z0-9._~+/-]+=*))"};
  RE2 email{R"([A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})"};
  RE2 iban{R"([A-Z]{2}[0-9]{2} ?[A-Z0-9]{4})"};
  RE2 cnpj{R"([0-9A-Z]{2}\.[0-9A-Z]{3}\.[0-9A-Z]{3}/[0-9A-Z]{4}-[0-9]{2}|[0-9]{14})"};
  RE2 card{R"([0-9](?:[ -]?[0-9]){12,18})"};
  RE2 cpf{R"([0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}|[0-9]{9}-[0-9]{2}|[0-9]{11})"};
  RE2 ipv6{R"([0-9A-Fa-f:]{2,}(?:\.[0-9]{1,3}){0,3})"};
  RE2 ipv4{R"((?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))"};
  // International, then national: US (415) 555-2671 / 415-555-2671, Brazil (11) 91234-5678 / 11 91234-5678,
  // France 01 23 45 67 89, UK 020 7946 0958 / 0161 496 0000 / 07700 900123.
  RE2 phone{
      R"((\+[1-9][0-9]{0,2}(?:[ .-]?\([0-9]{1,4}\)|[ .-]?[0-9]{1,5})(?:[ .-]?[0-9]{1,5}){0,6}))"
      R"(|((?:1[ .-]?)?\([2-9][0-9]{2}\) ?[2-9][0-9]{2}[ .-][0-9]{4}))"
      R"(|((?:1[ .-])?[2-9][0-9]{2}[ .-][2-9][0-9]{2}[ .-][0-9]{4}))"
      R"(|(\([1-9]{2}\) ?(?:9[ .]?[0-9]{4}|[2-5][0-9]{3})[ -]?[0-9]{4}|[1-9]{2} (?:9[ .]?[0-9]{4}|[2-5][0-9]{3})-[0-9]{4}))"
      R"(|(0[1-9](?:[ .-][0-9]{2}){4}))"
      R"(|(0[1-35-9](?:[0-9] [0-9]{4} [0-9]{4}|[0-9]{2} [0-9]{3} [0-9]{4}|[0-9]{3} [0-9]{6}|[0-9]{3} [0-9]{3} [0-9]{3})))"};
  RE2 secret{R"((?i)\b[a-z0-9_-]*(?:api[_-]?key|apikey|client[_-]?secret|secret[_-]?key|secret|access[_-]?key)"
             R"((?:[_-]?id)?|auth[_-]?token|access[_-]?token|refresh[_-]?token|token|password|passwd|senha|chave))"
             R"(["']?[ \t]*[:=][ \t]*["']?([A-Za-z0-9_+/=.-]{16,}))"};
};

redactor::redactor() : patterns_(std::make_unique<const patterns>()) {
  for (const RE2* re :
       {&patterns_->jwt, &patterns_->api_key, &patterns_->bearer, &patterns_->email, &patterns_->iban, &patterns_->cnpj,
        &patterns_->card, &patterns_->cpf, &patterns_->ipv6, &patterns_->ipv4, &patterns_->phone, &patterns_->secret})
    if (!re->ok())
      throw std::logic_error("redactor pattern does not compile: " + re->pattern() + ": " + re->error());
}

redactor::~redactor() = default;
redactor::redactor(redactor&&) noexcept = default;
redactor& redactor::operator=(redactor&&) noexcept = default;

std::vector<finding> redactor::find(std::string_view text) const {
  const patterns& p = *patterns_;
  std::vector<candidate> found;
  auto add = [&](pii_kind kind, int rank, std::size_t off, std::size_t end) {
    found.push_back({kind, rank, off, end - off});
  };

  each_match(p.jwt, text, [&](const groups& m, std::size_t off, std::size_t end) {
    std::string_view all(m[0].data(), m[0].size());
    std::string_view header = all.substr(0, all.find('.'));
    if (!(off > 0 && token_char(text[off - 1])) && jwt_header_valid(header))
      add(pii_kind::jwt, 0, off, end);
    return end;
  });
  each_match(p.api_key, text, [&](const groups& m, std::size_t off, std::size_t end) {
    // The prefix alone is not enough: "sk-learn-compatible", "xoxb-your-bot-token", "ghp_xxxx..." are words or
    // filler. AWS key ids are uppercase base32, so for them only the entropy tells.
    std::string_view key(m[0].data(), m[0].size());
    bool aws = key.starts_with("AKIA") || key.starts_with("ASIA");
    bool ok = aws ? shannon_entropy(key) >= 3.0 && (key[1] == 'K' || count_if_char(key, digit) > 0) : looks_random(key);
    if (!(off > 0 && token_char(text[off - 1])) && !(end < text.size() && token_char(text[end])) && ok)
      add(pii_kind::api_key, 1, off, end);
    return end;
  });
  each_match(p.bearer, text, [&](const groups& m, std::size_t, std::size_t end) {
    std::string_view token = trim_trailing_dots({m[1].data(), m[1].size()});
    if (looks_random(token))
      add(pii_kind::bearer, 2, offset_in(text, m[1]), offset_in(text, m[1]) + token.size());
    return end;
  });
  each_match(p.email, text, [&](const groups& m, std::size_t off, std::size_t end) {
    std::string_view all(m[0].data(), m[0].size());
    std::string_view local = all.substr(0, all.find('@'));
    std::string_view label = all.substr(local.size() + 1);
    label = label.substr(0, label.find('.'));
    bool retina = label.size() >= 2 && label.back() == 'x' && // icon@2x.png
                  std::all_of(label.begin(), label.end() - 1, digit);
    if (local.front() != '.' && local.back() != '.' && local.find("..") == std::string_view::npos && !retina &&
        !glued_after(text, end, "-"))
      add(pii_kind::email, 3, off, end);
    return end;
  });
  each_match(p.iban, text, [&](const groups&, std::size_t off, std::size_t end) {
    std::size_t want = iban_length(text.substr(off, 2));
    if (want == 0 || glued_before(text, off, no_joiners))
      return end;
    // Compact, or spaced in groups of four: walk exactly the country's length, skipping those spaces.
    std::string compact(text.substr(off, 4));
    std::size_t pos = off + 4;
    bool spaced = text[pos] == ' ';
    while (compact.size() < want) {
      if (spaced && compact.size() % 4 == 0) {
        if (pos >= text.size() || text[pos] != ' ')
          break;
        ++pos;
      }
      if (pos >= text.size() || !(digit(text[pos]) || (text[pos] >= 'A' && text[pos] <= 'Z')))
        break;
      compact += text[pos++];
    }
    if (compact.size() == want && !glued_after(text, pos, no_joiners) && iban_valid(compact)) {
      add(pii_kind::iban, 4, off, pos);
      return pos;
    }
    return end;
  });
  auto numeric_id = [&](const RE2& re, pii_kind kind, int rank, bool (*valid)(std::string_view)) {
    each_match(re, text, [&](const groups&, std::size_t off, std::size_t end) {
      std::string chars;
      for (char c : text.substr(off, end - off))
        if (c != '.' && c != '/' && c != '-')
          chars += c;
      bool plain = chars.size() == end - off;
      if (!glued_before(text, off, "./-") && !glued_after(text, end, "./-") &&
          !(plain && after_calling_code(text, off)) && valid(chars))
        add(kind, rank, off, end);
      return end;
    });
  };
  numeric_id(p.cnpj, pii_kind::cnpj, 5, cnpj_valid);
  each_match(p.card, text, [&](const groups&, std::size_t off, std::size_t end) {
    // The pattern stops at 19 digits; take the whole run so a longer number is seen as one.
    while (end < text.size() && (digit(text[end]) || ((text[end] == ' ' || text[end] == '-') && end + 1 < text.size() &&
                                                      digit(text[end + 1]))))
      ++end;
    if (glued_before(text, off, "-.") || glued_after(text, end, "-") || (off > 0 && text[off - 1] == '+') ||
        after_calling_code(text, off))
      return end;
    if (std::size_t n = card_number_length(text.substr(off, end - off)))
      add(pii_kind::card, 6, off, off + n);
    return end;
  });
  numeric_id(p.cpf, pii_kind::cpf, 7, cpf_valid);
  each_match(p.ipv6, text, [&](const groups& m, std::size_t, std::size_t end) {
    std::string_view a(m[0].data(), m[0].size());
    if (a.size() > 1 && a[0] == ':' && a[1] != ':')
      a.remove_prefix(1);
    if (a.size() > 1 && a.back() == ':' && a[a.size() - 2] != ':')
      a.remove_suffix(1);
    std::size_t start = offset_in(text, a);
    std::size_t stop = start + a.size();
    // A '.' straight after that does not end a sentence continues the token: "::ffff:127." is a prefix.
    bool dotted = stop + 1 < text.size() && text[stop] == '.' &&
                  std::string_view(" \t\r\n").find(text[stop + 1]) == std::string_view::npos;
    if (std::count(a.begin(), a.end(), ':') >= 2 && count_if_char(a, digit) > 0 && !glued_before(text, start, "") &&
        !glued_after(text, stop, "") && !dotted && ipv6_valid(a))
      add(pii_kind::ipv6, 8, start, stop);
    return end;
  });
  each_match(p.ipv4, text, [&](const groups&, std::size_t off, std::size_t end) {
    if (!glued_before(text, off, ".") && !glued_after(text, end, ".") && !after_version_word(text, off) &&
        !version_suffix(text, end))
      add(pii_kind::ipv4, 9, off, end);
    return end;
  });
  each_match(p.phone, text, [&](const groups& m, std::size_t off, std::size_t end) {
    std::string_view all(m[0].data(), m[0].size());
    if (glued_before(text, off, "-./") || (off > 0 && text[off - 1] == '+'))
      return end;
    if (m[1].data() != nullptr) {
      std::size_t n = e164_number_length(all);
      if (n > 0 && !(n == all.size() && glued_after(text, end, "-.+"))) // "~+20191229111838+6991d": a build stamp
        add(pii_kind::phone, 10, off, off + n);
      return end;
    }
    // 415-555-2671 and 01.23.45.67.89 keep one separator; (415) 555-2671 and (11) 91234-5678 mix by design.
    bool mixed_ok = m[3].data() == nullptr && m[5].data() == nullptr;
    if (!glued_after(text, end, "-./") && (mixed_ok || one_separator(all)))
      add(pii_kind::phone, 10, off, end);
    return end;
  });
  each_match(p.secret, text, [&](const groups& m, std::size_t, std::size_t end) {
    std::string_view value = trim_trailing_dots({m[1].data(), m[1].size()});
    if (looks_random(value))
      add(pii_kind::api_key, 11, offset_in(text, m[1]), offset_in(text, m[1]) + value.size());
    return end;
  });

  // Most specific first; a candidate overlapping one already taken is dropped.
  std::stable_sort(found.begin(), found.end(), [](const candidate& a, const candidate& b) {
    return a.rank != b.rank ? a.rank < b.rank : a.offset < b.offset;
  });
  std::map<std::size_t, candidate> taken; // by offset
  for (const auto& c : found) {
    auto next = taken.lower_bound(c.offset);
    if (next != taken.end() && next->first < c.offset + c.length)
      continue;
    if (next != taken.begin() && std::prev(next)->second.offset + std::prev(next)->second.length > c.offset)
      continue;
    taken.emplace(c.offset, c);
  }
  std::vector<finding> out;
  out.reserve(taken.size());
  for (const auto& [offset, c] : taken)
    out.push_back({c.kind, c.offset, c.length});
  return out;
}

std::string redactor::redact(std::string_view text, kind_counts* counts) const {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  for (const auto& f : find(text)) {
    out.append(text.substr(pos, f.offset - pos));
    out.append(placeholder(f.kind));
    pos = f.offset + f.length;
    if (counts != nullptr)
      ++(*counts)[static_cast<std::size_t>(f.kind)];
  }
  out.append(text.substr(pos));
  return out;
}

std::string_view placeholder(pii_kind kind) {
  static constexpr std::string_view marks[] = {"[EMAIL]", "[PHONE]", "[CARD]",   "[IBAN]",    "[CPF]", "[CNPJ]",
                                               "[IPV4]",  "[IPV6]",  "[BEARER]", "[API_KEY]", "[JWT]"};
  auto i = static_cast<std::size_t>(kind);
  return i < pii_kind_count ? marks[i] : "[REDACTED]";
}

std::string_view kind_name(pii_kind kind) {
  static constexpr std::string_view names[] = {"email", "phone", "card",   "iban",    "cpf", "cnpj",
                                               "ipv4",  "ipv6",  "bearer", "api_key", "jwt"};
  auto i = static_cast<std::size_t>(kind);
  return i < pii_kind_count ? names[i] : "unknown";
}

} // namespace squad::audit
