#include "runtime/mock/mock_upstream.hpp"
#include "runtime/mock/mock_tools.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace squad::mock {

using json = nlohmann::json;

namespace {

// Answers carry a fixed `created` so that two runs produce byte-identical bodies.
constexpr std::int64_t created_at = 1700000000;
// Embeddings are this long unless the request sends `dimensions` (real models use 256..3072).
constexpr std::int64_t default_dimensions = 16;
constexpr std::int64_t max_dimensions = 8192;

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

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

std::string sse(const json& j) {
  return "data: " + j.dump() + "\n\n";
}
std::string sse(const char* event, const json& j) {
  return std::string("event: ") + event + "\ndata: " + j.dump() + "\n\n";
}

// Text of a message `content`: a string, or an array of parts whose "text" fields count.
void append_content(const json& content, std::string& out) {
  if (content.is_string())
    out += content.get_ref<const std::string&>();
  else if (content.is_array())
    for (const auto& part : content)
      if (part.is_object() && part.contains("text") && part["text"].is_string())
        out += part["text"].get_ref<const std::string&>();
}

// What the three endpoints need from a request body.
struct parsed_request {
  std::string model;
  std::string prompt;          // all prompt text, for the token estimate and the answer's seed
  std::int64_t max_tokens = 0; // 0 = not given
  bool stream = false;
  bool include_usage = false;
  std::vector<std::string> inputs; // embeddings
  std::int64_t dimensions = default_dimensions;
};

// Optional fields with a type check; false (and `error` set) when present with the wrong type.
bool optional_bool(const json& j, const char* key, bool& out, std::string& error) {
  if (!j.contains(key) || j[key].is_null())
    return true;
  if (!j[key].is_boolean()) {
    error = std::string("'") + key + "' must be a boolean";
    return false;
  }
  out = j[key].get<bool>();
  return true;
}

bool optional_positive(const json& j, const char* key, std::int64_t& out, std::string& error) {
  if (!j.contains(key) || j[key].is_null())
    return true;
  if (!j[key].is_number_integer() || j[key].get<std::int64_t>() <= 0) {
    error = std::string("'") + key + "' must be a positive integer";
    return false;
  }
  out = j[key].get<std::int64_t>();
  return true;
}

enum class endpoint { none, chat, embeddings, messages };

// Reads and checks a request body the way the real APIs do; returns the 400 message, or "" when fine.
std::string parse_body(endpoint ep, const std::string& body, parsed_request& p) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return "We could not parse the JSON body of your request.";
  if (!j.contains("model") || !j["model"].is_string() || j["model"].get_ref<const std::string&>().empty())
    return "you must provide a model parameter";
  p.model = j["model"].get<std::string>();
  std::string error;
  if (ep == endpoint::embeddings) {
    const json* input = j.contains("input") ? &j["input"] : nullptr;
    if (input && input->is_string())
      p.inputs.push_back(input->get<std::string>());
    else if (input && input->is_array() && !input->empty() &&
             std::all_of(input->begin(), input->end(), [](const json& x) { return x.is_string(); }))
      for (const auto& x : *input)
        p.inputs.push_back(x.get<std::string>());
    else
      return "'input' must be a string or a non-empty array of strings";
    for (const auto& s : p.inputs)
      p.prompt += s;
    if (!optional_positive(j, "dimensions", p.dimensions, error))
      return error;
    if (p.dimensions > max_dimensions)
      return "'dimensions' must be at most " + std::to_string(max_dimensions);
    return {};
  }
  if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
    return "'messages' must be a non-empty array";
  for (const auto& m : j["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return "each message must be an object with a 'role'";
    if (m.contains("content"))
      append_content(m["content"], p.prompt);
  }
  if (ep == endpoint::messages) {
    if (j.contains("system"))
      append_content(j["system"], p.prompt);
    // Anthropic requires max_tokens; a strict mock does too.
    if (!j.contains("max_tokens"))
      return "max_tokens: Field required";
    if (!optional_positive(j, "max_tokens", p.max_tokens, error))
      return error;
  } else {
    if (!optional_positive(j, "max_tokens", p.max_tokens, error) ||
        !optional_positive(j, "max_completion_tokens", p.max_tokens, error))
      return error;
    if (j.contains("stream_options") && j["stream_options"].is_object() &&
        !optional_bool(j["stream_options"], "include_usage", p.include_usage, error))
      return error;
  }
  if (!optional_bool(j, "stream", p.stream, error))
    return error;
  if (j.contains("temperature")) {
    double max = ep == endpoint::messages ? 1.0 : 2.0;
    if (!j["temperature"].is_number() || j["temperature"].get<double>() < 0 || j["temperature"].get<double>() > max)
      return "temperature: must be a number between 0 and " + std::string(ep == endpoint::messages ? "1" : "2");
  }
  return {};
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

// ---------------------------------------------------------------------------------------------------
// Names

const char* to_string(reject_reason r) {
  switch (r) {
  case reject_reason::none:
    return "none";
  case reject_reason::requests:
    return "requests";
  case reject_reason::concurrency:
    return "concurrency";
  case reject_reason::tokens:
    return "tokens";
  }
  return "none";
}

namespace {
constexpr std::pair<fault_mode, const char*> fault_names[] = {{fault_mode::none, "none"},
                                                              {fault_mode::down, "down"},
                                                              {fault_mode::error500, "error500"},
                                                              {fault_mode::slow, "slow"},
                                                              {fault_mode::garbage, "garbage"},
                                                              {fault_mode::cut, "cut"},
                                                              {fault_mode::unauthorized, "unauthorized"},
                                                              {fault_mode::overloaded, "overloaded"}};
} // namespace

std::optional<fault_mode> parse_fault_mode(std::string_view text) {
  for (auto [mode, name] : fault_names)
    if (text == name)
      return mode;
  return std::nullopt;
}

const char* to_string(fault_mode m) {
  for (auto [mode, name] : fault_names)
    if (m == mode)
      return name;
  return "none";
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

// ---------------------------------------------------------------------------------------------------
// The upstream

mock_upstream::mock_upstream(mock_upstream_config cfg)
    : cfg_(std::move(cfg)), window_(cfg_.limits.requests, cfg_.limits.per),
      jitter_rng_(static_cast<std::uint_fast32_t>(fnv1a(cfg_.name) % 2147483646u + 1)) {}

void mock_upstream::expire_tokens(steady_time now) {
  while (!tokens_.empty() && tokens_.front().at + cfg_.limits.per <= now)
    tokens_.pop_front();
}

std::int64_t mock_upstream::tokens_in_window(steady_time now) {
  expire_tokens(now);
  std::int64_t sum = 0;
  for (const auto& e : tokens_)
    sum += e.tokens;
  return sum;
}

admission mock_upstream::admit(std::int64_t tokens, steady_time now) {
  const auto& l = cfg_.limits;
  if (l.concurrency > 0 && in_flight_ >= l.concurrency) {
    ++stats_.rejected_concurrency;
    return {reject_reason::concurrency, millis{1000}}; // no slot frees at a known time; 1 s is a hint
  }
  if (auto earliest = window_.earliest_admit(now); earliest > now) {
    ++stats_.rejected_requests;
    return {reject_reason::requests, std::chrono::ceil<millis>(earliest - now)};
  }
  if (l.tokens > 0) {
    std::int64_t excess = tokens_in_window(now) + tokens - l.tokens;
    if (excess > 0) {
      ++stats_.rejected_tokens;
      // A request larger than the whole budget never fits; say one window, as good as any.
      millis wait = l.per;
      std::int64_t freed = 0;
      if (tokens <= l.tokens)
        for (const auto& e : tokens_)
          if ((freed += e.tokens) >= excess) {
            wait = std::chrono::ceil<millis>(e.at + l.per - now);
            break;
          }
      return {reject_reason::tokens, wait};
    }
    tokens_.push_back({now, tokens});
  }
  window_.try_admit(now);
  last_admit_ = now;
  ++in_flight_;
  ++stats_.admitted;
  stats_.max_in_flight = std::max(stats_.max_in_flight, in_flight_);
  stats_.max_window_occupancy = std::max(stats_.max_window_occupancy, window_.occupancy(now));
  return {};
}

void mock_upstream::release() {
  if (in_flight_ > 0)
    --in_flight_;
}

void mock_upstream::reset() {
  stats_ = mock_stats{};
  recent_.clear();
  stats_.max_in_flight = in_flight_;
  fault_ = fault_state{};
  error_share_ = 0;
  window_ = sliding_window(cfg_.limits.requests, cfg_.limits.per);
  last_admit_.reset();
  tokens_.clear();
}

void mock_upstream::set_fault(const fault_state& f) {
  fault_ = f;
  error_share_ = 0;
}

void mock_upstream::add_rate_headers(mock_reply& r, steady_time now) {
  const auto& l = cfg_.limits;
  std::int64_t occupancy = window_.occupancy(now);
  r.headers.emplace_back("x-ratelimit-limit-requests", std::to_string(l.requests));
  r.headers.emplace_back("x-ratelimit-remaining-requests",
                         std::to_string(std::max<std::int64_t>(0, l.requests - occupancy)));
  // As OpenAI means it: the time until the window is back to its initial (empty) state.
  millis reset{0};
  if (occupancy > 0 && last_admit_)
    reset = std::chrono::ceil<millis>(*last_admit_ + l.per - now);
  r.headers.emplace_back("x-ratelimit-reset-requests", format_reset(reset));
  if (l.tokens > 0) {
    std::int64_t used = tokens_in_window(now);
    r.headers.emplace_back("x-ratelimit-limit-tokens", std::to_string(l.tokens));
    r.headers.emplace_back("x-ratelimit-remaining-tokens", std::to_string(std::max<std::int64_t>(0, l.tokens - used)));
    millis treset{0};
    if (!tokens_.empty())
      treset = std::chrono::ceil<millis>(tokens_.back().at + l.per - now);
    r.headers.emplace_back("x-ratelimit-reset-tokens", format_reset(treset));
  }
}

millis mock_upstream::latency() {
  millis d = cfg_.latency.fixed;
  if (cfg_.latency.jitter.count() > 0)
    d += millis{std::uniform_int_distribution<std::int64_t>(0, cfg_.latency.jitter.count())(jitter_rng_)};
  if (fault_.mode == fault_mode::slow)
    d += fault_.slow;
  return d;
}

bool mock_upstream::next_is_error500() {
  // Spreads the failures evenly and repeatably: fraction 0.25 fails the 4th, 8th, 12th, ... request.
  error_share_ += fault_.fraction;
  if (error_share_ < 1.0 - 1e-9)
    return false;
  error_share_ -= 1.0;
  return true;
}

mock_reply mock_upstream::admin(const mock_request& req, const std::string& path) {
  mock_reply r;
  auto fail = [&r](int status, const std::string& message) {
    r.status = status;
    r.body = error_body(false, status, message);
    return r;
  };
  if (path == "/stats") {
    if (req.method != "GET")
      return fail(405, "use GET /stats");
    r.body = json{{"admitted", stats_.admitted},
                  {"rejected",
                   {{"requests", stats_.rejected_requests},
                    {"concurrency", stats_.rejected_concurrency},
                    {"tokens", stats_.rejected_tokens}}},
                  {"max_window_occupancy", stats_.max_window_occupancy},
                  {"max_in_flight", stats_.max_in_flight},
                  {"connections_opened", stats_.connections_opened},
                  {"requests_total", stats_.requests_total},
                  {"in_flight", in_flight_},
                  {"fault", to_string(fault_.mode)}}
                 .dump();
    return r;
  }
  if (path == "/admin/requests") { // what reached this upstream, oldest first: tests check what was sent
    if (req.method != "GET")
      return fail(405, "use GET /admin/requests");
    json list = json::array();
    for (auto& [p, body] : recent_) {
      auto parsed = json::parse(body, nullptr, false);
      list.push_back({{"path", p}, {"body", parsed.is_discarded() ? json(body) : parsed}});
    }
    r.body = json{{"requests", std::move(list)}}.dump();
    return r;
  }
  if (path != "/admin/fault" && path != "/admin/reset")
    return fail(404, "Unknown request URL: " + req.method + " " + path);
  if (req.method != "POST")
    return fail(405, "use POST " + path);
  if (path == "/admin/reset") {
    reset();
    r.body = R"({"reset":true})";
    return r;
  }
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(400, "body must be a JSON object");
  fault_state f;
  for (const auto& [key, value] : j.items()) {
    if (key == "mode" && value.is_string() && parse_fault_mode(value.get<std::string>()))
      f.mode = *parse_fault_mode(value.get<std::string>());
    else if (key == "fraction" && value.is_number() && value.get<double>() >= 0 && value.get<double>() <= 1)
      f.fraction = value.get<double>();
    else if (key == "slow_ms" && value.is_number_integer() && value.get<std::int64_t>() >= 0)
      f.slow = millis{value.get<std::int64_t>()};
    else if (key == "cut_after" && value.is_number_integer() && value.get<std::int64_t>() >= 0)
      f.cut_after = value.get<std::int64_t>();
    else if (key == "mode" || key == "fraction" || key == "slow_ms" || key == "cut_after")
      return fail(400, "bad value for '" + key +
                           "' (mode: none|down|error500|slow|garbage|cut|unauthorized|overloaded; fraction: 0..1; "
                           "slow_ms, cut_after: integers >= 0)");
    else
      return fail(400, "unknown key '" + key + "'");
  }
  if (!j.contains("mode"))
    return fail(400, "'mode' is required");
  set_fault(f);
  r.body = json{{"mode", to_string(f.mode)}}.dump();
  return r;
}

mock_reply mock_upstream::handle(const mock_request& req, steady_time now) {
  std::string path = req.target.substr(0, req.target.find('?'));
  if (path == "/stats" || path.rfind("/admin/", 0) == 0)
    return admin(req, path); // never rate limited, never faulted: tests must always reach them
  ++stats_.requests_total;
  mock_reply r;
  if (fault_.mode == fault_mode::down) {
    r.drop = true;
    return r;
  }
  endpoint ep = endpoint::none;
  if (path == "/v1/chat/completions" && cfg_.style != api_style::anthropic)
    ep = endpoint::chat;
  else if (path == "/v1/embeddings" && cfg_.style != api_style::anthropic)
    ep = endpoint::embeddings;
  else if (path == "/v1/messages" && cfg_.style != api_style::openai)
    ep = endpoint::messages;
  bool anthropic = ep == endpoint::messages;
  auto fail = [&](int status, const std::string& message) {
    r.status = status;
    r.body = error_body(anthropic, status, message);
    add_rate_headers(r, now);
    return r;
  };
  if (ep == endpoint::none)
    return fail(404, "Unknown request URL: " + req.method + " " + path);
  recent_.emplace_back(path, req.body);
  if (recent_.size() > max_recorded)
    recent_.pop_front();
  if (req.method != "POST") {
    r.headers.emplace_back("Allow", "POST");
    return fail(405, "use POST " + path);
  }
  bool key_ok = cfg_.api_key.empty() || req.authorization == "Bearer " + cfg_.api_key || req.api_key == cfg_.api_key;
  if (fault_.mode == fault_mode::unauthorized || !key_ok)
    return fail(401, "Incorrect API key provided.");

  parsed_request p;
  if (auto error = parse_body(ep, req.body, p); !error.empty())
    return fail(400, error);
  std::int64_t prompt_tokens = estimate_tokens(p.prompt.size());
  std::int64_t answer_tokens = cfg_.reply_tokens;
  bool truncated = false;
  if (p.max_tokens > 0 && p.max_tokens < answer_tokens) {
    answer_tokens = p.max_tokens;
    truncated = true;
  }
  if (cfg_.max_output > 0 && p.max_tokens > cfg_.max_output)
    return fail(400, "max_tokens: " + std::to_string(p.max_tokens) + " > " + std::to_string(cfg_.max_output) +
                         ", which is the maximum allowed number of output tokens");
  if (cfg_.context > 0 && ep != endpoint::embeddings &&
      prompt_tokens + (p.max_tokens > 0 ? p.max_tokens : cfg_.reply_tokens) > cfg_.context)
    return fail(400, anthropic ? "prompt is too long: " + std::to_string(prompt_tokens) + " tokens > " +
                                     std::to_string(cfg_.context) + " maximum"
                               : "This model's maximum context length is " + std::to_string(cfg_.context) +
                                     " tokens. However, you requested " +
                                     std::to_string(prompt_tokens + (p.max_tokens > 0 ? p.max_tokens
                                                                                        : cfg_.reply_tokens)) +
                                     " tokens. Please reduce the length of the messages.");
  // The token limit counts what the request could cost at most, as real providers do at arrival.
  std::int64_t cost = prompt_tokens;
  if (ep != endpoint::embeddings)
    cost += p.max_tokens > 0 ? p.max_tokens : cfg_.reply_tokens;

  admission a = admit(cost, now);
  if (a.reason != reject_reason::none) {
    r.rejected = a.reason;
    r.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds(a.retry_after)));
    r.headers.emplace_back("retry-after-ms", std::to_string(a.retry_after.count()));
    std::string limit = a.reason == reject_reason::concurrency
                            ? std::to_string(cfg_.limits.concurrency) + " concurrent requests"
                        : a.reason == reject_reason::requests
                            ? std::to_string(cfg_.limits.requests) + " requests per " + format_duration(cfg_.limits.per)
                            : std::to_string(cfg_.limits.tokens) + " tokens per " + format_duration(cfg_.limits.per);
    return fail(429, std::string("Rate limit reached (") + to_string(a.reason) + "): limit " + limit + " on upstream " +
                         cfg_.name + ". Please try again in " + format_reset(a.retry_after) + ".");
  }
  r.admitted = true;
  r.delay = latency();
  add_rate_headers(r, now);

  if (fault_.mode == fault_mode::error500 && next_is_error500()) {
    r.status = 500;
    r.body = error_body(anthropic, 500, "The server had an error while processing your request.");
    return r;
  }
  if (fault_.mode == fault_mode::overloaded) { // admitted, then refused: what 503 / 529 look like in practice
    r.status = anthropic ? 529 : 503;
    r.body = error_body(anthropic, r.status, anthropic ? "Overloaded" : "The engine is currently overloaded.");
    return r;
  }
  if (fault_.mode == fault_mode::garbage) {
    r.body = "<html>502 upstream garbage {{{ this is not JSON";
    return r;
  }
  if (fault_.mode == fault_mode::cut)
    r.cut_after = static_cast<std::size_t>(fault_.cut_after);

  ++seq_;
  if (ep == endpoint::embeddings) {
    r.body = embeddings_json(p.model, p.inputs, p.dimensions, prompt_tokens);
    return r;
  }
  completion c;
  c.id = (anthropic ? "msg_mock_" : "chatcmpl-mock-") + std::to_string(seq_);
  c.model = p.model;
  c.pieces = deterministic_words(p.prompt, answer_tokens);
  c.prompt_tokens = prompt_tokens;
  c.truncated = truncated;
  if (auto calls = plan_tool_calls(req.body, anthropic, seq_); !calls.empty()) {
    if (p.stream) {
      r.stream = true;
      r.content_type = "text/event-stream";
      r.frames = anthropic ? anthropic_tool_sse(c, calls) : openai_tool_sse(c, calls, p.include_usage);
      r.per_token = cfg_.latency.per_token;
    } else {
      r.body = anthropic ? anthropic_tool_json(c, calls) : openai_tool_json(c, calls);
    }
    return r;
  }
  if (p.stream) {
    r.stream = true;
    r.content_type = "text/event-stream";
    r.frames = anthropic ? anthropic_message_sse(c) : openai_chat_sse(c, p.include_usage);
    r.per_token = cfg_.latency.per_token;
  } else {
    r.body = anthropic ? anthropic_message_json(c) : openai_chat_json(c);
    // Generation takes as long whether streamed or not; without streaming it is all waited up front.
    r.delay += cfg_.latency.per_token * c.completion_tokens();
  }
  return r;
}

} // namespace squad::mock
