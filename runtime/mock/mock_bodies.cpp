// The mock's wire formats: answer bodies in each vendor's shape (OpenAI and Anthropic JSON and SSE, embeddings),
// deterministic text, and the small formats of its HTTP answers (reset times, heads, chunks). Pure.
#include "runtime/mock/mock_tools.hpp"
#include "runtime/mock/mock_upstream.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace squad::mock {

using json = nlohmann::json;

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

const char* reason_phrase(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 503:
    return "Service Unavailable";
  case 529:
    return "Overloaded";
  }
  return "Unknown";
}

std::string sse(const json& j) {
  return "data: " + j.dump() + "\n\n";
}
std::string sse(const char* event, const json& j) {
  return std::string("event: ") + event + "\ndata: " + j.dump() + "\n\n";
}

json openai_usage(const completion& c) {
  return {{"prompt_tokens", c.prompt_tokens},
          {"completion_tokens", c.completion_tokens()},
          {"total_tokens", c.prompt_tokens + c.completion_tokens()}};
}

json openai_chunk(const completion& c, json choices) {
  return {{"id", c.id},
          {"object", "chat.completion.chunk"},
          {"created", created_at},
          {"model", c.model},
          {"choices", std::move(choices)}};
}

} // namespace

// Error bodies in each vendor's shape: OpenAI {"error":{...}}, Anthropic {"type":"error","error":{...}}.
std::string error_body(bool anthropic, int status, const std::string& message) {
  if (anthropic) {
    const char* type = status == 401   ? "authentication_error"
                       : status == 404 ? "not_found_error"
                       : status == 429 ? "rate_limit_error"
                       : status == 529 ? "overloaded_error"
                       : status >= 500 ? "api_error"
                                       : "invalid_request_error";
    return json{{"type", "error"}, {"error", {{"type", type}, {"message", message}}}}.dump();
  }
  const char* type = status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error";
  json code = status == 401   ? json("invalid_api_key")
              : status == 404 ? json("unknown_url")
              : status == 429 ? json("rate_limit_exceeded")
                              : json(nullptr);
  return json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}}.dump();
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// ---------------------------------------------------------------------------------------------------
// Bodies

std::string mock_reply::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name))
      return v;
  return {};
}

std::string completion::text() const {
  std::string out;
  for (const auto& p : pieces)
    out += p;
  return out;
}

std::vector<std::string> deterministic_words(std::string_view seed_text, std::int64_t count) {
  static constexpr const char* vocabulary[] = {
      "the",    "mock",   "answer", "is",     "simulated", "and",   "keeps", "its",     "words", "stable", "across",
      "runs",   "so",     "tests",  "can",    "compare",   "plans", "ship",  "small",   "steps", "with",   "clear",
      "owners", "review", "each",   "change", "before",    "merge", "then",  "measure", "again", "later"};
  constexpr std::size_t n = sizeof(vocabulary) / sizeof(vocabulary[0]);
  std::uint64_t state = fnv1a(seed_text);
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(std::max<std::int64_t>(count, 0)));
  for (std::int64_t i = 0; i < count; ++i) {
    const char* word = vocabulary[splitmix64(state) % n];
    out.push_back(i == 0 ? std::string(word) : " " + std::string(word));
  }
  return out;
}

std::string openai_chat_json(const completion& c) {
  json message = {{"role", "assistant"}, {"content", c.text()}};
  json choice = {
      {"index", 0}, {"message", message}, {"logprobs", nullptr}, {"finish_reason", c.truncated ? "length" : "stop"}};
  return json{{"id", c.id},       {"object", "chat.completion"},      {"created", created_at},
              {"model", c.model}, {"choices", json::array({choice})}, {"usage", openai_usage(c)}}
      .dump();
}

std::vector<sse_frame> openai_chat_sse(const completion& c, bool include_usage) {
  std::vector<sse_frame> out;
  auto choice = [](json delta, json finish) {
    return json::array({{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish}}});
  };
  out.push_back({sse(openai_chunk(c, choice({{"role", "assistant"}, {"content", ""}}, nullptr))), false});
  for (const auto& piece : c.pieces)
    out.push_back({sse(openai_chunk(c, choice({{"content", piece}}, nullptr))), true});
  out.push_back({sse(openai_chunk(c, choice(json::object(), c.truncated ? "length" : "stop"))), false});
  if (include_usage) {
    // As OpenAI does: usage comes in its own last chunk with an empty choices array.
    json usage = openai_chunk(c, json::array());
    usage["usage"] = openai_usage(c);
    out.push_back({sse(usage), false});
  }
  out.push_back({"data: [DONE]\n\n", false});
  return out;
}

std::string anthropic_message_json(const completion& c) {
  return json{{"id", c.id},
              {"type", "message"},
              {"role", "assistant"},
              {"model", c.model},
              {"content", json::array({{{"type", "text"}, {"text", c.text()}}})},
              {"stop_reason", c.truncated ? "max_tokens" : "end_turn"},
              {"stop_sequence", nullptr},
              {"usage", {{"input_tokens", c.prompt_tokens}, {"output_tokens", c.completion_tokens()}}}}
      .dump();
}

std::vector<sse_frame> anthropic_message_sse(const completion& c) {
  std::vector<sse_frame> out;
  json message = {{"id", c.id},
                  {"type", "message"},
                  {"role", "assistant"},
                  {"model", c.model},
                  {"content", json::array()},
                  {"stop_reason", nullptr},
                  {"stop_sequence", nullptr},
                  {"usage", {{"input_tokens", c.prompt_tokens}, {"output_tokens", 1}}}};
  out.push_back({sse("message_start", {{"type", "message_start"}, {"message", message}}), false});
  out.push_back(
      {sse("content_block_start",
           {{"type", "content_block_start"}, {"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}}),
       false});
  for (const auto& piece : c.pieces)
    out.push_back(
        {sse("content_block_delta",
             {{"type", "content_block_delta"}, {"index", 0}, {"delta", {{"type", "text_delta"}, {"text", piece}}}}),
         true});
  out.push_back({sse("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}}), false});
  out.push_back({sse("message_delta",
                     {{"type", "message_delta"},
                      {"delta", {{"stop_reason", c.truncated ? "max_tokens" : "end_turn"}, {"stop_sequence", nullptr}}},
                      {"usage", {{"output_tokens", c.completion_tokens()}}}}),
                 false});
  out.push_back({sse("message_stop", {{"type", "message_stop"}}), false});
  return out;
}

std::vector<double> embedding_vector(std::string_view text, std::int64_t dims) {
  std::uint64_t state = fnv1a(text);
  std::vector<double> v(static_cast<std::size_t>(std::max<std::int64_t>(dims, 0)));
  double norm = 0;
  for (auto& x : v) {
    x = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-52 - 1.0; // [-1, 1)
    norm += x * x;
  }
  norm = std::sqrt(norm);
  if (norm > 0)
    for (auto& x : v)
      x /= norm;
  return v;
}

std::string embeddings_json(const std::string& model, const std::vector<std::string>& inputs, std::int64_t dims,
                            std::int64_t prompt_tokens) {
  json data = json::array();
  for (std::size_t i = 0; i < inputs.size(); ++i)
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", embedding_vector(inputs[i], dims)}});
  return json{{"object", "list"},
              {"data", std::move(data)},
              {"model", model},
              {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}}
      .dump();
}

// ---------------------------------------------------------------------------------------------------
// Small formats

std::int64_t estimate_tokens(std::size_t chars) {
  return static_cast<std::int64_t>((chars + 3) / 4);
}

std::string format_reset(millis d) {
  std::int64_t ms = d.count();
  if (ms <= 0)
    return "0s";
  if (ms < 1000)
    return std::to_string(ms) + "ms";
  std::string out;
  if (ms >= 60000) {
    out = std::to_string(ms / 60000) + "m";
    ms %= 60000;
  }
  out += std::to_string(ms / 1000);
  if (std::int64_t frac = ms % 1000) {
    std::string digits = std::to_string(1000 + frac).substr(1); // three digits, leading zeros kept
    digits.erase(digits.find_last_not_of('0') + 1);
    out += "." + digits;
  }
  return out + "s";
}

std::int64_t retry_after_seconds(millis wait) {
  return std::max<std::int64_t>(1, (wait.count() + 999) / 1000);
}

std::string render_head(const mock_reply& r, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  if (r.stream)
    out += "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n";
  else
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (const auto& [k, v] : r.headers)
    out.append(k).append(": ").append(v).append("\r\n");
  return out + "\r\n";
}

std::string render_chunk(std::string_view data) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string size;
  for (std::size_t n = data.size(); n > 0 || size.empty(); n /= 16)
    size.insert(size.begin(), hex[n % 16]);
  return size + "\r\n" + std::string(data) + "\r\n";
}

} // namespace squad::mock
