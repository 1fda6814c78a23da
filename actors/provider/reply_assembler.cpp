#include "actors/provider/reply_assembler.hpp"

#include <cctype>

namespace squad {

namespace {

bool key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

bool key_prefix(std::string_view word) {
  for (std::string_view p : {"sk-", "sk_", "gsk_", "xai-", "pk-", "rk-"})
    if (word.starts_with(p))
      return true;
  return false;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

} // namespace

std::string redact_secrets(std::string text, const std::string& secret) {
  static const std::string mark = "[redacted]";
  if (secret.size() >= 8)
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + mark.size()))
      text.replace(at, secret.size(), mark);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (!key_char(text[i]) || (i > 0 && key_char(text[i - 1]))) {
      out += text[i++];
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && key_char(text[end]))
      ++end;
    std::string_view word(text.data() + i, end - i);
    out += key_prefix(word) && word.size() >= 20 ? std::string_view(mark) : word;
    i = end;
  }
  return out;
}

reply_assembler::reply_assembler(api_kind kind, std::string secret, std::size_t max_body_bytes)
    : kind_(kind), secret_(std::move(secret)), max_body_bytes_(max_body_bytes) {}

void reply_assembler::on_head(int status, const header_list& headers, std::chrono::system_clock::time_point now) {
  status_ = status;
  signals_ = parse_limit_signals(headers, now);
  if (status < 200 || status >= 300)
    return;
  for (auto& [name, value] : headers)
    if (lower(name) == "content-type" && lower(value).find("text/event-stream") != std::string::npos)
      sse_ = true;
}

void reply_assembler::accumulate(const std::vector<sse_event>& events, std::string& delta) {
  for (const auto& ev : events)
    delta += kind_ == api_kind::openai ? openai_.on_event(ev) : anthropic_.on_event(ev);
}

std::string reply_assembler::on_data(std::string_view piece) {
  if (!sse_) {
    if (body_overflow_ || body_.size() + piece.size() > max_body_bytes_)
      body_overflow_ = true;
    else
      body_.append(piece);
    return {};
  }
  std::string delta;
  accumulate(parser_.feed(piece), delta);
  return delta;
}

std::string reply_assembler::take_tool_deltas() {
  if (!sse_)
    return {};
  return kind_ == api_kind::openai ? openai_.take_tool_deltas() : anthropic_.take_tool_deltas();
}

upstream_reply reply_assembler::finish(net::http_failure failure, const std::string& detail) const {
  auto r = finish_unredacted(failure, detail);
  r.detail = redact_secrets(std::move(r.detail), secret_);
  return r;
}

upstream_reply reply_assembler::finish_unredacted(net::http_failure failure, const std::string& detail) const {
  using net::http_failure;
  bool stream_done = kind_ == api_kind::openai ? openai_.done() : anthropic_.done();
  auto stream_reply = [&] {
    auto r = kind_ == api_kind::openai ? openai_.finish() : anthropic_.finish();
    // A failed parser reads nothing more, so the end marker after the failure is never seen: the accumulator
    // then says stream_cut, which would hide the real cause.
    if ((r.result == outcome::ok || r.result == outcome::stream_cut) && parser_.failed()) {
      auto usage = r.usage; // tokens streamed before the failure may be billed
      r = {};
      r.result = outcome::bad_response;
      r.detail = "unreadable event stream: " + parser_.error();
      r.usage = usage;
    }
    return r;
  };
  upstream_reply r;
  bool classified = false; // classify() set the signals, with a 429's wait derived from them
  bool head = status_ != 0;
  bool ok_status = status_ >= 200 && status_ < 300;
  if (failure == http_failure::none || (sse_ && stream_done)) {
    // A whole response; or a stream whose end marker arrived before the connection failed.
    if (body_overflow_) {
      r.result = outcome::bad_response;
      r.detail = "response body larger than " + std::to_string(max_body_bytes_) + " bytes";
    } else if (!ok_status) {
      r = classify(status_, body_, signals_);
      classified = true;
    } else if (sse_) {
      r = stream_reply();
    } else {
      r = kind_ == api_kind::openai ? openai::parse_response(body_) : anthropic::parse_response(body_);
    }
  } else if (head && !ok_status && failure == http_failure::closed_early) {
    r = classify(status_, body_, signals_); // the status says enough even if its error body was cut
    classified = true;
  } else {
    switch (failure) {
    case http_failure::timeout_connect:
    case http_failure::timeout_first_byte:
    case http_failure::timeout_idle:
    case http_failure::timeout_total:
      r.result = outcome::timeout;
      break;
    case http_failure::connect_failed:
    case http_failure::tls_failed:
      r.result = outcome::connect_failed;
      break;
    case http_failure::closed_early:
    case http_failure::abandoned: // the dispatcher tells the breaker nothing of it (the client left)
      r.result = outcome::stream_cut;
      break;
    case http_failure::shut_down:
      r.result = outcome::unavailable;
      break;
    case http_failure::bad_http:
    case http_failure::body_too_large:
    case http_failure::none:
      r.result = outcome::bad_response;
      break;
    }
    r.detail = detail;
    if (sse_)
      r.usage = stream_reply().usage; // tokens streamed before the failure may be billed
  }
  if (head && !classified)
    r.signals = signals_;
  if (r.result != outcome::ok && sse_) // a stream that failed after delivering text: kept, apart, for the caller
    r.partial_text = kind_ == api_kind::openai ? openai_.text_so_far() : anthropic_.text_so_far();
  if (r.result != outcome::ok) {
    r.text.clear();
    r.tool_calls_json.clear();
  }
  return r;
}

} // namespace squad
