#include "runtime/server/ws_run_session.hpp"
#include "runtime/metrics/registry.hpp"
#include "runtime/server/json_body.hpp"
#include "runtime/server/runs_endpoint.hpp"
#include "runtime/server/ws_flow.hpp"

#include <nlohmann/json.hpp>

#include <mutex>

namespace squad::server {

namespace {

using json = nlohmann::json;

// The sessions' families, described at static initialisation (http_server.cpp may count a slow HTTP client before
// any session opens, and the family must carry its HELP and TYPE by then); each series resolved on its first use.
const metrics::counter_family sessions_total{"squad_ws_sessions_total", "WebSocket sessions opened since start"};
const metrics::counter_family deltas_dropped_total{
    "squad_ws_deltas_dropped_total",
    "step.delta messages dropped for WebSocket clients that read too slowly (each run then gets a lagged marker)"};
const metrics::counter_family errors_total{"squad_ws_errors_total", "error messages sent to WebSocket clients"};

const metrics::lazy<metrics::counter> sessions_opened{metrics::resolver(sessions_total)};
const metrics::lazy<metrics::counter> deltas_dropped{metrics::resolver(deltas_dropped_total)};
const metrics::lazy<metrics::counter> errors_sent{metrics::resolver(errors_total)};
const metrics::lazy<metrics::counter> slow_cut{metrics::resolver(server_metrics().slow_cut, {{"kind", "ws"}})};

// One WebSocket session: several runs, each followed until it ends. Deltas are dropped when the client reads too
// slowly (its send queue past `lag_at`), and a `lagged` marker says how many before the next message of that run;
// lifecycle events are never dropped (a client that lets even those pile up to the hard queue limit is closed).
class ws_run_session final : public ws_handler, public std::enable_shared_from_this<ws_run_session> {
public:
  ws_run_session(std::shared_ptr<run_hub> hub, run_caller who, std::size_t lag_at,
                 std::function<std::optional<std::string>()> admit)
      : hub_(std::move(hub)), who_(std::move(who)), admit_(std::move(admit)), flow_(lag_at) {}

  void on_open(std::shared_ptr<ws_connection> conn) override {
    {
      std::lock_guard<std::mutex> g{m_};
      conn_ = conn;
    }
    sessions_opened.get().inc();
    conn->send(json{{"type", "session.ready"},
                    {"protocol", 1},
                    {"accepts", {"run.start", "run.cancel", "step.feedback", "run.subscribe"}}}
                   .dump());
  }

  void on_message(std::string text) override {
    // The same nesting limit as an HTTP body (json_body.hpp): a message's depth is not the client's to choose.
    auto parsed = parse_json_body(text);
    if (auto* bad = std::get_if<api_error>(&parsed); bad && bad->code == "json_too_deep")
      return error("", "the message is nested deeper than " + std::to_string(max_json_depth) + " levels", "");
    auto m = std::holds_alternative<json>(parsed) ? std::get<json>(std::move(parsed)) : json{};
    if (!m.is_object() || !m.contains("type") || !m["type"].is_string())
      return error("", "each message must be a JSON object with a string \"type\"", "type");
    auto type = m["type"].get<std::string>();
    auto ref = m.contains("ref") ? m["ref"] : json(nullptr);
    auto run_id = m.value("run_id", std::string{});
    if (type == "run.start") {
      if (live_runs() >= max_runs)
        return error(ref, "this session already follows " + std::to_string(max_runs) + " runs; wait for one to end",
                     "");
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
        return error(ref, "this session already follows " + std::to_string(max_runs) + " runs; wait for one to end",
                     "");
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
      auto d = flow_.on_event(run, ev.value("type", "") == "step.delta", is_end_event(ev), conn->queued());
      if (!d.tracked)
        return false;
      if (!d.send) { // dropped: the client is behind
        deltas_dropped.get().inc();
        return true;
      }
      dropped = d.lagged;
    }
    if (dropped > 0)
      conn->send(
          json{{"type", "lagged"},
               {"run_id", run},
               {"dropped", dropped},
               {"message", std::to_string(dropped) + " step.delta messages were dropped: the client reads too slowly; "
                                                     "step.completed carries the whole text"}}
              .dump());
    if (!conn->send(ev.dump(-1, ' ', false, json::error_handler_t::replace))) {
      slow_cut.get().inc();
      conn->close(); // even lifecycle events pile up: the client does not read at all
      return false;
    }
    return !is_end_event(ev);
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
    errors_sent.get().inc();
    send_now(json{
        {"type", "error"}, {"ref", ref}, {"message", message}, {"param", param.empty() ? json(nullptr) : json(param)}});
  }

  std::shared_ptr<run_hub> hub_;
  run_caller who_;
  std::function<std::optional<std::string>()> admit_; // key limits for run.start; empty with auth: none
  std::mutex m_;
  ws_flow flow_;
  std::shared_ptr<ws_connection> conn_;
};

} // namespace

std::shared_ptr<ws_handler> make_ws_run_session(std::shared_ptr<run_hub> hub, run_caller who, std::size_t lag_at,
                                                std::function<std::optional<std::string>()> admit) {
  return std::make_shared<ws_run_session>(std::move(hub), std::move(who), lag_at, std::move(admit));
}

} // namespace squad::server
