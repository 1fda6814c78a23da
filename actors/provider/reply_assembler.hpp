#pragma once
// Turns what the HTTP client saw of one upstream exchange (head, body pieces, how it ended) into an
// upstream_reply. Pure logic, fed on an io thread by the provider actor's handler; tested without sockets.
//
//   2xx + text/event-stream  -> SSE parsed incrementally, the adapter's stream accumulator reassembles it;
//                               a connection that ends before [DONE] / message_stop is stream_cut.
//   2xx otherwise            -> the adapter parses the whole body (also when a stream was asked for and the
//                               upstream answered with plain JSON).
//   other statuses           -> classify(status, body, signals).
//   no whole response        -> timeout / connect_failed / bad_response / stream_cut, from the http_failure.
// Limit signals from the response headers come with every reply that had a head. Details never carry the API
// key or anything shaped like one.
#include "actors/messages.hpp"
#include "actors/provider/adapters.hpp"
#include "runtime/net/http_client.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace squad {

enum class api_kind : std::uint8_t { openai, anthropic };

/// Replaces `secret` (when at least 8 bytes) and key-shaped words (sk-..., sk_..., gsk_..., xai-..., at least
/// 20 characters) by "[redacted]".
std::string redact_secrets(std::string text, const std::string& secret);
/// The forms an echoed secret takes that redact_secrets looks for: itself and percent-encoded (in any case), and
/// the base64 and base64url cores it leaves at each of the three alignments inside encoded text.
std::vector<std::string> secret_forms(const std::string& secret);

class reply_assembler {
public:
  reply_assembler(api_kind kind, std::string secret, std::size_t max_body_bytes = std::size_t{16} << 20);

  void on_head(int status, const header_list& headers, std::chrono::system_clock::time_point now);

  /// Takes a piece of the body; returns the completion text it adds when streaming ("" otherwise).
  std::string on_data(std::string_view piece);

  /// The reply, once the exchange ended (`failure` none: the whole response arrived).
  upstream_reply finish(net::http_failure failure, const std::string& detail) const;

  /// Tool-call fragments that the data so far added, when streaming (OpenAI delta shape; "" when none).
  std::string take_tool_deltas();

  /// The exchange is an embeddings call: a whole 2xx body is read as an embeddings reply.
  void expect_embeddings() { embeddings_ = true; }

  int status() const { return status_; }
  bool streaming() const { return sse_; }

private:
  upstream_reply finish_unredacted(net::http_failure failure, const std::string& detail) const;
  void accumulate(const std::vector<sse_event>& events, std::string& delta);

  api_kind kind_;
  std::string secret_;
  std::size_t max_body_bytes_;
  int status_ = 0;
  bool sse_ = false;
  bool body_overflow_ = false;
  bool embeddings_ = false;
  limit_signals signals_;
  std::string body_; // the whole body, when not streaming
  sse_parser parser_;
  openai::stream_accumulator openai_;
  anthropic::stream_accumulator anthropic_;
};

} // namespace squad
