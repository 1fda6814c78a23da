#include "runtime/server/gateway.hpp"
#include "runtime/metrics/registry.hpp"
#include "runtime/net/http_client.hpp"
#include "runtime/server/answer_meter.hpp"
#include "runtime/server/api_ids.hpp"
#include "runtime/server/audited.hpp"
#include "runtime/server/chat_sink.hpp"
#include "runtime/server/embeddings_endpoint.hpp"
#include "runtime/server/json_body.hpp"
#include "runtime/server/routes.hpp"
#include "runtime/server/tree_link.hpp"
#include "runtime/server/usage_endpoint.hpp"
#include "runtime/server/ws_run_session.hpp"

#include <nlohmann/json.hpp>

namespace squad::server {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

const metrics::counter_family auth_refusals{"squad_auth_refusals_total",
                                            "requests refused by auth or key limits, by reason"};

// One handle per reason, each resolved on its first refusal.
struct refusal_counters {
  metrics::lazy<metrics::counter> not_loopback{metrics::resolver(auth_refusals, {{"reason", "not_loopback"}})};
  metrics::lazy<metrics::counter> missing_key{metrics::resolver(auth_refusals, {{"reason", "missing_key"}})};
  metrics::lazy<metrics::counter> bad_scheme{metrics::resolver(auth_refusals, {{"reason", "bad_scheme"}})};
  metrics::lazy<metrics::counter> invalid_key{metrics::resolver(auth_refusals, {{"reason", "invalid_key"}})};
  metrics::lazy<metrics::counter> key_limit{metrics::resolver(auth_refusals, {{"reason", "key_limit"}})};
  metrics::lazy<metrics::counter> model_not_allowed{
      metrics::resolver(auth_refusals, {{"reason", "model_not_allowed"}})};
};

const refusal_counters& refusals() {
  static const refusal_counters c;
  return c;
}

std::vector<std::string> provider_names(const config& cfg) {
  std::vector<std::string> names;
  for (auto& p : cfg.providers) {
    names.push_back(p.name);
    for (auto& m : p.models) // a model with its own limits: its limiter's gauges carry provider="provider/model"
      if (m.limits)
        names.push_back(limits_domain(p.name, m.name));
  }
  return names;
}

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

gateway::gateway(caf::actor_system& sys, std::shared_ptr<directory> dir, const loaded_squad& squad,
                 std::vector<config_problem>& /*problems: none left here since validate() checks aliases*/,
                 std::shared_ptr<run_journal> journal)
    : dir_(std::move(dir)), cfg_(squad.cfg), runs_(std::make_shared<run_hub>(sys, dir_, squad, 200, journal)),
      metrics_(sys, dir_, provider_names(*squad.cfg)) {
  journal_ = journal;
  if (journal && cfg_->audit.enabled)
    audit_ = std::make_shared<audit_log>(journal, *cfg_);
  if (journal)
    journal->on_orphans("api", [hub = std::weak_ptr<run_hub>(runs_)](std::vector<store::run_row> rows) {
      if (auto h = hub.lock())
        h->resume(std::move(rows));
    });
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
    providers_[p.name] = family_of(p.kind);
    for (auto& md : p.models) {
      api_model m;
      m.name = p.name + "/" + md.name;
      m.chain = {make_target(p, md)};
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
    keys_->spend.emplace_back(k.daily_usd, k.monthly_usd);
  }
  prices_ = std::make_shared<price_book>(*cfg_);
  restore_spend();
}

bool gateway::authorize(const request& req, std::shared_ptr<responder>& out, std::size_t* key) {
  if (key)
    *key = no_key;
  if (cfg_->server.auth == "none") {
    if (!req.peer.empty() && req.peer != "127.0.0.1" && req.peer != "::1" && req.peer.rfind("::ffff:127.", 0) != 0) {
      refusals().not_loopback.get().inc();
      send_error(*out, 403, "this server has auth: none and serves loopback clients only", "permission_denied");
      return false;
    }
    return true;
  }
  auto h = net::trim_ows(req.header("authorization"));
  if (h.empty()) {
    refusals().missing_key.get().inc();
    send_error(*out, 401, "missing API key: send Authorization: Bearer <key>", "invalid_request_error", {},
               "missing_api_key");
    return false;
  }
  if (h.size() < 7 || !std::equal(h.begin(), h.begin() + 7, "Bearer ", [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      })) {
    refusals().bad_scheme.get().inc();
    send_error(*out, 401, "the Authorization header must be: Bearer <key>", "invalid_request_error", {},
               "invalid_api_key");
    return false;
  }
  auto it = key_index_.find(sha256_hex(net::trim_ows(h.substr(7))));
  if (it == key_index_.end()) {
    refusals().invalid_key.get().inc();
    send_error(*out, 401, "invalid API key", "invalid_request_error", {}, "invalid_api_key");
    return false;
  }
  if (key)
    *key = it->second;
  return true;
}

key_verdict gateway::key_table::admit(std::size_t key) {
  auto secs =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard<std::mutex> g{m};
  auto v = keys[key]->admit(steady::now(), secs / 86400, 86400 - secs % 86400);
  if (!v.ok)
    refusals().key_limit.get().inc();
  return v;
}

void gateway::key_table::finish(std::size_t key) {
  std::lock_guard<std::mutex> g{m};
  keys[key]->finish();
}

namespace {

// OpenAI's reset format: "20ms", "1s", "6m0s".
std::string reset_text(std::int64_t ms) {
  if (ms < 1000)
    return std::to_string(ms) + "ms";
  auto s = (ms + 999) / 1000;
  return s < 60 ? std::to_string(s) + "s" : std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
}

// The key's own limits for the client, as OpenAI sends its account's (the -day variants as Cerebras does).
header_list key_limit_headers(const key_verdict& v) {
  header_list h;
  if (v.rpm_limit > 0) {
    h.emplace_back("x-ratelimit-limit-requests", std::to_string(v.rpm_limit));
    h.emplace_back("x-ratelimit-remaining-requests", std::to_string(v.rpm_remaining));
    h.emplace_back("x-ratelimit-reset-requests", reset_text(v.rpm_reset_ms));
  }
  if (v.day_limit > 0) {
    h.emplace_back("x-ratelimit-limit-requests-day", std::to_string(v.day_limit));
    h.emplace_back("x-ratelimit-remaining-requests-day", std::to_string(v.day_remaining));
    h.emplace_back("x-ratelimit-reset-requests-day", reset_text(v.day_reset_s * 1000));
  }
  return h;
}

} // namespace

bool gateway::admit_key(std::size_t key, std::shared_ptr<responder>& out) {
  auto v = keys_->admit(key);
  out = with_headers(std::move(out), key_limit_headers(v));
  if (!v.ok) {
    send_error(*out, 429, v.why, "rate_limit_exceeded", {}, "key_limit", v.retry_after_s);
    return false;
  }
  // The key's concurrency slot is held until the answer ends (not counted as a request again).
  out = on_answer_end(out, [table = keys_, key] { table->finish(key); });
  return true;
}

void gateway::handle(request req, std::shared_ptr<responder> out) {
  auto t0 = steady::now();
  auto path = std::string{req.path()};
  auto r = route_of(path);
  auto& spec = spec_of(r);
  auto request_id = request_id_for(net::trim_ows(req.header("x-request-id")));
  out = metered(std::move(out), r, t0, request_id);
  std::shared_ptr<call_audit> audit;
  if (audit_ && (r == route::chat || r == route::embeddings)) { // from here every answer of the call is audited
    audit = std::make_shared<call_audit>();
    audit->request_id = std::move(request_id);
    audit->route = r == route::chat ? "chat" : "embeddings";
    audit->trace_id = (r == route::chat ? "chatcmpl-" : "emb-") + random_id(24);
    audit->started_ms = unix_ms();
    if (audit_->bodies())
      audit->request_body = req.body;
    out = audited(std::move(out), audit_, audit);
  }
  auto method_is = [&](const char* m) {
    if (req.method == m)
      return true;
    send_not_allowed(*out, req.method, path, m);
    return false;
  };
  if (r == route::other)
    return send_error(*out, 404, no_route_message(req.method, path), "invalid_request_error", {}, "not_found");
  if (spec.open && *spec.methods && !method_is(spec.methods))
    return;
  if (r == route::healthz)
    return out->reply(200, json_headers(), R"({"status":"ok"})");
  if (r == route::readyz) { // a database outage does not make Squad unready: rows spool and calls go on
    bool draining = draining_;
    json body{{"status", draining ? "draining" : "ready"}};
    if (journal_)
      body["storage"] = {{"url", journal_->db().url()},
                         {"up", journal_->store_up()},
                         {"queue_rows", journal_->queued()},
                         {"spool_bytes", journal_->spool_bytes()}};
    return out->reply(draining ? 503 : 200, json_headers(), body.dump());
  }
  std::size_t key = no_key;
  if (!authorize(req, out, &key))
    return;
  if (audit && key != no_key)
    audit->key_id = cfg_->server.keys[key].name;
  if (!spec.open && *spec.methods && !method_is(spec.methods))
    return;
  switch (r) {
  case route::models:
    return list_models(out);
  case route::model:
    return get_model(out, path.substr(std::string_view{"/v1/models/"}.size()));
  case route::metrics:
    return metrics_.serve(out, server_);
  case route::ws: {
    auto headers = json_headers();
    headers.emplace_back("Upgrade", "websocket");
    return out->reply(426, std::move(headers),
                      error_body("GET /v1/ws is a WebSocket endpoint: send Connection: Upgrade and Upgrade: websocket",
                                 "invalid_request_error", {}, "upgrade_required"));
  }
  case route::runs:
  case route::run_events:
    return serve_runs(*runs_, req, out, run_access(key));
  case route::usage:
    return serve_usage(journal_.get(), req, *out, key == no_key || cfg_->server.keys[key].admin);
  case route::chat:
    return chat(req, out, t0, key, audit);
  case route::embeddings:
    return embeddings(req, out, key, audit);
  default:
    return;
  }
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

void gateway::list_models(const std::shared_ptr<responder>& out) {
  json data = json::array();
  for (auto& [name, m] : models_)
    data.push_back(model_entry(m));
  out->reply(200, json_headers(), json{{"object", "list"}, {"data", std::move(data)}}.dump());
}

void gateway::get_model(const std::shared_ptr<responder>& out, const std::string& raw_id) {
  auto id = percent_decoded(raw_id);
  auto it = models_.find(id);
  if (it == models_.end())
    return send_error(*out, 404, "no model \"" + id + "\" (GET /v1/models lists them)", "invalid_request_error",
                      "model", "model_not_found");
  out->reply(200, json_headers(), model_entry(it->second).dump(-1, ' ', false, json::error_handler_t::replace));
}

namespace {

// A POST's JSON body, or nullopt once it was answered 415 (not JSON) or 400 (not valid JSON).
std::optional<json> json_request(request& req, responder& out) {
  auto ctype = req.header("content-type");
  if (!ctype.empty() && ctype.find("json") == std::string_view::npos) {
    send_error(out, 415, "Content-Type must be application/json (got " + std::string{ctype} + ")",
               "invalid_request_error");
    return std::nullopt;
  }
  auto body = parse_json_body(req.body);
  if (auto* e = std::get_if<api_error>(&body)) {
    send_error(out, *e);
    return std::nullopt;
  }
  return std::move(std::get<json>(body));
}

// Squad's own request headers (X-Squad-*), as chat and embeddings read them.
chat_headers squad_headers(const request& req) {
  return {net::trim_ows(req.header("x-squad-priority")), net::trim_ows(req.header("x-squad-cache")),
          net::trim_ows(req.header("x-squad-run")), net::trim_ows(req.header("x-squad-timeout"))};
}

} // namespace

chat_context gateway::context_for(std::size_t key) const {
  static const std::vector<std::string> every_model;
  return {models_, key == no_key ? every_model : cfg_->server.keys[key].models, providers_, cfg_->server.call_timeout};
}

namespace {
// What the audit trail says the client asked for, before the call is parsed (a refusal names it too).
void note_model(call_audit* a, const json& body) {
  if (a && body.is_object() && body.contains("model") && body["model"].is_string())
    a->model = body["model"].get<std::string>();
}
} // namespace

void gateway::chat(request& req, std::shared_ptr<responder> out, steady::time_point t0, std::size_t key,
                   std::shared_ptr<call_audit> audit) {
  auto body = json_request(req, *out);
  if (!body)
    return;
  note_model(audit.get(), *body);
  auto ctx = context_for(key);
  auto headers = squad_headers(req);
  auto parsed = parse_chat_request(*body, headers, ctx);
  if (auto* e = std::get_if<api_error>(&parsed)) {
    if (e->code == model_not_allowed)
      refusals().model_not_allowed.get().inc();
    return send_error(*out, *e);
  }
  auto& [call, flags, model] = std::get<parsed_chat>(parsed);
  if (key != no_key && !admit_key(key, out)) // limits count only calls that would be sent
    return;
  if (key != no_key && !admit_spend(key, *model, call, out, audit))
    return;
  auto id = audit ? audit->trace_id : "chatcmpl-" + random_id(24);
  call.trace_id = id;
  if (audit) {
    audit->persona = model->persona;
    audit->run_id = call.budget_id;
  }
  call.sink = make_chat_sink(out,
                             {id, model->name, flags.stream, flags.include_usage, call.cache_mode == cache_only, audit,
                              audit_ && audit_->bodies()},
                             t0);
  send_chat_call(dir_, model->persona, std::move(call));
}

void gateway::embeddings(request& req, std::shared_ptr<responder> out, std::size_t key,
                         const std::shared_ptr<call_audit>& audit) {
  auto body = json_request(req, *out);
  if (!body)
    return;
  note_model(audit.get(), *body);
  auto ctx = context_for(key);
  auto headers = squad_headers(req);
  auto parsed = parse_embeddings_request(*body, headers, ctx);
  if (auto* e = std::get_if<api_error>(&parsed)) {
    if (e->code == model_not_allowed)
      refusals().model_not_allowed.get().inc();
    return send_error(*out, *e);
  }
  auto& p = std::get<parsed_embeddings>(parsed);
  if (key != no_key && !admit_key(key, out))
    return;
  p.call.trace_id = audit ? audit->trace_id : "emb-" + random_id(24);
  if (audit)
    audit->persona = p.model->persona;
  p.call.sink = make_embeddings_sink(out, p.model->name, p.base64, audit);
  send_chat_call(dir_, p.model->persona, std::move(p.call));
}

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

runs_access gateway::run_access(std::size_t key) {
  runs_access a{caller(key), run_forbidden(key), {}};
  if (key != no_key)
    a.admit = [this, key](std::shared_ptr<responder>& out) { return admit_key(key, out); };
  return a;
}

std::shared_ptr<ws_handler> gateway::accept_ws(const request& req, ws_refusal& refusal) {
  auto refuse = [&](int status, std::string body) {
    refusal.status = status;
    refusal.headers = json_headers();
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
  return make_ws_run_session(runs_, caller(key), static_cast<std::size_t>(cfg_->server.ws_lag_at), std::move(admit));
}

} // namespace squad::server
