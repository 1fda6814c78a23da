#include "runtime/store/store.hpp"

#include <map>
#include <set>

#include <algorithm>
#include <cstdio>

namespace squad::store {

namespace {

// Migrations in order: migration i takes the schema from version i to i + 1. Never edit a released one: add one.
// The SQL is the common subset of SQLite and PostgreSQL (TEXT, BIGINT, DOUBLE PRECISION, ON CONFLICT, RETURNING).
const std::vector<std::vector<const char*>>& migrations() {
  static const std::vector<std::vector<const char*>> m{
      {
          "CREATE TABLE squad_runs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, task TEXT NOT NULL, "
          "workflow TEXT NOT NULL, request TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, "
          "summary TEXT NOT NULL, created BIGINT NOT NULL, updated BIGINT NOT NULL, instance TEXT NOT NULL, "
          "lease_until BIGINT NOT NULL, kind TEXT NOT NULL)",
          "CREATE INDEX squad_runs_created ON squad_runs (created)",
          "CREATE INDEX squad_runs_open ON squad_runs (state, lease_until)",
          "CREATE TABLE squad_run_events (run_id TEXT NOT NULL, seq BIGINT NOT NULL, type TEXT NOT NULL, "
          "body TEXT NOT NULL, PRIMARY KEY (run_id, seq))",
          "CREATE TABLE squad_audit (id TEXT PRIMARY KEY, time_ms BIGINT NOT NULL, kind TEXT NOT NULL, "
          "request_id TEXT NOT NULL, run_id TEXT NOT NULL, step TEXT NOT NULL, key_id TEXT NOT NULL, "
          "persona TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, status TEXT NOT NULL, "
          "error_class TEXT NOT NULL, trace_id TEXT NOT NULL, prompt_tokens BIGINT NOT NULL, "
          "completion_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT NULL, latency_ms BIGINT NOT NULL, "
          "fallbacks BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL, request_body TEXT NOT NULL, "
          "response_body TEXT NOT NULL)",
          "CREATE INDEX squad_audit_time ON squad_audit (time_ms)",
      },
      {
          // Each limiter's last checkpoint (window log, pause, learned limits), so a restart admits no more than a
          // window allows (docs/storage.md).
          "CREATE TABLE squad_limiter_state (provider TEXT PRIMARY KEY, body TEXT NOT NULL, "
          "updated_ms BIGINT NOT NULL)",
      },
  };
  return m;
}

constexpr const char* finished_states = "('completed', 'failed', 'cancelled')";
constexpr const char* run_columns =
    "id, owner, task, workflow, request, state, reason, summary, created, updated, instance, lease_until, kind";

constexpr std::size_t audit_fields = 21, audit_chunk = 200;

// INSERT of `rows` audit rows in one statement ($1 .. $21 the first row's fields, and so on), built once per size.
const std::string& audit_insert(std::size_t rows) {
  static std::mutex m;
  static std::map<std::size_t, std::string> made;
  std::lock_guard<std::mutex> g{m};
  auto& sql = made[rows];
  if (sql.empty()) {
    sql = "INSERT INTO squad_audit (id, time_ms, kind, request_id, run_id, step, key_id, persona, provider, model, "
          "status, error_class, trace_id, prompt_tokens, completion_tokens, cached_tokens, latency_ms, fallbacks, "
          "cost_usd, request_body, response_body) VALUES ";
    for (std::size_t r = 0; r < rows; ++r) {
      sql += r ? ", (" : "(";
      for (std::size_t f = 0; f < audit_fields; ++f)
        sql += (f ? ", $" : "$") + std::to_string(r * audit_fields + f + 1);
      sql += ")";
    }
    sql += " ON CONFLICT (id) DO NOTHING";
  }
  return sql;
}

std::string real(double v) { // exact enough to read back the same double
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::int64_t num(const std::string& s) {
  return s.empty() ? 0 : std::stoll(s);
}

run_row to_run(const sql_row& r) {
  run_row x;
  x.id = r[0], x.owner = r[1], x.task = r[2], x.workflow = r[3], x.request = r[4], x.state = r[5];
  x.reason = r[6], x.summary = r[7], x.created = num(r[8]), x.updated = num(r[9]), x.instance = r[10];
  x.lease_until = num(r[11]), x.kind = r[12];
  return x;
}

} // namespace

int known_schema_version() {
  return static_cast<int>(migrations().size());
}

void write_batch::append(write_batch&& o) {
  auto move_all = [](auto& to, auto& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  };
  move_all(runs, o.runs);
  move_all(updates, o.updates);
  move_all(events, o.events);
  move_all(audit, o.audit);
  for (auto& l : o.limiters) { // only the latest checkpoint of a limiter is worth writing (or spooling)
    auto same = std::find_if(limiters.begin(), limiters.end(), [&](auto& x) { return x.provider == l.provider; });
    if (same == limiters.end())
      limiters.push_back(std::move(l));
    else if (l.updated_ms >= same->updated_ms)
      *same = std::move(l);
  }
}

std::unique_ptr<store> store::open(const std::string& url) {
  auto u = parse_storage_url(url);
  auto s = std::make_unique<store>(open_sql(u), open_sql(u), masked_url(url));
  s->migrate();
  return s;
}

store::store(std::unique_ptr<sql_conn> writer, std::unique_ptr<sql_conn> reader, std::string masked)
    : writer_(std::move(writer)), reader_(std::move(reader)), url_(std::move(masked)) {}

void store::migrate() {
  std::lock_guard<std::mutex> g{wm_};
  auto& c = *writer_;
  bool sqlite = c.backend() == "sqlite";
  if (sqlite) { // a SQLite file of another program: refuse it rather than add tables to it
    auto tables = c.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    bool ours = tables.empty();
    std::string names;
    for (auto& t : tables) {
      ours = ours || t[0] == "squad_schema";
      names += (names.empty() ? "" : ", ") + t[0];
    }
    if (!ours)
      throw store_error("storage.url " + url_ + " is a SQLite database of another program (tables: " + names +
                        "): point storage.url at a new file");
  }
  c.query("CREATE TABLE IF NOT EXISTS squad_schema (version BIGINT NOT NULL)");
  c.transact([&] {
    if (!sqlite)
      c.query("LOCK TABLE squad_schema IN EXCLUSIVE MODE"); // nodes starting together migrate one at a time
    auto rows = c.query("SELECT version FROM squad_schema");
    if (rows.empty()) {
      c.query("INSERT INTO squad_schema (version) VALUES (0)");
      rows.push_back({"0"});
    }
    auto version = static_cast<int>(num(rows[0][0]));
    if (version > known_schema_version())
      throw store_error("storage.url " + url_ + " has schema version " + std::to_string(version) +
                        ", newer than this squad knows (" + std::to_string(known_schema_version()) +
                        "): run the newer squad, or point storage.url at another database");
    for (auto v = version; v < known_schema_version(); ++v)
      for (auto* sql : migrations()[static_cast<std::size_t>(v)])
        c.query(sql);
    c.query("UPDATE squad_schema SET version = $1", {std::int64_t{known_schema_version()}});
  });
}

int store::schema_version() {
  std::lock_guard<std::mutex> g{rm_};
  auto rows = reader_->query("SELECT version FROM squad_schema");
  return rows.empty() ? 0 : static_cast<int>(num(rows[0][0]));
}

void store::write(const write_batch& b) {
  if (b.empty())
    return;
  std::lock_guard<std::mutex> g{wm_};
  auto& c = *writer_;
  c.transact([&] {
    for (auto& r : b.runs)
      c.query(std::string("INSERT INTO squad_runs (") + run_columns +
                  ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING",
              {r.id, r.owner, r.task, r.workflow, r.request, r.state, r.reason, r.summary, r.created, r.updated,
               r.instance, r.lease_until, r.kind});
    for (auto& e : b.events)
      c.query("INSERT INTO squad_run_events (run_id, seq, type, body) VALUES ($1, $2, $3, $4) "
              "ON CONFLICT (run_id, seq) DO NOTHING",
              {e.run_id, e.seq, e.type, e.body});
    for (auto& u : b.updates) // a finished run stays finished (a late "running" from a replay changes nothing)
      c.query(std::string("UPDATE squad_runs SET state = $2, reason = $3, summary = $4, updated = $5 WHERE id = $1 "
                          "AND state NOT IN ") +
                  finished_states,
              {u.id, u.state, u.reason, u.summary, u.updated});
    // Many rows a statement: one round trip and one prepare per chunk, not per row (at 13k calls/s the audit
    // trail is 26k rows/s; row by row, PostgreSQL's round trips fell behind and SQLite's prepares cost a core).
    for (std::size_t from = 0; from < b.audit.size(); from += audit_chunk) {
      auto n = std::min(audit_chunk, b.audit.size() - from);
      std::vector<sql_value> args;
      args.reserve(n * audit_fields);
      for (std::size_t i = from; i < from + n; ++i) {
        auto& a = b.audit[i];
        for (sql_value v : {sql_value{a.id},
                            sql_value{a.time_ms},
                            sql_value{a.kind},
                            sql_value{a.request_id},
                            sql_value{a.run_id},
                            sql_value{a.step},
                            sql_value{a.key_id},
                            sql_value{a.persona},
                            sql_value{a.provider},
                            sql_value{a.model},
                            sql_value{a.status},
                            sql_value{a.error_class},
                            sql_value{a.trace_id},
                            sql_value{a.prompt_tokens},
                            sql_value{a.completion_tokens},
                            sql_value{a.cached_tokens},
                            sql_value{a.latency_ms},
                            sql_value{a.fallbacks},
                            sql_value{real(a.cost_usd)},
                            sql_value{a.request_body},
                            sql_value{a.response_body}})
          args.push_back(std::move(v));
      }
      c.query(audit_insert(n), args);
    }
    // Last write wins, except that a checkpoint never replaces a later one (a spool replayed late).
    for (auto& l : b.limiters)
      c.query("INSERT INTO squad_limiter_state (provider, body, updated_ms) VALUES ($1, $2, $3) "
              "ON CONFLICT (provider) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms "
              "WHERE excluded.updated_ms >= squad_limiter_state.updated_ms",
              {l.provider, l.body, l.updated_ms});
  });
}

std::vector<limiter_row> store::limiters() {
  std::lock_guard<std::mutex> g{rm_};
  auto rows = reader_->query("SELECT provider, body, updated_ms FROM squad_limiter_state ORDER BY provider");
  std::vector<limiter_row> out;
  for (auto& r : rows)
    out.push_back({r[0], r[1], num(r[2])});
  return out;
}

std::optional<run_row> store::run(const std::string& id) {
  std::lock_guard<std::mutex> g{rm_};
  auto rows = reader_->query(std::string("SELECT ") + run_columns + " FROM squad_runs WHERE id = $1", {id});
  if (rows.empty())
    return std::nullopt;
  return to_run(rows[0]);
}

std::vector<run_row> store::runs(std::size_t limit) {
  std::lock_guard<std::mutex> g{rm_};
  auto rows =
      reader_->query(std::string("SELECT ") + run_columns + " FROM squad_runs ORDER BY created DESC, id DESC LIMIT $1",
                     {static_cast<std::int64_t>(limit)});
  std::vector<run_row> out;
  for (auto& r : rows)
    out.push_back(to_run(r));
  return out;
}

std::vector<event_row> store::events(const std::string& run_id, std::int64_t after_seq) {
  std::lock_guard<std::mutex> g{rm_};
  auto rows = reader_->query("SELECT seq, type, body FROM squad_run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
                             {run_id, after_seq});
  std::vector<event_row> out;
  for (auto& r : rows)
    out.push_back({run_id, num(r[0]), r[1], r[2]});
  return out;
}

std::vector<run_row> store::claim_orphans(const std::string& instance, const std::string& kind, std::int64_t now_ms,
                                          std::int64_t lease_until_ms) {
  std::lock_guard<std::mutex> g{rm_};
  auto rows = reader_->query(std::string("UPDATE squad_runs SET instance = $1, lease_until = $3 WHERE state NOT IN ") +
                                 finished_states + " AND lease_until < $2 AND kind = $4 RETURNING " + run_columns,
                             {instance, now_ms, lease_until_ms, kind});
  std::vector<run_row> out;
  for (auto& r : rows)
    out.push_back(to_run(r));
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.created < b.created; });
  return out;
}

std::optional<run_row> store::claim(const std::string& id, const std::string& instance, std::int64_t now_ms,
                                    std::int64_t lease_until_ms) {
  std::lock_guard<std::mutex> g{rm_};
  auto rows = reader_->query(std::string("UPDATE squad_runs SET instance = $2, lease_until = $4 WHERE id = $1 AND "
                                         "state NOT IN ") +
                                 finished_states + " AND (lease_until < $3 OR instance = $2) RETURNING " + run_columns,
                             {id, instance, now_ms, lease_until_ms});
  if (rows.empty())
    return std::nullopt;
  return to_run(rows[0]);
}

void store::renew(const std::string& instance, std::int64_t lease_until_ms) {
  std::lock_guard<std::mutex> g{wm_};
  writer_->query(std::string("UPDATE squad_runs SET lease_until = $2 WHERE instance = $1 AND state NOT IN ") +
                     finished_states,
                 {instance, lease_until_ms});
}

std::size_t store::prune(std::int64_t before_unix, std::size_t batch) {
  std::size_t gone = 0;
  for (;;) {
    std::lock_guard<std::mutex> g{wm_};
    auto& c = *writer_;
    std::size_t n = 0;
    c.transact([&] {
      auto ids = c.query(std::string("SELECT id FROM squad_runs WHERE updated < $1 AND state IN ") + finished_states +
                             " LIMIT $2",
                         {before_unix, static_cast<std::int64_t>(batch)});
      for (auto& r : ids) {
        c.query("DELETE FROM squad_run_events WHERE run_id = $1", {r[0]});
        c.query("DELETE FROM squad_runs WHERE id = $1", {r[0]});
      }
      n = ids.size();
    });
    gone += n;
    if (n < batch)
      break;
  }
  std::lock_guard<std::mutex> g{wm_};
  writer_->query("DELETE FROM squad_audit WHERE time_ms < $1", {before_unix * 1000});
  return gone;
}

std::vector<store::usage_row> store::usage(const std::vector<std::string>& columns, std::int64_t since_ms) {
  static const std::set<std::string> allowed = {"key_id", "persona", "provider", "model", "run_id"};
  std::string cols;
  for (auto& c : columns) {
    if (!allowed.count(c))
      throw store_error("cannot group usage by " + c);
    cols += c + ", ";
  }
  std::string group = cols.empty() ? "" : " GROUP BY " + cols.substr(0, cols.size() - 2);
  std::lock_guard<std::mutex> g{rm_};
  auto rows = reader_->query("SELECT " + cols +
                                 "COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd) FROM squad_audit "
                                 "WHERE kind = 'request' AND time_ms >= $1" +
                                 group + " ORDER BY SUM(cost_usd) DESC, COUNT(*) DESC",
                             {since_ms});
  std::vector<usage_row> out;
  for (auto& r : rows) {
    usage_row u;
    for (std::size_t i = 0; i < columns.size(); ++i)
      u.group.push_back(r[i]);
    auto n = columns.size();
    u.requests = num(r[n]), u.prompt_tokens = num(r[n + 1]), u.completion_tokens = num(r[n + 2]);
    u.cost_usd = r[n + 3].empty() ? 0 : std::stod(r[n + 3]);
    if (u.requests > 0)
      out.push_back(std::move(u));
  }
  return out;
}

std::map<std::string, double> store::spend_by_key(std::int64_t since_ms) {
  std::lock_guard<std::mutex> g{rm_};
  auto rows = reader_->query("SELECT key_id, SUM(cost_usd) FROM squad_audit WHERE kind = 'request' AND time_ms >= $1 "
                             "AND key_id <> '' GROUP BY key_id",
                             {since_ms});
  std::map<std::string, double> out;
  for (auto& r : rows)
    out[r[0]] = r[1].empty() ? 0 : std::stod(r[1]);
  return out;
}

std::vector<audit_row> store::audit(std::int64_t since_ms, std::size_t limit, const std::string& after_id) {
  std::lock_guard<std::mutex> g{rm_};
  auto rows = reader_->query(
      "SELECT id, time_ms, kind, request_id, run_id, step, key_id, persona, provider, model, status, error_class, "
      "trace_id, prompt_tokens, completion_tokens, cached_tokens, latency_ms, fallbacks, cost_usd, request_body, "
      "response_body FROM squad_audit WHERE time_ms > $1 OR (time_ms = $1 AND id > $3) ORDER BY time_ms, id "
      "LIMIT $2",
      {since_ms, static_cast<std::int64_t>(limit), after_id});
  std::vector<audit_row> out;
  for (auto& r : rows) {
    audit_row a;
    a.id = r[0], a.time_ms = num(r[1]), a.kind = r[2], a.request_id = r[3], a.run_id = r[4], a.step = r[5];
    a.key_id = r[6], a.persona = r[7], a.provider = r[8], a.model = r[9], a.status = r[10], a.error_class = r[11];
    a.trace_id = r[12], a.prompt_tokens = num(r[13]), a.completion_tokens = num(r[14]);
    a.cached_tokens = num(r[15]), a.latency_ms = num(r[16]), a.fallbacks = num(r[17]);
    a.cost_usd = r[18].empty() ? 0 : std::stod(r[18]);
    a.request_body = r[19], a.response_body = r[20];
    out.push_back(std::move(a));
  }
  return out;
}

} // namespace squad::store
