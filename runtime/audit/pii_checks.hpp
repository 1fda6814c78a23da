#pragma once
// The checks that tell a real identifier from something shaped like one: checksums (Luhn, ISO 7064 mod 97, the
// CPF and CNPJ check digits), issuer prefixes, address grammars and a JWT header test. Pure functions over
// already-extracted characters; the redactor finds candidates with RE2 and asks these whether to keep them.
#include <cstddef>
#include <string_view>

namespace squad::audit {

/// Luhn (mod 10) over a run of ASCII digits; false on anything that is not all digits or is empty.
bool luhn_valid(std::string_view digits);

/// True when the digits start with a card network's issuer prefix and have one of that network's lengths.
bool card_issuer_known(std::string_view digits);

/// The IBAN length a country (two uppercase letters) registers with ISO 13616; 0 when not in the table.
std::size_t iban_length(std::string_view country);

/// A compact uppercase IBAN (no spaces): known country, its length, ISO 7064 mod 97 remainder 1.
bool iban_valid(std::string_view compact);

/// Brazilian CPF, 11 digits: both check digits right and not one digit repeated.
bool cpf_valid(std::string_view digits);

/// Brazilian CNPJ, 14 characters: 12 of [0-9A-Z] (letters from the 2026 alphanumeric form) and 2 check digits.
bool cnpj_valid(std::string_view chars);

/// Dotted-quad IPv4: four decimal octets 0-255 without leading zeros.
bool ipv4_valid(std::string_view text);

/// IPv6 text form (RFC 4291 2.2): eight groups, one `::`, or a dotted IPv4 tail.
bool ipv6_valid(std::string_view text);

/// True when a base64url JWT header segment decodes to a JSON object that names "alg".
bool jwt_header_valid(std::string_view segment);

/// Shannon entropy of the characters, in bits per character.
double shannon_entropy(std::string_view text);

/// At least 16 characters that look random rather than like a word or an identifier: digits among letters, or
/// letters that change case often ("AuthenticationScheme", "process.env.SQUAD_KEY" do not), and no filler.
bool looks_random(std::string_view text);

/// The length of the longest prefix of a run of digit groups ("4111 1111 1111 1111 12") that is a card number:
/// one separator kind, groups of four (Amex/Diners 4-6-5 / 4-6-4) or none, a known issuer, the Luhn check.
/// 0 when no prefix is one.
std::size_t card_number_length(std::string_view run);

/// The length of the longest prefix of "+<digits and separators>" whose digits fit the length its calling code
/// allows ("+1 415 555 2671 2" stops before " 2"; a "(0)" trunk prefix does not count); 0 when none does.
std::size_t e164_number_length(std::string_view number);

/// The separators in a number (characters other than digits and parentheses) are all the same one.
bool one_separator(std::string_view number);

} // namespace squad::audit
