#pragma once
// Squad's durable state over one SQL connection interface (sql.hpp): the run journal (a row per run, its events in
// order), run leases (which process drives an unfinished run, so a restarted or surviving one resumes it), audit
// rows, and retention. The schema is versioned (squad_schema); open() applies what is missing in order and refuses
// a database whose schema is newer than this binary, a foreign SQLite file, or one that is not a database at all.
//
// Writes come in batches, one transaction each (the writer actor's group commit), and are idempotent: an event is
// keyed by (run, seq), an audit row by its id, so a batch replayed after an outage writes nothing twice.
// Thread-safety: every call may come from any thread; calls are serialised per connection (one for the writer's
// batches, one for everything else), so reads never wait behind a long batch on SQLite's WAL or on PostgreSQL.
#include "runtime/store/sql.hpp"

#include <map>
#include <mutex>
#include <optional>

namespace squad::store {

/// The schema version this binary writes (and the newest it can open).
int known_schema_version();

/// A run: what started it (request, JSON) and where it is.
struct run_row {
  std::string id, owner, task, workflow;
  std::string request = "{}"; ///< what resuming it needs: budgets, feedback waits (JSON)
  std::string state = "starting", reason;
  std::string summary = "{}";   ///< the run.completed / run.failed data (JSON)
  std::int64_t created = 0;     ///< unix seconds
  std::int64_t updated = 0;     ///< unix seconds
  std::string instance;         ///< the process driving it
  std::int64_t lease_until = 0; ///< unix ms: after this, another process may resume it
  std::string kind = "api";     ///< api (squad serve resumes it) | cli (squad run --resume does)
  bool finished() const { return state == "completed" || state == "failed" || state == "cancelled"; }
};

/// A run's state changed (started, finished).
struct run_update {
  std::string id, state, reason, summary = "{}";
  std::int64_t updated = 0;
};

/// One event of a run, as its JSON (step.delta events are never journaled).
struct event_row {
  std::string run_id;
  std::int64_t seq = 0;
  std::string type, body;
};

/// One audit row: an API request or one upstream attempt. Bodies are already redacted when kept.
struct audit_row {
  std::string id; ///< idempotent key: request id, kind, attempt
  std::int64_t time_ms = 0;
  std::string kind; ///< "request" | "upstream"
  std::string request_id, run_id, step, key_id, persona, provider, model, status, error_class, trace_id;
  std::int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0, latency_ms = 0, fallbacks = 0;
  double cost_usd = 0;
  std::string request_body, response_body;
};

/// One limiter's checkpoint (its JSON, actors/limiter/limiter_checkpoint.hpp), by limits domain: a provider's name
/// or "provider/model". One row per domain; a later checkpoint replaces an earlier one.
struct limiter_row {
  std::string provider;
  std::string body;
  std::int64_t updated_ms = 0; ///< unix ms when it was taken
};

struct write_batch {
  std::vector<run_row> runs;
  std::vector<run_update> updates;
  std::vector<event_row> events;
  std::vector<audit_row> audit;
  std::vector<limiter_row> limiters; ///< at most one per provider: append() keeps the later one
  std::size_t size() const { return runs.size() + updates.size() + events.size() + audit.size() + limiters.size(); }
  bool empty() const { return size() == 0; }
  void append(write_batch&& other);
};

class store {
public:
  /// Parses the URL, connects (twice), applies missing migrations. Throws store_error naming the masked URL.
  static std::unique_ptr<store> open(const std::string& url);
  store(std::unique_ptr<sql_conn> writer, std::unique_ptr<sql_conn> reader, std::string masked_url);

  std::string_view backend() const { return writer_->backend(); }
  const std::string& url() const { return url_; } ///< masked
  int schema_version();

  /// One transaction; a row already there is left as it is (events, audit) or updated (runs, their state, a limiter's
  /// checkpoint unless the stored one was taken later).
  void write(const write_batch& b);

  /// Every limiter checkpoint kept, by provider (limits domain).
  std::vector<limiter_row> limiters();

  std::optional<run_row> run(const std::string& id);
  /// The newest runs first (at most `limit`).
  std::vector<run_row> runs(std::size_t limit);
  /// A run's events after `after_seq`, in order.
  std::vector<event_row> events(const std::string& run_id, std::int64_t after_seq = 0);
  /// Takes over unfinished runs of `kind` whose lease ran out before `now_ms` (their process died): they are this
  /// `instance`'s until `lease_until_ms`. Returns them, oldest first.
  std::vector<run_row> claim_orphans(const std::string& instance, const std::string& kind, std::int64_t now_ms,
                                     std::int64_t lease_until_ms);
  /// Takes over one unfinished run whose lease ran out (or that `instance` holds already); nullopt otherwise.
  std::optional<run_row> claim(const std::string& id, const std::string& instance, std::int64_t now_ms,
                               std::int64_t lease_until_ms);
  /// Extends the leases of this instance's unfinished runs.
  void renew(const std::string& instance, std::int64_t lease_until_ms);
  /// Deletes finished runs (and their events) last updated before `before_unix`, `batch` runs per transaction
  /// (short locks); returns how many runs went. Audit rows older than that go too.
  std::size_t prune(std::int64_t before_unix, std::size_t batch = 200);
  /// One group of GET /v1/usage: the values of its group columns, and what its requests used.
  struct usage_row {
    std::vector<std::string> group;
    std::int64_t requests = 0, prompt_tokens = 0, completion_tokens = 0;
    double cost_usd = 0;
  };
  /// Request rows from `since_ms` on, summed by `columns` (each one of key_id, persona, provider, model, run_id;
  /// anything else throws store_error), dearest first.
  std::vector<usage_row> usage(const std::vector<std::string>& columns, std::int64_t since_ms);
  /// USD spent per key (request rows' cost_usd) from `since_ms` on: money budgets after a restart.
  std::map<std::string, double> spend_by_key(std::int64_t since_ms);
  /// Audit rows from `since_ms` on, in time order (then by id); with `after_id`, only those after (since_ms,
  /// after_id) in that order: the next page after a page's last row.
  std::vector<audit_row> audit(std::int64_t since_ms, std::size_t limit, const std::string& after_id = {});

private:
  void migrate(); // on the writer connection
  std::unique_ptr<sql_conn> writer_, reader_;
  std::mutex wm_, rm_;
  std::string url_;
};

} // namespace squad::store
