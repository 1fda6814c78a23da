// The PostgreSQL driver (libpqxx 6.4). A lost connection is reported as store_unavailable, and the next statement
// reconnects: the writer spools and retries, readers get an error they can show.
#include "runtime/store/sql.hpp"

#include <pqxx/pqxx>

#include <optional>

namespace squad::store {

namespace {

class pg_conn final : public sql_conn {
public:
  explicit pg_conn(std::string uri) : uri_(std::move(uri)) { connect(); }

  std::string_view backend() const override { return "postgresql"; }

  std::vector<sql_row> query(std::string_view sql, const std::vector<sql_value>& args) override {
    if (tx_)
      return run(*tx_, sql, args);
    connect();
    try {
      pqxx::nontransaction n{*conn_};
      return run(n, sql, args);
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      throw store_unavailable("PostgreSQL at " + masked_url(uri_) + " went away: " + first_line(e.what()));
    }
  }

  void transact(const std::function<void()>& body) override {
    connect();
    try {
      pqxx::work w{*conn_};
      tx_ = &w;
      try {
        body();
      } catch (...) {
        tx_ = nullptr;
        throw;
      }
      tx_ = nullptr;
      w.commit();
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      throw store_unavailable("PostgreSQL at " + masked_url(uri_) + " went away: " + first_line(e.what()));
    } catch (const pqxx::in_doubt_error& e) {
      conn_.reset();
      throw store_unavailable("PostgreSQL at " + masked_url(uri_) + ": commit in doubt: " + first_line(e.what()));
    }
  }

private:
  static std::string first_line(std::string s) {
    if (auto nl = s.find('\n'); nl != std::string::npos)
      s.resize(nl);
    return s;
  }

  void connect() {
    if (conn_ && conn_->is_open())
      return;
    try {
      conn_.emplace(uri_);
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      throw store_unavailable("storage.url " + masked_url(uri_) + ": cannot connect (" + first_line(e.what()) +
                              "): is PostgreSQL running there, and do the user and database exist?");
    } catch (const std::exception& e) {
      conn_.reset();
      throw store_error("storage.url " + masked_url(uri_) + ": " + first_line(e.what()));
    }
  }

  std::vector<sql_row> run(pqxx::transaction_base& t, std::string_view sql, const std::vector<sql_value>& args) {
    std::vector<std::string> texts;
    texts.reserve(args.size());
    for (auto& a : args)
      texts.push_back(std::holds_alternative<std::int64_t>(a) ? std::to_string(std::get<std::int64_t>(a))
                                                              : std::get<std::string>(a));
    pqxx::result r;
    try {
      r = t.exec_params(std::string(sql), pqxx::prepare::make_dynamic_params(texts));
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const pqxx::sql_error& e) {
      throw store_error("postgresql: " + first_line(e.what()));
    }
    std::vector<sql_row> rows;
    rows.reserve(r.size());
    for (const auto& row : r) {
      sql_row out;
      for (const auto& f : row)
        out.emplace_back(f.is_null() ? std::string() : std::string(f.c_str(), f.size()));
      rows.push_back(std::move(out));
    }
    return rows;
  }

  std::string uri_;
  std::optional<pqxx::connection> conn_;
  pqxx::transaction_base* tx_ = nullptr;
};

} // namespace

std::unique_ptr<sql_conn> open_postgresql(const std::string& uri) {
  return std::make_unique<pg_conn>(uri);
}

} // namespace squad::store
