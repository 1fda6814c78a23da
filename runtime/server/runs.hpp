#pragma once
// The runs of `squad serve` (REST /v1/runs and WebSocket sessions): starts a squad run on the actor tree, keeps its
// state and event log in memory, and fans its events out to subscribers (SSE streams, WebSocket sessions).
//
// Per run, a small listener actor starts the boss under the runs supervisor and turns every run_event into JSON for the
// hub. step.delta events go to live subscribers only (they are not kept in the log); every other event is kept, so a
// subscriber that comes late gets the whole history first. Finished runs are kept up to `keep_finished`, oldest
// evicted first. Thread-safe: subscribers are called in event order, under the hub's lock: they must not block.
//
// With a journal (storage.url), every kept event, each run and its state changes are also written to the store
// (runs_store.cpp): runs, their snapshots and event streams outlive the process, and runs another process left
// unfinished (it died) are resumed here from their journal: the steps that ended are not called again.
#include "actors/boss/boss.hpp"
#include "runtime/host/event_json.hpp"
#include "runtime/host/run_journal.hpp"
#include "runtime/host/squad_tree.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <mutex>

namespace squad::server {

/// A subscriber gets each event (JSON with type, seq, run_id, ...). It returns false to unsubscribe.
using run_subscriber = std::function<bool(const nlohmann::json& event)>;

/// Who asks about runs. A run belongs to the API key that started it: another key is told it does not exist
/// (404, so run ids leak nothing); an admin key, and every caller when the server runs without keys, sees all.
struct run_caller {
  std::string key; ///< the API key's name; "" without auth
  bool all = true; ///< sees every run (no auth, or an admin key)
  bool sees(const std::string& owner) const { return all || owner == key; }
};

/// What starting a run needs from the client.
struct run_request {
  std::string owner; ///< the starting key's name ("" without auth)
  std::string task;
  std::string workflow; ///< "" : the config's default_workflow
  std::optional<std::int64_t> budget_calls, budget_tokens;
  std::optional<double> budget_usd;
  std::map<std::string, millis> feedback; ///< steps that wait for a person's input, beyond the workflow's own
};

/// A refusal: the HTTP status and an OpenAI-style error's message and param.
struct run_refusal {
  int status = 400;
  std::string message, param, code;
};

class run_hub : public std::enable_shared_from_this<run_hub> {
public:
  run_hub(caf::actor_system& sys, std::shared_ptr<directory> dir, const loaded_squad& squad,
          std::size_t keep_finished = 200, std::shared_ptr<run_journal> journal = nullptr);
  ~run_hub();

  /// Validates and starts a run; returns its id, or nullopt with `why` filled. `first` (optional) is subscribed
  /// before the run starts, so it sees every event; `accepted` (optional) is called with the id before any event.
  /// The hub must be owned by a shared_ptr.
  std::optional<std::string> start(const run_request& req, run_refusal& why, run_subscriber first = {},
                                   const std::function<void(const std::string&)>& accepted = {});

  // Every call below treats a run the caller may not see exactly as an unknown one.

  /// The run's state, steps and artifacts, or nullopt for an unknown id.
  std::optional<nlohmann::json> snapshot(const std::string& id, const run_caller& who) const;
  /// Summaries of the runs kept that the caller sees, newest first.
  nlohmann::json list(const run_caller& who) const;

  /// Replays the kept events after `after_seq`, then follows live ones (until the subscriber returns false or the
  /// run ends). Returns a subscription id (0: unknown run).
  std::uint64_t subscribe(const std::string& id, const run_caller& who, run_subscriber fn, std::int64_t after_seq = 0);

  /// Goes on with runs another process left unfinished (claimed from the journal): each from its last event.
  void resume(std::vector<store::run_row> rows);
  void unsubscribe(const std::string& id, std::uint64_t sub);

  /// Cancels a running run: 0 ok (the run.failed event follows), else an HTTP status (404 unknown, 409 finished).
  int cancel(const std::string& id, const run_caller& who, std::string& why);
  /// A person's input into a step waiting for it: 0 ok, else 404 (unknown run or step) or 409 (not waiting).
  int feedback(const std::string& id, const run_caller& who, const std::string& step, const std::string& text,
               std::string& why);

  /// Called by the run's listener actor, for each event in turn: record() applies it and journals it (nullopt: an
  /// unknown run); deliver() sends it to the followers. Between the two, an event that ends a step or the run
  /// waits until the store has it (durable_writer): what a client saw done is never done again after a crash.
  std::optional<nlohmann::json> record(const std::string& id, const run_event& ev);
  void deliver(const std::string& id, const nlohmann::json& ev);
  std::optional<store_writer_actor> durable_writer(const std::string& type) const;
  void on_boss_started(const std::string& id, boss_actor boss);
  void on_lost(const std::string& id, const std::string& why);

  std::size_t running() const;

private:
  struct step_view {
    std::string status = "pending";
    std::vector<std::string> personas;
    nlohmann::json outputs = nlohmann::json::array();
    std::string text, error;
  };
  struct run_entry {
    std::string id, owner, task, workflow, state = "starting", reason;
    std::int64_t created_unix = 0;
    std::int64_t last_seq = 0, last_at_ms = 0; // of the last event, step.delta included
    std::vector<std::string> step_order;
    std::map<std::string, step_view> steps;
    std::vector<nlohmann::json> events;
    std::map<std::uint64_t, run_subscriber> subs;
    boss_actor boss;
    caf::actor listener;
    nlohmann::json summary; // the run.completed / run.failed data
    bool driven = false;    // this process runs it (else: read back from the store)
    bool finished() const { return state == "completed" || state == "failed" || state == "cancelled"; }
  };
  void publish(run_entry& r, const nlohmann::json& ev, bool keep);
  run_entry* find(const std::string& id, const run_caller& who) const; // under m_; nullptr: unknown or not theirs
  void evict() const;
  static void apply(run_entry& r, const nlohmann::json& ev); // an event's effect on the run's state and steps
  void journal(run_entry& r, const nlohmann::json& ev);      // writes a kept event (and a state change) to storage
  /// A run only the store knows (finished before this process, or evicted) is rebuilt from its journal and kept
  /// in memory as finished runs are. Takes m_ itself, not while reading the store.
  void ensure_loaded(const std::string& id) const;
  std::shared_ptr<run_entry> rebuild(const store::run_row& row, const std::vector<nlohmann::json>& events) const;
  void resume_one(const store::run_row& row);
  caf::actor spawn_listener(const std::string& id, run_spec spec); // starts the run's boss through its listener
  /// The spec of a run of workflow `wf_id` (budgets, feedback waits as the request gave them); nullopt with `why`.
  std::optional<run_spec> make_spec(const std::string& wf_id, std::optional<std::int64_t> budget_calls,
                                    std::optional<std::int64_t> budget_tokens, std::optional<double> budget_usd,
                                    const std::map<std::string, millis>& feedback, run_refusal& why) const;

  caf::actor_system& sys_;
  std::shared_ptr<directory> dir_; // runs start under its runs supervisor
  loaded_squad squad_;
  std::size_t keep_finished_;
  std::shared_ptr<run_journal> journal_; // null: runs live in memory only
  mutable std::mutex m_;
  mutable std::map<std::string, std::shared_ptr<run_entry>> runs_; // load() caches runs read back from storage
  mutable std::vector<std::string> order_;                         // ids by creation
  std::uint64_t next_sub_ = 1;
};

/// Whether an event ends its run's stream (run.completed, run.failed).
bool is_end_event(const nlohmann::json& ev);

} // namespace squad::server
