#include "runtime/store/sql.hpp"

namespace squad::store {

storage_url parse_storage_url(std::string_view url) {
  auto starts = [&](std::string_view p) { return url.substr(0, p.size()) == p; };
  if (starts("sqlite:")) {
    auto path = std::string(url.substr(7));
    if (path.rfind("//", 0) == 0) // sqlite://PATH is read as sqlite:PATH
      path = path.substr(2);
    if (path.empty())
      throw store_error("storage.url \"" + std::string(url) + "\": sqlite: needs a file path, e.g. sqlite:squad.db");
    return {"sqlite", path};
  }
  if (starts("postgresql://") || starts("postgres://")) {
    auto rest = url.substr(url.find("://") + 3);
    if (rest.empty() || rest.front() == '/')
      throw store_error("storage.url \"" + masked_url(url) + "\": postgresql:// needs a host, e.g. " +
                        "postgresql://squad@127.0.0.1:5432/squad");
    return {"postgresql", std::string(url)};
  }
  throw store_error("storage.url \"" + masked_url(url) +
                    "\": must be sqlite:PATH (embedded) or postgresql://user@host:port/db");
}

std::string masked_url(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos)
    return std::string(url);
  auto at = url.find('@', scheme + 3);
  auto slash = url.find('/', scheme + 3);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at))
    return std::string(url);
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string_view::npos || colon > at)
    return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

std::unique_ptr<sql_conn> open_sql(const storage_url& url) {
  if (url.backend == "sqlite")
    return open_sqlite(url.target);
  return open_postgresql(url.target);
}

} // namespace squad::store
