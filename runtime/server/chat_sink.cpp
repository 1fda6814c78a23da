#include "runtime/server/chat_sink.hpp"
#include "runtime/metrics/registry.hpp"
#include "runtime/server/gateway.hpp"

#include <nlohmann/json.hpp>

#include <ctime>

namespace squad::server {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A JSON text Squad stored itself (tool calls, logprobs); null when empty or unreadable.
json parsed_or_null(const std::string& text) {
  if (text.empty())
    return nullptr;
  auto j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

class chat_sink final : public call_sink {
public:
  chat_sink(std::shared_ptr<responder> out, chat_answer_options o, steady::time_point t0)
    : out_(std::move(out)), o_(std::move(o)), t0_(t0), created_(static_cast<std::int64_t>(std::time(nullptr))) {}

  ~chat_sink() override {
    if (!answered_.exchange(true)) // the call was lost between the actors: say so, never leave the client hanging
      fail(squad_errc::child_unavailable, "the call was lost inside Squad (an actor restarted); retry it");
  }

  void delta(std::string_view text) override {
    if (answered_.load())
      return;
    open_stream();
    out_->write(chunk(json{{"content", text}}, nullptr));
  }

  void tool_delta(std::string_view tool_calls_json) override {
    if (answered_.load())
      return;
    auto calls = json::parse(tool_calls_json, nullptr, false);
    if (!calls.is_array())
      return;
    open_stream();
    tools_streamed_ = true;
    out_->write(chunk(json{{"tool_calls", std::move(calls)}}, nullptr));
  }

  bool committed() const override { return started_.load(); }
  bool abandoned() const override { return out_->hung_up(); }

  void done(call_result r) override {
    if (answered_.exchange(true))
      return;
    if (!r.cached && r.upstream_us > 0) {
      auto total = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0_).count();
      metrics::registry::global().observe("squad_gateway_overhead_seconds", {},
                                          static_cast<double>(std::max<std::int64_t>(0, total - r.upstream_us)) / 1e6);
    }
    fingerprint_ = r.system_fingerprint;
    auto finish = r.finish_reason.empty() ? std::string{"stop"} : r.finish_reason;
    json usage{{"prompt_tokens", r.usage.prompt_tokens},
               {"completion_tokens", r.usage.completion_tokens},
               {"total_tokens", r.usage.prompt_tokens + r.usage.completion_tokens}};
    json attempts = json::array();
    for (auto& a : r.attempts)
      attempts.push_back({{"target", a.provider + "/" + a.model}, {"outcome", a.outcome}, {"latency_ms", a.latency_ms}});
    json squad{{"served_by", r.served_by.provider + "/" + r.served_by.model},
               {"cached", r.cached},
               {"partial", r.partial},
               {"attempts", std::move(attempts)}};
    auto calls = parsed_or_null(r.tool_calls_json);
    if (!o_.stream) {
      json message{{"role", "assistant"}, {"content", r.text}};
      if (calls.is_array()) {
        if (r.text.empty())
          message["content"] = nullptr; // OpenAI's own shape for an answer that only calls tools
        message["tool_calls"] = std::move(calls);
      }
      json body{{"id", o_.id},
                {"object", "chat.completion"},
                {"created", created_},
                {"model", o_.model},
                {"choices", json::array({{{"index", 0},
                                          {"message", std::move(message)},
                                          {"logprobs", parsed_or_null(r.logprobs_json)},
                                          {"finish_reason", finish}}})},
                {"usage", std::move(usage)}};
      if (!fingerprint_.empty())
        body["system_fingerprint"] = fingerprint_;
      body["squad"] = std::move(squad);
      header_list headers{{"Content-Type", "application/json"}};
      headers.emplace_back("X-Squad-Served-By", r.served_by.provider + "/" + r.served_by.model);
      headers.emplace_back("X-Squad-Cache", r.cached ? "hit" : "miss");
      if (r.partial)
        headers.emplace_back("X-Squad-Partial", "true");
      out_->reply(200, std::move(headers), dump(body));
      return;
    }
    bool had_deltas = started_.load();
    open_stream();
    if (!had_deltas && !r.text.empty()) // not streamed from the upstream (a cache hit, or a whole reply)
      out_->write(chunk(json{{"content", r.text}}, nullptr));
    if (!tools_streamed_ && calls.is_array()) { // whole calls in one delta, each with its index
      for (std::size_t i = 0; i < calls.size(); ++i)
        calls[i]["index"] = i;
      out_->write(chunk(json{{"tool_calls", std::move(calls)}}, nullptr));
    }
    out_->write(chunk(json::object(), finish));
    if (o_.include_usage) {
      json u{{"id", o_.id}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", o_.model},
             {"choices", json::array()}, {"usage", std::move(usage)}};
      if (!fingerprint_.empty())
        u["system_fingerprint"] = fingerprint_;
      u["squad"] = std::move(squad);
      out_->write("data: " + dump(u) + "\n\n");
    }
    out_->write("data: [DONE]\n\n");
    out_->end();
  }

  void failed(squad_errc code, std::string detail) override { failed(code, std::move(detail), -1); }
  void failed(squad_errc code, std::string detail, std::int64_t retry_after_ms) override {
    if (answered_.exchange(true))
      return;
    retry_after_ms_ = retry_after_ms;
    fail(code, std::move(detail));
  }

private:
  void fail(squad_errc code, std::string detail) {
    if (started_.load()) { // bytes already went out: an explicit error event, and no [DONE]
      json e{{"error", {{"message", detail}, {"type", "upstream_error"}, {"code", "stream_interrupted"}}}};
      out_->write("data: " + dump(e) + "\n\n");
      out_->end();
      return;
    }
    switch (code) {
      case squad_errc::budget_spent: // a shared budget does not come back by waiting a little
        return send_error(*out_, 429, detail + " (use a new X-Squad-Run id, or wait until this one is unused for an hour)",
                          "insufficient_quota", {}, "budget_spent", 3600);
      case squad_errc::shed:
        if (o_.cache_only) // nothing was limited: the cache simply holds no answer for this call
          return send_error(*out_, 404, "X-Squad-Cache: only and " + detail, "invalid_request_error", {}, "cache_miss");
        return send_error(*out_, 429, "shed by Squad: " + detail, "rate_limit_exceeded", {}, "shed",
                          retry_after_ms_ >= 0 ? std::max<std::int64_t>(1, (retry_after_ms_ + 999) / 1000) : 5);
      case squad_errc::deadline_exceeded:
        return send_error(*out_, 504, detail, "timeout", {}, "deadline_exceeded");
      case squad_errc::cancelled: // the client hung up: nginx's 499, so metrics do not count it as a server error
        return send_error(*out_, 499, detail, "client_closed_request", {}, "client_closed_request");
      case squad_errc::chain_exhausted: {
        bool client_error = detail.find("bad_request") != std::string::npos ||
                            detail.find("context_too_long") != std::string::npos;
        bool other = detail.find("rate_limited") != std::string::npos || detail.find("server_error") != std::string::npos ||
                     detail.find("timeout") != std::string::npos || detail.find("connect_failed") != std::string::npos ||
                     detail.find("limited") != std::string::npos || detail.find("breaker_open") != std::string::npos;
        if (client_error && !other)
          return send_error(*out_, 400, "the upstream refused the request: " + detail, "invalid_request_error", {},
                            "upstream_bad_request");
        return send_error(*out_, 503, "no provider could serve the call: " + detail, "service_unavailable", {},
                          "no_provider", 1);
      }
      default:
        return send_error(*out_, 503, detail, "service_unavailable", {}, to_string(code), 1);
    }
  }

  void open_stream() {
    if (started_.exchange(true))
      return;
    out_->start_stream(200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}});
    out_->write(chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr));
  }

  std::string chunk(json delta, json finish) {
    json c{{"id", o_.id},
           {"object", "chat.completion.chunk"},
           {"created", created_},
           {"model", o_.model},
           {"choices", json::array({{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", std::move(finish)}}})}};
    if (!fingerprint_.empty())
      c["system_fingerprint"] = fingerprint_;
    return "data: " + dump(c) + "\n\n";
  }

  std::shared_ptr<responder> out_;
  chat_answer_options o_;
  steady::time_point t0_;
  std::int64_t created_;
  std::string fingerprint_; // known once the answer is (streamed chunks before it go without)
  std::atomic<bool> tools_streamed_{false}; // set on the io thread that streams; read by done()
  std::atomic<bool> started_{false}, answered_{false};
  std::int64_t retry_after_ms_ = -1; // a shed call's earliest slot (set under answered_, before the answer)
};

} // namespace

std::shared_ptr<call_sink> make_chat_sink(std::shared_ptr<responder> out, chat_answer_options opts,
                                          steady::time_point t0) {
  return std::make_shared<chat_sink>(std::move(out), std::move(opts), t0);
}

void send_error(responder& out, int status, const std::string& message, const std::string& type,
                const std::string& param, const std::string& code, std::int64_t retry_after_s) {
  header_list headers{{"Content-Type", "application/json"}};
  if (retry_after_s > 0)
    headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  out.reply(status, std::move(headers), error_body(message, type, param, code));
}

} // namespace squad::server
