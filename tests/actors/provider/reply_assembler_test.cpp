#include "actors/provider/reply_assembler.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
using nlohmann::json;
using squad::api_kind;
using squad::header_list;
using squad::is_retryable;
using squad::outcome;
using squad::redact_secrets;
using squad::reply_assembler;
using squad::upstream_reply;
using squad::net::http_failure;

namespace {

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// A fixed wall-clock instant: nothing here may depend on the real clock.
const auto now = std::chrono::system_clock::time_point{1723802400s};

// The API key of every test; key-shaped, so both redaction rules apply to it.
const std::string secret = "sk-proj-Zq7XvB2nLm4Kp9Rt6Wy1Hc3Jd8Fg5Sa0";

// An Anthropic-style key, which the shape rule alone would not catch (no sk- prefix) but the secret rule does.
const std::string odd_secret = "ak-live.Q2w3E4r5T6y7";

// -- payloads, after what the APIs send ------------------------------------------------------------------

const std::string text_expected = "Hello! How can I help you today?";

const std::string openai_reply = R"({
  "id": "chatcmpl-A1b2C3d4E5f6G7h8I9j0",
  "object": "chat.completion",
  "created": 1723802400,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": null},
     "logprobs": null, "finish_reason": "stop"}
  ],
  "usage": {"prompt_tokens": 19, "completion_tokens": 9, "total_tokens": 28},
  "system_fingerprint": "fp_48196bc67a"
})";

std::string openai_chunk(const std::string& delta, const std::string& finish = "null") {
  return R"(data: {"id":"chatcmpl-A1b2C3d4E5f6G7h8I9j0","object":"chat.completion.chunk","created":1723802400,)"
         R"("model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":)" +
         delta + R"(,"logprobs":null,"finish_reason":)" + finish + R"(}],"usage":null})" + "\n\n";
}

// Everything OpenAI streams before [DONE]: deltas, the finish chunk and the usage chunk.
std::string openai_stream_without_done() {
  std::string s = openai_chunk(R"({"role":"assistant","content":"","refusal":null})");
  for (const char* piece : {"Hello", "!", " How", " can", " I", " help", " you", " today", "?"})
    s += openai_chunk(json{{"content", piece}}.dump());
  s += openai_chunk("{}", "\"stop\"");
  s += R"(data: {"id":"chatcmpl-A1b2C3d4E5f6G7h8I9j0","object":"chat.completion.chunk","created":1723802400,)"
       R"("model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":9,)"
       R"("total_tokens":28}})"
       "\n\n";
  return s;
}

std::string openai_stream() {
  return openai_stream_without_done() + "data: [DONE]\n\n";
}

const std::string anthropic_reply = R"({
  "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
  "type": "message",
  "role": "assistant",
  "model": "claude-3-5-sonnet-20241022",
  "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 12}
})";

std::string anthropic_event(const std::string& name, const std::string& data) {
  return "event: " + name + "\ndata: " + data + "\n\n";
}

// message_start, a ping and the text deltas: what arrives before the stream's end.
std::string anthropic_stream_head() {
  std::string s = anthropic_event(
      "message_start",
      R"({"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant",)"
      R"("model":"claude-3-5-sonnet-20241022","content":[],"stop_reason":null,"stop_sequence":null,)"
      R"("usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}})");
  s += anthropic_event("content_block_start",
                       R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
  s += anthropic_event("ping", R"({"type": "ping"})");
  for (const char* piece : {"Hello", "! How can", " I help", " you today?"})
    s += anthropic_event(
        "content_block_delta",
        json{{"type", "content_block_delta"}, {"index", 0}, {"delta", {{"type", "text_delta"}, {"text", piece}}}}
            .dump());
  return s;
}

std::string anthropic_stream() {
  std::string s = anthropic_stream_head();
  s += anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":0})");
  s += anthropic_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn",)"
                                        R"("stop_sequence":null},"usage":{"output_tokens":12}})");
  s += anthropic_event("message_stop", R"({"type":"message_stop"})");
  return s;
}

// Every line end as "\r\n", which the SSE spec allows and a chunk boundary may split.
std::string crlf(const std::string& s) {
  std::string out;
  for (char c : s)
    out += c == '\n' ? std::string("\r\n") : std::string(1, c);
  return out;
}

// -- headers ----------------------------------------------------------------------------------------------

// A limit header every head below carries, so that the signals can be checked on every reply.
header_list with_limits(header_list h) {
  h.emplace_back("x-ratelimit-remaining-requests", "42");
  h.emplace_back("x-ratelimit-reset-tokens", "1.5s");
  return h;
}

header_list json_head() {
  return with_limits({{"Content-Type", "application/json"}});
}

header_list sse_head() {
  return with_limits({{"Content-Type", "text/event-stream; charset=utf-8"}, {"Cache-Control", "no-cache"}});
}

// Feeds `body` in pieces of `chunk` bytes; returns the text handed out along the way.
std::string feed(reply_assembler& a, const std::string& body, std::size_t chunk) {
  std::string deltas;
  for (std::size_t pos = 0; pos < body.size(); pos += chunk)
    deltas += a.on_data(std::string_view(body).substr(pos, chunk));
  return deltas;
}

// One whole exchange: a head, the body in pieces of `chunk` bytes, and how it ended.
upstream_reply exchange(api_kind kind, int status, const header_list& headers, const std::string& body,
                        std::size_t chunk = 4096, http_failure failure = http_failure::none,
                        const std::string& detail = "") {
  reply_assembler a(kind, secret);
  a.on_head(status, headers, now);
  feed(a, body, chunk);
  return a.finish(failure, detail);
}

void check_limits_present(const upstream_reply& r) {
  CHECK(r.signals.remaining_requests == 42);
  CHECK(r.signals.reset_tokens_ms == 1500);
}

void check_limits_absent(const upstream_reply& r) {
  CHECK(r.signals.retry_after_ms == -1);
  CHECK(r.signals.remaining_requests == -1);
  CHECK(r.signals.remaining_tokens == -1);
  CHECK(r.signals.reset_requests_ms == -1);
  CHECK(r.signals.reset_tokens_ms == -1);
}

// Neither the key itself nor anything shaped like a key.
void check_no_secret(const std::string& detail) {
  INFO(detail);
  CHECK_FALSE(contains(detail, secret));
  CHECK_FALSE(contains(detail, odd_secret));
  CHECK_FALSE(contains(detail, "Zq7XvB2nLm4Kp9Rt6Wy1"));
  CHECK_FALSE(contains(detail, "sk-live-"));
}

const http_failure all_failures[] = {
    http_failure::connect_failed,     http_failure::tls_failed,   http_failure::timeout_connect,
    http_failure::timeout_first_byte, http_failure::timeout_idle, http_failure::timeout_total,
    http_failure::closed_early,       http_failure::bad_http,     http_failure::body_too_large,
    http_failure::shut_down,
};

} // namespace

// -- redact_secrets ---------------------------------------------------------------------------------------

TEST_CASE("redact_secrets: the secret goes wherever it stands") {
  // Every occurrence, inside other text too, and whatever its shape.
  CHECK(redact_secrets("key " + odd_secret + " and again:" + odd_secret + ".", odd_secret) ==
        "key [redacted] and again:[redacted].");
  CHECK(redact_secrets("x" + odd_secret + "x", odd_secret) == "x[redacted]x");
  CHECK(redact_secrets(odd_secret, odd_secret) == "[redacted]");
  CHECK(redact_secrets("nothing to hide", odd_secret) == "nothing to hide");
}

TEST_CASE("redact_secrets: a secret shorter than 8 bytes is not searched for") {
  // Too short to be a key; replacing it would eat ordinary words.
  CHECK(redact_secrets("the ollama key is none", "none") == "the ollama key is none");
  CHECK(redact_secrets("a", "") == "a");
  CHECK(redact_secrets("", "") == "");
}

TEST_CASE("redact_secrets: key-shaped words of 20 characters or more") {
  // Known prefixes followed by letters, digits, '-' and '_'; the word ends at anything else.
  const std::string tail17 = "abcdefghijklmnopq"; // "sk-" + 17 = 20 characters
  for (std::string prefix : {"sk-", "sk_", "gsk_", "xai-", "pk-", "rk-"}) {
    INFO(prefix);
    std::string key = prefix + tail17;
    CHECK(redact_secrets("Bearer " + key, "") == "Bearer [redacted]");
    CHECK(redact_secrets(key + ".", "") == "[redacted].");
    CHECK(redact_secrets("(" + key + ")", "") == "([redacted])");
    CHECK(redact_secrets("\"" + key + "_with-more_chars\"", "") == "\"[redacted]\"");
  }
  // 19 characters: not a key.
  CHECK(redact_secrets("sk-abcdefghijklmnop", "") == "sk-abcdefghijklmnop");
  // OpenAI's own masked echo is no key either.
  CHECK(redact_secrets("Incorrect API key provided: sk-proj-****abcd.", "") ==
        "Incorrect API key provided: sk-proj-****abcd.");
  // The prefix must start the word.
  CHECK(redact_secrets("task-abcdefghijklmnopqrstuvwxyz", "") == "task-abcdefghijklmnopqrstuvwxyz");
  CHECK(redact_secrets("risk_abcdefghijklmnopqrstuvwxyz", "") == "risk_abcdefghijklmnopqrstuvwxyz");
  // Two keys, and text around them untouched (UTF-8 included).
  CHECK(redact_secrets("é sk-aaaaaaaaaaaaaaaaaaaaaa, gsk_bbbbbbbbbbbbbbbbbbbbbbbb é", "") ==
        "é [redacted], [redacted] é");
}

// -- whole replies ----------------------------------------------------------------------------------------

TEST_CASE("reply_assembler: an OpenAI whole JSON reply") {
  // Parsed by the adapter; text, finish reason, usage and the head's signals all come through.
  reply_assembler a(api_kind::openai, secret);
  a.on_head(200, json_head(), now);
  CHECK(a.status() == 200);
  CHECK_FALSE(a.streaming());
  CHECK(feed(a, openai_reply, 10).empty()); // nothing handed out before the end of a whole reply
  auto r = a.finish(http_failure::none, "");
  CHECK(r.result == outcome::ok);
  CHECK(r.detail.empty());
  CHECK(r.text == text_expected);
  CHECK(r.finish_reason == "stop");
  CHECK(r.usage.prompt_tokens == 19);
  CHECK(r.usage.completion_tokens == 9);
  check_limits_present(r);
}

TEST_CASE("reply_assembler: an Anthropic whole JSON reply") {
  // Same for the Messages API.
  auto r = exchange(api_kind::anthropic, 200, json_head(), anthropic_reply, 1);
  CHECK(r.result == outcome::ok);
  CHECK(r.text == text_expected);
  CHECK(r.finish_reason == "stop");
  CHECK(r.usage.prompt_tokens == 12);
  CHECK(r.usage.completion_tokens == 12);
  check_limits_present(r);
}

TEST_CASE("reply_assembler: a 2xx JSON reply to a streaming request is parsed whole") {
  // Some upstreams ignore stream:true; the content type decides, not what was asked.
  for (std::string type : {"application/json", "application/json; charset=utf-8", ""}) {
    INFO(type);
    header_list h = type.empty() ? header_list{} : header_list{{"content-type", type}};
    reply_assembler a(api_kind::openai, secret);
    a.on_head(200, h, now);
    CHECK_FALSE(a.streaming());
    feed(a, openai_reply, 3);
    auto r = a.finish(http_failure::none, "");
    CHECK(r.result == outcome::ok);
    CHECK(r.text == text_expected);
    CHECK(r.usage.completion_tokens == 9);
  }
  auto r = exchange(api_kind::anthropic, 200, {{"Content-Type", "application/json"}}, anthropic_reply);
  CHECK(r.result == outcome::ok);
  CHECK(r.text == text_expected);
}

TEST_CASE("reply_assembler: a malformed 2xx reply is bad_response") {
  // The adapter's verdict stands; no text comes with it.
  auto r = exchange(api_kind::openai, 200, json_head(), openai_reply.substr(0, 100));
  CHECK(r.result == outcome::bad_response);
  CHECK(r.text.empty());
  check_limits_present(r);
}

// -- streamed replies -------------------------------------------------------------------------------------

TEST_CASE("reply_assembler: an OpenAI stream in awkward chunks equals the whole reply") {
  // Byte by byte, odd sizes, CRLF line ends split between '\r' and '\n': same text, finish reason and usage.
  auto whole = exchange(api_kind::openai, 200, json_head(), openai_reply);
  REQUIRE(whole.result == outcome::ok);
  for (const auto& body : {openai_stream(), crlf(openai_stream())}) {
    for (std::size_t chunk :
         {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, std::size_t{64}, body.size()}) {
      INFO("chunk " << chunk << (body.find('\r') != std::string::npos ? " crlf" : ""));
      reply_assembler a(api_kind::openai, secret);
      a.on_head(200, sse_head(), now);
      CHECK(a.streaming());
      auto deltas = feed(a, body, chunk);
      auto r = a.finish(http_failure::none, "");
      CHECK(r.result == outcome::ok);
      CHECK(r.detail.empty());
      CHECK(r.text == whole.text);
      CHECK(deltas == whole.text);
      CHECK(r.finish_reason == whole.finish_reason);
      CHECK(r.usage.prompt_tokens == whole.usage.prompt_tokens);
      CHECK(r.usage.completion_tokens == whole.usage.completion_tokens);
      check_limits_present(r);
    }
  }
}

TEST_CASE("reply_assembler: an Anthropic stream in awkward chunks equals the whole reply") {
  // Same for Anthropic's event stream, ping included.
  auto whole = exchange(api_kind::anthropic, 200, json_head(), anthropic_reply);
  REQUIRE(whole.result == outcome::ok);
  for (const auto& body : {anthropic_stream(), crlf(anthropic_stream())}) {
    for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{5}, std::size_t{33}, body.size()}) {
      INFO("chunk " << chunk << (body.find('\r') != std::string::npos ? " crlf" : ""));
      reply_assembler a(api_kind::anthropic, secret);
      a.on_head(200, sse_head(), now);
      CHECK(a.streaming());
      auto deltas = feed(a, body, chunk);
      auto r = a.finish(http_failure::none, "");
      CHECK(r.result == outcome::ok);
      CHECK(r.text == whole.text);
      CHECK(deltas == whole.text);
      CHECK(r.finish_reason == whole.finish_reason);
      CHECK(r.usage.prompt_tokens == whole.usage.prompt_tokens);
      CHECK(r.usage.completion_tokens == whole.usage.completion_tokens);
      check_limits_present(r);
    }
  }
}

TEST_CASE("reply_assembler: on_data hands out each delta as it arrives") {
  // The text of a chunk comes out of the on_data call that completes its event, not before.
  reply_assembler a(api_kind::openai, secret);
  a.on_head(200, sse_head(), now);
  auto event = openai_chunk(R"({"content":"Hi"})");
  CHECK(a.on_data(event.substr(0, event.size() - 1)).empty()); // the blank line is not there yet
  CHECK(a.on_data(event.substr(event.size() - 1)) == "Hi");
  CHECK(a.on_data("data: [DONE]\n\n").empty());
  auto r = a.finish(http_failure::none, "");
  CHECK(r.result == outcome::ok);
  CHECK(r.text == "Hi");
}

TEST_CASE("reply_assembler: a stream that ends cleanly without its end marker is stream_cut") {
  // The connection closed normally, but [DONE] / message_stop never came: the answer may be partial.
  auto o = exchange(api_kind::openai, 200, sse_head(), openai_stream_without_done(), 5);
  CHECK(o.result == outcome::stream_cut);
  CHECK(o.text.empty());
  CHECK(o.usage.completion_tokens == 9); // what was streamed may be billed
  check_limits_present(o);
  auto a = exchange(api_kind::anthropic, 200, sse_head(), anthropic_stream_head(), 5);
  CHECK(a.result == outcome::stream_cut);
  CHECK(a.text.empty());
  CHECK(a.usage.prompt_tokens == 12);
}

TEST_CASE("reply_assembler: an error event in a stream gives its outcome") {
  // Anthropic may send an overloaded error after a 200 head.
  auto body =
      anthropic_stream_head() +
      anthropic_event("error", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  auto r = exchange(api_kind::anthropic, 200, sse_head(), body, 1);
  CHECK(r.result == outcome::overloaded);
  CHECK(r.text.empty());
  CHECK(contains(r.detail, "Overloaded"));
  check_limits_present(r);
}

TEST_CASE("reply_assembler: an event stream the parser cannot read is bad_response") {
  // An event beyond the parser's 1 MiB bound makes the stream untrustworthy. Its end marker is never read, so
  // this must not pass for a merely cut stream.
  std::string body =
      openai_chunk(R"({"content":"Hel"})") + "data: " + std::string((1u << 20) + 16, 'x') + "\n\ndata: [DONE]\n\n";
  for (auto failure : {http_failure::none, http_failure::closed_early}) {
    INFO(squad::net::to_string(failure));
    auto r = exchange(api_kind::openai, 200, sse_head(), body, 1u << 16, failure, "connection closed");
    CHECK(r.text.empty());
    check_limits_present(r);
    if (failure == http_failure::none) {
      CHECK(r.result == outcome::bad_response);
      CHECK(contains(r.detail, "unreadable event stream"));
    } else {
      CHECK(r.result == outcome::stream_cut);
    }
  }
}

// -- error statuses ---------------------------------------------------------------------------------------

TEST_CASE("reply_assembler: a 429 with retry-after is rate_limited with the wait") {
  // The wait reaches the limiter through signals.retry_after_ms.
  auto h = with_limits({{"Content-Type", "application/json"}, {"Retry-After", "3"}});
  auto body =
      R"({"error":{"message":"Rate limit reached for gpt-4o-mini","type":"tokens","code":"rate_limit_exceeded"}})";
  for (std::size_t chunk : {std::size_t{1}, std::size_t{4096}}) {
    auto r = exchange(api_kind::openai, 429, h, body, chunk);
    CHECK(r.result == outcome::rate_limited);
    CHECK(r.signals.retry_after_ms == 3000);
    CHECK(r.detail == "HTTP 429: Rate limit reached for gpt-4o-mini");
    CHECK(r.text.empty());
    check_limits_present(r);
  }
  // retry-after-ms, as OpenAI also sends, is preferred.
  auto ms = exchange(api_kind::openai, 429, {{"retry-after", "3"}, {"retry-after-ms", "2500"}}, "");
  CHECK(ms.signals.retry_after_ms == 2500);
}

TEST_CASE("reply_assembler: a 429 without retry-after waits for the exhausted limit's reset") {
  // classify derives the wait from x-ratelimit-*; the assembler must not put the raw headers back over it.
  header_list h = {{"content-type", "application/json"},
                   {"x-ratelimit-remaining-tokens", "0"},
                   {"x-ratelimit-reset-tokens", "7s"},
                   {"x-ratelimit-remaining-requests", "12"},
                   {"x-ratelimit-reset-requests", "500ms"}};
  auto r = exchange(api_kind::openai, 429, h, R"({"error":{"message":"slow down"}})");
  CHECK(r.result == outcome::rate_limited);
  CHECK(r.signals.retry_after_ms == 7000);
  CHECK(r.signals.remaining_tokens == 0);
  CHECK(r.signals.remaining_requests == 12);
  CHECK(r.signals.reset_requests_ms == 500);
  // Same when the connection dropped in the middle of the error body.
  auto cut = exchange(api_kind::openai, 429, h, R"({"error":{"mess)", 4096, http_failure::closed_early, "eof");
  CHECK(cut.result == outcome::rate_limited);
  CHECK(cut.signals.retry_after_ms == 7000);
}

TEST_CASE("reply_assembler: error statuses are classified") {
  // 503 overloaded, 529 overloaded, 401 auth_failed, 500 server_error, 400 bad_request.
  struct row {
    api_kind kind;
    int status;
    std::string body;
    outcome expected;
  };
  const std::vector<row> rows = {
      {api_kind::openai, 503, R"({"error":{"message":"The engine is currently overloaded","type":"server_error"}})",
       outcome::overloaded},
      {api_kind::anthropic, 529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
       outcome::overloaded},
      {api_kind::openai, 401, R"({"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}})",
       outcome::auth_failed},
      {api_kind::anthropic, 401,
       R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})",
       outcome::auth_failed},
      {api_kind::openai, 500, "", outcome::server_error},
      {api_kind::openai, 400, R"({"error":{"message":"bad temperature"}})", outcome::bad_request},
  };
  for (const auto& r : rows) {
    INFO(r.status << " " << r.body);
    auto reply = exchange(r.kind, r.status, json_head(), r.body, 2);
    CHECK(reply.result == r.expected);
    CHECK(contains(reply.detail, "HTTP " + std::to_string(r.status)));
    CHECK(reply.text.empty());
    check_limits_present(reply);
  }
}

TEST_CASE("reply_assembler: an error status with an event-stream type is not streamed") {
  // Only a 2xx is read as a stream; an error body is classified whatever its content type.
  reply_assembler a(api_kind::openai, secret);
  a.on_head(503, sse_head(), now);
  CHECK_FALSE(a.streaming());
  CHECK(a.on_data(R"({"error":{"message":"busy"}})").empty());
  auto r = a.finish(http_failure::none, "");
  CHECK(r.result == outcome::overloaded);
  CHECK(r.detail == "HTTP 503: busy");
}

// -- transport failures -----------------------------------------------------------------------------------

TEST_CASE("reply_assembler: every failure without a response head") {
  // The failure alone decides; its detail is passed on; no head, no signals.
  struct row {
    http_failure failure;
    outcome expected;
  };
  const std::vector<row> rows = {
      {http_failure::connect_failed, outcome::connect_failed}, {http_failure::tls_failed, outcome::connect_failed},
      {http_failure::timeout_connect, outcome::timeout},       {http_failure::timeout_first_byte, outcome::timeout},
      {http_failure::timeout_idle, outcome::timeout},          {http_failure::timeout_total, outcome::timeout},
      {http_failure::closed_early, outcome::stream_cut},       {http_failure::bad_http, outcome::bad_response},
      {http_failure::body_too_large, outcome::bad_response},   {http_failure::shut_down, outcome::unavailable},
  };
  REQUIRE(rows.size() == std::size(all_failures));
  for (auto kind : {api_kind::openai, api_kind::anthropic}) {
    for (const auto& row : rows) {
      INFO(squad::net::to_string(row.failure));
      reply_assembler a(kind, secret);
      std::string detail = std::string("upstream: ") + squad::net::to_string(row.failure);
      auto r = a.finish(row.failure, detail);
      CHECK(r.result == row.expected);
      CHECK(r.detail == detail);
      CHECK(r.text.empty());
      check_limits_absent(r);
    }
  }
}

TEST_CASE("reply_assembler: failures after a 2xx head of a whole reply") {
  // A JSON body that did not arrive whole is never parsed; the failure decides.
  struct row {
    http_failure failure;
    outcome expected;
  };
  const std::vector<row> rows = {
      {http_failure::timeout_idle, outcome::timeout},        {http_failure::timeout_total, outcome::timeout},
      {http_failure::closed_early, outcome::stream_cut},     {http_failure::bad_http, outcome::bad_response},
      {http_failure::body_too_large, outcome::bad_response}, {http_failure::shut_down, outcome::unavailable},
  };
  for (const auto& row : rows) {
    INFO(squad::net::to_string(row.failure));
    auto r = exchange(api_kind::openai, 200, json_head(), openai_reply.substr(0, 120), 7, row.failure, "cut");
    CHECK(r.result == row.expected);
    CHECK(r.detail == "cut");
    CHECK(r.text.empty());
    check_limits_present(r);
  }
}

TEST_CASE("reply_assembler: a stream cut before its end marker") {
  // closed_early mid-SSE is stream_cut, a timeout is a timeout; no text, but the usage streamed so far stays.
  for (std::size_t chunk : {std::size_t{1}, std::size_t{4096}}) {
    auto cut = exchange(api_kind::openai, 200, sse_head(), openai_stream_without_done(), chunk,
                        http_failure::closed_early, "connection closed after 1234 bytes");
    CHECK(cut.result == outcome::stream_cut);
    CHECK(cut.detail == "connection closed after 1234 bytes");
    CHECK(cut.text.empty());
    CHECK(cut.usage.prompt_tokens == 19);
    CHECK(cut.usage.completion_tokens == 9);
    check_limits_present(cut);
  }
  auto idle = exchange(api_kind::anthropic, 200, sse_head(), anthropic_stream_head(), 3, http_failure::timeout_idle,
                       "idle 30000ms");
  CHECK(idle.result == outcome::timeout);
  CHECK(idle.usage.prompt_tokens == 12);
  CHECK(idle.text.empty());
  check_limits_present(idle);
  // Half an event is nothing.
  auto half =
      exchange(api_kind::openai, 200, sse_head(), openai_stream().substr(0, 40), 1, http_failure::closed_early, "eof");
  CHECK(half.result == outcome::stream_cut);
}

TEST_CASE("reply_assembler: a connection that closes after the end marker is ok") {
  // [DONE] / message_stop arrived: the answer is whole, whatever happened to the connection next.
  for (auto failure : all_failures) {
    INFO(squad::net::to_string(failure));
    auto o = exchange(api_kind::openai, 200, sse_head(), openai_stream(), 11, failure, "after the end");
    CHECK(o.result == outcome::ok);
    CHECK(o.detail.empty());
    CHECK(o.text == text_expected);
    CHECK(o.usage.completion_tokens == 9);
    check_limits_present(o);
    auto a = exchange(api_kind::anthropic, 200, sse_head(), anthropic_stream(), 11, failure, "after the end");
    CHECK(a.result == outcome::ok);
    CHECK(a.text == text_expected);
  }
}

TEST_CASE("reply_assembler: closed_early with an error head is classified by its status") {
  // The status says enough even if its error body was cut.
  auto r = exchange(api_kind::openai, 503, json_head(), R"({"error":{"message":"overl)", 1, http_failure::closed_early,
                    "eof");
  CHECK(r.result == outcome::overloaded);
  CHECK(contains(r.detail, "HTTP 503"));
  check_limits_present(r);
  auto auth = exchange(api_kind::anthropic, 401, json_head(), "", 1, http_failure::closed_early, "eof");
  CHECK(auth.result == outcome::auth_failed);
  CHECK_FALSE(is_retryable(auth.result));
  auto limited =
      exchange(api_kind::openai, 429, with_limits({{"retry-after", "2"}}), "{", 1, http_failure::closed_early, "eof");
  CHECK(limited.result == outcome::rate_limited);
  CHECK(limited.signals.retry_after_ms == 2000);
}

TEST_CASE("reply_assembler: limit signals come with every reply that had a head") {
  // Success, error status, whole or streamed, and every failure after the head.
  for (int status : {200, 429, 503}) {
    for (const auto& head : {json_head(), sse_head()}) {
      for (auto failure : all_failures) {
        INFO(status << " " << squad::net::to_string(failure));
        reply_assembler a(api_kind::openai, secret);
        a.on_head(status, head, now);
        feed(a, a.streaming() ? openai_stream_without_done() : std::string("{\"err"), 9);
        check_limits_present(a.finish(failure, "x"));
      }
      reply_assembler a(api_kind::openai, secret);
      a.on_head(status, head, now);
      check_limits_present(a.finish(http_failure::none, ""));
    }
  }
}

// -- bounds and secrets -----------------------------------------------------------------------------------

TEST_CASE("reply_assembler: a body over max_body_bytes is bad_response") {
  // The assembler holds at most max_body_bytes of a whole body, whatever the status.
  const std::size_t max = 64;
  for (int status : {200, 429, 500}) {
    for (std::size_t chunk : {std::size_t{1}, std::size_t{50}, std::size_t{4096}}) {
      INFO(status << " chunk " << chunk);
      reply_assembler a(api_kind::openai, secret, max);
      a.on_head(status, json_head(), now);
      feed(a, openai_reply, chunk);
      auto r = a.finish(http_failure::none, "");
      CHECK(r.result == outcome::bad_response);
      CHECK(r.detail == "response body larger than 64 bytes");
      CHECK(r.text.empty());
      check_limits_present(r);
    }
  }
  // Exactly at the bound is fine.
  std::string body = R"({"error":{"message":"busy"}})";
  reply_assembler a(api_kind::openai, secret, body.size());
  a.on_head(503, json_head(), now);
  feed(a, body, 1);
  CHECK(a.finish(http_failure::none, "").result == outcome::overloaded);
}

TEST_CASE("reply_assembler: details never carry the key") {
  // Upstreams echo keys in error bodies, and transport details may quote them; both are redacted.
  auto openai_401 = json{{"error",
                          {{"message", "Incorrect API key provided: " + secret +
                                           ". You can find your API key at "
                                           "https://platform.openai.com."},
                           {"type", "invalid_request_error"},
                           {"code", "invalid_api_key"}}}}
                        .dump();
  auto r = exchange(api_kind::openai, 401, json_head(), openai_401, 3);
  CHECK(r.result == outcome::auth_failed);
  CHECK(contains(r.detail, "HTTP 401: Incorrect API key provided: [redacted]."));
  check_no_secret(r.detail);

  // A key-shaped word that is not our key (a proxy echoing another one).
  auto other = exchange(api_kind::openai, 403, json_head(),
                        R"({"error":{"message":"key sk-live-0123456789abcdefghij is disabled"}})");
  CHECK(other.result == outcome::auth_failed);
  CHECK(other.detail == "HTTP 403: key [redacted] is disabled");

  // A secret of no known shape, in an Anthropic error and in a transport detail.
  reply_assembler a(api_kind::anthropic, odd_secret);
  a.on_head(401, json_head(), now);
  a.on_data(json{{"type", "error"}, {"error", {{"type", "authentication_error"}, {"message", "bad key " + odd_secret}}}}
                .dump());
  auto ar = a.finish(http_failure::none, "");
  CHECK(ar.detail == "HTTP 401: bad key [redacted]");
  reply_assembler t(api_kind::anthropic, odd_secret);
  auto tr = t.finish(http_failure::connect_failed, "connect to api.example.com?key=" + odd_secret + " refused");
  CHECK(tr.detail == "connect to api.example.com?key=[redacted] refused");

  // An error embedded in a 200 reply, and one in a stream.
  auto embedded = exchange(api_kind::openai, 200, json_head(),
                           json{{"error", {{"message", "key " + secret + " revoked"}, {"code", 401}}}}.dump());
  CHECK(embedded.result == outcome::auth_failed);
  check_no_secret(embedded.detail);
  auto streamed = exchange(
      api_kind::openai, 200, sse_head(),
      openai_chunk(R"({"content":"Hi"})") + "data: " +
          json{{"error", {{"message", "key " + secret + " revoked"}, {"type", "server_error"}}}}.dump() + "\n\n",
      1);
  CHECK(streamed.result == outcome::server_error);
  CHECK(contains(streamed.detail, "[redacted]"));
  check_no_secret(streamed.detail);

  // Every failure's detail.
  for (auto failure : all_failures) {
    reply_assembler f(api_kind::openai, secret);
    f.on_head(200, sse_head(), now);
    f.on_data(openai_chunk(R"({"content":"Hi"})"));
    check_no_secret(f.finish(failure, "GET with authorization: Bearer " + secret).detail);
  }
}

TEST_CASE("redact_secrets: an echoed key is found upper-cased, percent-encoded and inside base64") {
  // An upstream echoing the key in another form: each is replaced; base64 at each of the three alignments of the
  // key within the encoded text, standard and URL-safe.
  const std::string key = "sk-test-Abc123/+=xyzSECRETvalue99";
  auto upper = key;
  for (auto& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(redact_secrets("invalid key " + upper, key) == "invalid key [redacted]");
  CHECK(redact_secrets("url=https://x/?k=sk-test-Abc123%2F%2B%3DxyzSECRETvalue99&z", key).find("SECRET") ==
        std::string::npos);
  // base64 of "Authorization: Bearer <key>" and of it with one and two more leading bytes, as an upstream would log.
  for (std::string lead : {"Authorization: Bearer ", "xAuthorization: Bearer ", "xxAuthorization: Bearer "}) {
    std::string plain = lead + key + " trailing";
    // encode with the standard alphabet (the test's own small encoder: three bytes to four characters)
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string enc;
    for (std::size_t i = 0; i < plain.size(); i += 3) {
      std::uint32_t v = static_cast<unsigned char>(plain[i]) << 16;
      if (i + 1 < plain.size())
        v |= static_cast<unsigned char>(plain[i + 1]) << 8;
      if (i + 2 < plain.size())
        v |= static_cast<unsigned char>(plain[i + 2]);
      for (int k = 0; k < 4; ++k)
        enc +=
            i * 4 / 3 + static_cast<std::size_t>(k) <= (plain.size() * 4 + 2) / 3 ? abc[(v >> (18 - 6 * k)) & 63] : '=';
    }
    auto out = redact_secrets("echo: " + enc, key);
    INFO(lead << " -> " << enc << " -> " << out);
    CHECK(out.find("[redacted]") != std::string::npos);
    // what is left of the key's encoding is at most the few characters that mix in its neighbours
    for (auto& form : squad::secret_forms(key))
      CHECK(out.find(form) == std::string::npos);
  }
}
