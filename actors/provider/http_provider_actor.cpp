// The provider actor for kind openai and kind anthropic: builds the upstream request, hands it to the
// provider's HTTP pool (io threads), and answers when the io side reports back. One message crosses each way:
// provider_call in; (done, id, upstream_reply) back from the io thread, which the actor delivers.
#include "actors/provider/chat_params.hpp"
#include "actors/provider/embeddings.hpp"
#include "actors/provider/provider.hpp"
#include "actors/provider/reply_assembler.hpp"
#include "actors/stray_errors.hpp"

#include <unordered_map>

namespace squad {

namespace {

struct http_provider_state {
  provider_config cfg;
  std::shared_ptr<net::http_pool> pool;
  api_kind kind = api_kind::openai;
  std::string target;            // the request path
  std::string embeddings_target; // the same for embeddings calls: <base path>/embeddings
  std::uint64_t next_id = 0;
  std::unordered_map<std::uint64_t, caf::response_promise> pending;
  static inline const char* name = "squad.http_provider";
};

using http_provider_actor = provider_actor::stateful_pointer<http_provider_state>;

// Lives on the io side for one exchange; reports to the actor exactly once.
class call_handler final : public net::http_handler {
public:
  call_handler(caf::actor owner, std::uint64_t id, api_kind kind, const std::string& secret,
               std::shared_ptr<call_sink> sink, bool stream, bool direct, chain_target target)
      : owner_(std::move(owner)), id_(id), assembler_(kind, secret), started_(std::chrono::steady_clock::now()),
        sink_(std::move(sink)), stream_(stream), direct_(direct), target_(std::move(target)) {}

  void expect_embeddings() { assembler_.expect_embeddings(); }

  void on_head(int status, const header_list& headers) override {
    assembler_.on_head(status, headers, std::chrono::system_clock::now());
  }

  void on_data(std::string_view piece) override {
    auto delta = assembler_.on_data(piece);
    if (stream_ && sink_ && !delta.empty()) // streamed straight on to the client, from this io thread
      sink_->delta(delta);
    if (auto tools = assembler_.take_tool_deltas(); stream_ && sink_ && !tools.empty())
      sink_->tool_delta(tools);
  }

  // A streamed answer whose client hung up: stop the upstream generating it (tokens cost money). Asking is a
  // system call (a peek at the client's socket): at most every 100ms, not for every token.
  bool wanted() const override {
    if (!stream_ || !sink_)
      return true;
    auto now = std::chrono::steady_clock::now();
    if (now - last_asked_ < std::chrono::milliseconds{100})
      return true;
    last_asked_ = now;
    return !sink_->abandoned();
  }

  void on_done(net::http_failure failure, const std::string& detail) override {
    auto reply = assembler_.finish(failure, detail);
    auto took = std::chrono::steady_clock::now() - started_;
    reply.latency_ms = std::chrono::duration_cast<millis>(took).count();
    reply.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
    // A good answer goes to the client from here; the dispatcher's later delivery to the sink is then a no-op.
    // Anything else (a failure, an empty or truncated answer) is the dispatcher's to judge: fallback, escalation.
    if (direct_ && sink_ && reply.result == outcome::ok && reply.finish_reason != "length" &&
        (reply.text.find_first_not_of(" \t\r\n") != std::string::npos || !reply.tool_calls_json.empty() ||
         !reply.embeddings_json.empty())) {
      call_result r;
      r.embeddings_json = reply.embeddings_json;
      r.text = reply.text;
      r.tool_calls_json = reply.tool_calls_json;
      r.system_fingerprint = reply.system_fingerprint;
      r.logprobs_json = reply.logprobs_json;
      r.finish_reason = reply.finish_reason;
      r.served_by = target_;
      r.usage = reply.usage;
      r.latency_ms = reply.latency_ms;
      r.upstream_us = reply.latency_us;
      r.attempts.push_back({target_.provider, target_.model, "ok", {}, reply.latency_ms, true});
      sink_->done(std::move(r));
    }
    caf::anon_send(owner_, atoms::done_v, id_, std::move(reply));
  }

private:
  caf::actor owner_;
  std::uint64_t id_;
  reply_assembler assembler_;
  std::chrono::steady_clock::time_point started_;
  std::shared_ptr<call_sink> sink_; // set when the caller streams to a client or is answered from here
  bool stream_, direct_;
  chain_target target_;
  mutable std::chrono::steady_clock::time_point last_asked_{}; // when wanted() last asked the sink
};

provider_actor::behavior_type http_provider(http_provider_actor self, provider_config cfg,
                                            std::shared_ptr<net::http_pool> pool) {
  survive_stray_errors(self, "provider");
  auto& st = self->state;
  st.kind = cfg.kind == "anthropic" ? api_kind::anthropic : api_kind::openai;
  st.target = provider_request_path(cfg.kind, pool->options().origin.path);
  st.embeddings_target = pool->options().origin.path + "/embeddings";
  st.cfg = std::move(cfg);
  st.pool = std::move(pool);
  return {
      [self](provider_call& call) -> caf::result<upstream_reply> {
        auto& st = self->state;
        bool embeds = !call.request.embed_input_json.empty(); // its params are the embeddings API's, passed as sent
        if (auto no = embeds ? std::nullopt : refuse_params(family_of(st.cfg.kind), call.request)) {
          upstream_reply r;
          r.result = outcome::bad_request;
          r.detail = no->message + " (param " + no->param + ")";
          return r;
        }
        bool embed = embeds;
        if (embed && st.kind == api_kind::anthropic) { // a fallback chain goes on to a target that has embeddings
          upstream_reply r;
          r.result = outcome::bad_request;
          r.detail = embeddings_refusal(st.cfg.kind, st.cfg.name);
          return r;
        }
        bool stream = !embed && (call.request.stream || st.cfg.http.stream);
        net::http_request req;
        req.target = st.target;
        if (embed) {
          req.target = st.embeddings_target;
          req.headers = openai::request_headers(st.cfg.api_key);
          req.body = embeddings_body(call.request, call.target.model_id);
        } else if (st.kind == api_kind::openai) {
          req.headers = openai::request_headers(st.cfg.api_key);
          req.body = openai::build_request_body(call.request, call.target.model_id, stream);
        } else {
          req.headers = anthropic::request_headers(st.cfg.api_key);
          req.body = anthropic::build_request_body(call.request, call.target.model_id, stream);
        }
        if (stream)
          req.headers.emplace_back("accept", "text/event-stream");
        if (call.request.timeout_ms > 0)
          req.total = millis{call.request.timeout_ms};
        if (call.request.head_ms > 0)
          req.first_byte = millis{call.request.head_ms};
        auto id = st.next_id++;
        st.pending.emplace(id, self->make_response_promise());
        bool direct = call.request.answer_direct;
        auto sink = call.request.stream || direct ? call.request.sink : nullptr;
        auto handler = std::make_shared<call_handler>(caf::actor_cast<caf::actor>(self), id, st.kind, st.cfg.api_key,
                                                      std::move(sink), call.request.stream, direct, call.target);
        if (embed)
          handler->expect_embeddings();
        st.pool->submit(std::move(req), std::move(handler));
        return caf::delegated<upstream_reply>{};
      },
      [self](atoms::done, std::uint64_t id, upstream_reply& reply) {
        auto& pending = self->state.pending;
        auto it = pending.find(id);
        if (it == pending.end())
          return;
        it->second.deliver(std::move(reply));
        pending.erase(it);
      },
      [](atoms::done, std::uint64_t) {}, // a simulated provider's: never sent here
      [](atoms::crash) { throw std::runtime_error("crash requested (test hook)"); },
  };
}

} // namespace

std::string provider_request_path(const std::string& kind, const std::string& base_path) {
  if (kind == "anthropic")
    return base_path + (base_path.ends_with("/v1") ? "/messages" : "/v1/messages");
  return base_path + "/chat/completions";
}

net::pool_options provider_pool_options(const provider_config& cfg, const net::url_parts& origin) {
  net::pool_options o;
  o.name = cfg.name;
  o.origin = origin;
  o.ca_file = cfg.ca_file;
  // Unset: every call the limits let in at once (the provider's, and each model's with its own limits).
  auto cap = cfg.http.max_connections;
  if (cap <= 0) {
    cap = cfg.limits.concurrency;
    for (const auto& m : cfg.models)
      cap += m.limits ? m.limits->concurrency : 0;
  }
  o.max_connections = static_cast<std::size_t>(std::max<std::int64_t>(1, cap));
  o.timeouts = {cfg.http.connect_timeout, cfg.http.first_byte_timeout, cfg.http.idle_timeout, cfg.http.total_timeout};
  return o;
}

std::shared_ptr<net::http_pool> make_provider_pool(net::io_runtime& io, const provider_config& cfg, std::string& why) {
  std::string url_why;
  auto origin = net::parse_url(cfg.base_url, url_why);
  if (!origin) {
    why = "providers." + cfg.name + ".base_url: " + url_why;
    return nullptr;
  }
  std::string pool_why;
  auto pool = io.make_pool(provider_pool_options(cfg, *origin), pool_why);
  if (!pool)
    why = "providers." + cfg.name + (cfg.ca_file ? ".ca_file: " : ".base_url: ") + pool_why;
  return pool;
}

provider_actor spawn_http_provider(caf::local_actor* parent, const provider_config& cfg,
                                   std::shared_ptr<net::http_pool> pool) {
  return parent->spawn(http_provider, cfg, std::move(pool));
}

} // namespace squad
