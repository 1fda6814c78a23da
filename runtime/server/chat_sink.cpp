#include "runtime/server/chat_sink.hpp"
#include "runtime/metrics/registry.hpp"
#include "runtime/server/openai_encoding.hpp"

#include <ctime>

namespace squad::server {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

// Updated once per answered call, from whichever thread answers it.
const metrics::histogram& overhead_seconds() {
  static const auto h = metrics::histogram_family{"squad_gateway_overhead_seconds",
                                                  "time a chat call spent in Squad, outside the upstream exchanges"}
                            .with();
  return h;
}

class chat_sink final : public call_sink {
public:
  chat_sink(std::shared_ptr<responder> out, chat_answer_options o, steady::time_point t0)
      : out_(std::move(out)), o_(std::move(o)),
        t0_(t0), ids_{o_.id, o_.model, static_cast<std::int64_t>(std::time(nullptr)), {}} {}

  ~chat_sink() override {
    if (!answered_.exchange(true)) // the call was lost between the actors: say so, never leave the client hanging
      fail({squad_errc::child_unavailable,
            "the call was lost inside Squad (an actor restarted); retry it",
            -1,
            failure_class::unknown,
            {}});
  }

  void delta(std::string_view text) override {
    if (answered_.load())
      return;
    open_stream();
    out_->write(chunk_event(ids_, json{{"content", text}}, nullptr));
  }

  void tool_delta(std::string_view tool_calls_json) override {
    if (answered_.load())
      return;
    auto calls = json::parse(tool_calls_json, nullptr, false);
    if (!calls.is_array())
      return;
    open_stream();
    tools_streamed_ = true;
    out_->write(chunk_event(ids_, json{{"tool_calls", std::move(calls)}}, nullptr));
  }

  bool committed() const override { return started_.load(); }
  bool abandoned() const override { return out_->hung_up(); }

  void done(call_result r) override {
    if (answered_.exchange(true))
      return;
    if (!r.cached && r.upstream_us > 0) {
      auto total = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t0_).count();
      overhead_seconds().observe(static_cast<double>(std::max<std::int64_t>(0, total - r.upstream_us)) / 1e6);
    }
    ids_.fingerprint = r.system_fingerprint;
    note_result(o_.audit.get(), r, o_.audit_bodies);
    if (!o_.stream)
      return out_->reply(200, completion_headers(r), completion_json(ids_, r));
    bool had_deltas = started_.load();
    open_stream();
    if (!had_deltas && !r.text.empty()) // not streamed from the upstream (a cache hit, or a whole reply)
      out_->write(chunk_event(ids_, json{{"content", r.text}}, nullptr));
    if (!tools_streamed_) // whole calls in one delta, each with its index
      if (auto calls = tool_calls_delta(r); !calls.is_null())
        out_->write(chunk_event(ids_, std::move(calls), nullptr));
    out_->write(chunk_event(ids_, json::object(), finish_reason_of(r)));
    if (o_.include_usage)
      out_->write(usage_event(ids_, r));
    out_->write("data: [DONE]\n\n");
    out_->end();
  }

  void failed(call_failure f) override {
    if (answered_.exchange(true))
      return;
    fail(std::move(f));
  }

private:
  void fail(call_failure f) {
    note_failure(o_.audit.get(), f);
    if (started_.load()) { // bytes already went out: an explicit error event, and no [DONE]
      out_->write(stream_error_event(f.detail));
      out_->end();
      return;
    }
    send_error(*out_, error_for(f, o_.cache_only));
  }

  void open_stream() {
    if (started_.exchange(true))
      return;
    out_->start_stream(200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}});
    out_->write(chunk_event(ids_, json{{"role", "assistant"}, {"content", ""}}, nullptr));
  }

  std::shared_ptr<responder> out_;
  chat_answer_options o_;
  steady::time_point t0_;
  completion_ids ids_; // the fingerprint is known once the answer is (streamed chunks before it go without)
  std::atomic<bool> tools_streamed_{false}; // set on the io thread that streams; read by done()
  std::atomic<bool> started_{false}, answered_{false};
};

} // namespace

std::shared_ptr<call_sink> make_chat_sink(std::shared_ptr<responder> out, chat_answer_options opts,
                                          steady::time_point t0) {
  return std::make_shared<chat_sink>(std::move(out), std::move(opts), t0);
}

} // namespace squad::server
