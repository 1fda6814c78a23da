#pragma once
// The run journal as `squad serve` and `squad run` use it: the store (storage.url) behind its writer actor. Runs,
// their events and state changes are queued here and committed in batches off the request path; reads go to the
// store. A process names itself (instance) in the leases of the runs it drives and renews them; runs whose
// process stopped renewing are handed to the orphan handler to resume (resume_from rebuilds what they did).
#include "actors/boss/boss.hpp"
#include "actors/store/writer.hpp"
#include "runtime/config/config.hpp"

#include <nlohmann/json.hpp>

#include <mutex>

namespace squad {

class run_journal {
public:
  /// Opens storage.url (migrating it) and starts the writer; null for url "none". Throws store::store_error.
  static std::shared_ptr<run_journal> open(caf::actor_system& sys, const storage_config& cfg);
  /// Only the store (migrated), before an actor system exists: null for url "none". Throws store::store_error.
  static std::shared_ptr<store::store> open_store(const storage_config& cfg);
  run_journal(caf::actor_system& sys, const storage_config& cfg, std::shared_ptr<store::store> db);
  ~run_journal();

  /// A new run (kind "api" or "cli"): this process holds its lease.
  void started(store::run_row r);
  /// One event (its JSON as the runs API shows it; type and seq read from it).
  void event(const std::string& run_id, const nlohmann::json& ev);
  /// The run's state: running, or how it ended (with the run.completed / run.failed data).
  void state(const std::string& id, const std::string& state, const std::string& reason = "",
             const nlohmann::json& summary = nlohmann::json::object());
  void audit(store::audit_row r);
  void audit(std::vector<store::audit_row> rows); ///< one call's rows, in one batch
  /// A limiter's checkpoint (replacing the one queued before it, if not written yet).
  void limiter_state(store::limiter_row r);

  /// Writes everything queued now; true when the store took it all (false: unreachable, rows kept for retry).
  bool flush();
  /// Resumes orphaned runs of `kind`: `fn` gets each batch the writer claims (on the writer's thread). Orphans
  /// claimed before a handler is set wait for it.
  void on_orphans(const std::string& kind, std::function<void(std::vector<store::run_row>)> fn);
  /// Takes over one run for this process (squad run --resume): nullopt when another live process holds it
  /// (`held_until` says until when) or it does not exist / has ended.
  std::optional<store::run_row> claim(const std::string& id, std::int64_t* held_until = nullptr);

  /// The writer: a request of atoms::done to it answers (true) once everything queued before is in the store.
  store_writer_actor writer() const { return writer_; }
  store::store& db() { return *db_; }
  const std::string& instance() const { return instance_; }
  std::size_t queued() const { return queue_->depth(); }
  bool over_limit() const { return queue_->over_limit(); }
  bool store_up() const { return queue_->store_up.load(); }                ///< the writer's last write went through
  std::uint64_t spool_bytes() const { return queue_->spool_bytes.load(); } ///< rows on disk awaiting the database
  std::int64_t lease_until() const;                                        ///< now + storage.lease, in unix ms

private:
  caf::actor_system& sys_;
  std::shared_ptr<store::store> db_;
  std::shared_ptr<store::write_queue> queue_;
  std::string instance_;
  millis lease_;
  store_writer_actor writer_;
  std::mutex m_;
  std::map<std::string, std::function<void(std::vector<store::run_row>)>> handlers_; // by kind
  std::vector<store::run_row> waiting_; // claimed before their kind's handler was set
};

/// What a run already did, from its journaled events (in order): the steps that ended (with their results), the
/// last seq and time, what it spent. A step that ended and was waiting for feedback keeps waiting.
run_resume resume_from(const std::vector<nlohmann::json>& events);

/// The same, from the store's rows.
std::vector<nlohmann::json> event_bodies(const std::vector<store::event_row>& rows);

} // namespace squad
