#pragma once
// Finds personal data and credentials in free text (prompts, replies, log lines) and replaces each with a
// placeholder such as "[EMAIL]", before anything is kept in the audit trail.
//
// Each kind has an RE2 pattern that finds candidates and a check that keeps only real ones: checksums (Luhn,
// mod 97, CPF/CNPJ check digits), issuer prefixes, address grammars, and the characters either side (a match
// glued to a longer number, word or dotted run is part of something else: 1.2.3.4.5, INV-415-555-2671).
// Where candidates overlap, the more specific kind wins, in this order:
//   jwt, api_key (prefixed), bearer, email, iban, cnpj, card, cpf, ipv6, ipv4, phone, api_key (key=value)
// so "Bearer <jwt>" is one [JWT] and a card number is never also a phone. For bearer tokens and key=value
// secrets only the secret is replaced: "Authorization: Bearer [BEARER]", "api_key=[API_KEY]".
#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace squad::audit {

/// What a span of text was recognised as.
enum class pii_kind { email, phone, card, iban, cpf, cnpj, ipv4, ipv6, bearer, api_key, jwt };

/// How many kinds there are (pii_kind values are 0 .. pii_kind_count - 1).
inline constexpr std::size_t pii_kind_count = 11;

/// Every kind, in declaration order.
inline constexpr std::array<pii_kind, pii_kind_count> all_pii_kinds = {
    pii_kind::email, pii_kind::phone, pii_kind::card,   pii_kind::iban,    pii_kind::cpf, pii_kind::cnpj,
    pii_kind::ipv4,  pii_kind::ipv6,  pii_kind::bearer, pii_kind::api_key, pii_kind::jwt};

/// The text that replaces a span: "[EMAIL]", "[PHONE]", ..., "[API_KEY]", "[JWT]".
std::string_view placeholder(pii_kind kind);

/// The kind's lowercase name: "email", "phone", ..., "api_key", "jwt".
std::string_view kind_name(pii_kind kind);

/// Findings per kind, indexed by static_cast<std::size_t>(kind).
using kind_counts = std::array<std::size_t, pii_kind_count>;

/// One recognised span: bytes [offset, offset + length) of the text.
struct finding {
  pii_kind kind;
  std::size_t offset;
  std::size_t length;
};

/// Compiles its patterns once; afterwards const use is safe from any number of threads.
class redactor {
public:
  redactor();
  ~redactor();
  redactor(redactor&&) noexcept;
  redactor& operator=(redactor&&) noexcept;

  /// Every span to redact, non-overlapping and in text order.
  std::vector<finding> find(std::string_view text) const;

  /// The text with each finding replaced by its placeholder; adds the findings per kind to `*counts` if given.
  /// Idempotent: redacting redacted text changes nothing.
  std::string redact(std::string_view text, kind_counts* counts = nullptr) const;

private:
  struct patterns;
  std::unique_ptr<const patterns> patterns_;
};

} // namespace squad::audit
