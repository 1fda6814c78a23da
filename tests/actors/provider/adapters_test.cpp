#include "actors/provider/adapters.hpp"
#include "actors/provider/chat_params.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using nlohmann::json;
using squad::call_request;
using squad::classify;
using squad::limit_signals;
using squad::outcome;
using squad::provider_error_message;
using squad::sse_event;
using squad::sse_parser;
using squad::upstream_reply;

namespace {

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

call_request conversation() {
  call_request r;
  r.trace_id = "t-1";
  r.messages = {{"system", "You are the product manager."},
                {"user", "Plan a todo app."},
                {"assistant", "Which platform?"},
                {"user", "Web."}};
  r.max_tokens = 512;
  r.temperature = 0.2;
  return r;
}

// -- realistic payloads, written after what the APIs send -----------------------------------------------

const std::string openai_text = "Hello! How can I help you today?";

const std::string openai_reply = R"({
  "id": "chatcmpl-A1b2C3d4E5f6G7h8I9j0",
  "object": "chat.completion",
  "created": 1723802400,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I help you today?",
        "refusal": null
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 9,
    "total_tokens": 28,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}
  },
  "system_fingerprint": "fp_48196bc67a"
})";

std::string openai_chunk(const std::string& delta, const std::string& finish = "null") {
  return R"(data: {"id":"chatcmpl-A1b2C3d4E5f6G7h8I9j0","object":"chat.completion.chunk","created":1723802400,)"
         R"("model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_48196bc67a","choices":[{"index":0,"delta":)" +
         delta + R"(,"logprobs":null,"finish_reason":)" + finish + R"(}],"usage":null})" + "\n\n";
}

// The same answer streamed with stream_options.include_usage, as OpenAI sends it.
std::string openai_stream_body() {
  std::string s = openai_chunk(R"({"role":"assistant","content":"","refusal":null})");
  for (const char* piece : {"Hello", "!", " How", " can", " I", " help", " you", " today", "?"})
    s += openai_chunk(json{{"content", piece}}.dump());
  s += openai_chunk("{}", "\"stop\"");
  s += R"(data: {"id":"chatcmpl-A1b2C3d4E5f6G7h8I9j0","object":"chat.completion.chunk","created":1723802400,)"
       R"("model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_48196bc67a","choices":[],)"
       R"("usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28}})"
       "\n\n";
  s += "data: [DONE]\n\n";
  return s;
}

const std::string anthropic_text = "Hello! How can I help you today?";

const std::string anthropic_reply = R"({
  "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
  "type": "message",
  "role": "assistant",
  "model": "claude-3-5-sonnet-20241022",
  "content": [
    {"type": "text", "text": "Hello! How can I help you today?"}
  ],
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {
    "input_tokens": 12,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 12
  }
})";

std::string anthropic_event(const std::string& name, const std::string& data) {
  return "event: " + name + "\ndata: " + data + "\n\n";
}

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

// The same answer streamed, as Anthropic sends it (ping included).
std::string anthropic_stream_body() {
  std::string s = anthropic_stream_head();
  s += anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":0})");
  s += anthropic_event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn",)"
                                        R"("stop_sequence":null},"usage":{"output_tokens":12}})");
  s += anthropic_event("message_stop", R"({"type":"message_stop"})");
  return s;
}

// Runs `stream` through an SSE parser and an accumulator, in chunks of `chunk` bytes. Returns the reply; the
// deltas handed out along the way go to `deltas`.
template <class Accumulator>
upstream_reply run_stream(const std::string& stream, std::size_t chunk, std::string* deltas = nullptr) {
  sse_parser parser;
  Accumulator acc;
  for (std::size_t pos = 0; pos < stream.size(); pos += chunk)
    for (const auto& ev : parser.feed(std::string_view(stream).substr(pos, chunk))) {
      auto d = acc.on_event(ev);
      if (deltas)
        *deltas += d;
    }
  REQUIRE_FALSE(parser.failed());
  return acc.finish();
}

sse_event data_event(std::string data, std::string name = "") {
  return {std::move(name), std::move(data), ""};
}

} // namespace

// -- classify ---------------------------------------------------------------------------------------------

TEST_CASE("classify: every status row") {
  // The table the issue asks for, with each vendor's real error bodies.
  struct row {
    int status;
    std::string body;
    outcome expected;
    std::string detail_part; // a piece the detail must hold
  };
  const std::vector<row> rows = {
      {429,
       R"({"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min (TPM): Limit 200000, Used 199920, Requested 512. Please try again in 129ms.","type":"tokens","param":null,"code":"rate_limit_exceeded"}})",
       outcome::rate_limited, "HTTP 429: Rate limit reached for gpt-4o-mini"},
      {429,
       R"({"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your organization's rate limit of 50 requests per minute."}})",
       outcome::rate_limited, "HTTP 429: This request would exceed"},
      {503,
       R"({"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}})",
       outcome::overloaded, "HTTP 503: The engine is currently overloaded"},
      {529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", outcome::overloaded,
       "HTTP 529: Overloaded"},
      {500,
       R"({"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}})",
       outcome::server_error, "HTTP 500: The server had an error"},
      {500, R"({"type":"error","error":{"type":"api_error","message":"Internal server error"}})", outcome::server_error,
       "HTTP 500: Internal server error"},
      {502, "<html><head><title>502 Bad Gateway</title></head><body><center>cloudflare</center></body></html>",
       outcome::server_error, "HTTP 502"},
      {504, "", outcome::server_error, "HTTP 504"},
      {599, "{}", outcome::server_error, "HTTP 599"},
      {401,
       R"({"error":{"message":"Incorrect API key provided: sk-proj-****abcd. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})",
       outcome::auth_failed, "HTTP 401: Incorrect API key provided"},
      {401, R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})",
       outcome::auth_failed, "HTTP 401: invalid x-api-key"},
      {403,
       R"({"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}})",
       outcome::auth_failed, "HTTP 403: Your API key does not have permission"},
      {400,
       R"({"error":{"message":"Invalid value for 'temperature': must be between 0 and 2.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}})",
       outcome::bad_request, "HTTP 400: Invalid value for 'temperature'"},
      {400,
       R"({"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})",
       outcome::context_too_long, "HTTP 400: This model's maximum context length is 128000 tokens"},
      {400,
       R"({"error":{"message":"Please reduce the length of the messages or completion.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})",
       outcome::context_too_long, "HTTP 400: Please reduce the length"},
      {400,
       R"({"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400})",
       outcome::context_too_long, "HTTP 400: This model's maximum context length is 4096"},
      {400,
       R"({"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}})",
       outcome::context_too_long, "HTTP 400: prompt is too long"},
      {400, R"({"error":{"message":"Request has Too Many Tokens for this model","type":"invalid_request_error"}})",
       outcome::context_too_long, "Too Many Tokens"},
      {400,
       R"([{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}])",
       outcome::context_too_long, "HTTP 400: The input token count"},
      {400, R"({"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}})",
       outcome::bad_request, "HTTP 400: messages: roles must alternate"},
      {404,
       R"({"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}})",
       outcome::bad_request, "HTTP 404 (unknown model or endpoint): The model `gpt-9` does not exist"},
      {404, R"({"error":"model \"llama9\" not found, try pulling it first"})", outcome::bad_request,
       "HTTP 404 (unknown model or endpoint): model \"llama9\" not found"},
      {413,
       R"({"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}})",
       outcome::context_too_long, "HTTP 413: Request exceeds"},
      {408, "", outcome::timeout, "HTTP 408"},
      {422, R"({"detail":[{"loc":["body","messages"],"msg":"field required"}]})", outcome::bad_request, "HTTP 422"},
      {402, R"({"error":{"message":"Insufficient credits","code":402}})", outcome::bad_request,
       "HTTP 402: Insufficient credits"},
      {200, openai_reply, outcome::ok, ""},
      {302, "", outcome::bad_response, "HTTP 302 (unexpected status)"},
      {0, "", outcome::bad_response, "HTTP 0"},
  };
  for (const auto& r : rows) {
    INFO(r.status << " " << r.body);
    auto reply = classify(r.status, r.body, {});
    CHECK(reply.result == r.expected);
    CHECK(contains(reply.detail, r.detail_part));
    CHECK(reply.text.empty());
  }
}

TEST_CASE("classify: success has no detail") {
  // 2xx is ok and says nothing else.
  for (int status : {200, 201, 204}) {
    auto r = classify(status, "", {});
    CHECK(r.result == outcome::ok);
    CHECK(r.detail.empty());
  }
}

TEST_CASE("classify: a body that is not JSON is never quoted") {
  // Only the status: a proxy's HTML page is neither the provider's message nor ours to pass on.
  CHECK(classify(502, "<html><body>Bad Gateway from 10.0.0.7</body></html>", {}).detail == "HTTP 502");
  CHECK(classify(400, "not json at all", {}).detail == "HTTP 400");
}

TEST_CASE("classify: only the provider's message goes into the detail") {
  // Codes, params and the rest of the body stay out; so do the limit signals.
  limit_signals s;
  s.retry_after_ms = 4321;
  auto r = classify(
      400, R"({"error":{"message":"Bad thing.","type":"invalid_request_error","param":"secret_param","code":"x"}})", s);
  CHECK(r.detail == "HTTP 400: Bad thing.");
}

TEST_CASE("classify: the provider's message is cut to 300 bytes on a UTF-8 boundary") {
  // Long messages are shortened with "..." and never split inside a character.
  std::string long_message;
  for (int i = 0; i < 200; ++i)
    long_message += "\xC3\xA9"; // é, two bytes
  auto body = json{{"error", {{"message", long_message}}}}.dump();
  auto message = provider_error_message(body);
  CHECK(message.size() <= 300);
  CHECK(message.size() >= 290);
  CHECK(message.substr(message.size() - 3) == "...");
  CHECK(json(message).dump().size() > 0); // valid UTF-8, or dump would throw
  auto r = classify(500, body, {});
  CHECK(r.detail == "HTTP 500: " + message);
}

TEST_CASE("classify: the message is put on one line") {
  // Newlines and tabs in a provider's message become spaces.
  CHECK(provider_error_message(R"({"error":{"message":"line one\nline two\tend"}})") == "line one line two end");
  CHECK(provider_error_message("garbage").empty());
  CHECK(provider_error_message(R"({"error":{"message":42}})").empty());
}

TEST_CASE("classify: the limit signals travel with the reply") {
  // Every reply carries what the headers said, success or not.
  limit_signals s;
  s.retry_after_ms = 2000;
  s.remaining_requests = 5;
  s.remaining_tokens = 100;
  s.reset_requests_ms = 3000;
  s.reset_tokens_ms = 4000;
  for (int status : {200, 400, 429, 500, 529}) {
    auto r = classify(status, "", s);
    CHECK(r.signals.retry_after_ms == 2000);
    CHECK(r.signals.remaining_requests == 5);
    CHECK(r.signals.reset_tokens_ms == 4000);
  }
}

TEST_CASE("classify: a 429 without retry-after waits for the exhausted limit's reset") {
  // OpenAI-style 429s often carry only x-ratelimit-*; the reset of the limit at 0 is the wait.
  limit_signals s;
  s.remaining_requests = 12;
  s.remaining_tokens = 0;
  s.reset_requests_ms = 500;
  s.reset_tokens_ms = 7000;
  CHECK(classify(429, "", s).signals.retry_after_ms == 7000);
  s.remaining_requests = 0;
  s.reset_requests_ms = 9000;
  CHECK(classify(429, "", s).signals.retry_after_ms == 9000);
  // Nothing exhausted: nothing to go on, so still not said.
  s.remaining_requests = 3;
  s.remaining_tokens = 3;
  CHECK(classify(429, "", s).signals.retry_after_ms == -1);
  // A given retry-after is never overridden.
  s.remaining_tokens = 0;
  s.retry_after_ms = 100;
  CHECK(classify(429, "", s).signals.retry_after_ms == 100);
}

TEST_CASE("classify: a 429 for insufficient_quota is auth_failed, not a rate limit") {
  // Out of credit: waiting does not help, so it must not be retried like a rate limit.
  limit_signals s;
  s.retry_after_ms = 20000;
  const std::vector<std::string> bodies = {
      // OpenAI's body, code and type both set.
      R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})",
      // code null, type set.
      R"({"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":null}})",
      // Gemini-style array wrapping.
      R"([{"error":{"message":"You exceeded your current quota.","code":"insufficient_quota"}}])",
  };
  for (const auto& body : bodies) {
    INFO(body);
    auto r = classify(429, body, s);
    CHECK(r.result == outcome::auth_failed);
    CHECK_FALSE(squad::is_retryable(r.result));
    CHECK(contains(r.detail, "HTTP 429"));
    CHECK(contains(r.detail, "insufficient_quota"));
    CHECK(contains(r.detail, "You exceeded your current quota"));
    CHECK(r.signals.retry_after_ms == 20000); // what the headers said still travels
  }
}

TEST_CASE("classify: an ordinary 429 stays rate_limited") {
  // Rate limits of every shape, and other codes, are retryable after a wait.
  const std::vector<std::string> bodies = {
      "",
      "not json",
      R"({"error":{"message":"Rate limit reached for gpt-4o-mini","type":"tokens","param":null,"code":"rate_limit_exceeded"}})",
      R"({"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your rate limit."}})",
      R"({"error":{"message":"Too many requests","code":429}})",
      R"({"error":{"message":"mentions insufficient_quota only in the text","type":"requests"}})",
      R"({"error":{"message":"x","code":"insufficient_quota_soon"}})",
  };
  for (const auto& body : bodies) {
    INFO(body);
    auto r = classify(429, body, {});
    CHECK(r.result == outcome::rate_limited);
    CHECK(squad::is_retryable(r.result));
    CHECK_FALSE(contains(r.detail, "(insufficient_quota"));
  }
  // insufficient_quota under another status is classified by that status.
  CHECK(classify(400, R"({"error":{"message":"m","code":"insufficient_quota"}})", {}).result == outcome::bad_request);
}

// -- OpenAI -----------------------------------------------------------------------------------------------

TEST_CASE("openai: request body, not streaming") {
  // model, messages as given, max_tokens, temperature, stream false, no stream_options.
  auto body = json::parse(squad::openai::build_request_body(conversation(), "gpt-4o-mini", false));
  CHECK(body["model"] == "gpt-4o-mini");
  REQUIRE(body["messages"].size() == 4);
  CHECK(body["messages"][0] == json{{"role", "system"}, {"content", "You are the product manager."}});
  CHECK(body["messages"][3] == json{{"role", "user"}, {"content", "Web."}});
  CHECK(body["max_tokens"] == 512);
  CHECK(body["temperature"] == 0.2);
  CHECK(body["stream"] == false);
  CHECK_FALSE(body.contains("stream_options"));
}

TEST_CASE("openai: request body, streaming asks for usage") {
  // stream_options.include_usage makes the last chunk carry token counts.
  auto body = json::parse(squad::openai::build_request_body(conversation(), "llama-3.1-8b-instant", true));
  CHECK(body["stream"] == true);
  CHECK(body["stream_options"] == json{{"include_usage", true}});
}

TEST_CASE("openai: request body edge cases") {
  // max_tokens <= 0 is left to the server; invalid UTF-8 in a prompt does not throw.
  auto req = conversation();
  req.max_tokens = 0;
  req.messages.push_back({"user", "bad \xFF byte"});
  std::string text;
  REQUIRE_NOTHROW(text = squad::openai::build_request_body(req, "m", false));
  auto body = json::parse(text);
  CHECK_FALSE(body.contains("max_tokens"));
  CHECK(body["messages"][4]["content"] == "bad \xEF\xBF\xBD byte");
}

TEST_CASE("openai: request headers") {
  // Bearer auth when there is a key; none for keyless local servers.
  auto h = squad::openai::request_headers("sk-test");
  CHECK(h == squad::header_list{{"authorization", "Bearer sk-test"}, {"content-type", "application/json"}});
  CHECK(squad::openai::request_headers("") == squad::header_list{{"content-type", "application/json"}});
}

TEST_CASE("openai: a whole reply") {
  // Text, finish reason and usage come out of a real-shaped reply.
  auto r = squad::openai::parse_response(openai_reply);
  CHECK(r.result == outcome::ok);
  CHECK(r.detail.empty());
  CHECK(r.text == openai_text);
  CHECK(r.finish_reason == "stop");
  CHECK(r.usage.prompt_tokens == 19);
  CHECK(r.usage.completion_tokens == 9);
}

TEST_CASE("openai: a reply cut by max_tokens, and one with null content") {
  // finish_reason passes through; null content (tool calls) is empty text, not an error.
  auto r = squad::openai::parse_response(
      R"({"choices":[{"index":0,"message":{"role":"assistant","content":"Once upon"},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})");
  CHECK(r.result == outcome::ok);
  CHECK(r.text == "Once upon");
  CHECK(r.finish_reason == "length");
  auto t = squad::openai::parse_response(
      R"({"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]})");
  CHECK(t.result == outcome::ok);
  CHECK(t.text.empty());
  CHECK(t.finish_reason == "tool_calls");
  CHECK(t.usage.prompt_tokens == 0);
}

TEST_CASE("openai: malformed JSON is bad_response") {
  // A broken body says where it broke, never quotes it.
  auto r = squad::openai::parse_response(R"({"choices":[{"message":{"content":"hi")");
  CHECK(r.result == outcome::bad_response);
  CHECK(contains(r.detail, "malformed JSON in reply at byte"));
  CHECK(r.text.empty());
}

TEST_CASE("openai: wrong shapes are bad_response") {
  // Each wrong type or missing piece is named in the detail.
  struct row {
    std::string body;
    std::string detail_part;
  };
  for (const auto& r : std::vector<row>{
           {"", "malformed JSON"},
           {"null", "no choices"},
           {"42", "no choices"},
           {"[]", "no choices"},
           {"\"text\"", "no choices"},
           {R"({"choices":[]})", "no choices"},
           {R"({"choices":{}})", "no choices"},
           {R"({"choices":[42]})", "choices[0].message"},
           {R"({"choices":[{"message":"hi"}]})", "choices[0].message"},
           {R"({"choices":[{"message":{"content":42}}]})", "content is not a string"},
           {R"({"choices":[{"message":{"content":["a"]}}]})", "content is not a string"},
           {R"({"choices":[{"message":{"content":"a"},"finish_reason":1}]})", "finish_reason is not a string"},
           {R"({"choices":[{"message":{"content":"a"}}],"usage":"lots"})", "usage"},
           {R"({"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":"3"}})", "usage"},
           {R"({"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":1e300}})", "usage"},
       }) {
    INFO(r.body);
    auto reply = squad::openai::parse_response(r.body);
    CHECK(reply.result == outcome::bad_response);
    CHECK(contains(reply.detail, r.detail_part));
  }
}

TEST_CASE("openai: an error object in a 200 reply is classified") {
  // OpenRouter answers some upstream failures with 200 and an error object whose code is a status.
  auto r = squad::openai::parse_response(
      R"({"error":{"message":"Provider returned error","code":502,"metadata":{"provider_name":"Fireworks"}}})");
  CHECK(r.result == outcome::server_error);
  CHECK(r.detail == "error in reply (502): Provider returned error");
  auto l = squad::openai::parse_response(R"({"error":{"message":"Rate limited upstream","code":429}})");
  CHECK(l.result == outcome::rate_limited);
}

TEST_CASE("openai: streamed reply reassembles to the non-streamed one") {
  // Whatever the chunking, the stream gives the same text, finish reason and usage as the whole reply.
  auto whole = squad::openai::parse_response(openai_reply);
  auto stream = openai_stream_body();
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{64}, stream.size()}) {
    INFO("chunk " << chunk);
    std::string deltas;
    auto r = run_stream<squad::openai::stream_accumulator>(stream, chunk, &deltas);
    CHECK(r.result == outcome::ok);
    CHECK(r.detail.empty());
    CHECK(r.text == whole.text);
    CHECK(deltas == whole.text);
    CHECK(r.finish_reason == whole.finish_reason);
    CHECK(r.usage.prompt_tokens == whole.usage.prompt_tokens);
    CHECK(r.usage.completion_tokens == whole.usage.completion_tokens);
  }
}

TEST_CASE("openai: each delta is handed out as it arrives") {
  // on_event returns the new text of each chunk, and nothing for role, finish, usage and [DONE].
  squad::openai::stream_accumulator acc;
  sse_parser parser;
  std::vector<std::string> deltas;
  for (const auto& ev : parser.feed(openai_stream_body()))
    deltas.push_back(acc.on_event(ev));
  CHECK(deltas ==
        std::vector<std::string>{"", "Hello", "!", " How", " can", " I", " help", " you", " today", "?", "", "", ""});
  CHECK(acc.done());
}

TEST_CASE("openai: a stream without [DONE] is stream_cut") {
  // Text so far is dropped (only ok carries text), the usage seen is kept, the detail says what was missing.
  auto stream = openai_stream_body();
  auto cut = stream.substr(0, stream.find("data: [DONE]"));
  auto r = run_stream<squad::openai::stream_accumulator>(cut, 5);
  CHECK(r.result == outcome::stream_cut);
  CHECK(r.detail == "stream ended without [DONE] after 32 bytes of text");
  CHECK(r.text.empty());
  CHECK(r.usage.completion_tokens == 9);
  // Cut mid-answer: no usage either.
  auto early = run_stream<squad::openai::stream_accumulator>(stream.substr(0, 900), 5);
  CHECK(early.result == outcome::stream_cut);
  CHECK(early.usage.completion_tokens == 0);
  // No events at all.
  CHECK(squad::openai::stream_accumulator{}.finish().result == outcome::stream_cut);
}

TEST_CASE("openai: a malformed chunk ends the stream as bad_response") {
  // The stream cannot be trusted past a chunk that is not JSON.
  squad::openai::stream_accumulator acc;
  CHECK(acc.on_event(data_event(R"({"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]})")) == "Hi");
  CHECK(acc.on_event(data_event(R"({"choices":[{"index":0,"delta":{"content":"Hi)")).empty());
  CHECK(acc.done());
  CHECK(acc.on_event(data_event("[DONE]")).empty());
  auto r = acc.finish();
  CHECK(r.result == outcome::bad_response);
  CHECK(contains(r.detail, "malformed JSON in stream chunk"));
  CHECK(r.text.empty());
}

TEST_CASE("openai: wrong chunk shapes are bad_response") {
  // Type errors inside chunks are caught, not thrown.
  for (const char* data : {R"({"choices":{}})", R"({"choices":[{"delta":{"content":7}}]})",
                           R"({"choices":[{"delta":"x"}]})", R"({"choices":[{"delta":{},"finish_reason":false}]})",
                           R"({"choices":[],"usage":[1,2]})", R"({"x_groq":{"usage":"x"}})"}) {
    INFO(data);
    squad::openai::stream_accumulator acc;
    acc.on_event(data_event(data));
    CHECK(acc.finish().result == outcome::bad_response);
  }
}

TEST_CASE("openai: an error chunk mid-stream ends it with its outcome") {
  // OpenRouter and OpenAI send {"error":{...}} as a data line when the upstream fails mid-answer.
  squad::openai::stream_accumulator acc;
  acc.on_event(data_event(R"({"choices":[{"index":0,"delta":{"content":"Par"},"finish_reason":null}]})"));
  acc.on_event(data_event(
      R"({"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}})"));
  auto r = acc.finish();
  CHECK(r.result == outcome::server_error);
  CHECK(r.detail == "error in stream (server_error): The server had an error while processing your request.");
  CHECK(r.text.empty());
}

TEST_CASE("openai: Groq's usage in x_groq is read") {
  // Groq reports the usage of a stream in x_groq.usage on its last chunk.
  squad::openai::stream_accumulator acc;
  acc.on_event(data_event(
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]})"));
  acc.on_event(data_event(
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":"req_01j","usage":{"queue_time":0.01,"prompt_tokens":40,"prompt_time":0.002,"completion_tokens":2,"completion_time":0.001,"total_tokens":42,"total_time":0.003}}})"));
  acc.on_event(data_event("[DONE]"));
  auto r = acc.finish();
  CHECK(r.result == outcome::ok);
  CHECK(r.text == "Hi");
  CHECK(r.usage.prompt_tokens == 40);
  CHECK(r.usage.completion_tokens == 2);
}

TEST_CASE("openai: events after [DONE] are ignored") {
  // The stream is over at [DONE].
  squad::openai::stream_accumulator acc;
  acc.on_event(data_event("[DONE]"));
  CHECK(acc.on_event(data_event(R"({"choices":[{"index":0,"delta":{"content":"late"}}]})")).empty());
  CHECK(acc.finish().result == outcome::ok);
  CHECK(acc.finish().text.empty());
}

// -- Anthropic --------------------------------------------------------------------------------------------

TEST_CASE("anthropic: request body") {
  // System apart, max_tokens present, user/assistant turns, stream flag.
  auto body = json::parse(squad::anthropic::build_request_body(conversation(), "claude-3-5-haiku-20241022", true));
  CHECK(body["model"] == "claude-3-5-haiku-20241022");
  CHECK(body["max_tokens"] == 512);
  CHECK(body["system"] == "You are the product manager.");
  CHECK(body["messages"] == json::parse(R"([{"role":"user","content":"Plan a todo app."},
                                            {"role":"assistant","content":"Which platform?"},
                                            {"role":"user","content":"Web."}])"));
  CHECK(body["temperature"] == 0.2);
  CHECK(body["stream"] == true);
  CHECK_FALSE(body.contains("stream_options"));
}

TEST_CASE("anthropic: system prompts are pulled out and same-role turns merged") {
  // Every system message, wherever it is, joins the top-level system; neighbours of one role become one turn.
  call_request req;
  req.messages = {{"system", "Be brief."},
                  {"user", "Task: plan."},
                  {"user", "### Input from pm\nnotes"},
                  {"system", "Answer in English."},
                  {"assistant", "Draft."},
                  {"assistant", "More."},
                  {"user", "result"},
                  {"user", "Go on."}};
  req.max_tokens = 0;
  req.temperature = 0.7;
  auto body = json::parse(squad::anthropic::build_request_body(req, "claude-sonnet-4-20250514", false));
  CHECK(body["system"] == "Be brief.\n\nAnswer in English.");
  CHECK(body["messages"] == json::parse(R"([{"role":"user","content":"Task: plan.\n\n### Input from pm\nnotes"},
                                            {"role":"assistant","content":"Draft.\n\nMore."},
                                            {"role":"user","content":"result\n\nGo on."}])"));
  CHECK(body["max_tokens"] == squad::anthropic_default_max_tokens); // required by Anthropic: the documented default
  CHECK(body["temperature"] == 0.7);
  CHECK(body["stream"] == false);
}

TEST_CASE("anthropic: no system message, no system field") {
  // The field is left out rather than sent empty.
  call_request req;
  req.messages = {{"user", "Hi"}};
  auto body = json::parse(squad::anthropic::build_request_body(req, "m", false));
  CHECK_FALSE(body.contains("system"));
  CHECK(body["max_tokens"] == squad::anthropic_default_max_tokens);
}

TEST_CASE("anthropic: request headers") {
  // The key, the pinned API version and the content type.
  CHECK(squad::anthropic::request_headers("sk-ant-test") == squad::header_list{{"x-api-key", "sk-ant-test"},
                                                                               {"anthropic-version", "2023-06-01"},
                                                                               {"content-type", "application/json"}});
}

TEST_CASE("anthropic: a whole reply") {
  // Text blocks, stop reason and usage of a real-shaped reply.
  auto r = squad::anthropic::parse_response(anthropic_reply);
  CHECK(r.result == outcome::ok);
  CHECK(r.text == anthropic_text);
  CHECK(r.finish_reason == "stop");
  CHECK(r.usage.prompt_tokens == 12);
  CHECK(r.usage.completion_tokens == 12);
}

TEST_CASE("anthropic: text blocks are joined and other blocks skipped") {
  // tool_use and thinking blocks carry no answer text; cached input counts as prompt tokens.
  auto r = squad::anthropic::parse_response(R"({"id":"msg_1","type":"message","role":"assistant","model":"m",
    "content":[{"type":"thinking","thinking":"hmm","signature":"x"},{"type":"text","text":"Part one. "},
               {"type":"tool_use","id":"toolu_1","name":"get","input":{}},{"type":"text","text":"Part two."}],
    "stop_reason":"tool_use","stop_sequence":null,
    "usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":7}})");
  CHECK(r.result == outcome::ok);
  CHECK(r.text == "Part one. Part two.");
  CHECK(r.finish_reason == "tool_calls");
  CHECK(r.usage.prompt_tokens == 1110);
  CHECK(r.usage.completion_tokens == 7);
}

TEST_CASE("anthropic: stop reasons map to OpenAI finish reasons") {
  // end_turn and stop_sequence are stop, max_tokens is length; unknown ones pass through.
  struct row {
    const char* stop;
    const char* finish;
  };
  for (auto r : std::vector<row>{{"\"end_turn\"", "stop"},
                                 {"\"stop_sequence\"", "stop"},
                                 {"\"max_tokens\"", "length"},
                                 {"\"tool_use\"", "tool_calls"},
                                 {"\"refusal\"", "refusal"},
                                 {"null", ""}}) {
    INFO(r.stop);
    auto reply = squad::anthropic::parse_response(
        std::string(R"({"content":[{"type":"text","text":"x"}],"stop_reason":)") + r.stop + "}");
    CHECK(reply.result == outcome::ok);
    CHECK(reply.finish_reason == r.finish);
  }
}

TEST_CASE("anthropic: malformed and wrong shapes are bad_response") {
  // Never a throw; the detail names the problem.
  struct row {
    std::string body;
    std::string detail_part;
  };
  for (const auto& r : std::vector<row>{
           {R"({"content":[{"type":"text","text":"hi"})", "malformed JSON in reply"},
           {"", "malformed JSON"},
           {"[]", "content"},
           {"{}", "content"},
           {R"({"content":"hi"})", "content"},
           {R"({"content":[1]})", "block"},
           {R"({"content":[{"text":"no type"}]})", "block"},
           {R"({"content":[{"type":"text","text":5}]})", "text is not a string"},
           {R"({"content":[],"stop_reason":3})", "stop_reason"},
           {R"({"content":[],"usage":{"input_tokens":"12"}})", "usage"},
           {R"({"content":[],"usage":[]})", "usage"},
       }) {
    INFO(r.body);
    auto reply = squad::anthropic::parse_response(r.body);
    CHECK(reply.result == outcome::bad_response);
    CHECK(contains(reply.detail, r.detail_part));
  }
}

TEST_CASE("anthropic: an error body in a reply is classified by its type") {
  // {"type":"error"} where a message was expected.
  auto r = squad::anthropic::parse_response(
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  CHECK(r.result == outcome::overloaded);
  CHECK(r.detail == "error in reply (overloaded_error): Overloaded");
}

TEST_CASE("anthropic: streamed reply reassembles to the non-streamed one") {
  // Same text, finish reason and usage; input tokens from message_start, output from message_delta.
  auto whole = squad::anthropic::parse_response(anthropic_reply);
  auto stream = anthropic_stream_body();
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{100}, stream.size()}) {
    INFO("chunk " << chunk);
    std::string deltas;
    auto r = run_stream<squad::anthropic::stream_accumulator>(stream, chunk, &deltas);
    CHECK(r.result == outcome::ok);
    CHECK(r.text == whole.text);
    CHECK(deltas == whole.text);
    CHECK(r.finish_reason == whole.finish_reason);
    CHECK(r.usage.prompt_tokens == whole.usage.prompt_tokens);
    CHECK(r.usage.completion_tokens == whole.usage.completion_tokens);
  }
}

TEST_CASE("anthropic: usage is known before the end") {
  // Input tokens arrive with message_start; output tokens with message_delta (cumulative).
  squad::anthropic::stream_accumulator acc;
  sse_parser parser;
  for (const auto& ev : parser.feed(anthropic_stream_head()))
    acc.on_event(ev);
  CHECK_FALSE(acc.done());
  auto partial = acc.finish();
  CHECK(partial.result == outcome::stream_cut);
  CHECK(partial.usage.prompt_tokens == 12);
  CHECK(partial.usage.completion_tokens == 1);
}

TEST_CASE("anthropic: a stream without message_stop is stream_cut") {
  // Everything but the last event: still a cut stream.
  auto stream = anthropic_stream_body();
  auto cut = stream.substr(0, stream.find("event: message_stop"));
  auto r = run_stream<squad::anthropic::stream_accumulator>(cut, 4);
  CHECK(r.result == outcome::stream_cut);
  CHECK(r.detail == "stream ended without message_stop after 32 bytes of text");
  CHECK(r.text.empty());
  CHECK(r.finish_reason == "stop");
  CHECK(r.usage.completion_tokens == 12);
}

TEST_CASE("anthropic: error events end the stream by their type") {
  // overloaded_error is overloaded, rate_limit_error is rate_limited, anything else is server_error.
  struct row {
    const char* type;
    outcome expected;
  };
  for (auto r : std::vector<row>{{"overloaded_error", outcome::overloaded},
                                 {"rate_limit_error", outcome::rate_limited},
                                 {"api_error", outcome::server_error},
                                 {"invalid_request_error", outcome::server_error},
                                 {"something_new", outcome::server_error}}) {
    INFO(r.type);
    sse_parser parser;
    squad::anthropic::stream_accumulator acc;
    auto stream = anthropic_stream_head() +
                  anthropic_event("error", std::string(R"({"type": "error", "error": {"type": ")") + r.type +
                                               R"(", "message": "Overloaded"}})") +
                  anthropic_event("message_stop", R"({"type":"message_stop"})");
    for (const auto& ev : parser.feed(stream))
      acc.on_event(ev);
    auto reply = acc.finish();
    CHECK(reply.result == r.expected);
    CHECK(reply.detail == std::string("error event (") + r.type + "): Overloaded");
    CHECK(reply.text.empty());
    CHECK(reply.usage.prompt_tokens == 12);
  }
}

TEST_CASE("anthropic: unknown events and non-text deltas are skipped") {
  // New event types and thinking deltas must not break the stream; tool input is not text.
  squad::anthropic::stream_accumulator acc;
  CHECK(acc.on_event(data_event(R"({"type":"brand_new_event","stuff":[1,2]})", "brand_new_event")).empty());
  CHECK(acc.on_event(data_event(R"({"type":"content_block_start","index":1,)"
                                R"("content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}})"))
            .empty());
  CHECK(
      acc
          .on_event(data_event(
              R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}})"))
          .empty());
  CHECK(acc
            .on_event(data_event(
                R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}})"))
            .empty());
  CHECK(acc.on_event(data_event(
            R"({"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"ok"}})")) == "ok");
  CHECK(acc.on_event(data_event(R"({"type":"message_stop"})")).empty());
  auto r = acc.finish();
  CHECK(r.result == outcome::ok);
  CHECK(r.text == "ok");
}

TEST_CASE("anthropic: the event name stands in for a missing type") {
  // A data object without "type" is read by its SSE event name.
  squad::anthropic::stream_accumulator acc;
  acc.on_event(data_event(R"({"index":0,"delta":{"type":"text_delta","text":"a"}})", "content_block_delta"));
  acc.on_event(data_event("{}", "message_stop"));
  CHECK(acc.finish().result == outcome::ok);
  CHECK(acc.finish().text == "a");
}

TEST_CASE("anthropic: malformed and wrong-shaped events are bad_response") {
  // Caught, with the problem named.
  for (const char* data : {"{not json", "[]", "42", R"({"type":5})", R"({"type":"content_block_delta"})",
                           R"({"type":"content_block_delta","delta":{"type":"text_delta","text":1}})",
                           R"({"type":"message_delta","delta":{"stop_reason":1}})",
                           R"({"type":"message_delta","delta":{},"usage":{"output_tokens":"x"}})",
                           R"({"type":"message_start","message":{"usage":"x"}})"}) {
    INFO(data);
    squad::anthropic::stream_accumulator acc;
    acc.on_event(data_event(data));
    CHECK(acc.done());
    CHECK(acc.finish().result == outcome::bad_response);
  }
}

// -- robustness ---------------------------------------------------------------------------------------------

TEST_CASE("adapters: no input makes a parser throw") {
  // Every prefix of every real payload, and random bytes, go through each parser without an exception.
  std::vector<std::string> payloads = {openai_reply, anthropic_reply, openai_stream_body(), anthropic_stream_body()};
  static constexpr char alphabet[] = "{}[]\":,0123456789.-eE truefalsnul\\u\xC3\xA9\xFF\n";
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string noise(rng() % 64, '\0');
    for (auto& c : noise)
      c = alphabet[rng() % (sizeof(alphabet) - 1)];
    payloads.push_back(noise);
  }
  for (const auto& p : payloads) {
    for (std::size_t n = 0; n <= p.size(); ++n) {
      auto prefix = std::string_view(p).substr(0, n);
      REQUIRE_NOTHROW(squad::openai::parse_response(prefix));
      REQUIRE_NOTHROW(squad::anthropic::parse_response(prefix));
      REQUIRE_NOTHROW(classify(400, prefix, {}));
      squad::openai::stream_accumulator oa;
      squad::anthropic::stream_accumulator an;
      REQUIRE_NOTHROW(oa.on_event(data_event(std::string(prefix))));
      REQUIRE_NOTHROW(an.on_event(data_event(std::string(prefix))));
    }
  }
}

TEST_CASE("adapters: a truncated whole reply is never ok") {
  // Every strict prefix of a reply is bad_response.
  for (std::size_t n = 0; n < openai_reply.size(); ++n)
    REQUIRE(squad::openai::parse_response(std::string_view(openai_reply).substr(0, n)).result == outcome::bad_response);
  for (std::size_t n = 0; n < anthropic_reply.size(); ++n)
    REQUIRE(squad::anthropic::parse_response(std::string_view(anthropic_reply).substr(0, n)).result ==
            outcome::bad_response);
}
