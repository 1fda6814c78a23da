#pragma once
// The API of `squad serve`, on top of http_server (no Beast here): the API's models, auth and key limits, and the
// dispatch of each request to its job by the route table (routes.hpp): chat (chat_request + chat_sink), model
// listing, health, runs (runs_endpoint), WebSocket runs (ws_run_session) and /metrics (metrics_endpoint).
//
// A chat call is parsed and validated on the io thread (400/401/403/404/413/429 answered there), then crosses
// to the actors once (tree_link.hpp): a call_request with a call_sink goes to the persona actor (model
// persona/<id>) or straight to the dispatcher (model <provider>/<model>). The answer comes back through the sink,
// which writes the HTTP response; streamed text goes from the provider's io handler to the client without passing
// through an actor.
#include "runtime/host/audit_log.hpp"
#include "runtime/host/squad_tree.hpp"
#include "runtime/server/auth.hpp"
#include "runtime/server/chat_request.hpp"
#include "runtime/server/http_server.hpp"
#include "runtime/server/metrics_endpoint.hpp"
#include "runtime/server/openai_encoding.hpp"
#include "runtime/server/runs.hpp"
#include "runtime/server/runs_endpoint.hpp"
#include "runtime/server/spend_limits.hpp"

#include <atomic>
#include <map>
#include <mutex>

namespace squad::server {

class gateway {
public:
  /// Resolves the API's models (personas, provider models, aliases) of a squad load_squad validated; `problems`
  /// stays for callers' sake and gets nothing (validate() checks aliases).
  /// With a journal, runs are durable and runs other processes left unfinished are resumed here.
  gateway(caf::actor_system& sys, std::shared_ptr<directory> dir, const loaded_squad& squad,
          std::vector<config_problem>& problems, std::shared_ptr<run_journal> journal = nullptr);

  void handle(request req, std::shared_ptr<responder> out);
  std::shared_ptr<ws_handler> accept_ws(const request& req, ws_refusal& refusal);

  void attach(std::shared_ptr<http_server> srv) { server_ = std::move(srv); }
  /// From now on /readyz answers 503 (SIGTERM: draining).
  void drain() { draining_ = true; }

  const std::map<std::string, api_model>& models() const { return models_; }
  const std::shared_ptr<run_hub>& runs() const { return runs_; }

private:
  static constexpr std::size_t no_key = static_cast<std::size_t>(-1);
  void chat(request& req, std::shared_ptr<responder> out, std::chrono::steady_clock::time_point t0, std::size_t key,
            std::shared_ptr<call_audit> audit);
  void embeddings(request& req, std::shared_ptr<responder> out, std::size_t key,
                  const std::shared_ptr<call_audit>& audit);
  chat_context context_for(std::size_t key) const; ///< the models this key may use, against the config
  void list_models(const std::shared_ptr<responder>& out);
  void get_model(const std::shared_ptr<responder>& out, const std::string& raw_id); ///< GET /v1/models/{id}
  runs_access run_access(std::size_t key);
  /// A run starts with every persona of its workflow: a key limited to some models may not start one (403).
  std::optional<std::string> run_forbidden(std::size_t key) const;
  run_caller caller(std::size_t key) const; // whose runs this key sees
  /// Authenticates (auth: keys) or checks the peer is loopback (auth: none); `key` gets the key's index or no_key.
  bool authorize(const request& req, std::shared_ptr<responder>& out, std::size_t* key);
  /// Applies the key's RPM, concurrency and daily limits to one chat call (429 with Retry-After when over).
  bool admit_key(std::size_t key, std::shared_ptr<responder>& out);

  std::shared_ptr<directory> dir_;
  config_ptr cfg_;
  std::map<std::string, provider_family> providers_;
  std::map<std::string, api_model> models_;
  std::map<std::string, std::size_t> key_index_; // sha256 -> index into keys_
  struct key_table { // shared with the responders that hold a key's concurrency slot (they may outlive the gateway)
    std::mutex m;
    std::vector<std::unique_ptr<key_limits>> keys;
    std::vector<spend_limits> spend;    // parallel to keys
    key_verdict admit(std::size_t key); ///< one request against the key's limits (holds a slot until finish)
    void finish(std::size_t key);
  };
  /// The key's money budgets for one call: reserves its worst case (429 budget_exceeded when it would pass one)
  /// and settles at its real cost when the answer ends. `audit` gets the result (made here when null).
  bool admit_spend(std::size_t key, const api_model& model, const call_request& call, std::shared_ptr<responder>& out,
                   std::shared_ptr<call_audit>& audit);
  void restore_spend(); ///< today's and this month's spend per key, from the audit rows in the store
  std::shared_ptr<key_table> keys_ = std::make_shared<key_table>();
  std::shared_ptr<http_server> server_;
  std::shared_ptr<run_hub> runs_;
  std::shared_ptr<run_journal> journal_; // null: storage none
  std::shared_ptr<price_book> prices_;
  std::shared_ptr<audit_log> audit_; // null: no audit trail (audit.enabled false, or no storage)
  metrics_endpoint metrics_;
  std::atomic<bool> draining_{false};
};

} // namespace squad::server
