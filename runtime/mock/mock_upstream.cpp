// The mock upstream's behaviour: request checks the way the real APIs make them, admission against its limits,
// faults, the admin endpoints, and handle(). Its wire formats are mock_bodies.cpp.
#include "runtime/mock/mock_upstream.hpp"
#include "runtime/mock/mock_tools.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace squad::mock {

using json = nlohmann::json;

namespace {

// Embeddings are this long unless the request sends `dimensions` (real models use 256..3072).
constexpr std::int64_t default_dimensions = 16;
constexpr std::int64_t max_dimensions = 8192;

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

} // namespace

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
  if (fault_.mode == fault_mode::ratelimited) { // refused at arrival, never admitted: a 429 storm
    r.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds(fault_.retry_after)));
    r.headers.emplace_back("retry-after-ms", std::to_string(fault_.retry_after.count()));
    return fail(429, "Rate limit reached (fault ratelimited) on upstream " + cfg_.name + ". Please try again in " +
                         format_reset(fault_.retry_after) + ".");
  }

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
    return fail(400, anthropic
                         ? "prompt is too long: " + std::to_string(prompt_tokens) + " tokens > " +
                               std::to_string(cfg_.context) + " maximum"
                         : "This model's maximum context length is " + std::to_string(cfg_.context) +
                               " tokens. However, you requested " +
                               std::to_string(prompt_tokens + (p.max_tokens > 0 ? p.max_tokens : cfg_.reply_tokens)) +
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
  if (!seen_bodies_.insert(std::hash<std::string>{}(req.body)).second)
    ++stats_.repeated; // the same request body admitted before: a call made twice
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
