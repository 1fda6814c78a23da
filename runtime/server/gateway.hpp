#pragma once
// The API of `squad serve`, on top of http_server (no Beast here): routes, auth, the OpenAI-compatible chat
// endpoint, model listing, health, and /metrics.
//
// A chat call is parsed and validated on the io thread (400/401/403/404/413/429 answered there), then crosses
// to the actors once: a call_request with a call_sink goes to the persona actor (model persona/<id>) or straight
// to the dispatcher (model <provider>/<model>). The answer comes back through the sink, which writes the HTTP
// response; streamed text goes from the provider's io handler to the client without passing through an actor.
#include "runtime/host/squad_tree.hpp"
#include "runtime/server/auth.hpp"
#include "runtime/server/http_server.hpp"
#include "runtime/server/runs.hpp"

#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <map>
#include <mutex>

namespace squad::server {

/// What a `model` name of the API resolves to.
struct api_model {
  std::string name;    ///< as the client writes it
  std::string persona; ///< set for persona/<id> (and aliases of one)
  std::vector<chain_target> chain; ///< the persona's chain, or the one direct target
  priority_class priority = priority_class::p1;
  std::string kind;    ///< persona | model | alias
  std::string target;  ///< for an alias: what it names
};

class gateway {
public:
  /// Resolves the API's models (personas, provider models, aliases) of a squad load_squad validated; `problems`
  /// stays for callers' sake and gets nothing (validate() checks aliases).
  /// Calls go to their persona (or the dispatcher) by the handles in `dir`.
  gateway(caf::actor_system& sys, std::shared_ptr<directory> dir, const loaded_squad& squad,
          std::vector<config_problem>& problems);

  void handle(request req, std::shared_ptr<responder> out);
  std::shared_ptr<ws_handler> accept_ws(const request& req, ws_refusal& refusal);

  void attach(std::shared_ptr<http_server> srv) { server_ = std::move(srv); }
  /// From now on /readyz answers 503 (SIGTERM: draining).
  void drain() { draining_ = true; }

  const std::map<std::string, api_model>& models() const { return models_; }
  const std::shared_ptr<run_hub>& runs() const { return runs_; }

private:
  static constexpr std::size_t no_key = static_cast<std::size_t>(-1);
  void chat(request& req, std::shared_ptr<responder> out, std::chrono::steady_clock::time_point t0, std::size_t key);
  void list_models(std::shared_ptr<responder> out);
  void get_model(std::shared_ptr<responder> out, const std::string& raw_id); ///< GET /v1/models/{id}
  void runs_api(request& req, std::shared_ptr<responder> out, const std::string& path, std::size_t key);
  /// A run starts with every persona of its workflow: a key limited to some models may not start one (403).
  std::optional<std::string> run_forbidden(std::size_t key) const;
  run_caller caller(std::size_t key) const; // whose runs this key sees
  void metrics(std::shared_ptr<responder> out);
  /// Authenticates (auth: keys) or checks the peer is loopback (auth: none); `key` gets the key's index or no_key.
  bool authorize(const request& req, std::shared_ptr<responder>& out, std::size_t* key);
  /// Applies the key's RPM, concurrency and daily limits to one chat call (429 with Retry-After when over).
  bool admit_key(std::size_t key, std::shared_ptr<responder>& out);

  caf::actor_system& sys_;
  std::shared_ptr<directory> dir_;
  config_ptr cfg_;
  std::vector<std::string> providers_;
  std::map<std::string, api_model> models_;
  std::map<std::string, std::size_t> key_index_; // sha256 -> index into keys_
  struct key_table { // shared with the responders that hold a key's concurrency slot (they may outlive the gateway)
    std::mutex m;
    std::vector<std::unique_ptr<key_limits>> keys;
    key_verdict admit(std::size_t key); ///< one request against the key's limits (holds a slot until finish)
    void finish(std::size_t key);
  };
  std::shared_ptr<key_table> keys_ = std::make_shared<key_table>();
  std::shared_ptr<http_server> server_;
  std::shared_ptr<run_hub> runs_;
  std::atomic<bool> draining_{false};
};

/// Parses POST /v1/runs and WebSocket run.start bodies: {task, workflow?, budget?: {calls?, tokens?},
/// feedback?: [step, ...] | {step: timeout_ms}}. On a bad field, `why` names it (param) and says what is wrong.
std::optional<run_request> parse_run_request(const nlohmann::json& body, run_refusal& why);

/// An OpenAI-style error body: {"error": {"message", "type", "param", "code"}}.
std::string error_body(const std::string& message, const std::string& type, const std::string& param = {},
                       const std::string& code = {});

} // namespace squad::server
