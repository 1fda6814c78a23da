#pragma once
// Per run: a boss actor expands the workflow DAG and delegates each ready step to a worker actor,
// started under the run's own worker supervisor (transient children: a crashed worker is restarted
// and redoes its step; past the intensity limit the supervisor escalates and the run fails, explicitly).
//
// Boss protocol (boss_actor):
//   step_result           <- from workers
//   run_event             <- partial events from workers and the dispatcher; stamped and published
//   child_event           <- from supervisors it subscribed to (persona and worker restarts)
//   (subscribe, event_sink_actor) -> adds a listener of the run's events (run_event messages)
//   (cancel)              -> cancels the run (run.failed, reason cancelled)
//   (feedback, step, text) -> a person's input into a step waiting for it (step.awaiting_feedback); the text is
//                            appended to the step's output its dependents read. Past the step's feedback timeout
//                            the run goes on without it (step.feedback_timeout).
//   (start), (tick, step)  internal: the run's first step; a step's feedback timeout
// Worker protocol (worker_actor): (start), (retry, slot) internal only: a worker is driven by the answers to its
// own requests (persona calls, budget grants) and reports to its boss.
// Each message above is serialisable (messages.hpp's type-ID block), so a boss may be reached from another node;
// the worker's and boss's spawn arguments (run_spec, test hooks, the directory) never leave the process.
// Listeners receive every run_event in order; the last one is run.completed or run.failed.
#include "actors/budget/budget.hpp"
#include "actors/messages.hpp"
#include "actors/supervisor/supervisor.hpp"
#include "runtime/config/workflow.hpp"

#include <atomic>
#include <map>

namespace squad {

/// Fault injection for tests and demos; all off by default.
struct test_hooks {
  std::string kill_persona; ///< kill this persona's actor when its first step starts
  std::string crash_step;   ///< the worker of this step crashes at start ...
  int crash_times = 0;      ///< ... this many times (across restarts)
  std::shared_ptr<std::atomic<int>> crashes = std::make_shared<std::atomic<int>>(0);
};

/// A run's boss (see above); it is also where the run's partial events are sent.
using boss_actor =
    event_sink_actor::extend<caf::reacts_to<step_result>, caf::reacts_to<child_event>,
                             caf::reacts_to<atoms::subscribe, event_sink_actor>, caf::reacts_to<atoms::cancel>,
                             caf::reacts_to<atoms::feedback, std::string, std::string>, caf::reacts_to<atoms::start>,
                             caf::reacts_to<atoms::tick, std::string>>;

/// One step's worker: its messages are its own timers.
using worker_actor = caf::typed_actor<caf::reacts_to<atoms::start>, caf::reacts_to<atoms::retry, std::uint64_t>>;

/// What a run resumed after a restart already did (read back from its journal).
struct run_resume {
  bool active = false;
  /// Steps that ended before the restart, with their results: never called again. A step whose status is
  /// awaiting_feedback had completed and was waiting for a person: the wait starts over.
  std::map<std::string, step_result> done;
  std::int64_t seq = 0, at_ms = 0;    ///< the journal's last event: the run's events go on after it
  std::int64_t calls = 0, tokens = 0; ///< what the run spent: its budget counts it
  double usd = 0;                     ///< what it cost (the steps' cost_usd)
};

struct run_spec {
  std::string run_id;
  std::string task;
  workflow_def workflow;
  std::map<std::string, persona_def> personas; ///< by id
  millis step_timeout{120000};
  supervision_config supervision;
  test_hooks hooks;
  std::map<std::string, millis>
      feedback;               ///< steps that wait for a person's input after their output (with the step's own)
  bool stream_deltas = false; ///< publish step.delta events with the streamed text (API runs)
  run_resume resume;          ///< active: the run goes on from its journal (run.resumed instead of run.started)
  /// USD per 1M tokens: the dearest prices any target of the run's personas charges (a money budget's worst case).
  double worst_input_price = 0, worst_output_price = 0;
};

class directory;

/// Spawns a boss; personas and the dispatcher are found in `dir`, `listener` gets every event.
boss_actor spawn_boss(caf::local_actor* parent, run_spec spec, std::shared_ptr<directory> dir,
                      event_sink_actor listener);

/// A child spec for the runs supervisor (temporary: a finished or crashed run is not restarted).
child_spec boss_child(run_spec spec, std::shared_ptr<directory> dir, event_sink_actor listener);

/// What a worker needs to run one step.
struct worker_args {
  std::string run_id;
  std::string task;
  workflow_step step;
  std::uint8_t priority = 1;
  std::vector<std::string> persona_names; ///< display names, parallel to step.personas
  std::string inputs_text;                ///< the "### Input from ..." blocks of the step's inputs
  boss_actor boss;
  std::shared_ptr<directory> dir; ///< where the step's personas are found
  budget_actor budget;            ///< the run's budget allocator; null: no budget governance
  millis timeout{120000};
  test_hooks hooks;
  bool stream_deltas = false; ///< send the boss step.delta events as the answer streams
};

/// Spawns a worker (used by the boss's worker supervisor).
worker_actor spawn_worker(caf::local_actor* parent, worker_args args);

/// What one answered call cost: its tokens at the prices of the target that answered (USD).
double call_cost(const chain_target& served_by, const usage_info& usage);

/// The user message a step sends: task, instruction ({{task}} replaced) and inputs.
std::string step_prompt(const std::string& task, const workflow_step& step, const std::string& inputs_text);

} // namespace squad
