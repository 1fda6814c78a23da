#include "actors/provider/reply_assembler.hpp"
#include "actors/provider/embeddings.hpp"

#include <cctype>
#include <cstdint>
#include <vector>

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

namespace {

// Base64 without padding (standard, or URL-safe).
std::string base64(std::string_view in, bool url) {
  const char* abc = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t k) {
    return k < in.size() ? static_cast<std::uint32_t>(static_cast<unsigned char>(in[k])) : 0u;
  };
  for (; i < in.size(); i += 3) {
    std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    std::size_t chars = std::min<std::size_t>(4, (in.size() - i) * 4 / 3 + ((in.size() - i) % 3 ? 1 : 0));
    for (std::size_t k = 0; k < chars; ++k)
      out += abc[(v >> (18 - 6 * k)) & 63];
  }
  return out;
}

std::string percent_encoded(std::string_view in) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in)
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += {'%', hex[c >> 4], hex[c & 15]};
  return out;
}

// Replaces every occurrence of `form` in `text` (ignoring case when `fold`) with `mark`.
void replace_all(std::string& text, const std::string& form, const std::string& mark, bool fold) {
  if (form.size() < 8)
    return;
  auto hay = fold ? lower(text) : text;
  auto needle = fold ? lower(form) : form;
  std::string out;
  std::size_t from = 0;
  for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + needle.size())) {
    out.append(text, from, at - from);
    out += mark;
    from = at + needle.size();
  }
  if (from == 0)
    return;
  out.append(text, from, std::string::npos);
  text = std::move(out);
}

} // namespace

std::vector<std::string> secret_forms(const std::string& secret) {
  std::vector<std::string> forms{secret};
  if (auto p = percent_encoded(secret); p != secret)
    forms.push_back(p);
  // Base64 of any text holding the secret holds one of three cores, by where the secret starts modulo 3: the
  // characters that depend on the secret's bytes alone.
  for (bool url : {false, true})
    for (std::size_t shift = 0; shift < 3; ++shift) {
      auto enc = base64(std::string(shift, '\0') + secret, url);
      std::size_t skip = (shift * 8 + 5) / 6;             // characters touched by the bytes before it
      std::size_t full = (shift + secret.size()) / 3 * 4; // characters of groups of its own bytes only
      if (full >= skip + 8)
        forms.push_back(enc.substr(skip, full - skip));
    }
  return forms;
}

std::string redact_secrets(std::string text, const std::string& secret) {
  static const std::string mark = "[redacted]";
  if (secret.size() >= 8) {
    auto forms = secret_forms(secret);
    for (std::size_t i = 0; i < forms.size(); ++i)
      replace_all(text, forms[i], mark, i < 2); // the key and its URL form in any case; base64 as it is
  }
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
      r = embeddings_                 ? parse_embeddings(body_)
          : kind_ == api_kind::openai ? openai::parse_response(body_)
                                      : anthropic::parse_response(body_);
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
