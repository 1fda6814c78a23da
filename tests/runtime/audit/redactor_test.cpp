#include "runtime/audit/pii_checks.hpp"
#include "runtime/audit/redactor.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using squad::audit::finding;
using squad::audit::kind_counts;
using squad::audit::pii_kind;
using squad::audit::redactor;

namespace {

// One redactor for every case: construction compiles the patterns, use is const.
const redactor& shared() {
  static const redactor instance;
  return instance;
}

std::string redact(std::string_view text) {
  return shared().redact(text);
}

using span = std::pair<pii_kind, std::string>;

std::vector<span> spans(std::string_view text) {
  std::vector<span> out;
  for (const auto& f : shared().find(text))
    out.emplace_back(f.kind, std::string(text.substr(f.offset, f.length)));
  return out;
}

// The text is found to hold exactly one span, of this kind and this value.
void require_one(std::string_view text, pii_kind kind, std::string_view value) {
  INFO(text);
  auto got = spans(text);
  REQUIRE(got.size() == 1);
  CHECK(squad::audit::kind_name(got[0].first) == squad::audit::kind_name(kind));
  CHECK(got[0].second == value);
}

// Nothing in the text is redacted.
void require_none(std::string_view text) {
  INFO(text);
  CHECK(redact(text) == text);
}

// Each value, alone in a sentence, is found whole and with its kind.
void require_each(pii_kind kind, std::initializer_list<const char*> values) {
  for (const char* v : values)
    require_one(std::string("see ") + v + " here", kind, v);
}

} // namespace

TEST_CASE("redactor: placeholders and kind names", "[audit][redactor]") {
  // Each kind has its bracketed placeholder and its lowercase name.
  CHECK(squad::audit::placeholder(pii_kind::email) == "[EMAIL]");
  CHECK(squad::audit::placeholder(pii_kind::phone) == "[PHONE]");
  CHECK(squad::audit::placeholder(pii_kind::card) == "[CARD]");
  CHECK(squad::audit::placeholder(pii_kind::iban) == "[IBAN]");
  CHECK(squad::audit::placeholder(pii_kind::cpf) == "[CPF]");
  CHECK(squad::audit::placeholder(pii_kind::cnpj) == "[CNPJ]");
  CHECK(squad::audit::placeholder(pii_kind::ipv4) == "[IPV4]");
  CHECK(squad::audit::placeholder(pii_kind::ipv6) == "[IPV6]");
  CHECK(squad::audit::placeholder(pii_kind::bearer) == "[BEARER]");
  CHECK(squad::audit::placeholder(pii_kind::api_key) == "[API_KEY]");
  CHECK(squad::audit::placeholder(pii_kind::jwt) == "[JWT]");
  const char* names[] = {"email", "phone", "card", "iban", "cpf", "cnpj", "ipv4", "ipv6", "bearer", "api_key", "jwt"};
  for (std::size_t i = 0; i < squad::audit::pii_kind_count; ++i)
    CHECK(squad::audit::kind_name(squad::audit::all_pii_kinds[i]) == names[i]);
}

TEST_CASE("redactor: checksum helpers accept real numbers and reject one wrong digit", "[audit][checks]") {
  // Luhn, mod 97 and the CPF/CNPJ check digits, on published test numbers.
  using namespace squad::audit;
  CHECK(luhn_valid("4111111111111111"));
  CHECK_FALSE(luhn_valid("4111111111111112"));
  CHECK(card_issuer_known("378282246310005"));
  CHECK_FALSE(card_issuer_known("9111111111111111"));
  CHECK(iban_valid("DE89370400440532013000"));
  CHECK(iban_valid("GB82WEST12345698765432"));
  CHECK_FALSE(iban_valid("DE89370400440532013001"));
  CHECK_FALSE(iban_valid("XX89370400440532013000"));
  CHECK(cpf_valid("52998224725"));
  CHECK_FALSE(cpf_valid("52998224726"));
  CHECK_FALSE(cpf_valid("11111111111"));
  CHECK(cnpj_valid("11222333000181"));
  CHECK_FALSE(cnpj_valid("11222333000182"));
  CHECK_FALSE(cnpj_valid("00000000000000"));
  CHECK(cnpj_valid("12ABC34501DE35")); // the 2026 alphanumeric form, Receita Federal's example
  CHECK(ipv4_valid("192.168.0.1"));
  CHECK_FALSE(ipv4_valid("192.168.0.256"));
  CHECK(ipv6_valid("2001:db8::1"));
  CHECK(ipv6_valid("::ffff:192.0.2.128"));
  CHECK_FALSE(ipv6_valid("12:30:45"));
  CHECK_FALSE(ipv6_valid("2001::db8::1"));
  CHECK(jwt_header_valid("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"));
  CHECK_FALSE(jwt_header_valid("eyJmb28iOiJiYXIifQ"));
}

TEST_CASE("redactor: e-mail addresses are found, handles and file names are not", "[audit][redactor]") {
  // Ordinary addresses in text; @mentions, retina images, npm versions and hosts without a TLD stay.
  require_each(pii_kind::email, {"john.smith@example.com", "maria+billing@empresa.com.br", "a_b-c@mail.example.co.uk"});
  CHECK(redact("Mail <Ana.Souza@uol.com.br>, please.") == "Mail <[EMAIL]>, please.");
  require_none("Ping @maria.silva and @dev-team on Slack.");
  require_none("Upload icon@2x.png and lodash@4.17.21 to user@localhost.");
  require_none("The pattern a@b.c is not a real address.");
}

TEST_CASE("redactor: phone numbers in E.164 and national formats", "[audit][redactor]") {
  // International with and without separators, and the national forms of the US, Brazil, France and the UK.
  require_each(pii_kind::phone,
               {"+5511912345678", "+1 415 555 2671", "+44 20 7946 0958", "+55 (11) 91234-5678", "(415) 555-2671",
                "415-555-2671", "(11) 91234-5678", "11 91234-5678", "(21) 3456-7890", "01 23 45 67 89",
                "06.12.34.56.78", "020 7946 0958", "0161 496 0000", "07700 900123", "1-800-555-0199",
                "+44 (0)20 7946 0958", "(11) 9 1234-5678", "+55 11 9 1234-5678", "(415)555-2671"});
  // A trailing count after a complete number is not part of it.
  require_one("call +1 415 555 2671 2 times", pii_kind::phone, "+1 415 555 2671");
}

TEST_CASE("redactor: phone look-alikes stay", "[audit][redactor]") {
  // Dates, times, order numbers, postal codes and short runs are not phone numbers.
  require_none("Shipped 2026-12-03 at 12:30:45, order INV-415-555-2671, CEP 01310-100, ZIP 94105-1234.");
  require_none("Room 415, extension 2671, 3 servers, 12 cores; unix time 1733212800.");
  require_none("Prices R$ 1.234,56 and $1,299.99; population 1 234 567.");
  require_none("Pedido 0612345678 e protocolo 20261203001."); // plain digit runs without separators
  require_none("llvm-toolchain-snapshot (1:10~+20191229111838+6991d5728f1-1~exp1)"); // a build stamp
}

TEST_CASE("redactor: card numbers need a known issuer and the Luhn check", "[audit][redactor]") {
  // Grouped and plain numbers of every network; a wrong last digit leaves the number alone.
  require_each(pii_kind::card, {"4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "3782 822463 10005",
                                "6011 1111 1111 1117", "3530 1113 3330 0000", "4222222222222"});
  require_one("card 4111 1111 1111 1111 12/28", pii_kind::card, "4111 1111 1111 1111");
  require_none("card 4111 1111 1111 1112 was declined");
  require_none("ISBN 9780306406157, IMEI 356938035643809, waybill 1234 5678 9012 3456 7890");
  // A card is one finding, never also a phone number.
  auto got = spans("Visa 4111 1111 1111 1111 and Amex 3782 822463 10005.");
  REQUIRE(got.size() == 2);
  CHECK((got[0].first == pii_kind::card && got[1].first == pii_kind::card));
}

TEST_CASE("redactor: IBANs are checked with mod 97, spaced or compact", "[audit][redactor]") {
  // Published examples in both spellings; one changed digit, an unknown country or broken groups stay.
  require_each(pii_kind::iban, {"DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32",
                                "NL91ABNA0417164300", "BR1800360305000010009795493C1"});
  require_one("IBAN DE89 3704 0044 0532 0130 00 EUR", pii_kind::iban, "DE89 3704 0044 0532 0130 00");
  require_none("IBAN DE89 3704 0044 0532 0130 01 was rejected");
  require_none("SKU AB12 CDEF 3456 and flight LA8084");
}

TEST_CASE("redactor: CPF and CNPJ need their check digits", "[audit][redactor]") {
  // Formatted and plain; wrong check digits and one repeated digit are refused.
  require_each(pii_kind::cpf, {"529.982.247-25", "52998224725"});
  require_each(pii_kind::cnpj, {"11.222.333/0001-81", "11222333000181", "12.ABC.345/01DE-35"});
  require_none("CPF 529.982.247-26, 111.111.111-11, 00000000000, RG 12.345.678-9");
  require_none("CNPJ 11.222.333/0001-82 e 00.000.000/0000-00");
  require_none("Processo 0001234-56.2026.8.26.0100");
}

TEST_CASE("redactor: IPv4 addresses, not versions or out-of-range quads", "[audit][redactor]") {
  // Addresses with ports and prefixes; dotted runs longer than four, octets over 255 and versions stay.
  require_each(pii_kind::ipv4, {"192.168.0.1", "10.0.0.12", "203.0.113.45", "8.8.8.8"});
  CHECK(redact("curl http://10.1.2.3:8080/x from 172.16.4.20/24.") == "curl http://[IPV4]:8080/x from [IPV4]/24.");
  require_none("Versions 1.2.3, 10.0.0.1.2, v1.2.3.4 and version 2.1.0.4 are not addresses.");
  require_none("256.1.1.1, 999.10.10.10, 10.0.0.300, 192.168.1, 01.02.03.04");
  require_none("binutils (2.10.0.27-1) unstable; see section 23.2.3.1 and AssemblyVersion(\"1.0.0.0\")");
  // A range is two addresses.
  CHECK(redact("allow 10.0.0.1-10.0.0.9") == "allow [IPV4]-[IPV4]");
}

TEST_CASE("redactor: IPv6 in full, compressed and with an IPv4 tail", "[audit][redactor]") {
  // RFC 4291 forms; times, MAC addresses, C++ scopes and malformed groups stay.
  require_each(pii_kind::ipv6, {"2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8::8a2e:370:7334", "fe80::1ff:fe23",
                                "::1", "::ffff:192.0.2.128", "2606:4700:4700::1111", "2001:DB8::1"});
  CHECK(redact("connect to [2001:db8::1]:443 now") == "connect to [[IPV6]]:443 now");
  require_none("At 12:30:45, frame 00:01:23:45, MAC 00:1A:2B:3C:4D:5E, std::vector and Foo::Bar.");
  require_none("peer.rfind(\"::ffff:127.\", 0) == 0"); // a prefix in code, not an address
  require_none("Bad: 2001:db8:1:2:3:4:5:6:7 and 2001::db8::1.");
}

TEST_CASE("redactor: bearer tokens: the token goes, the word stays", "[audit][redactor]") {
  // Any case of "Bearer"; prose and placeholders after the word are left alone.
  CHECK(redact("Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0") == "Authorization: Bearer [BEARER]");
  CHECK(redact("authorization: bearer ya29.a0AfH6SMBx-kq3") == "authorization: bearer [BEARER]");
  CHECK(redact("BEARER AbCdEfGhIjKlMnOpQrStUvWxYz.") == "BEARER [BEARER].");
  require_none("The bearer of this card is entitled to one coffee; use Bearer authentication (RFC 6750).");
  require_none("Authorization: Bearer <token>, Bearer ${API_TOKEN}, Bearer YOUR_TOKEN_HERE");
  require_none("WWW-Authenticate: Bearer realm=\"example\", error=\"invalid_token\"");
}

TEST_CASE("redactor: API keys by prefix and key=value secrets", "[audit][redactor]") {
  // Provider prefixes, then long random values after a secret-sounding key; filler and words stay.
  require_each(pii_kind::api_key,
               {"sk-proj-Zq7XvB2nLm4Kp9Rt6Wy1Hc3Jd8Fg5Sa0", "sk-ant-api03-abcdEFGH1234ijklMNOP5678",
                "AKIAIOSFODNN7EXAMPLE", "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5",
                "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"});
  CHECK(redact("api_key=Zq7XvB2nLm4Kp9Rt6Wy1Hc3J") == "api_key=[API_KEY]");
  CHECK(redact("\"client_secret\": \"9f8e7d6c5b4a39281706f5e4d3c2b1a0\"") == "\"client_secret\": \"[API_KEY]\"");
  require_none("We use sk-learn-compatible-pipelines and task-runner-2026; keys starting AKIA are AWS keys.");
  require_none("api_key=YOUR_API_KEY token=abc123 max_tokens=4096 OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxx");
  require_none("apiKey: process.env.SQUAD_KEY, token: AuthenticationSchemeName, SLACK_TOKEN=xoxb-your-bot-token");
}

TEST_CASE("redactor: JWTs, also inside a bearer header", "[audit][redactor]") {
  // Three segments with a real header; "Bearer <jwt>" is one [JWT] and keeps the word.
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0"
      "IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  require_one("token " + jwt + " expired", pii_kind::jwt, jwt);
  CHECK(redact("Authorization: Bearer " + jwt) == "Authorization: Bearer [JWT]");
  CHECK(redact("id_token=" + jwt + "&x=1") == "id_token=[JWT]&x=1");
  require_none("JWT headers start with eyJ; eyJhbGciOi alone is not one, nor eyJmb28iOiJiYXIifQ.eyJ4IjoxfQ.c2ln.");
}

TEST_CASE("redactor: find reports non-overlapping spans in order, and counts add up", "[audit][redactor]") {
  // Several kinds in one text: offsets ascend, spans do not overlap, counts match the placeholders.
  std::string text = "Ana (ana@uol.com.br, CPF 529.982.247-25) paid 4111 1111 1111 1111 from 10.0.0.1 and ::1, "
                     "tel +55 11 91234-5678, key sk-proj-Zq7XvB2nLm4Kp9Rt6Wy1Hc3Jd8Fg5Sa0.";
  auto found = shared().find(text);
  REQUIRE(found.size() == 7);
  for (std::size_t i = 1; i < found.size(); ++i)
    CHECK(found[i - 1].offset + found[i - 1].length <= found[i].offset);
  kind_counts counts{};
  std::string out = shared().redact(text, &counts);
  CHECK(out == "Ana ([EMAIL], CPF [CPF]) paid [CARD] from [IPV4] and [IPV6], tel [PHONE], key [API_KEY].");
  CHECK(counts[static_cast<std::size_t>(pii_kind::email)] == 1);
  CHECK(counts[static_cast<std::size_t>(pii_kind::card)] == 1);
  CHECK(counts[static_cast<std::size_t>(pii_kind::bearer)] == 0);
  shared().redact(text, &counts); // counts accumulate
  CHECK(counts[static_cast<std::size_t>(pii_kind::phone)] == 2);
}

TEST_CASE("redactor: redacting redacted text changes nothing", "[audit][redactor]") {
  // Placeholders are never taken for data.
  for (const char* text : {"Authorization: Bearer [BEARER]", "mail [EMAIL] tel [PHONE] key=[API_KEY]",
                           "[CARD] [IBAN] [CPF] [CNPJ] [IPV4] [IPV6] [JWT]"})
    require_none(text);
  std::string once = redact("Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0 from 10.0.0.1 by a@b.com");
  CHECK(redact(once) == once);
}

TEST_CASE("redactor: one redactor serves several threads", "[audit][redactor]") {
  // Const use from four threads gives every thread the same answer.
  const std::string text = "mail ana@uol.com.br from 10.0.0.1";
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i)
        results[t] = shared().redact(text);
    });
  for (auto& t : threads)
    t.join();
  for (const auto& r : results)
    CHECK(r == "mail [EMAIL] from [IPV4]");
}

TEST_CASE("redactor: labelled data set: recall and precision per kind", "[audit][redactor][dataset]") {
  // tests/data/redaction/items.jsonl (generate.py): spans matched by kind and value; prints a table per kind.
  std::ifstream in(SQUAD_SOURCE_DIR "/tests/data/redaction/items.jsonl");
  REQUIRE(in.good());
  struct tally {
    std::size_t items = 0, spans = 0, tp = 0, fp = 0, fn = 0;
  };
  std::vector<tally> per(squad::audit::pii_kind_count);
  std::size_t lines = 0;
  std::size_t not_idempotent = 0;
  std::vector<std::string> misses;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    ++lines;
    auto item = nlohmann::json::parse(line);
    std::string text = item.at("text");
    std::vector<span> expected;
    std::vector<bool> seen(squad::audit::pii_kind_count, false);
    for (const auto& e : item.at("expect")) {
      std::string name = e.at("kind");
      for (auto k : squad::audit::all_pii_kinds)
        if (squad::audit::kind_name(k) == name) {
          expected.emplace_back(k, e.at("value").get<std::string>());
          ++per[static_cast<std::size_t>(k)].spans;
          seen[static_cast<std::size_t>(k)] = true;
        }
    }
    for (std::size_t k = 0; k < seen.size(); ++k)
      per[k].items += seen[k] ? 1 : 0;
    for (const auto& got : spans(text)) {
      auto hit = std::find(expected.begin(), expected.end(), got);
      if (hit != expected.end()) {
        ++per[static_cast<std::size_t>(got.first)].tp;
        expected.erase(hit);
      } else {
        ++per[static_cast<std::size_t>(got.first)].fp;
        misses.push_back("FP " + std::string(squad::audit::kind_name(got.first)) + " '" + got.second + "' in: " + text);
      }
    }
    for (const auto& e : expected) {
      ++per[static_cast<std::size_t>(e.first)].fn;
      misses.push_back("FN " + std::string(squad::audit::kind_name(e.first)) + " '" + e.second + "' in: " + text);
    }
    std::string once = redact(text);
    not_idempotent += redact(once) == once ? 0 : 1;
  }
  std::cout << "redaction data set: " << lines << " items\n";
  std::printf("%-8s %6s %6s %5s %5s %5s %8s %9s\n", "kind", "items", "spans", "tp", "fp", "fn", "recall", "precision");
  for (auto k : squad::audit::all_pii_kinds) {
    const auto& t = per[static_cast<std::size_t>(k)];
    double recall = t.spans == 0 ? 1.0 : static_cast<double>(t.tp) / static_cast<double>(t.spans);
    double precision = t.tp + t.fp == 0 ? 1.0 : static_cast<double>(t.tp) / static_cast<double>(t.tp + t.fp);
    std::printf("%-8s %6zu %6zu %5zu %5zu %5zu %8.3f %9.3f\n", std::string(squad::audit::kind_name(k)).c_str(), t.items,
                t.spans, t.tp, t.fp, t.fn, recall, precision);
  }
  std::fflush(stdout);
  for (const auto& m : misses)
    std::cout << "  " << m << "\n";
  std::cout.flush();

  CHECK(lines >= 600);
  CHECK(not_idempotent == 0);
  for (auto k : squad::audit::all_pii_kinds) {
    const auto& t = per[static_cast<std::size_t>(k)];
    INFO(squad::audit::kind_name(k));
    CHECK(t.items >= 40);
    REQUIRE(t.spans > 0);
    REQUIRE(static_cast<double>(t.tp) / static_cast<double>(t.spans) >= 0.99);
    REQUIRE(static_cast<double>(t.tp) / static_cast<double>(std::max<std::size_t>(t.tp + t.fp, 1)) >= 0.95);
  }
}
