#include "runtime/server/gateway.hpp"
#include "runtime/time/duration.hpp"
#include "actors/provider/chat_params.hpp"
#include "runtime/metrics/registry.hpp"
#include "runtime/net/http_client.hpp"
#include "runtime/server/api_ids.hpp"
#include "runtime/server/chat_request.hpp"
#include "runtime/server/chat_sink.hpp"
#include "runtime/server/ws_flow.hpp"

#include <nlohmann/json.hpp>

namespace squad::server {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

constexpr int max_json_depth = 32;
const header_list json_headers{{"Content-Type", "application/json"}};

metrics::registry& reg() { return metrics::registry::global(); }

void describe_metrics() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& r = reg();
    r.describe("squad_http_requests_total", metrics::kind::counter, "HTTP requests answered, by route and status");
    r.describe("squad_http_request_duration_seconds", metrics::kind::histogram,
               "time from a request's arrival to the end of its answer, by route");
    r.describe("squad_gateway_overhead_seconds", metrics::kind::histogram,
               "time a chat call spent in Squad, outside the upstream exchanges");
    r.describe("squad_auth_refusals_total", metrics::kind::counter, "requests refused by auth or key limits, by reason");
    r.describe("squad_ws_sessions", metrics::kind::gauge, "WebSocket sessions open");
    r.describe("squad_ws_sessions_total", metrics::kind::counter, "WebSocket sessions opened since start");
    r.describe("squad_ws_deltas_dropped_total", metrics::kind::counter,
               "step.delta messages dropped for WebSocket clients that read too slowly (each run then gets a lagged marker)");
    r.describe("squad_ws_errors_total", metrics::kind::counter, "error messages sent to WebSocket clients");
    r.describe("squad_slow_clients_cut_total", metrics::kind::counter,
               "connections cut off because the client read too slowly (http: over 8 MiB of answer queued; ws: its "
               "send queue full of lifecycle events)");
    r.describe("squad_http_connections", metrics::kind::gauge, "HTTP connections open");
    r.describe("squad_events_total", metrics::kind::counter,
               "run and call events by type: step.fallback, step.degraded, call.shed, call.skipped, call.cached, ...");
    r.describe("squad_upstream_calls_total", metrics::kind::counter, "upstream calls by provider and outcome");
    r.describe("squad_upstream_latency_seconds", metrics::kind::histogram, "upstream exchange time by provider");
    r.describe("squad_budget_decisions_total", metrics::kind::counter,
               "budget allocator decisions by priority class, action (call, cache, skip, shed) and reason");
    r.describe("squad_limiter_queue_depth", metrics::kind::gauge, "calls waiting in a provider's limiter queue");
    r.describe("squad_limiter_in_flight", metrics::kind::gauge, "calls holding a provider's concurrency permit");
    r.describe("squad_limiter_effective_rate_per_second", metrics::kind::gauge,
               "a provider's admitted rate after throttling");
    r.describe("squad_limiter_throttle_factor", metrics::kind::gauge, "adaptive throttle (1: none, 0.5: halved)");
    r.describe("squad_limiter_window_occupancy", metrics::kind::gauge, "calls in a provider's current limit window");
    r.describe("squad_limiter_window_cap", metrics::kind::gauge,
               "calls a provider's limit window admits now (its requests limit after throttling)");
    r.describe("squad_limiter_paused_seconds", metrics::kind::gauge, "time left in a Retry-After pause");
    r.describe("squad_limiter_wait_seconds", metrics::kind::histogram, "time calls waited in a limiter queue");
    r.describe("squad_breaker_state", metrics::kind::gauge, "circuit breaker: 0 closed, 1 open, 2 half-open");
    r.describe("squad_breaker_opens_total", metrics::kind::counter,
               "times a provider's breaker opened (from 0 again when its actor restarts)");
    r.describe("squad_accept_errors_total", metrics::kind::counter,
               "connections not accepted at once (reason no_descriptors: out of file descriptors; retried after 50ms)");
    r.describe("squad_calls_abandoned_total", metrics::kind::counter,
               "calls dropped unsent: their client closed its connection while they waited for a slot");
    r.describe("squad_pressure_level", metrics::kind::gauge, "0 normal, 1 elevated, 2 critical");
    r.describe("squad_calls_in_flight", metrics::kind::gauge, "calls inside the dispatcher");
    r.describe("squad_cache_entries", metrics::kind::gauge, "answers in the response cache");
    r.describe("squad_cache_hits_total", metrics::kind::counter, "response cache hits");
    r.describe("squad_cache_misses_total", metrics::kind::counter, "response cache misses");
  });
}

/// Counts what each answer was, releases the key's concurrency slot, and times the request.
class counted_responder final : public responder {
public:
  counted_responder(std::shared_ptr<responder> inner, std::string route, steady::time_point t0,
                    std::function<void()> on_end = {}, std::string request_id = {})
    : inner_(std::move(inner)), route_(std::move(route)), t0_(t0), on_end_(std::move(on_end)),
      request_id_(std::move(request_id)) {}
  ~counted_responder() override { finish(); }
  void reply(int status, header_list headers, std::string body) override {
    status_ = status;
    if (!request_id_.empty())
      headers.emplace_back("x-request-id", request_id_);
    inner_->reply(status, std::move(headers), std::move(body));
    finish();
  }
  void start_stream(int status, header_list headers) override {
    status_ = status;
    if (!request_id_.empty())
      headers.emplace_back("x-request-id", request_id_);
    inner_->start_stream(status, std::move(headers));
  }
  void write(std::string piece) override { inner_->write(std::move(piece)); }
  void end() override {
    inner_->end();
    finish();
  }
  bool gone() const override { return inner_->gone(); }
  bool hung_up() const override { return inner_->hung_up(); }

private:
  void finish() {
    if (done_.exchange(true))
      return;
    if (route_.empty()) {
      if (on_end_)
        on_end_();
      return;
    }
    auto code = status_ ? std::to_string(status_) : std::string{"unanswered"};
    reg().inc("squad_http_requests_total", {{"route", route_}, {"status", code}});
    reg().observe("squad_http_request_duration_seconds", {{"route", route_}},
                  std::chrono::duration<double>(steady::now() - t0_).count());
    if (on_end_)
      on_end_();
  }
  std::shared_ptr<responder> inner_;
  std::string route_;
  steady::time_point t0_;
  std::function<void()> on_end_;
  std::string request_id_; // echoed on every answer (the client's own, when it sent one)
  int status_ = 0;
  std::atomic<bool> done_{false};
};

// Parses with a nesting limit; on failure `why` says what is wrong.
std::optional<json> parse_body(const std::string& body, std::string& why) {
  int deepest = 0;
  json::parser_callback_t cb = [&deepest](int depth, json::parse_event_t, json&) {
    deepest = std::max(deepest, depth);
    return depth <= max_json_depth;
  };
  try {
    auto j = json::parse(body, cb);
    if (deepest > max_json_depth) {
      why = "the JSON body is nested deeper than " + std::to_string(max_json_depth) + " levels";
      return std::nullopt;
    }
    return j;
  } catch (const json::parse_error& e) { // e.what() is the library's wording: say where, in our words
    why = e.byte <= 1 && body.empty() ? std::string{"the body is empty: send a JSON object"}
                                      : "the body is not valid JSON (error near byte " + std::to_string(e.byte) + ")";
    return std::nullopt;
  }
}

} // namespace

std::string error_body(const std::string& message, const std::string& type, const std::string& param,
                       const std::string& code) {
  json e{{"error",
          {{"message", message},
           {"type", type},
           {"param", param.empty() ? json(nullptr) : json(param)},
           {"code", code.empty() ? json(nullptr) : json(code)}}}};
  return e.dump(-1, ' ', false, json::error_handler_t::replace);
}

gateway::gateway(caf::actor_system& sys, std::shared_ptr<directory> dir, const loaded_squad& squad,
                 std::vector<config_problem>& /*problems: none left here since validate() checks aliases*/)
  : sys_(sys), dir_(std::move(dir)), cfg_(squad.cfg), runs_(std::make_shared<run_hub>(sys, dir_, squad)) {
  describe_metrics();
  for (auto& p : squad.personas) {
    api_model m;
    m.name = "persona/" + p.id;
    m.persona = p.id;
    m.chain = squad.chains.at(p.id);
    m.priority = p.priority;
    m.kind = "persona";
    models_[m.name] = m;
  }
  for (auto& p : cfg_->providers) {
    providers_.push_back(p.name);
    for (auto& md : p.models) {
      api_model m;
      m.name = p.name + "/" + md.name;
      m.chain = {chain_target{p.name, md.name, md.id, md.tier}};
      m.kind = "model";
      models_[m.name] = m;
    }
  }
  for (auto& [alias, target] : cfg_->aliases) {
    auto it = models_.find(target);
    if (it == models_.end() || it->second.kind == "alias")
      continue; // load_squad's validate() reported it ("aliases.<name>: names no persona or provider model")
    auto m = it->second;
    m.name = alias;
    m.kind = "alias";
    m.target = target;
    models_[alias] = m;
  }
  for (auto& k : cfg_->server.keys) {
    key_index_[k.sha256] = keys_->keys.size();
    keys_->keys.push_back(std::make_unique<key_limits>(k));
  }
}

bool gateway::authorize(const request& req, std::shared_ptr<responder>& out, std::size_t* key) {
  if (key)
    *key = no_key;
  if (cfg_->server.auth == "none") {
    if (!req.peer.empty() && req.peer != "127.0.0.1" && req.peer != "::1" && req.peer.rfind("::ffff:127.", 0) != 0) {
      reg().inc("squad_auth_refusals_total", {{"reason", "not_loopback"}});
      send_error(*out, 403, "this server has auth: none and serves loopback clients only", "permission_denied");
      return false;
    }
    return true;
  }
  auto h = net::trim_ows(req.header("authorization"));
  if (h.empty()) {
    reg().inc("squad_auth_refusals_total", {{"reason", "missing_key"}});
    send_error(*out, 401, "missing API key: send Authorization: Bearer <key>", "invalid_request_error", {}, "missing_api_key");
    return false;
  }
  if (h.size() < 7 || !std::equal(h.begin(), h.begin() + 7, "Bearer ", [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      })) {
    reg().inc("squad_auth_refusals_total", {{"reason", "bad_scheme"}});
    send_error(*out, 401, "the Authorization header must be: Bearer <key>", "invalid_request_error", {}, "invalid_api_key");
    return false;
  }
  auto it = key_index_.find(sha256_hex(net::trim_ows(h.substr(7))));
  if (it == key_index_.end()) {
    reg().inc("squad_auth_refusals_total", {{"reason", "invalid_key"}});
    send_error(*out, 401, "invalid API key", "invalid_request_error", {}, "invalid_api_key");
    return false;
  }
  if (key)
    *key = it->second;
  return true;
}

key_verdict gateway::key_table::admit(std::size_t key) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
  std::lock_guard<std::mutex> g{m};
  auto v = keys[key]->admit(steady::now(), secs / 86400, 86400 - secs % 86400);
  if (!v.ok)
    reg().inc("squad_auth_refusals_total", {{"reason", "key_limit"}});
  return v;
}

void gateway::key_table::finish(std::size_t key) {
  std::lock_guard<std::mutex> g{m};
  keys[key]->finish();
}

bool gateway::admit_key(std::size_t key, std::shared_ptr<responder>& out) {
  auto v = keys_->admit(key);
  if (!v.ok) {
    send_error(*out, 429, v.why, "rate_limit_exceeded", {}, "key_limit", v.retry_after_s);
    return false;
  }
  // The key's concurrency slot is held until the answer ends (route "": not counted again).
  out = std::make_shared<counted_responder>(out, "", steady::now(), [table = keys_, key] { table->finish(key); });
  return true;
}

void gateway::handle(request req, std::shared_ptr<responder> out) {
  auto t0 = steady::now();
  auto path = std::string{req.path()};
  auto route = path == "/v1/chat/completions" ? "chat"
               : path == "/v1/models"         ? "models"
               : path.rfind("/v1/models/", 0) == 0 ? "model"
               : path == "/metrics"           ? "metrics"
               : path == "/healthz"           ? "healthz"
               : path == "/readyz"            ? "readyz"
               : path == "/v1/ws"             ? "ws"
               : path == "/v1/runs" || path.rfind("/v1/runs/", 0) == 0
                 ? (path.ends_with("/events") ? "run_events" : "runs")
                 : "other";
  out = std::make_shared<counted_responder>(std::move(out), route, t0, std::function<void()>{},
                                            request_id_for(net::trim_ows(req.header("x-request-id"))));
  std::string r = route;
  auto method_is = [&](const char* m) {
    if (req.method == m)
      return true;
    auto headers = json_headers;
    headers.emplace_back("Allow", m);
    out->reply(405, std::move(headers), error_body(req.method + " is not allowed on " + path + " (use " + m + ")",
                                                   "invalid_request_error"));
    return false;
  };
  if (r == "healthz") {
    if (method_is("GET"))
      out->reply(200, json_headers, R"({"status":"ok"})");
    return;
  }
  if (r == "readyz") {
    if (method_is("GET")) {
      if (draining_)
        out->reply(503, json_headers, R"({"status":"draining"})");
      else
        out->reply(200, json_headers, R"({"status":"ready"})");
    }
    return;
  }
  if (r == "other")
    return send_error(*out, 404, "no route " + req.method + " " + path +
                                   " (routes: POST /v1/chat/completions, GET /v1/models, GET /v1/models/{id}, POST|GET /v1/runs, "
                                   "GET|DELETE /v1/runs/{id}, GET /v1/runs/{id}/events, "
                                   "POST /v1/runs/{id}/steps/{step}/feedback, GET /v1/ws (WebSocket), GET /metrics, "
                                   "GET /healthz, GET /readyz)",
                      "invalid_request_error", {}, "not_found");
  std::size_t key = no_key;
  if (!authorize(req, out, &key))
    return;
  if (r == "models") {
    if (method_is("GET"))
      list_models(out);
    return;
  }
  if (r == "model") {
    if (method_is("GET"))
      get_model(out, path.substr(std::string_view{"/v1/models/"}.size()));
    return;
  }
  if (r == "metrics") {
    if (method_is("GET"))
      metrics(out);
    return;
  }
  if (r == "ws") {
    auto headers = json_headers;
    headers.emplace_back("Upgrade", "websocket");
    return out->reply(426, std::move(headers),
                      error_body("GET /v1/ws is a WebSocket endpoint: send Connection: Upgrade and Upgrade: websocket",
                                 "invalid_request_error", {}, "upgrade_required"));
  }
  if (r == "runs" || r == "run_events")
    return runs_api(req, out, path, key);
  if (method_is("POST"))
    chat(req, out, t0, key);
}

namespace {
json model_entry(const api_model& m) {
  json e{{"id", m.name}, {"object", "model"}, {"created", 0}, {"owned_by", "squad"}, {"squad_kind", m.kind}};
  if (m.kind == "alias")
    e["squad_target"] = m.target;
  return e;
}

// %XX escapes decoded (an SDK may send persona%2Fanalyst); a bad escape is kept as written.
std::string percent_decoded(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
} // namespace

void gateway::list_models(std::shared_ptr<responder> out) {
  json data = json::array();
  for (auto& [name, m] : models_)
    data.push_back(model_entry(m));
  out->reply(200, json_headers, json{{"object", "list"}, {"data", std::move(data)}}.dump());
}

void gateway::get_model(std::shared_ptr<responder> out, const std::string& raw_id) {
  auto id = percent_decoded(raw_id);
  auto it = models_.find(id);
  if (it == models_.end())
    return send_error(*out, 404, "no model \"" + id + "\" (GET /v1/models lists them)", "invalid_request_error",
                      "model", "model_not_found");
  out->reply(200, json_headers, model_entry(it->second).dump(-1, ' ', false, json::error_handler_t::replace));
}

void gateway::chat(request& req, std::shared_ptr<responder> out, steady::time_point t0, std::size_t key) {
  auto ctype = req.header("content-type");
  if (!ctype.empty() && ctype.find("json") == std::string_view::npos)
    return send_error(*out, 415, "Content-Type must be application/json (got " + std::string{ctype} + ")",
                      "invalid_request_error");
  std::string why;
  auto body = parse_body(req.body, why);
  if (!body)
    return send_error(*out, 400, why, "invalid_request_error");
  auto& b = *body;
  auto bad = [&](const std::string& param, const std::string& message) {
    send_error(*out, 400, message, "invalid_request_error", param);
  };
  if (!b.is_object())
    return bad("", "the body must be a JSON object");
  if (!b.contains("model") || !b["model"].is_string())
    return bad("model", "model is required and must be a string: persona/<id>, <provider>/<model> or an alias");
  auto model_name = b["model"].get<std::string>();
  auto found = models_.find(model_name);
  if (found == models_.end()) {
    std::string some;
    for (auto& [name, m] : models_) {
      if (some.size() > 200)
        break;
      some += (some.empty() ? "" : ", ") + name;
    }
    return send_error(*out, 404,
                      "unknown model \"" + model_name + "\": use persona/<id>, <provider>/<model> or an alias (e.g. " +
                        some + "; GET /v1/models lists all)",
                      "invalid_request_error", "model", "model_not_found");
  }
  auto& model = found->second;
  if (key != no_key && !cfg_->server.keys[key].models.empty()) {
    auto& allowed = cfg_->server.keys[key].models;
    if (std::find(allowed.begin(), allowed.end(), model_name) == allowed.end()) {
      reg().inc("squad_auth_refusals_total", {{"reason", "model_not_allowed"}});
      std::string list;
      for (auto& a : allowed)
        list += (list.empty() ? "" : ", ") + a;
      return send_error(*out, 403, "this API key may not use model \"" + model_name + "\" (allowed: " + list + ")",
                        "permission_denied", "model", "model_not_allowed");
    }
  }
  call_request call;
  chat_flags flags;
  if (auto no = read_chat_body(b, call, flags))
    return bad(no->param, no->message);
  // A parameter no target of the chain can honour is the client's to fix (400); when only some cannot, the
  // call goes ahead and those targets refuse it (the chain falls back past them, with a step.fallback event).
  std::optional<std::string> refused_param, refused_why;
  bool any_can = false;
  for (auto& t : model.chain) {
    auto p = std::find_if(cfg_->providers.begin(), cfg_->providers.end(), [&](auto& pc) { return pc.name == t.provider; });
    auto no = refuse_params(family_of(p == cfg_->providers.end() ? std::string{"openai"} : p->kind), call);
    if (!no) {
      any_can = true;
      break;
    }
    if (!refused_param) {
      refused_param = no->param;
      refused_why = "provider " + t.provider + ": " + no->message;
    }
  }
  if (!any_can && refused_param)
    return send_error(*out, 400, *refused_why + " (model " + model_name + ")", "invalid_request_error", *refused_param,
                      "unsupported_parameter");
  // Squad's own headers.
  call.priority = static_cast<std::uint8_t>(model.priority);
  if (auto h = net::trim_ows(req.header("x-squad-priority")); !h.empty()) {
    std::string up{h};
    if (!up.empty())
      up[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(up[0])));
    auto p = parse_priority(up);
    if (!p)
      return send_error(*out, 400, "X-Squad-Priority must be P0, P1, P2 or P3 (got \"" + std::string{h} + "\")",
                        "invalid_request_error", "X-Squad-Priority");
    call.priority = static_cast<std::uint8_t>(*p);
  }
  call.cache_mode = cache_bypass; // API calls use the response cache only when they ask
  if (auto h = net::trim_ows(req.header("x-squad-cache")); !h.empty()) {
    if (h == "use")
      call.cache_mode = cache_use;
    else if (h == "only")
      call.cache_mode = cache_only;
    else if (h != "bypass")
      return send_error(*out, 400, "X-Squad-Cache must be use, only or bypass (got \"" + std::string{h} + "\")",
                        "invalid_request_error", "X-Squad-Cache");
  }
  if (auto h = net::trim_ows(req.header("x-squad-run")); !h.empty()) { // calls with one id share one budget of LLM calls
    if (h.size() > 128 || h.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") !=
                            std::string_view::npos)
      return send_error(*out, 400, "X-Squad-Run must be 1 to 128 of [A-Za-z0-9._:-] (got \"" + std::string{h} + "\")",
                        "invalid_request_error", "X-Squad-Run");
    call.budget_id = std::string{h};
  }
  call.timeout_ms = cfg_->server.call_timeout.count();
  if (auto h = net::trim_ows(req.header("x-squad-timeout")); !h.empty()) { // the client's own deadline
    std::optional<millis> t;
    if (h.find_first_not_of("0123456789") == std::string_view::npos && h.size() < 10)
      t = millis{std::stoll(std::string{h})};
    else
      t = parse_duration(h);
    if (!t || t->count() <= 0 || *t > cfg_->server.call_timeout)
      return send_error(*out, 400,
                        "X-Squad-Timeout must be milliseconds or a duration (500ms, 30s) from 1ms to server.call_timeout (" +
                          std::to_string(cfg_->server.call_timeout.count()) + "ms) (got \"" + std::string{h} + "\")",
                        "invalid_request_error", "X-Squad-Timeout");
    call.timeout_ms = t->count();
  }
  if (key != no_key && !admit_key(key, out)) // limits count only calls that would be sent
    return;
  auto id = "chatcmpl-" + random_id(24);
  call.trace_id = id;
  call.stream = flags.stream;
  call.sink = make_chat_sink(out, {id, model_name, flags.stream, flags.include_usage, call.cache_mode == cache_only}, t0);
  call.chain = model.chain;
  // Straight to the persona's (or, for a provider/model, the dispatcher's) handle: one crossing from this io thread
  // to the actors. A handle missing (between a crash and its restart) answers 503 through the sink.
  auto dir = dir_->get();
  if (!model.persona.empty()) {
    if (auto p = dir->persona(model.persona))
      return caf::anon_send(p, std::move(call));
  } else if (dir->dispatcher) {
    return caf::anon_send(dir->dispatcher, std::move(call));
  }
  std::exchange(call.sink, nullptr)->failed(squad_errc::child_unavailable,
                                            (model.persona.empty() ? std::string{"the dispatcher"} : "persona " + model.persona) +
                                              " is restarting; try again");
}

void gateway::metrics(std::shared_ptr<responder> out) {
  if (server_) {
    auto s = server_->stats();
    reg().set("squad_http_connections", {}, static_cast<double>(s.connections_open));
    reg().set("squad_ws_sessions", {}, static_cast<double>(s.ws_open));
  }
  // Ask each limiter, breaker and the dispatcher for their state, then render everything.
  auto dir = dir_->get();
  std::vector<std::pair<std::string, caf::actor>> asked{{"dispatcher", caf::actor_cast<caf::actor>(dir->dispatcher)}};
  for (auto& p : providers_)
    if (auto* h = dir->provider(p)) {
      asked.emplace_back(p + ":limiter", caf::actor_cast<caf::actor>(h->limiter));
      asked.emplace_back(p + ":breaker", caf::actor_cast<caf::actor>(h->breaker));
    }
  sys_.spawn([out, asked](caf::event_based_actor* self) {
    auto left = std::make_shared<std::size_t>(asked.size());
    auto finish = [out, left] {
      if (--*left > 0)
        return;
      out->reply(200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}}, reg().render());
    };
    for (auto& [path, to] : asked)
      self->request(to, std::chrono::seconds{2}, atoms::stats_v)
        .then(
          [finish, path = path](std::string& text) {
            auto j = json::parse(text, nullptr, false);
            if (j.is_object() && path.ends_with(":limiter")) {
              metrics::labels l{{"provider", j.value("provider", "")}};
              reg().set("squad_limiter_queue_depth", l, j.value("queue_depth", 0.0));
              reg().set("squad_limiter_in_flight", l, j.value("in_flight", 0.0));
              reg().set("squad_limiter_effective_rate_per_second", l, j.value("effective_rate_per_s", 0.0));
              reg().set("squad_limiter_throttle_factor", l, j.value("throttle_factor", 1.0));
              reg().set("squad_limiter_window_occupancy", l, j.value("window_occupancy", 0.0));
              reg().set("squad_limiter_window_cap", l, j.value("window_cap", 0.0));
              reg().set("squad_limiter_paused_seconds", l, j.value("paused_ms", 0.0) / 1000);
            } else if (j.is_object() && path.ends_with(":breaker")) {
              metrics::labels l{{"provider", j.value("provider", "")}};
              auto phase = j.value("phase", "closed");
              reg().set("squad_breaker_state", l, phase == "closed" ? 0 : phase == "open" ? 1 : 2);
              reg().set("squad_breaker_opens_total", l, j.value("opens", 0.0));
            } else if (j.is_object()) {
              auto p = j.value("pressure", "normal");
              reg().set("squad_pressure_level", {}, p == "normal" ? 0 : p == "elevated" ? 1 : 2);
              reg().set("squad_calls_in_flight", {}, j.value("calls_in_flight", 0.0));
              if (j.contains("cache")) {
                reg().set("squad_cache_entries", {}, j["cache"].value("entries", 0.0));
                reg().set("squad_cache_hits_total", {}, j["cache"].value("hits", 0.0));
                reg().set("squad_cache_misses_total", {}, j["cache"].value("misses", 0.0));
              }
            }
            finish();
          },
          [finish](caf::error&) { finish(); });
  });
}

std::optional<run_request> parse_run_request(const json& b, run_refusal& why) {
  auto bad = [&](const std::string& param, const std::string& message) {
    why = {400, message, param, "invalid_value"};
    return std::nullopt;
  };
  if (!b.is_object())
    return bad("", "the body must be a JSON object: {task, workflow?, budget?, feedback?}");
  run_request r;
  if (!b.contains("task") || !b["task"].is_string())
    return bad("task", "task is required: a string saying what the squad should do");
  r.task = b["task"].get<std::string>();
  if (b.contains("workflow") && !b["workflow"].is_null()) {
    if (!b["workflow"].is_string())
      return bad("workflow", "workflow must be a string (a file name under workflows_dir, without .yaml)");
    r.workflow = b["workflow"].get<std::string>();
    if (r.workflow.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
      return bad("workflow", "workflow must be [a-z0-9_-]+ (got \"" + r.workflow + "\")");
  }
  if (b.contains("budget") && !b["budget"].is_null()) {
    auto& bu = b["budget"];
    if (!bu.is_object())
      return bad("budget", "budget must be an object: {calls?, tokens?}");
    for (auto& [k, v] : bu.items()) {
      if (k != "calls" && k != "tokens")
        return bad("budget." + k, "unknown budget field " + k + " (use calls, tokens)");
      if (!v.is_number_integer() || v.get<std::int64_t>() < (k == "calls" ? 1 : 0))
        return bad("budget." + k, "budget." + k + " must be an integer >= " + (k == "calls" ? "1" : "0"));
      (k == "calls" ? r.budget_calls : r.budget_tokens) = v.get<std::int64_t>();
    }
  }
  if (b.contains("feedback") && !b["feedback"].is_null()) {
    auto& f = b["feedback"];
    if (f.is_array()) {
      for (auto& x : f) {
        if (!x.is_string())
          return bad("feedback", "feedback must list step ids, or map step ids to a timeout in ms");
        r.feedback[x.get<std::string>()] = millis{300000};
      }
    } else if (f.is_object()) {
      for (auto& [k, v] : f.items()) {
        if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 86400000)
          return bad("feedback." + k, "feedback." + k + " must be a timeout in ms from 1 to 86400000");
        r.feedback[k] = millis{v.get<std::int64_t>()};
      }
    } else {
      return bad("feedback", "feedback must list step ids, or map step ids to a timeout in ms");
    }
  }
  return r;
}

namespace {

bool is_end(const json& ev) {
  auto t = ev.value("type", "");
  return t == "run.completed" || t == "run.failed";
}

// One WebSocket session: several runs, each followed until it ends. Deltas are dropped when the client reads too
// slowly (its send queue past `lag_at`), and a `lagged` marker says how many before the next message of that run;
// lifecycle events are never dropped (a client that lets even those pile up to the hard queue limit is closed).
class ws_session final : public ws_handler, public std::enable_shared_from_this<ws_session> {
public:
  ws_session(std::shared_ptr<run_hub> hub, run_caller who, std::size_t lag_at,
             std::function<std::optional<std::string>()> admit)
    : hub_(std::move(hub)), who_(std::move(who)), admit_(std::move(admit)), flow_(lag_at) {}

  void on_open(std::shared_ptr<ws_connection> conn) override {
    {
      std::lock_guard<std::mutex> g{m_};
      conn_ = conn;
    }
    reg().inc("squad_ws_sessions_total");
    conn->send(json{{"type", "session.ready"},
                    {"protocol", 1},
                    {"accepts", {"run.start", "run.cancel", "step.feedback", "run.subscribe"}}}
                 .dump());
  }

  void on_message(std::string text) override {
    auto m = json::parse(text, nullptr, false);
    if (m.is_discarded() || !m.is_object() || !m.contains("type") || !m["type"].is_string())
      return error("", "each message must be a JSON object with a string \"type\"", "type");
    auto type = m["type"].get<std::string>();
    auto ref = m.contains("ref") ? m["ref"] : json(nullptr);
    auto run_id = m.value("run_id", std::string{});
    if (type == "run.start") {
      if (live_runs() >= max_runs)
        return error(ref, "this session already follows " + std::to_string(max_runs) + " runs; wait for one to end", "");
      if (admit_)
        if (auto no = admit_())
          return error(ref, *no, "");
      run_refusal why;
      auto rr = parse_run_request(m, why);
      if (!rr)
        return error(ref, why.message, why.param);
      rr->owner = who_.key;
      auto self = shared_from_this();
      auto id = hub_->start(
        *rr, why, [self](const json& ev) { return self->deliver(ev); },
        [self, ref](const std::string& id) {
          self->track(id);
          self->send_now(json{{"type", "run.accepted"}, {"run_id", id}, {"ref", ref}});
        });
      if (!id)
        return error(ref, why.message, why.param);
      return;
    }
    if (type == "run.subscribe") {
      bool already;
      {
        std::lock_guard<std::mutex> g{m_};
        already = flow_.tracks(run_id);
      } // error() takes m_ itself: never call it under the lock
      if (already)
        return error(ref, "this session already follows run \"" + run_id + "\"", "run_id");
      if (live_runs() >= max_runs)
        return error(ref, "this session already follows " + std::to_string(max_runs) + " runs; wait for one to end", "");
      auto self = shared_from_this();
      track(run_id);
      if (hub_->subscribe(run_id, who_, [self](const json& ev) { return self->deliver(ev); }) == 0) {
        untrack(run_id);
        return error(ref, "no run \"" + run_id + "\"", "run_id");
      }
      return;
    }
    if (type == "run.cancel") {
      std::string why;
      if (int st = hub_->cancel(run_id, who_, why))
        return error(ref, why, st == 404 ? "run_id" : "");
      return;
    }
    if (type == "step.feedback") {
      if (!m.contains("text") || !m["text"].is_string())
        return error(ref, "step.feedback needs text: the person's input", "text");
      std::string why;
      if (int st = hub_->feedback(run_id, who_, m.value("step_id", std::string{}), m["text"].get<std::string>(), why))
        return error(ref, why, st == 404 ? "step_id" : "");
      return;
    }
    error(ref, "unknown message type \"" + type + "\" (run.start, run.cancel, step.feedback, run.subscribe)", "type");
  }

  void on_close() override {
    {
      std::lock_guard<std::mutex> g{m_};
      conn_.reset();
    }
    // Runs go on (a REST client or a new session can follow them); this session's subscriptions end on their next
    // event, as deliver() sees the connection gone.
  }

private:
  static constexpr std::size_t max_runs = 16;

  // From the hub (under its lock, in event order). False unsubscribes.
  bool deliver(const json& ev) {
    std::shared_ptr<ws_connection> conn;
    auto run = ev.value("run_id", std::string{});
    std::size_t dropped = 0;
    {
      std::lock_guard<std::mutex> g{m_};
      conn = conn_;
      if (!conn)
        return false;
      auto d = flow_.on_event(run, ev.value("type", "") == "step.delta", is_end(ev), conn->queued());
      if (!d.tracked)
        return false;
      if (!d.send) { // dropped: the client is behind
        reg().inc("squad_ws_deltas_dropped_total");
        return true;
      }
      dropped = d.lagged;
    }
    if (dropped > 0)
      conn->send(json{{"type", "lagged"}, {"run_id", run}, {"dropped", dropped},
                      {"message", std::to_string(dropped) + " step.delta messages were dropped: the client reads too slowly; "
                                                            "step.completed carries the whole text"}}
                   .dump());
    if (!conn->send(ev.dump(-1, ' ', false, json::error_handler_t::replace))) {
      reg().inc("squad_slow_clients_cut_total", {{"kind", "ws"}});
      conn->close(); // even lifecycle events pile up: the client does not read at all
      return false;
    }
    return !is_end(ev);
  }

  void track(const std::string& id) {
    std::lock_guard<std::mutex> g{m_};
    flow_.track(id);
  }
  void untrack(const std::string& id) {
    std::lock_guard<std::mutex> g{m_};
    flow_.untrack(id);
  }
  std::size_t live_runs() {
    std::lock_guard<std::mutex> g{m_};
    return flow_.runs();
  }
  void send_now(const json& msg) {
    std::shared_ptr<ws_connection> conn;
    {
      std::lock_guard<std::mutex> g{m_};
      conn = conn_;
    }
    if (conn)
      conn->send(msg.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  void error(const json& ref, const std::string& message, const std::string& param) {
    reg().inc("squad_ws_errors_total");
    send_now(json{{"type", "error"}, {"ref", ref}, {"message", message}, {"param", param.empty() ? json(nullptr) : json(param)}});
  }

  std::shared_ptr<run_hub> hub_;
  run_caller who_;
  std::function<std::optional<std::string>()> admit_; // key limits for run.start; empty with auth: none
  std::mutex m_;
  ws_flow flow_;
  std::shared_ptr<ws_connection> conn_;
};

// Captures an answer instead of sending it (auth for a WebSocket upgrade).
class capture_responder final : public responder {
public:
  void reply(int s, header_list h, std::string b) override { status = s, headers = std::move(h), body = std::move(b); }
  void start_stream(int s, header_list h) override { status = s, headers = std::move(h); }
  void write(std::string) override {}
  void end() override {}
  bool gone() const override { return false; }
  int status = 0;
  header_list headers;
  std::string body;
};

} // namespace

std::optional<std::string> gateway::run_forbidden(std::size_t key) const {
  if (key == no_key || cfg_->server.keys[key].models.empty())
    return std::nullopt;
  return "API key " + cfg_->server.keys[key].name +
         " is limited to some models (server.keys.<name>.models); a run uses every persona of its workflow";
}

run_caller gateway::caller(std::size_t key) const {
  if (key == no_key)
    return {};
  auto& k = cfg_->server.keys[key];
  return {k.name, k.admin};
}

void gateway::runs_api(request& req, std::shared_ptr<responder> out, const std::string& path, std::size_t key) {
  auto who = caller(key);
  // /v1/runs, /v1/runs/{id}, /v1/runs/{id}/events, /v1/runs/{id}/steps/{step}/feedback
  std::vector<std::string> parts;
  for (std::size_t pos = 1; pos <= path.size();) {
    auto next = path.find('/', pos);
    if (next == std::string::npos)
      next = path.size();
    parts.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  auto allow = [&](const char* methods) {
    auto headers = json_headers;
    headers.emplace_back("Allow", methods);
    out->reply(405, std::move(headers), error_body(req.method + " is not allowed on " + path + " (use " + methods + ")",
                                                   "invalid_request_error"));
  };
  auto not_found = [&](const std::string& what) { send_error(*out, 404, what, "invalid_request_error", {}, "not_found"); };
  if (parts.size() == 2) { // /v1/runs
    if (req.method == "GET")
      return out->reply(200, json_headers, runs_->list(who).dump());
    if (req.method != "POST")
      return allow("GET, POST");
    if (auto no = run_forbidden(key))
      return send_error(*out, 403, *no, "permission_denied", {}, "model_not_allowed");
    if (key != no_key && !admit_key(key, out)) // a run counts as one request against the key's limits
      return;
    std::string why;
    auto body = parse_body(req.body, why);
    if (!body)
      return send_error(*out, 400, why, "invalid_request_error");
    run_refusal refusal;
    auto rr = parse_run_request(*body, refusal);
    std::optional<std::string> id;
    if (rr) {
      rr->owner = who.key;
      id = runs_->start(*rr, refusal);
    }
    if (!id)
      return send_error(*out, refusal.status, refusal.message, "invalid_request_error", refusal.param, refusal.code);
    auto headers = json_headers;
    headers.emplace_back("Location", "/v1/runs/" + *id);
    return out->reply(202, std::move(headers),
                      json{{"id", *id}, {"object", "squad.run"}, {"state", "running"},
                           {"events", "/v1/runs/" + *id + "/events"}}
                        .dump());
  }
  auto& id = parts[2];
  if (parts.size() == 3) {
    if (req.method == "GET") {
      auto snap = runs_->snapshot(id, who);
      if (!snap)
        return not_found("no run " + id);
      return out->reply(200, json_headers, snap->dump(-1, ' ', false, json::error_handler_t::replace));
    }
    if (req.method != "DELETE")
      return allow("GET, DELETE");
    std::string why;
    int st = runs_->cancel(id, who, why);
    if (st == 404)
      return not_found(why);
    if (st == 409)
      return send_error(*out, 409, why, "invalid_request_error", {}, "run_ended");
    return out->reply(202, json_headers, json{{"id", id}, {"state", "cancelling"}}.dump());
  }
  if (parts.size() == 4 && parts[3] == "events") {
    if (req.method != "GET")
      return allow("GET");
    // SSE: the kept events, then live ones; the stream ends after run.completed or run.failed.
    auto started = std::make_shared<std::atomic<bool>>(false);
    auto sub = runs_->subscribe(id, who, [out, started](const json& ev) {
      if (out->gone())
        return false;
      if (!started->exchange(true))
        out->start_stream(200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}});
      out->write("event: " + ev.value("type", std::string{"message"}) + "\ndata: " +
                 ev.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n");
      if (is_end(ev)) {
        out->end();
        return false;
      }
      return true;
    });
    if (sub == 0)
      return not_found("no run " + id);
    return;
  }
  if (parts.size() == 6 && parts[3] == "steps" && parts[5] == "feedback") {
    if (req.method != "POST")
      return allow("POST");
    std::string why;
    auto body = parse_body(req.body, why);
    if (!body)
      return send_error(*out, 400, why, "invalid_request_error");
    if (!body->is_object() || !body->contains("text") || !(*body)["text"].is_string())
      return send_error(*out, 400, "text is required: the person's input into the step", "invalid_request_error",
                        "text");
    int st = runs_->feedback(id, who, parts[4], (*body)["text"].get<std::string>(), why);
    if (st == 404)
      return not_found(why);
    if (st == 409)
      return send_error(*out, 409, why, "invalid_request_error", {}, "not_waiting");
    return out->reply(202, json_headers, json{{"id", id}, {"step_id", parts[4]}, {"feedback", "accepted"}}.dump());
  }
  not_found("no route " + req.method + " " + path);
}

std::shared_ptr<ws_handler> gateway::accept_ws(const request& req, ws_refusal& refusal) {
  auto refuse = [&](int status, std::string body) {
    refusal.status = status;
    refusal.headers = json_headers;
    refusal.body = std::move(body);
    return nullptr;
  };
  if (req.path() != "/v1/ws")
    return refuse(404, error_body("no WebSocket endpoint at " + std::string{req.path()} + " (use /v1/ws)",
                                  "invalid_request_error", {}, "not_found"));
  auto cap = std::make_shared<capture_responder>();
  std::shared_ptr<responder> out = cap;
  std::size_t key = no_key;
  if (!authorize(req, out, &key))
    return refuse(cap->status, cap->body);
  if (draining_)
    return refuse(503, error_body("the server is shutting down", "service_unavailable", {}, "draining"));
  std::function<std::optional<std::string>()> admit; // each run.start counts against the key, like a request
  if (key != no_key) {
    auto forbidden = run_forbidden(key);
    admit = [table = keys_, key, forbidden]() -> std::optional<std::string> {
      if (forbidden)
        return forbidden;
      auto v = table->admit(key);
      if (!v.ok)
        return v.why + " (retry after " + std::to_string(v.retry_after_s) + "s)";
      table->finish(key); // a run.start holds no concurrency slot past its acceptance
      return std::nullopt;
    };
  }
  return std::make_shared<ws_session>(runs_, caller(key), static_cast<std::size_t>(cfg_->server.ws_lag_at), std::move(admit));
}

} // namespace squad::server
