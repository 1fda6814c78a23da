// The run hub's storage side (runs.hpp): writing the journal, reading runs back, resuming orphaned runs.
#include "runtime/server/runs.hpp"
#include <iostream>

namespace squad::server {

using json = nlohmann::json;

void run_hub::journal(run_entry& r, const json& ev) { // under m_
  if (!journal_)
    return;
  journal_->event(r.id, ev);
  auto t = ev.value("type", "");
  if (t == "run.started" || t == "run.resumed")
    journal_->state(r.id, "running");
  else if (r.finished())
    journal_->state(r.id, r.state, r.reason, r.summary.is_null() ? json::object() : r.summary);
}

std::shared_ptr<run_hub::run_entry> run_hub::rebuild(const store::run_row& row, const std::vector<json>& events) const {
  auto e = std::make_shared<run_entry>();
  e->id = row.id, e->owner = row.owner, e->task = row.task, e->workflow = row.workflow;
  e->created_unix = row.created;
  e->state = row.state;
  for (auto& ev : events) {
    apply(*e, ev);
    e->events.push_back(ev);
  }
  if (row.finished() && !e->finished()) { // the state row is the authority (an end event may not have been kept)
    e->state = row.state;
    e->reason = row.reason;
  }
  return e;
}

void run_hub::ensure_loaded(const std::string& id) const {
  if (!journal_)
    return;
  auto known = [&] { // driven here, or finished: what memory holds is the latest
    auto it = runs_.find(id);
    return it != runs_.end() && (it->second->driven || it->second->finished());
  };
  {
    std::lock_guard<std::mutex> g{m_};
    if (known())
      return;
  }
  std::optional<store::run_row> row;
  std::vector<json> events;
  try {
    row = journal_->db().run(id);
    if (!row)
      return;
    events = event_bodies(journal_->db().events(id));
  } catch (const store::store_error&) {
    return; // the store is down: the run is unknown for now (404), as it would be without storage
  }
  auto e = rebuild(*row, events);
  std::lock_guard<std::mutex> g{m_};
  if (known())
    return;
  if (auto it = runs_.find(id); it != runs_.end()) { // read again: its followers stay with it
    e->subs = std::move(it->second->subs);
    it->second = e;
    return;
  }
  runs_[id] = e;
  order_.push_back(id);
  evict();
}

void run_hub::resume(std::vector<store::run_row> rows) {
  for (auto& row : rows)
    resume_one(row);
}

void run_hub::resume_one(const store::run_row& row) {
  std::vector<json> events;
  try {
    events = event_bodies(journal_->db().events(row.id));
  } catch (const store::store_error& e) {
    std::cerr << "squad serve: cannot resume run " << row.id << ": " << e.what() << "\n";
    return; // its lease lapses again, and the next claim tries again
  }
  auto req = json::parse(row.request, nullptr, false);
  if (!req.is_object())
    req = json::object();
  std::map<std::string, millis> feedback;
  for (auto& [step, ms] : req.value("feedback", json::object()).items())
    if (ms.is_number_integer())
      feedback[step] = millis{ms.get<std::int64_t>()};
  run_refusal why;
  auto budget = [&](const char* k) {
    return req.contains(k) && req[k].is_number_integer() ? std::optional<std::int64_t>{req[k].get<std::int64_t>()}
                                                         : std::nullopt;
  };
  auto usd = req.contains("budget_usd") && req["budget_usd"].is_number() && req["budget_usd"].get<double>() > 0
                 ? std::optional<double>{req["budget_usd"].get<double>()}
                 : std::nullopt;
  auto spec = make_spec(row.workflow, budget("budget_calls"), budget("budget_tokens"), usd, feedback, why);
  auto entry = rebuild(row, events);
  if (spec) { // the workflow's order, with the steps not started yet
    std::vector<std::string> order;
    for (auto& st : spec->workflow.steps) {
      order.push_back(st.id);
      if (entry->steps[st.id].personas.empty())
        entry->steps[st.id].personas = st.personas;
    }
    entry->step_order = std::move(order);
  }
  {
    std::lock_guard<std::mutex> g{m_};
    auto it = runs_.find(row.id);
    if (it != runs_.end() && it->second->driven && !it->second->finished())
      return; // this process drives it already
    if (it != runs_.end())
      entry->subs = std::move(it->second->subs); // followers of the run read back before its claim go on with it
    entry->driven = true;
    runs_[row.id] = entry;
    if (std::find(order_.begin(), order_.end(), row.id) == order_.end())
      order_.push_back(row.id);
  }
  if (!spec) { // the workflow changed or went away since: the run cannot go on, and says why
    on_lost(row.id, "cannot resume after a restart: " + why.message);
    return;
  }
  spec->run_id = row.id;
  spec->task = row.task;
  spec->resume = resume_from(events);
  std::cout << "squad serve: resuming run " << row.id << " (" << spec->resume.done.size() << " of "
            << spec->workflow.steps.size() << " steps done, from event " << spec->resume.seq << ")" << std::endl;
  auto listener = spawn_listener(row.id, std::move(*spec));
  std::lock_guard<std::mutex> g{m_};
  entry->listener = listener;
}

} // namespace squad::server
