#pragma once
// One SQL connection behind a small interface, so the store (store.hpp) is written once for both backends:
// SQLite (the embedded default) and PostgreSQL (libpqxx 6.4). Statements use PostgreSQL's numbered parameters
// ($1, $2, ...); the SQLite driver binds them as its own ?NNN. Values go in as integers or text and come back as
// text (NULL as ""), which is all the store needs. Not thread-safe: the store keeps one connection per user.
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace squad::store {

/// A storage failure: its message names the (masked) URL and what to do.
struct store_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The server is unreachable (a transport failure): the write may be retried later, unlike a rejected statement.
struct store_unavailable : store_error {
  using store_error::store_error;
};

using sql_value = std::variant<std::int64_t, std::string>;
using sql_row = std::vector<std::string>;

class sql_conn {
public:
  virtual ~sql_conn() = default;
  virtual std::string_view backend() const = 0; ///< "sqlite" or "postgresql"
  /// Runs one statement; returns its rows (empty for statements without results).
  virtual std::vector<sql_row> query(std::string_view sql, const std::vector<sql_value>& args = {}) = 0;
  /// Runs `body` in one transaction: committed when it returns, rolled back when it throws (and rethrown).
  virtual void transact(const std::function<void()>& body) = 0;
};

/// A storage URL as written: `sqlite:PATH` or `postgresql://user:password@host:port/db` (also `postgres://`).
struct storage_url {
  std::string backend; ///< "sqlite" | "postgresql"
  std::string target;  ///< the SQLite path, or the PostgreSQL connection URI as given
};

/// Parses a storage URL; throws store_error naming what is wrong.
storage_url parse_storage_url(std::string_view url);
/// The URL with any password replaced by "***" (what messages and logs show).
std::string masked_url(std::string_view url);

/// Opens a connection (SQLite: the file, created when missing; PostgreSQL: connects). Throws store_error, or
/// store_unavailable when the server cannot be reached.
std::unique_ptr<sql_conn> open_sql(const storage_url& url);

std::unique_ptr<sql_conn> open_sqlite(const std::string& path);
std::unique_ptr<sql_conn> open_postgresql(const std::string& uri);

} // namespace squad::store
