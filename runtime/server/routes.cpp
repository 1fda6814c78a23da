#include "runtime/server/routes.hpp"

namespace squad::server {

const std::array<route_spec, route_count>& route_table() {
  static const std::array<route_spec, route_count> table{{
      {route::chat, "chat", "POST", false},
      {route::models, "models", "GET", false},
      {route::model, "model", "GET", false},
      {route::metrics, "metrics", "GET", false},
      {route::healthz, "healthz", "GET", true},
      {route::readyz, "readyz", "GET", true},
      {route::ws, "ws", "", false},
      {route::runs, "runs", "", false},
      {route::run_events, "run_events", "", false},
      {route::embeddings, "embeddings", "POST", false},
      {route::usage, "usage", "GET", false},
      {route::other, "other", "", true},
  }};
  return table;
}

route route_of(std::string_view path) {
  if (path == "/v1/chat/completions")
    return route::chat;
  if (path == "/v1/embeddings")
    return route::embeddings;
  if (path == "/v1/usage")
    return route::usage;
  if (path == "/v1/models")
    return route::models;
  if (path.starts_with("/v1/models/"))
    return route::model;
  if (path == "/metrics")
    return route::metrics;
  if (path == "/healthz")
    return route::healthz;
  if (path == "/readyz")
    return route::readyz;
  if (path == "/v1/ws")
    return route::ws;
  if (path == "/v1/runs" || path.starts_with("/v1/runs/"))
    return path.ends_with("/events") ? route::run_events : route::runs;
  return route::other;
}

std::string no_route_message(const std::string& method, const std::string& path) {
  return "no route " + method + " " + path +
         " (routes: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, GET /v1/models/{id}, POST|GET "
         "/v1/runs, "
         "GET|DELETE /v1/runs/{id}, GET /v1/runs/{id}/events, "
         "POST /v1/runs/{id}/steps/{step}/feedback, GET /v1/ws (WebSocket), GET /v1/usage, GET /metrics, "
         "GET /healthz, GET /readyz)";
}

} // namespace squad::server
