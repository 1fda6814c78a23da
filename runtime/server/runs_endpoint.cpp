#include "runtime/server/runs_endpoint.hpp"
#include "runtime/server/json_body.hpp"
#include "runtime/server/openai_encoding.hpp"

#include <nlohmann/json.hpp>

#include <atomic>

namespace squad::server {

using json = nlohmann::json;

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
      return bad("budget", "budget must be an object: {calls?, tokens?, usd?}");
    for (auto& [k, v] : bu.items()) {
      if (k == "usd") {
        if (!v.is_number() || !(v.get<double>() > 0) || v.get<double>() > 1e9)
          return bad("budget.usd", "budget.usd must be a number of USD > 0 (a hard cap on what the run spends)");
        r.budget_usd = v.get<double>();
        continue;
      }
      if (k != "calls" && k != "tokens")
        return bad("budget." + k, "unknown budget field " + k + " (use calls, tokens, usd)");
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

void serve_runs(run_hub& hub, const request& req, std::shared_ptr<responder> out, const runs_access& access) {
  auto& who = access.who;
  auto path = std::string{req.path()};
  // /v1/runs, /v1/runs/{id}, /v1/runs/{id}/events, /v1/runs/{id}/steps/{step}/feedback
  std::vector<std::string> parts;
  for (std::size_t pos = 1; pos <= path.size();) {
    auto next = path.find('/', pos);
    if (next == std::string::npos)
      next = path.size();
    parts.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  auto allow = [&](const char* methods) { send_not_allowed(*out, req.method, path, methods); };
  auto not_found = [&](const std::string& what) {
    send_error(*out, 404, what, "invalid_request_error", {}, "not_found");
  };
  if (parts.size() == 2) { // /v1/runs
    if (req.method == "GET")
      return out->reply(200, json_headers(), hub.list(who).dump());
    if (req.method != "POST")
      return allow("GET, POST");
    if (access.forbidden)
      return send_error(*out, 403, *access.forbidden, "permission_denied", {}, "model_not_allowed");
    if (access.admit && !access.admit(out)) // a run counts as one request against the key's limits
      return;
    auto body = parse_json_body(req.body);
    if (auto* e = std::get_if<api_error>(&body))
      return send_error(*out, *e);
    run_refusal refusal;
    auto rr = parse_run_request(std::get<json>(body), refusal);
    std::optional<std::string> id;
    if (rr) {
      rr->owner = who.key;
      id = hub.start(*rr, refusal);
    }
    if (!id)
      return send_error(*out, refusal.status, refusal.message, "invalid_request_error", refusal.param, refusal.code);
    auto headers = json_headers();
    headers.emplace_back("Location", "/v1/runs/" + *id);
    return out->reply(
        202, std::move(headers),
        json{{"id", *id}, {"object", "squad.run"}, {"state", "running"}, {"events", "/v1/runs/" + *id + "/events"}}
            .dump());
  }
  auto& id = parts[2];
  if (parts.size() == 3) {
    if (req.method == "GET") {
      auto snap = hub.snapshot(id, who);
      if (!snap)
        return not_found("no run " + id);
      return out->reply(200, json_headers(), snap->dump(-1, ' ', false, json::error_handler_t::replace));
    }
    if (req.method != "DELETE")
      return allow("GET, DELETE");
    std::string why;
    int st = hub.cancel(id, who, why);
    if (st == 404)
      return not_found(why);
    if (st == 409)
      return send_error(*out, 409, why, "invalid_request_error", {}, "run_ended");
    return out->reply(202, json_headers(), json{{"id", id}, {"state", "cancelling"}}.dump());
  }
  if (parts.size() == 4 && parts[3] == "events") {
    if (req.method != "GET")
      return allow("GET");
    // SSE: the kept events, then live ones; the stream ends after run.completed or run.failed.
    auto started = std::make_shared<std::atomic<bool>>(false);
    auto sub = hub.subscribe(id, who, [out, started](const json& ev) {
      if (out->gone())
        return false;
      if (!started->exchange(true))
        out->start_stream(200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}});
      out->write("event: " + ev.value("type", std::string{"message"}) +
                 "\ndata: " + ev.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n");
      if (is_end_event(ev)) {
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
    auto parsed = parse_json_body(req.body);
    if (auto* e = std::get_if<api_error>(&parsed))
      return send_error(*out, *e);
    auto* body = &std::get<json>(parsed);
    std::string why;
    if (!body->is_object() || !body->contains("text") || !(*body)["text"].is_string())
      return send_error(*out, 400, "text is required: the person's input into the step", "invalid_request_error",
                        "text");
    int st = hub.feedback(id, who, parts[4], (*body)["text"].get<std::string>(), why);
    if (st == 404)
      return not_found(why);
    if (st == 409)
      return send_error(*out, 409, why, "invalid_request_error", {}, "not_waiting");
    return out->reply(202, json_headers(), json{{"id", id}, {"step_id", parts[4]}, {"feedback", "accepted"}}.dump());
  }
  not_found("no route " + req.method + " " + path);
}

} // namespace squad::server
