#include "actors/boss/boss.hpp"
#include "actors/budget/budget.hpp"
#include "actors/dispatcher/dispatcher.hpp"
#include "actors/registry/directory.hpp"

#include <nlohmann/json.hpp>

namespace squad {

namespace {

using json = nlohmann::json;

struct step_state {
  std::string status = "pending"; // pending | running | awaiting_feedback | completed | failed | skipped
  step_result result;
  std::int64_t index = 0; // 1-based position in file order
};

struct boss_state {
  run_spec spec;
  std::shared_ptr<directory> dir;
  std::vector<event_sink_actor> listeners;
  supervisor_actor workers;  // the run's worker supervisor
  budget_actor budget;       // the run's budget allocator
  supervisor_actor personas; // the persona supervisor (to unsubscribe)
  std::map<std::string, step_state> steps;
  std::int64_t seq = 0;
  steady_time started;
  bool finished = false;
  bool killed_persona = false;
  std::int64_t calls = 0;
  std::int64_t tokens = 0;
  double usd = 0;
  static inline const char* name = "squad.boss";
};

using boss_self = boss_actor::stateful_pointer<boss_state>;

void publish(boss_self self, run_event ev) {
  auto& st = self->state;
  ev.seq = ++st.seq;
  ev.at_ms = st.spec.resume.at_ms + std::chrono::duration_cast<millis>(self->clock().now() - st.started).count();
  ev.run_id = st.spec.run_id;
  for (auto& l : st.listeners)
    self->send(l, ev);
}

void publish(boss_self self, std::string type, std::string step, std::string persona, std::string message,
             json data = json::object()) {
  run_event ev;
  ev.type = std::move(type);
  ev.step_id = std::move(step);
  ev.persona = std::move(persona);
  ev.message = std::move(message);
  ev.data_json = data.dump();
  publish(self, std::move(ev));
}

std::string join(const std::vector<std::string>& xs, const char* sep) {
  std::string out;
  for (auto& x : xs)
    out += (out.empty() ? "" : sep) + x;
  return out;
}

const workflow_step& step_def(boss_self self, const std::string& id) {
  for (auto& s : self->state.spec.workflow.steps)
    if (s.id == id)
      return s;
  throw std::logic_error("unknown step " + id); // the workflow was validated: a broken invariant
}

std::string inputs_text(boss_self self, const workflow_step& step) {
  std::string out;
  for (auto& in : step.inputs) {
    auto& s = self->state.steps[in];
    auto who = join(step_def(self, in).personas, ", ");
    if (s.status == "completed") {
      bool partial = std::any_of(s.result.outputs.begin(), s.result.outputs.end(), [](auto& o) { return o.partial; });
      out += "### Input from " + in + " (" + who + ")" + (partial ? " [PARTIAL: cut short]" : "") + "\n" +
             s.result.text + "\n";
      if (!s.result.error.empty())
        out += "(partly degraded: " + s.result.error + ")\n";
    } else {
      out += "### Input from " + in + " (" + who + "): unavailable, step " + s.status + ": " + s.result.error + "\n";
    }
    out += "\n";
  }
  return out;
}

void finish_run(boss_self self, const std::string& reason);

// The run's budget allocator: its calls, tokens and USD, and what a resumed run spent.
budget_options budget_options_of(const run_spec& spec) {
  budget_options o;
  o.calls = spec.workflow.budget_calls;
  o.tokens = spec.workflow.budget_tokens;
  o.spent_calls = spec.resume.calls;
  o.spent_tokens = spec.resume.tokens;
  o.usd = spec.workflow.budget_usd;
  o.spent_usd = spec.resume.usd;
  o.worst_input_price = spec.worst_input_price;
  o.worst_output_price = spec.worst_output_price;
  return o;
}

void launch_ready(boss_self self) {
  auto& st = self->state;
  if (st.finished)
    return;
  bool running = false;
  for (auto& step : st.spec.workflow.steps) {
    auto& s = st.steps[step.id];
    if (s.status == "running" || s.status == "awaiting_feedback")
      running = true;
    if (s.status != "pending")
      continue;
    bool ready = std::all_of(step.inputs.begin(), step.inputs.end(), [&](auto& in) {
      auto& x = st.steps[in].status;
      return x == "completed" || x == "failed" || x == "skipped";
    });
    if (!ready)
      continue;
    s.status = "running";
    running = true;
    worker_args args;
    args.run_id = st.spec.run_id;
    args.task = st.spec.task;
    args.step = step;
    auto first = st.spec.personas.find(step.personas.front());
    args.priority = static_cast<std::uint8_t>(
        step.priority ? *step.priority
                      : (first != st.spec.personas.end() ? first->second.priority : priority_class::p1));
    for (auto& p : step.personas) {
      auto i = st.spec.personas.find(p);
      args.persona_names.push_back(i != st.spec.personas.end() ? i->second.name : p);
    }
    args.inputs_text = inputs_text(self, step);
    args.boss = self;
    args.dir = st.dir;
    args.budget = st.budget;
    args.timeout = st.spec.step_timeout;
    args.hooks = st.spec.hooks;
    args.stream_deltas = st.spec.stream_deltas;
    publish(self, "step.started", step.id, join(step.personas, ","),
            step.id + ": " + join(args.persona_names, " + ") + " (P" + std::to_string(args.priority) + ")",
            json{{"index", s.index},
                 {"personas", step.personas},
                 {"priority", "P" + std::to_string(args.priority)},
                 {"strategy", step.strategy == step_strategy::single     ? "single"
                              : step.strategy == step_strategy::parallel ? "parallel"
                                                                         : "cascade"},
                 {"inputs", step.inputs}});
    child_spec spec{"step:" + step.id, restart_kind::transient, [args](caf::local_actor* parent) {
                      return caf::actor_cast<caf::actor>(spawn_worker(parent, args));
                    }};
    self->request(st.workers, caf::infinite, atoms::start_child_v, std::move(spec))
        .then(
            [](const caf::actor&) {},
            [self, id = step.id](caf::error& err) {
              auto& s = self->state.steps[id];
              s.status = "failed";
              s.result.step_id = id;
              s.result.status = "failed";
              s.result.error = "worker did not start: " + error_detail(self->system(), err);
              publish(self, "step.failed", id, "", id + " failed: " + s.result.error, json{{"error", s.result.error}});
              launch_ready(self);
            });
    // Test hook: kill a persona's actor while its step is in flight.
    auto& hk = st.spec.hooks.kill_persona;
    if (!hk.empty() && !st.killed_persona &&
        std::find(step.personas.begin(), step.personas.end(), hk) != step.personas.end()) {
      st.killed_persona = true;
      if (auto p = st.dir->get()->persona(hk)) {
        publish(self, "test.kill", "", hk, "test hook: crashing persona actor " + hk);
        self->send(p, atoms::crash_v);
      }
    }
  }
  if (!running)
    finish_run(self, "");
}

// The end of a step's wait for a person's input: with it (appended to what dependents read) or without it.
void end_feedback_wait(boss_self self, const std::string& step, const std::string* text) {
  auto& st = self->state;
  auto it = st.steps.find(step);
  if (it == st.steps.end() || it->second.status != "awaiting_feedback" || st.finished)
    return;
  it->second.status = "completed";
  if (text) {
    it->second.result.text += "\n\n### Feedback from a person on " + step + "\n" + *text + "\n";
    publish(self, "step.feedback", step, "", step + ": feedback received (" + std::to_string(text->size()) + " bytes)",
            json{{"text", *text}});
  } else {
    publish(self, "step.feedback_timeout", step, "", step + ": no feedback in time; the run goes on without it",
            json{{"timeout_ms", st.spec.feedback.at(step).count()}});
  }
  launch_ready(self);
}

void finish_run(boss_self self, const std::string& reason) {
  auto& st = self->state;
  if (st.finished)
    return;
  st.finished = true;
  std::vector<std::string> failed, skipped, completed;
  json steps = json::object();
  for (auto& step : st.spec.workflow.steps) {
    auto& s = st.steps[step.id];
    steps[step.id] = s.status;
    if (s.status == "completed")
      completed.push_back(step.id);
    else if (s.status == "skipped")
      skipped.push_back(step.id);
    else
      failed.push_back(step.id);
  }
  auto elapsed = st.spec.resume.at_ms + std::chrono::duration_cast<millis>(self->clock().now() - st.started).count();
  json data{{"steps", steps},    {"completed", completed}, {"failed", failed},   {"skipped", skipped},
            {"calls", st.calls}, {"tokens", st.tokens},    {"cost_usd", st.usd}, {"elapsed_ms", elapsed}};
  if (reason.empty() && failed.empty()) {
    publish(self, "run.completed", "", "", "run completed: " + std::to_string(completed.size()) + " steps", data);
  } else {
    auto why = !reason.empty() ? reason : "failed steps: " + join(failed, ", ");
    data["reason"] = why;
    publish(self, "run.failed", "", "", "run failed: " + why, data);
  }
  if (st.personas)
    self->send(st.personas, atoms::unsubscribe_v, caf::actor_cast<caf::actor>(self));
  if (st.workers)
    self->send_exit(st.workers, caf::exit_reason::user_shutdown);
  self->quit();
}

// A run picked up from its journal: says what it goes on from, restarts the feedback waits cut short, then
// launches what is ready (the step that was in flight when the process stopped is called again).
void resumed(boss_self self) {
  auto& st = self->state;
  std::vector<std::string> done;
  for (auto& step : st.spec.workflow.steps)
    if (st.spec.resume.done.count(step.id))
      done.push_back(step.id);
  publish(self, "run.resumed", "", "",
          "run " + st.spec.run_id + " resumed: " + std::to_string(done.size()) + " of " +
              std::to_string(st.spec.workflow.steps.size()) + " steps already done",
          json{{"task", st.spec.task},
               {"workflow", st.spec.workflow.id},
               {"steps", st.spec.workflow.steps.size()},
               {"done", done},
               {"calls_spent", st.calls},
               {"tokens_spent", st.tokens},
               {"usd_spent", st.usd},
               {"budget_calls", st.spec.workflow.budget_calls},
               {"budget_tokens", st.spec.workflow.budget_tokens},
               {"budget_usd", st.spec.workflow.budget_usd}});
  for (auto& [id, s] : st.steps)
    if (s.status == "awaiting_feedback") {
      auto wait = st.spec.feedback.count(id) ? st.spec.feedback.at(id) : millis{0};
      publish(self, "step.awaiting_feedback", id, "",
              id + ": waiting up to " + std::to_string(wait.count()) + "ms for feedback (again, after a restart)",
              json{{"timeout_ms", wait.count()}});
      self->delayed_send(self, wait, atoms::tick_v, id);
    }
  launch_ready(self);
}

boss_actor::behavior_type boss(boss_self self, run_spec spec, std::shared_ptr<directory> dir,
                               event_sink_actor listener) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.dir = std::move(dir);
  if (listener)
    st.listeners.push_back(listener);
  st.started = self->clock().now();
  std::int64_t index = 0;
  for (auto& step : st.spec.workflow.steps) {
    st.steps[step.id].index = ++index;
    if (step.feedback.count() > 0)
      st.spec.feedback.emplace(step.id, step.feedback);
  }
  auto& resume = st.spec.resume;
  for (auto& [id, r] : resume.done) // ended before a restart: their results stand, they are not called again
    if (auto it = st.steps.find(id); it != st.steps.end()) {
      it->second.status = r.status;
      it->second.result = r;
    }
  st.seq = resume.seq;
  st.calls = resume.calls;
  st.tokens = resume.tokens;
  st.usd = resume.usd;
  supervisor_options wopts{"workers:" + st.spec.run_id, static_cast<std::size_t>(st.spec.supervision.max_restarts),
                           st.spec.supervision.period};
  st.workers = spawn_child_supervisor(self, wopts, {});
  st.budget = spawn_budget(self, budget_options_of(st.spec), st.dir);
  self->attach_functor([b = st.budget] { caf::anon_send_exit(b, caf::exit_reason::user_shutdown); });
  self->monitor(st.workers);
  self->send(st.workers, atoms::subscribe_v, caf::actor_cast<caf::actor>(self));
  self->attach_functor([w = st.workers] { caf::anon_send_exit(w, caf::exit_reason::user_shutdown); });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (msg.source == st.workers.address() && !st.finished)
      finish_run(self, "worker supervisor gave up: " + error_detail(self->system(), msg.reason));
  });
  if ((st.personas = st.dir->get()->personas_supervisor)) // persona restarts become run events
    self->send(st.personas, atoms::subscribe_v, caf::actor_cast<caf::actor>(self));
  self->send(self, atoms::start_v);
  return {
      [self](atoms::start) {
        auto& st = self->state;
        if (st.spec.resume.active) {
          resumed(self);
          return;
        }
        publish(self, "run.started", "", "", "run " + st.spec.run_id + ": " + st.spec.workflow.id,
                json{{"task", st.spec.task},
                     {"workflow", st.spec.workflow.id},
                     {"steps", st.spec.workflow.steps.size()},
                     {"budget_calls", st.spec.workflow.budget_calls},
                     {"budget_tokens", st.spec.workflow.budget_tokens},
                     {"budget_usd", st.spec.workflow.budget_usd}});
        launch_ready(self);
      },
      [self](step_result& r) {
        auto& st = self->state;
        auto it = st.steps.find(r.step_id);
        if (it == st.steps.end() || it->second.status != "running")
          return;
        json outputs = json::array();
        for (auto& o : r.outputs) {
          st.calls += static_cast<std::int64_t>(o.attempts.size());
          st.tokens += o.usage.prompt_tokens + o.usage.completion_tokens;
          auto cost = call_cost(o.served_by, o.usage);
          st.usd += cost;
          outputs.push_back({{"persona", o.persona},
                             {"ok", o.ok},
                             {"provider", o.served_by.provider},
                             {"model", o.served_by.model},
                             {"prompt_tokens", o.usage.prompt_tokens},
                             {"completion_tokens", o.usage.completion_tokens},
                             {"cost_usd", cost},
                             {"latency_ms", o.latency_ms},
                             {"attempts", o.attempts.size()},
                             {"simulated", o.simulated},
                             {"partial", o.partial},
                             {"text", o.text},
                             {"error", o.error}});
        }
        it->second.status = r.status;
        json data{{"index", it->second.index},
                  {"status", r.status},
                  {"outputs", outputs},
                  {"text", r.text},
                  {"error", r.error}};
        auto type = r.status == "completed" ? "step.completed" : r.status == "skipped" ? "step.skipped" : "step.failed";
        auto msg = r.step_id + " " + r.status + (r.error.empty() ? "" : " (" + r.error + ")");
        it->second.result = std::move(r);
        publish(self, type, it->first, "", msg, data);
        if (auto fb = st.spec.feedback.find(it->first);
            fb != st.spec.feedback.end() && it->second.status == "completed") {
          it->second.status = "awaiting_feedback"; // dependents wait for a person's input, or the timeout
          publish(self, "step.awaiting_feedback", it->first, "",
                  it->first + ": waiting up to " + std::to_string(fb->second.count()) + "ms for feedback",
                  json{{"timeout_ms", fb->second.count()}});
          self->delayed_send(self, fb->second, atoms::tick_v, it->first);
        }
        launch_ready(self);
      },
      [self](run_event& ev) { publish(self, std::move(ev)); },
      [self](child_event& ev) {
        auto what = ev.supervisor.rfind("workers:", 0) == 0 ? "step." + ev.what : "actor." + ev.what;
        auto step = ev.child.rfind("step:", 0) == 0 ? ev.child.substr(5) : "";
        publish(
            self, what, step, step.empty() ? ev.child : "",
            ev.supervisor + "/" + ev.child + " " + ev.what + " after " + ev.reason,
            json{{"supervisor", ev.supervisor}, {"child", ev.child}, {"reason", ev.reason}, {"restarts", ev.restarts}});
      },
      [self](atoms::subscribe, const event_sink_actor& who) { self->state.listeners.push_back(who); },
      [self](atoms::cancel) { finish_run(self, "cancelled"); },
      [self](atoms::feedback, const std::string& step, const std::string& text) {
        end_feedback_wait(self, step, &text);
      },
      [self](atoms::tick, const std::string& step) { end_feedback_wait(self, step, nullptr); },
  };
}

} // namespace

boss_actor spawn_boss(caf::local_actor* parent, run_spec spec, std::shared_ptr<directory> dir,
                      event_sink_actor listener) {
  return parent->spawn(boss, std::move(spec), std::move(dir), std::move(listener));
}

child_spec boss_child(run_spec spec, std::shared_ptr<directory> dir, event_sink_actor listener) {
  auto name = "run:" + spec.run_id;
  return child_spec{name, restart_kind::temporary, [spec, dir, listener](caf::local_actor* parent) {
                      return caf::actor_cast<caf::actor>(spawn_boss(parent, spec, dir, listener));
                    }};
}

} // namespace squad
