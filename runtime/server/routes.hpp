#pragma once
// The route table of `squad serve`: which job answers a path, and the methods it takes. Pure: no sockets, no actors.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace squad::server {

/// The jobs of the API, one per route; `other` is every path no route claims.
enum class route : std::uint8_t {
  chat,
  models,
  model,
  metrics,
  healthz,
  readyz,
  ws,
  runs,
  run_events,
  embeddings,
  usage,
  other
};

inline constexpr std::size_t route_count = static_cast<std::size_t>(route::other) + 1;

/// One row of the table.
struct route_spec {
  route id;
  const char* name;    ///< the `route` label of squad_http_requests_total
  const char* methods; ///< the methods it takes, as an Allow header lists them ("" : the route checks them itself)
  bool open;           ///< answered without authentication (health probes, the 404 of an unknown path)
};

/// The table, indexed by route.
const std::array<route_spec, route_count>& route_table();
inline const route_spec& spec_of(route r) {
  return route_table()[static_cast<std::size_t>(r)];
}

/// The route of a request path (no query string).
route route_of(std::string_view path);

/// The 404 text for a path no route claims: it lists every route.
std::string no_route_message(const std::string& method, const std::string& path);

} // namespace squad::server
