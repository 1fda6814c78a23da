#include "actors/boss/boss.hpp"
#include "actors/dispatcher/dispatcher.hpp"
#include "actors/registry/directory.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace squad {

double call_cost(const chain_target& served_by, const usage_info& usage) {
  return (static_cast<double>(usage.prompt_tokens) * served_by.input_price +
          static_cast<double>(usage.completion_tokens) * served_by.output_price) /
         1e6;
}

std::string step_prompt(const std::string& task, const workflow_step& step, const std::string& inputs_text) {
  std::string instruction = step.prompt;
  for (auto pos = instruction.find("{{task}}"); pos != std::string::npos; pos = instruction.find("{{task}}", pos))
    instruction.replace(pos, 8, task), pos += task.size();
  std::string out = "Task: " + task + "\n\n" + instruction + "\n";
  if (!inputs_text.empty())
    out += "\n" + inputs_text;
  return out;
}

namespace {

constexpr int max_persona_tries = 5; // a persona that is restarting gets a few short retries

// Streams a step's answer to the run's listeners as step.delta events. Only the text: the answer itself comes back
// to the worker as the call's result, so done/failed are no-ops, and a step is never "committed" (its call may still
// fall back; the fallback's deltas follow a step.fallback event).
class step_delta_sink final : public call_sink {
public:
  step_delta_sink(boss_actor boss, std::string step, std::string persona)
      : boss_(std::move(boss)), step_(std::move(step)), persona_(std::move(persona)) {}
  void delta(std::string_view text) override {
    run_event ev;
    ev.type = "step.delta";
    ev.step_id = step_;
    ev.persona = persona_;
    ev.data_json = nlohmann::json{{"text", text}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    caf::anon_send(boss_, std::move(ev));
  }
  bool committed() const override { return false; }
  void done(call_result) override {}
  void failed(call_failure) override {}

private:
  boss_actor boss_;
  std::string step_, persona_;
};

struct call_slot {
  std::string persona;
  int tries = 0;
  bool done = false;
  bool skipped = false;                // the budget allocator said skip (out.error says why)
  bool cache_only = false;             // the budget allocator said: the cache, or skip
  std::string shed_reason;             // why, for a cache-only call
  std::uint64_t grant = 0;             // the budget allocator's id for the call, 0: none
  std::optional<budget_grant> granted; // its parameters, kept for a retried handoff
  step_output out;
};

struct worker_state {
  worker_args args;
  std::vector<call_slot> slots;
  std::size_t next = 0; // cascade: the slot to run next
  static inline const char* name = "squad.worker";
};

using worker_self = worker_actor::stateful_pointer<worker_state>;

void issue(worker_self self, std::size_t idx);

std::string display(const worker_state& st, std::size_t i) {
  return i < st.args.persona_names.size() ? st.args.persona_names[i] : st.slots[i].persona;
}

void finish(worker_self self) {
  auto& st = self->state;
  auto& step = st.args.step;
  step_result res;
  res.step_id = step.id;
  std::vector<std::size_t> ok;
  for (std::size_t i = 0; i < st.slots.size(); ++i) {
    res.outputs.push_back(st.slots[i].out);
    if (st.slots[i].out.ok)
      ok.push_back(i);
  }
  bool all_skipped = std::all_of(st.slots.begin(), st.slots.end(), [](auto& s) { return s.skipped; });
  if (ok.empty() && all_skipped) {
    res.status = "skipped";
    for (auto& s : st.slots)
      res.error += (res.error.empty() ? "" : "; ") + s.persona + ": " + s.out.error;
  } else if (ok.empty()) {
    res.status = "failed";
    for (auto& s : st.slots)
      if (!s.done || !s.out.ok)
        res.error += (res.error.empty() ? "" : "; ") + s.persona + ": " + (s.done ? s.out.error : "not run");
  } else {
    res.status = "completed";
    if (step.strategy == step_strategy::parallel && step.merge == "concat") {
      for (auto i : ok)
        res.text += "## " + display(st, i) + "\n\n" + st.slots[i].out.text + "\n";
    } else if (step.strategy == step_strategy::parallel) { // best: the fullest answer that finished cleanly
      auto best = ok.front();
      for (auto i : ok)
        if (st.slots[i].out.text.size() > st.slots[best].out.text.size())
          best = i;
      res.text = st.slots[best].out.text;
    } else { // single, or cascade: the last draft that succeeded
      res.text = st.slots[ok.back()].out.text;
    }
    for (auto& s : st.slots)
      if (!s.out.ok || s.out.partial)
        res.error += (res.error.empty() ? "" : "; ") + s.persona + ": " + (s.done ? s.out.error : "not run");
  }
  self->send(st.args.boss, std::move(res));
  self->quit();
}

void on_done(worker_self self, std::size_t idx) {
  auto& st = self->state;
  st.slots[idx].done = true;
  if (st.args.step.strategy == step_strategy::cascade) {
    if (++st.next < st.slots.size()) {
      issue(self, st.next);
      return;
    }
  }
  for (auto& s : st.slots)
    if (!s.done)
      return;
  finish(self);
}

std::string user_text(worker_self self, std::size_t idx) {
  auto& st = self->state;
  auto text = step_prompt(st.args.task, st.args.step, st.args.inputs_text);
  if (st.args.step.strategy == step_strategy::cascade) {
    // Each persona refines the latest draft that succeeded.
    for (auto i = idx; i-- > 0;)
      if (st.slots[i].out.ok) {
        text += "\n### Input from draft to refine (" + st.slots[i].persona + ")\n" + st.slots[i].out.text + "\n";
        break;
      }
  }
  return text;
}

bool retryable_handoff(const caf::error& err) {
  return err == caf::sec::request_receiver_down || err == caf::sec::invalid_argument ||
         err == squad_errc::child_unavailable; // invalid_argument: not in the directory (between crash and restart)
}

void call_persona(worker_self self, std::size_t idx, const budget_grant* grant);

// Asks the run's budget allocator first (once per persona call): call, degraded or not, or skip with a reason.
void issue(worker_self self, std::size_t idx) {
  auto& st = self->state;
  if (!st.args.budget || st.slots[idx].tries > 0)
    return call_persona(self, idx, st.slots[idx].granted ? &*st.slots[idx].granted : nullptr);
  auto tokens = static_cast<std::int64_t>(user_text(self, idx).size() / 4) + st.args.step.max_tokens;
  // A step sets no temperature, so none is sent (critical pressure may still cap it).
  self->request(st.args.budget, st.args.timeout, atoms::acquire_v, st.args.priority, tokens, st.args.step.max_tokens,
                temperature_unset, st.args.step.optional)
      .then(
          [self, idx](budget_grant& g) {
            auto& st = self->state;
            auto& slot = st.slots[idx];
            if (g.action == "cache") { // no LLM call for this one: a cached answer, or a skip
              slot.cache_only = true;
              slot.shed_reason = g.reason;
              return call_persona(self, idx, nullptr);
            }
            if (!g.granted) {
              slot.skipped = true;
              slot.out.ok = false;
              slot.out.error = "skipped: " + g.reason;
              emit_event(st.args.boss, "call.skipped", st.args.step.id, slot.persona,
                         slot.persona + " skipped: " + g.reason,
                         nlohmann::json{{"reason", g.reason}, {"pressure", g.pressure}}.dump());
              return on_done(self, idx);
            }
            slot.grant = g.id;
            slot.granted = g;
            for (auto& line : g.degraded)
              emit_event(st.args.boss, "step.degraded", st.args.step.id, slot.persona, "degraded: " + line,
                         nlohmann::json{{"change", line}, {"pressure", g.pressure}}.dump());
            call_persona(self, idx, &g);
          },
          [self, idx](caf::error& err) { // no allocator answer: the call goes ahead ungoverned, and says so
            auto& st = self->state;
            emit_event(st.args.boss, "budget.unavailable", st.args.step.id, st.slots[idx].persona,
                       "budget allocator unavailable (" + error_detail(self->system(), err) +
                           "); calling without a grant");
            call_persona(self, idx, nullptr);
          });
}

// The tool calls of an answer, appended to the step's text (what the next steps read) and told as an event.
void record_tool_calls(worker_self self, std::size_t idx, const std::string& calls_json) {
  auto& st = self->state;
  auto& slot = st.slots[idx];
  auto calls = nlohmann::json::parse(calls_json, nullptr, false);
  if (!calls.is_array() || calls.empty())
    return;
  std::string lines, names;
  for (auto& c : calls) {
    auto fn = c.value("function", nlohmann::json::object());
    auto name = fn.value("name", std::string{"?"});
    lines += "- " + name + "(" + fn.value("arguments", std::string{}) + ")\n";
    names += (names.empty() ? "" : ", ") + name;
  }
  auto& text = slot.out.text;
  text += (text.empty() ? "" : "\n\n") + std::string{"Tool calls requested (Squad runs no tools; recorded):\n"} + lines;
  emit_event(st.args.boss, "step.tool_calls", st.args.step.id, slot.persona,
             slot.persona + " asked for " + std::to_string(calls.size()) + " tool call(s): " + names,
             nlohmann::json{{"calls", calls}}.dump());
}

void call_persona(worker_self self, std::size_t idx, const budget_grant* grant) {
  auto& st = self->state;
  auto& slot = st.slots[idx];
  ++slot.tries;
  call_request req;
  req.trace_id = st.args.run_id + "/" + st.args.step.id + "/" + slot.persona;
  req.run_id = st.args.run_id;
  req.step_id = st.args.step.id;
  req.persona = slot.persona;
  req.priority = st.args.priority;
  req.max_tokens = st.args.step.max_tokens;
  if (grant) {
    req.max_tokens = grant->max_tokens;
    req.temperature = grant->temperature;
    req.prefer_worker = grant->prefer_worker;
  }
  req.messages.push_back({"user", user_text(self, idx)});
  req.timeout_ms = st.args.timeout.count();
  req.events = st.args.boss;
  if (st.args.stream_deltas) {
    req.stream = true;
    req.sink = std::make_shared<step_delta_sink>(st.args.boss, st.args.step.id, slot.persona);
  }
  if (slot.cache_only)
    req.cache_mode = cache_only;
  // A persona between a crash and its restart is not in the directory: the request fails at once (invalid_argument)
  // and the handoff is retried like any other unavailable persona.
  self->request(st.args.dir->get()->persona(slot.persona), st.args.timeout, std::move(req))
      .then(
          [self, idx](call_result& r) {
            if (auto g = self->state.slots[idx].grant; g && self->state.args.budget) {
              if (r.cached) // no LLM call was made: the reservation comes back
                self->send(self->state.args.budget, atoms::cancel_v, g);
              else // its cost at the prices of the model that answered
                self->send(self->state.args.budget, atoms::release_v, g,
                           r.usage.prompt_tokens + r.usage.completion_tokens, call_cost(r.served_by, r.usage));
            }
            auto& out = self->state.slots[idx].out;
            out.ok = true;
            out.partial = r.partial;
            if (r.partial) // dependents get it, marked: better a cut draft than nothing
              out.error = "partial output (every target failed; the stream was cut after " +
                          std::to_string(r.text.size()) + " bytes)";
            out.text = std::move(r.text);
            if (!r.tool_calls_json.empty()) // Squad runs no tools: the calls the model asked for are the output
              record_tool_calls(self, idx, r.tool_calls_json);
            out.served_by = r.served_by;
            out.usage = r.usage;
            out.simulated = r.simulated;
            out.latency_ms = r.latency_ms;
            out.attempts = std::move(r.attempts);
            on_done(self, idx);
          },
          [self, idx](caf::error& err) {
            auto& st = self->state;
            auto& slot = st.slots[idx];
            if (slot.cache_only && err == squad_errc::shed) { // the cache had nothing: the skip stands
              slot.skipped = true;
              slot.out.ok = false;
              slot.out.error = "skipped: " + slot.shed_reason + " (no cached answer)";
              emit_event(st.args.boss, "call.skipped", st.args.step.id, slot.persona,
                         slot.persona + " " + slot.out.error,
                         nlohmann::json{{"reason", slot.shed_reason + " (no cached answer)"}}.dump());
              return on_done(self, idx);
            }
            if (retryable_handoff(err) && slot.tries < max_persona_tries) {
              emit_event(st.args.boss, "step.retry", st.args.step.id, slot.persona,
                         "persona " + slot.persona + " unavailable (" + error_detail(self->system(), err) +
                             "); retrying",
                         nlohmann::json{{"reason", error_detail(self->system(), err)}, {"try", slot.tries}}.dump());
              self->delayed_send(self, millis{20 * slot.tries}, atoms::retry_v, static_cast<std::uint64_t>(idx));
              return;
            }
            slot.out.ok = false;
            slot.out.error = error_detail(self->system(), err);
            if (slot.grant && st.args.budget) // it may have reached an LLM: counted, tokens unknown
              self->send(st.args.budget, atoms::release_v, slot.grant, std::int64_t{-1});
            on_done(self, idx);
          });
}

worker_actor::behavior_type worker(worker_self self, worker_args args) {
  for (auto& p : args.step.personas) {
    call_slot s;
    s.persona = p;
    s.out.persona = p;
    self->state.slots.push_back(std::move(s));
  }
  self->state.args = std::move(args);
  self->send(self, atoms::start_v);
  return {
      [self](atoms::start) {
        auto& st = self->state;
        auto& h = st.args.hooks;
        if (!h.crash_step.empty() && h.crash_step == st.args.step.id && h.crashes->fetch_add(1) < h.crash_times)
          throw std::runtime_error("worker crash requested (test hook)");
        if (st.args.step.strategy == step_strategy::cascade)
          issue(self, 0);
        else
          for (std::size_t i = 0; i < st.slots.size(); ++i)
            issue(self, i);
      },
      [self](atoms::retry, std::uint64_t idx) { issue(self, static_cast<std::size_t>(idx)); },
  };
}

} // namespace

worker_actor spawn_worker(caf::local_actor* parent, worker_args args) {
  return parent->spawn(worker, std::move(args));
}

} // namespace squad
