// The SQLite driver (Debian's libsqlite3): one connection in WAL mode, so readers and the writer of other
// connections to the same file do not block each other, and a commit survives the process being killed.
#include "runtime/store/sql.hpp"

#include <sqlite3.h>

namespace squad::store {

namespace {

// $N (PostgreSQL's numbered parameter) -> ?N (SQLite's), outside quoted strings.
std::string sqlite_dialect(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  bool quoted = false;
  for (char c : sql) {
    if (c == '\'')
      quoted = !quoted;
    out += (c == '$' && !quoted) ? '?' : c;
  }
  return out;
}

class sqlite_conn final : public sql_conn {
public:
  explicit sqlite_conn(const std::string& path) : path_(path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw store_error("storage.url sqlite:" + path + ": cannot open (" + why +
                        "): check the path and that its directory is writable");
    }
    sqlite3_busy_timeout(db_, 10000);
    try {
      query("PRAGMA journal_mode=WAL", {});
      query("PRAGMA synchronous=NORMAL", {}); // WAL: a commit survives a crash of the process
      query("PRAGMA foreign_keys=ON", {});
    } catch (const store_error& e) {
      sqlite3_close(db_);
      throw store_error("storage.url sqlite:" + path + ": " + e.what() +
                        " (is it a SQLite database? point storage.url at another file)");
    }
  }
  ~sqlite_conn() override { sqlite3_close(db_); }

  std::string_view backend() const override { return "sqlite"; }

  std::vector<sql_row> query(std::string_view sql, const std::vector<sql_value>& args) override {
    auto text = sqlite_dialect(sql);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, text.c_str(), static_cast<int>(text.size()), &st, nullptr) != SQLITE_OK)
      fail("prepare");
    struct finalizer {
      sqlite3_stmt* s;
      ~finalizer() { sqlite3_finalize(s); }
    } fin{st};
    for (std::size_t i = 0; i < args.size(); ++i) {
      int rc = std::holds_alternative<std::int64_t>(args[i])
                   ? sqlite3_bind_int64(st, static_cast<int>(i + 1), std::get<std::int64_t>(args[i]))
                   : sqlite3_bind_text(st, static_cast<int>(i + 1), std::get<std::string>(args[i]).data(),
                                       static_cast<int>(std::get<std::string>(args[i]).size()), SQLITE_TRANSIENT);
      if (rc != SQLITE_OK)
        fail("bind");
    }
    std::vector<sql_row> rows;
    for (;;) {
      int rc = sqlite3_step(st);
      if (rc == SQLITE_DONE)
        break;
      if (rc != SQLITE_ROW)
        fail("step");
      sql_row row;
      int n = sqlite3_column_count(st);
      for (int c = 0; c < n; ++c) {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
        row.emplace_back(p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, c))) : std::string());
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  void transact(const std::function<void()>& body) override {
    query("BEGIN IMMEDIATE", {});
    try {
      body();
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    query("COMMIT", {});
  }

private:
  [[noreturn]] void fail(const char* what) {
    throw store_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db_));
  }
  std::string path_;
  sqlite3* db_ = nullptr;
};

} // namespace

std::unique_ptr<sql_conn> open_sqlite(const std::string& path) {
  return std::make_unique<sqlite_conn>(path);
}

} // namespace squad::store
