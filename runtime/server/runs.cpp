#include "runtime/server/runs.hpp"
#include "actors/boss/boss.hpp"
#include "actors/registry/directory.hpp"

#include <ctime>
#include <random>
#include <set>

namespace squad::server {

using json = nlohmann::json;

namespace {

std::string new_run_id() {
  static std::mutex m;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> g{m};
  char buf[24];
  std::snprintf(buf, sizeof buf, "run_%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// Starts the boss under the runs supervisor, hands the hub every event, and forwards cancel and feedback to the boss.
using run_listener_actor =
    event_sink_actor::extend<caf::reacts_to<atoms::cancel>, caf::reacts_to<atoms::feedback, std::string, std::string>>;

struct listener_state {
  listener_state() = default; // not an aggregate: CAF would try to build it from the actor's self pointer
  boss_actor boss;
  bool cancel_pending = false;
  int pending = 0;                  // events waiting for the store before they go out
  bool quit_when_delivered = false; // the boss is gone: stop once they have
  std::vector<std::pair<std::string, std::string>> feedback_pending;
  static inline const char* name = "squad.run_listener";
};

run_listener_actor::behavior_type run_listener(run_listener_actor::stateful_pointer<listener_state> self,
                                               std::weak_ptr<run_hub> hub, std::string id, run_spec spec,
                                               std::shared_ptr<directory> dir) {
  auto runs = dir->get()->runs;
  self->request(runs, caf::infinite, atoms::start_child_v, boss_child(std::move(spec), dir, self))
      .then(
          [self, hub, id](const caf::actor& started) {
            auto& st = self->state;
            auto boss = caf::actor_cast<boss_actor>(started);
            st.boss = boss;
            self->monitor(boss);
            if (auto h = hub.lock())
              h->on_boss_started(id, boss);
            for (auto& [step, text] : st.feedback_pending)
              self->send(boss, atoms::feedback_v, step, text);
            st.feedback_pending.clear();
            if (st.cancel_pending)
              self->send(boss, atoms::cancel_v);
          },
          [self, hub, id](caf::error& err) {
            if (auto h = hub.lock())
              h->on_lost(id, "the run could not start: " + error_detail(self->system(), err));
            self->quit();
          });
  self->set_down_handler([self, hub, id](caf::down_msg& msg) {
    if (auto h = hub.lock())
      h->on_lost(id, "the run's boss actor stopped: " + error_detail(self->system(), msg.reason));
    if (self->state.pending > 0)
      self->state.quit_when_delivered = true; // the run's last events are still on their way to the store
    else
      self->quit();
  });
  return {
      [self, hub, id](run_event& ev) {
        auto h = hub.lock();
        if (!h)
          return;
        auto j = h->record(id, ev);
        if (!j)
          return;
        auto writer = h->durable_writer(ev.type);
        if (!writer)
          return h->deliver(id, *j);
        // Later events wait in the mailbox (await keeps their order) until the store has this one; with the
        // store down the writer answers false at once and the event goes out regardless (squad_store_up says so).
        ++self->state.pending;
        auto go_on = [self, hub, id, ev = *j] {
          if (auto h = hub.lock())
            h->deliver(id, ev);
          if (--self->state.pending == 0 && self->state.quit_when_delivered)
            self->quit();
        };
        self->request(*writer, std::chrono::seconds{30}, atoms::done_v)
            .await([go_on](bool) { go_on(); }, [go_on](caf::error&) { go_on(); });
      },
      [self](atoms::cancel) {
        if (self->state.boss)
          self->send(self->state.boss, atoms::cancel_v);
        else
          self->state.cancel_pending = true;
      },
      [self](atoms::feedback, std::string& step, std::string& text) {
        if (self->state.boss)
          self->send(self->state.boss, atoms::feedback_v, std::move(step), std::move(text));
        else
          self->state.feedback_pending.emplace_back(std::move(step), std::move(text));
      },
  };
}

} // namespace

bool is_end_event(const json& ev) {
  auto t = ev.value("type", "");
  return t == "run.completed" || t == "run.failed";
}

run_hub::run_hub(caf::actor_system& sys, std::shared_ptr<directory> dir, const loaded_squad& squad,
                 std::size_t keep_finished, std::shared_ptr<run_journal> journal)
    : sys_(sys), dir_(std::move(dir)), squad_(squad), keep_finished_(keep_finished), journal_(std::move(journal)) {}

run_hub::~run_hub() {
  std::lock_guard<std::mutex> g{m_};
  for (auto& [id, r] : runs_)
    if (r->listener)
      caf::anon_send_exit(r->listener, caf::exit_reason::user_shutdown);
}

std::optional<std::string> run_hub::start(const run_request& req, run_refusal& why, run_subscriber first,
                                          const std::function<void(const std::string&)>& accepted) {
  auto& cfg = *squad_.cfg;
  if (req.task.find_first_not_of(" \t\r\n") == std::string::npos) {
    why = {400, "task is required: a non-empty string", "task", "invalid_value"};
    return std::nullopt;
  }
  if (journal_ && journal_->over_limit()) { // accepted work is never lost: new work waits for the store
    why = {503,
           "storage is behind (" + std::to_string(journal_->queued()) + " rows waiting for " + journal_->db().url() +
               "); try again shortly",
           "", "storage_behind"};
    return std::nullopt;
  }
  auto wf_id = req.workflow.empty() ? cfg.default_workflow : req.workflow;
  auto made = make_spec(wf_id, req.budget_calls, req.budget_tokens, req.budget_usd, req.feedback, why);
  if (!made)
    return std::nullopt;
  auto& spec = *made;
  spec.run_id = new_run_id();
  spec.task = req.task;

  auto entry = std::make_shared<run_entry>();
  entry->id = spec.run_id;
  entry->owner = req.owner;
  entry->task = req.task;
  entry->workflow = wf_id;
  entry->created_unix = static_cast<std::int64_t>(std::time(nullptr));
  entry->driven = true;
  for (auto& s : spec.workflow.steps) {
    entry->step_order.push_back(s.id);
    entry->steps[s.id].personas = s.personas;
  }
  if (journal_) {
    store::run_row row;
    row.id = entry->id, row.owner = req.owner, row.task = req.task, row.workflow = wf_id, row.kind = "api";
    json feedback = json::object();
    for (auto& [step, wait] : spec.feedback)
      feedback[step] = wait.count();
    row.request = json{
        {"budget_calls", spec.workflow.budget_calls},
        {"budget_tokens", spec.workflow.budget_tokens},
        {"budget_usd", spec.workflow.budget_usd},
        {"feedback",
         feedback}}.dump();
    row.created = row.updated = entry->created_unix;
    journal_->started(std::move(row));
  }
  {
    std::lock_guard<std::mutex> g{m_};
    if (first)
      entry->subs.emplace(next_sub_++, std::move(first));
    runs_[entry->id] = entry;
    order_.push_back(entry->id);
    evict();
  }
  auto id = entry->id;
  if (accepted)
    accepted(id);
  auto listener = spawn_listener(id, std::move(spec));
  std::lock_guard<std::mutex> g{m_};
  entry->listener = listener;
  return id;
}

caf::actor run_hub::spawn_listener(const std::string& id, run_spec spec) {
  return caf::actor_cast<caf::actor>(sys_.spawn(run_listener, weak_from_this(), id, std::move(spec), dir_));
}

std::optional<run_spec> run_hub::make_spec(const std::string& wf_id, std::optional<std::int64_t> budget_calls,
                                           std::optional<std::int64_t> budget_tokens, std::optional<double> budget_usd,
                                           const std::map<std::string, millis>& feedback, run_refusal& why) const {
  auto& cfg = *squad_.cfg;
  auto wf = load_workflow(cfg.workflows_dir, wf_id, squad_.persona_ids());
  if (!wf.workflow) {
    std::string detail;
    for (auto& p : wf.problems)
      detail += (detail.empty() ? "" : "; ") + to_string(p);
    why = {400, "workflow \"" + wf_id + "\" cannot be used: " + detail, "workflow", "invalid_workflow"};
    return std::nullopt;
  }
  run_spec spec;
  spec.workflow = *wf.workflow;
  if (budget_calls)
    spec.workflow.budget_calls = *budget_calls;
  if (budget_tokens)
    spec.workflow.budget_tokens = *budget_tokens;
  if (budget_usd)
    spec.workflow.budget_usd = *budget_usd;
  for (auto& [step, wait] : feedback) {
    auto& steps = spec.workflow.steps;
    if (std::none_of(steps.begin(), steps.end(), [&](auto& s) { return s.id == step; })) {
      why = {400, "feedback names step \"" + step + "\", which workflow " + wf_id + " does not have", "feedback",
             "invalid_value"};
      return std::nullopt;
    }
    spec.feedback[step] = wait;
  }
  for (auto& p : squad_.personas)
    spec.personas[p.id] = p;
  spec.step_timeout = cfg.runtime.step_timeout;
  spec.supervision = cfg.supervision;
  spec.stream_deltas = true;
  price_worst_case(spec, squad_);
  return spec;
}

void run_hub::evict() const { // under m_
  std::size_t finished = 0;
  for (auto& [id, r] : runs_)
    finished += r->finished();
  for (auto it = order_.begin(); finished > keep_finished_ && it != order_.end();) {
    auto r = runs_.find(*it);
    if (r != runs_.end() && r->second->finished()) {
      runs_.erase(r);
      it = order_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
}

void run_hub::publish(run_entry& r, const json& ev, bool keep) { // under m_
  if (keep)
    r.events.push_back(ev);
  for (auto it = r.subs.begin(); it != r.subs.end();)
    it = it->second(ev) ? std::next(it) : r.subs.erase(it);
}

std::optional<json> run_hub::record(const std::string& id, const run_event& ev) {
  auto j = event_json(ev);
  std::lock_guard<std::mutex> g{m_};
  auto it = runs_.find(id);
  if (it == runs_.end())
    return std::nullopt;
  auto& r = *it->second;
  apply(r, j);
  if (ev.type != "step.delta")
    journal(r, j);
  return j;
}

void run_hub::deliver(const std::string& id, const json& j) {
  std::lock_guard<std::mutex> g{m_};
  auto it = runs_.find(id);
  if (it == runs_.end())
    return;
  auto& r = *it->second;
  publish(r, j, j.value("type", "") != "step.delta");
  if (r.finished() && is_end_event(j)) {
    r.subs.clear(); // the last event went out: every stream ends here
    evict();
  }
}

std::optional<store_writer_actor> run_hub::durable_writer(const std::string& type) const {
  static const std::set<std::string> ends = {"step.completed",        "step.failed",   "step.skipped", "step.feedback",
                                             "step.feedback_timeout", "run.completed", "run.failed"};
  if (!journal_ || !ends.count(type))
    return std::nullopt;
  return journal_->writer();
}

void run_hub::apply(run_entry& r, const json& j) {
  r.last_seq = std::max(r.last_seq, j.value("seq", std::int64_t{0}));
  r.last_at_ms = std::max(r.last_at_ms, j.value("at_ms", std::int64_t{0}));
  static const json empty = json::object();
  auto& d = j.contains("data") && j["data"].is_object() ? j["data"] : empty;
  auto step_id = j.value("step_id", "");
  auto step = r.steps.find(step_id);
  if (step == r.steps.end() && !step_id.empty() && j.value("type", "").rfind("step.", 0) == 0) {
    r.step_order.push_back(step_id); // a run rebuilt from its journal learns its steps from their events
    step = r.steps.emplace(step_id, step_view{}).first;
  }
  auto t = j.value("type", "");
  if (t == "run.started" || t == "run.resumed") {
    r.state = "running";
  } else if (step != r.steps.end() && t == "step.started") {
    step->second.status = "running";
    if (step->second.personas.empty())
      step->second.personas = d.value("personas", std::vector<std::string>{});
  } else if (step != r.steps.end() && (t == "step.completed" || t == "step.failed" || t == "step.skipped")) {
    step->second.status = d.value("status", t.substr(5));
    step->second.text = d.value("text", "");
    step->second.error = d.value("error", "");
    step->second.outputs = d.value("outputs", json::array());
  } else if (step != r.steps.end() && t == "step.awaiting_feedback") {
    step->second.status = "awaiting_feedback";
  } else if (step != r.steps.end() && t == "step.feedback") {
    step->second.status = "completed";
    step->second.text += "\n\n### Feedback from a person on " + step_id + "\n" + d.value("text", "") + "\n";
  } else if (step != r.steps.end() && t == "step.feedback_timeout") {
    step->second.status = "completed";
  } else if (t == "run.completed" || t == "run.failed") {
    r.summary = d;
    r.reason = d.value("reason", "");
    r.state = t == "run.completed" ? "completed" : r.reason == "cancelled" ? "cancelled" : "failed";
  }
}

void run_hub::on_boss_started(const std::string& id, boss_actor boss) {
  std::lock_guard<std::mutex> g{m_};
  if (auto it = runs_.find(id); it != runs_.end())
    it->second->boss = std::move(boss);
}

void run_hub::on_lost(const std::string& id, const std::string& why) {
  std::lock_guard<std::mutex> g{m_};
  auto it = runs_.find(id);
  if (it == runs_.end() || it->second->finished())
    return;
  auto& r = *it->second;
  r.state = "failed";
  r.reason = why;
  json ev{{"type", "run.failed"},
          {"seq", ++r.last_seq},
          {"at_ms", r.last_at_ms},
          {"run_id", id},
          {"message", "run failed: " + why},
          {"data", {{"reason", why}}}};
  r.summary = ev["data"];
  journal(r, ev);
  publish(r, ev, true);
  r.subs.clear();
  evict();
}

run_hub::run_entry* run_hub::find(const std::string& id, const run_caller& who) const {
  auto it = runs_.find(id);
  if (it == runs_.end() || !who.sees(it->second->owner))
    return nullptr;
  return it->second.get();
}

std::optional<json> run_hub::snapshot(const std::string& id, const run_caller& who) const {
  ensure_loaded(id);
  std::lock_guard<std::mutex> g{m_};
  auto* found = find(id, who);
  if (!found)
    return std::nullopt;
  auto& r = *found;
  json steps = json::array(), artifacts = json::object();
  for (auto& sid : r.step_order) {
    auto& s = r.steps.at(sid);
    json outputs = json::array();
    for (auto& o : s.outputs) { // the step's text is the artifact: outputs say who served it
      auto x = o;
      x.erase("text");
      outputs.push_back(std::move(x));
    }
    steps.push_back({{"id", sid},
                     {"status", s.status},
                     {"personas", s.personas},
                     {"outputs", std::move(outputs)},
                     {"error", s.error}});
    if (!s.text.empty())
      artifacts[sid] = s.text;
  }
  return json{{"id", r.id},
              {"object", "squad.run"},
              {"state", r.state},
              {"task", r.task},
              {"workflow", r.workflow},
              {"created", r.created_unix},
              {"reason", r.reason.empty() ? json(nullptr) : json(r.reason)},
              {"steps", std::move(steps)},
              {"artifacts", std::move(artifacts)},
              {"summary", r.summary.is_null() ? json::object() : r.summary},
              {"events", r.events.size()}};
}

json run_hub::list(const run_caller& who) const {
  std::vector<store::run_row> stored; // read before the lock: a slow store never holds up the runs' events
  if (journal_)
    try {
      stored = journal_->db().runs(keep_finished_ + 100);
    } catch (const store::store_error&) { // the store is down: the runs in memory are still listed
    }
  std::lock_guard<std::mutex> g{m_};
  std::vector<json> rows;
  std::set<std::string> seen;
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    auto& r = *runs_.at(*it);
    seen.insert(r.id);
    if (who.sees(r.owner))
      rows.push_back({{"id", r.id}, {"state", r.state}, {"workflow", r.workflow}, {"created", r.created_unix}});
  }
  for (auto& r : stored)
    if (!seen.count(r.id) && who.sees(r.owner))
      rows.push_back({{"id", r.id}, {"state", r.state}, {"workflow", r.workflow}, {"created", r.created}});
  std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) {
    return a["created"].template get<std::int64_t>() > b["created"].template get<std::int64_t>();
  });
  return json{{"object", "list"}, {"data", std::move(rows)}};
}

std::uint64_t run_hub::subscribe(const std::string& id, const run_caller& who, run_subscriber fn,
                                 std::int64_t after_seq) {
  ensure_loaded(id);
  std::lock_guard<std::mutex> g{m_};
  auto* found = find(id, who);
  if (!found)
    return 0;
  auto& r = *found;
  for (auto& ev : r.events)
    if (ev.value("seq", std::int64_t{0}) > after_seq && !fn(ev))
      return next_sub_++; // the subscriber left during the replay
  if (r.finished())
    return next_sub_++;
  auto sub = next_sub_++;
  r.subs.emplace(sub, std::move(fn));
  return sub;
}

void run_hub::unsubscribe(const std::string& id, std::uint64_t sub) {
  std::lock_guard<std::mutex> g{m_};
  if (auto it = runs_.find(id); it != runs_.end())
    it->second->subs.erase(sub);
}

int run_hub::cancel(const std::string& id, const run_caller& who, std::string& why) {
  ensure_loaded(id);
  std::lock_guard<std::mutex> g{m_};
  auto* r = find(id, who);
  if (!r) {
    why = "no run " + id;
    return 404;
  }
  if (r->finished()) {
    why = "run " + id + " already ended (" + r->state + ")";
    return 409;
  }
  caf::anon_send(r->listener, atoms::cancel_v);
  return 0;
}

int run_hub::feedback(const std::string& id, const run_caller& who, const std::string& step, const std::string& text,
                      std::string& why) {
  ensure_loaded(id);
  std::lock_guard<std::mutex> g{m_};
  auto* r = find(id, who);
  if (!r) {
    why = "no run " + id;
    return 404;
  }
  auto s = r->steps.find(step);
  if (s == r->steps.end()) {
    why = "run " + id + " has no step " + step;
    return 404;
  }
  if (s->second.status != "awaiting_feedback") {
    why = "step " + step + " is " + s->second.status + ", not waiting for feedback";
    return 409;
  }
  caf::anon_send(r->listener, atoms::feedback_v, step, text);
  return 0;
}

std::size_t run_hub::running() const {
  std::lock_guard<std::mutex> g{m_};
  std::size_t n = 0;
  for (auto& [id, r] : runs_)
    n += !r->finished();
  return n;
}

} // namespace squad::server
