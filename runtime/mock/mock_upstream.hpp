#pragma once
// One fake LLM upstream of squad-mock-provider, as pure logic: no sockets, no clocks.
// The server hands each request in with the arrival time `now`; mock_upstream decides at once
// (admit, 429, 401, 400, 404, drop), builds the reply body or stream frames and says how long to wait.
// Admission is strict and at arrival: concurrency cap, then a sliding window of requests, then tokens.
#include "actors/limiter/sliding_window.hpp"
#include "runtime/mock/mock_config.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace squad::mock {

/// Why a request was answered 429; none = admitted.
enum class reject_reason : std::uint8_t { none, requests, concurrency, tokens };
const char* to_string(reject_reason r);

/// Faults switchable at run time through POST /admin/fault. GET /admin/requests lists the last 32 request
/// bodies (path and body) this upstream received; POST /admin/reset clears them with the counters.
enum class fault_mode : std::uint8_t {
  none,
  down,
  error500,
  slow,
  garbage,
  cut,
  unauthorized,
  overloaded,
  ratelimited
};
std::optional<fault_mode> parse_fault_mode(std::string_view text);
const char* to_string(fault_mode m);

struct fault_state {
  fault_mode mode = fault_mode::none;
  double fraction = 1.0;      ///< error500: share of admitted requests answered 500, spread evenly
  millis slow{1000};          ///< slow: extra wait before the response head
  std::int64_t cut_after = 1; ///< cut: SSE frames written before the connection is closed
  millis retry_after{1000};   ///< ratelimited: the Retry-After (whole seconds, rounded up) and retry-after-ms sent
};

/// Counters served at GET /stats.
struct mock_stats {
  std::int64_t admitted = 0;
  std::int64_t rejected_requests = 0;
  std::int64_t rejected_concurrency = 0;
  std::int64_t rejected_tokens = 0;
  std::int64_t max_window_occupancy = 0; ///< most admissions ever seen inside one window
  std::int64_t max_in_flight = 0;
  std::int64_t connections_opened = 0;
  std::int64_t requests_total = 0; ///< every request except /stats and /admin/*
  std::int64_t repeated = 0;       ///< admitted requests whose exact body had been admitted before
};

/// An HTTP request as the server read it.
struct mock_request {
  std::string method; ///< "POST"
  std::string target; ///< "/v1/chat/completions"; a query string is ignored
  std::string body;
  std::string authorization; ///< the Authorization header, "" when absent
  std::string api_key;       ///< the x-api-key header, "" when absent
};

/// One server-sent event, framed ("data: ...\n\n"); `token` marks frames that carry a completion token
/// (the per-token delay is waited before those).
struct sse_frame {
  std::string data;
  bool token = false;
};

/// What to send back and when. The server writes `delay` later the head and body, or the head and then
/// each frame (waiting `per_token` before token frames), and calls release() when done if `admitted`.
struct mock_reply {
  bool drop = false;     ///< close the connection at once without a response (fault down)
  bool admitted = false; ///< holds an in-flight slot until mock_upstream::release()
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers; ///< besides the framing headers
  std::string body;                                         ///< the whole body when not streaming
  bool stream = false;                                      ///< chunked text/event-stream made of `frames`
  std::vector<sse_frame> frames;
  millis delay{0};                      ///< before the head
  millis per_token{0};                  ///< before each token frame
  std::optional<std::size_t> cut_after; ///< fault cut: stream -> frames written before closing;
                                        ///< plain body -> half of it is written, then the connection closes
  reject_reason rejected = reject_reason::none;

  /// The first header with this (case-insensitive) name, or "".
  std::string header(std::string_view name) const;
};

/// A deterministic answer: the same prompt gives the same words, streamed or not.
struct completion {
  std::string id;
  std::string model;
  std::vector<std::string> pieces; ///< one word each; concatenated they are the text
  std::int64_t prompt_tokens = 0;
  bool truncated = false; ///< stopped by max_tokens
  std::string text() const;
  std::int64_t completion_tokens() const { return static_cast<std::int64_t>(pieces.size()); }
};

/// The `created` of every answer: fixed, so that two runs produce byte-identical bodies.
inline constexpr std::int64_t created_at = 1700000000;

/// FNV-1a of a text: the seed of deterministic bodies and of a mock's latency jitter.
std::uint64_t fnv1a(std::string_view text);

/// An error body in the vendor's shape: OpenAI {"error":{...}}, Anthropic {"type":"error","error":{...}}.
std::string error_body(bool anthropic, int status, const std::string& message);

/// `count` words chosen from a hash of `seed_text`; the first piece has no leading space.
std::vector<std::string> deterministic_words(std::string_view seed_text, std::int64_t count);

std::string openai_chat_json(const completion& c);
std::vector<sse_frame> openai_chat_sse(const completion& c, bool include_usage); ///< ends with [DONE]
std::string anthropic_message_json(const completion& c);
std::vector<sse_frame> anthropic_message_sse(const completion& c);
/// A unit vector derived from a hash of `text`.
std::vector<double> embedding_vector(std::string_view text, std::int64_t dims);
std::string embeddings_json(const std::string& model, const std::vector<std::string>& inputs, std::int64_t dims,
                            std::int64_t prompt_tokens);

/// The token estimate used for admission and usage: ceil(chars / 4).
std::int64_t estimate_tokens(std::size_t chars);
/// OpenAI's x-ratelimit-reset-* form: "0s", "20ms", "1.5s", "6m0s".
std::string format_reset(millis d);
/// Retry-After in whole seconds: rounded up, at least 1.
std::int64_t retry_after_seconds(millis wait);
/// Status line and headers (with Content-Length, or Transfer-Encoding: chunked when streaming).
std::string render_head(const mock_reply& r, bool keep_alive);
/// One HTTP/1.1 chunk; an empty `data` gives the last chunk.
std::string render_chunk(std::string_view data);

/// The outcome of the three admission checks.
struct admission {
  reject_reason reason = reject_reason::none;
  millis retry_after{0}; ///< exact wait for the limit that refused (rejections only)
};

class mock_upstream {
public:
  explicit mock_upstream(mock_upstream_config cfg);

  /// Decides and builds the reply to `req`, which arrived at `now`.
  mock_reply handle(const mock_request& req, steady_time now);

  /// Admission alone: concurrency, then the request window, then tokens; records the admission when it passes.
  admission admit(std::int64_t tokens, steady_time now);

  /// An admitted request's response was fully written, or its connection died first.
  void release();

  void connection_opened() { ++stats_.connections_opened; }

  /// Resets counters, fault and limit history (POST /admin/reset); requests in flight stay counted.
  void reset();

  void set_fault(const fault_state& f);
  const fault_state& fault() const { return fault_; }
  const mock_stats& stats() const { return stats_; }
  std::int64_t in_flight() const { return in_flight_; }
  const mock_upstream_config& config() const { return cfg_; }

private:
  struct token_entry {
    steady_time at;
    std::int64_t tokens;
  };

  void expire_tokens(steady_time now);
  std::int64_t tokens_in_window(steady_time now);
  void add_rate_headers(mock_reply& r, steady_time now);
  mock_reply admin(const mock_request& req, const std::string& path);
  millis latency();
  bool next_is_error500();

  mock_upstream_config cfg_;
  sliding_window window_;
  std::optional<steady_time> last_admit_; // for x-ratelimit-reset-requests
  std::deque<token_entry> tokens_;
  std::int64_t in_flight_ = 0;
  fault_state fault_;
  double error_share_ = 0; // error500: accumulates `fraction` per admitted request; >= 1 means fail one
  std::minstd_rand jitter_rng_;
  std::int64_t seq_ = 0; // ids of answers
  mock_stats stats_;
  std::unordered_set<std::size_t> seen_bodies_; // hashes of admitted bodies, for stats_.repeated
  static constexpr std::size_t max_recorded = 32;
  std::deque<std::pair<std::string, std::string>> recent_; // (path, body) of the last requests, for GET /admin/requests
};

} // namespace squad::mock
