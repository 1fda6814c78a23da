#pragma once
// The runs API over HTTP: POST|GET /v1/runs, GET|DELETE /v1/runs/{id}, GET /v1/runs/{id}/events (SSE) and
// POST /v1/runs/{id}/steps/{step}/feedback, on top of the run hub (runs.hpp). Auth is the gateway's: it hands in
// what the caller may see and do. Also the parser of run bodies, shared with the WebSocket run.start.
#include "runtime/server/http_server.hpp"
#include "runtime/server/runs.hpp"

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace squad::server {

/// What the caller may see and do, as the gateway's auth decided.
struct runs_access {
  run_caller who;
  std::optional<std::string> forbidden; ///< set: this key may not start runs (403)
  /// Counts a run start against the key's limits; false when it answered (429). Empty: no key, no limits.
  std::function<bool(std::shared_ptr<responder>&)> admit;
};

/// Answers one request under /v1/runs.
void serve_runs(run_hub& hub, const request& req, std::shared_ptr<responder> out, const runs_access& access);

/// Parses POST /v1/runs and WebSocket run.start bodies: {task, workflow?, budget?: {calls?, tokens?},
/// feedback?: [step, ...] | {step: timeout_ms}}. On a bad field, `why` names it (param) and says what is wrong.
std::optional<run_request> parse_run_request(const nlohmann::json& body, run_refusal& why);

} // namespace squad::server
