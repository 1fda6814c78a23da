#pragma once
// GET /metrics: the process's metrics in the Prometheus text format. A scrape first asks the dispatcher, each
// limiter and each breaker for their state (tree_link.hpp) and sets the gauges that mirror it, then renders the
// registry. The families of code that does not describe its own yet are described here too.
#include "runtime/metrics/registry.hpp"
#include "runtime/server/http_server.hpp"

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace squad {
class directory;
}

#include <memory>
#include <string>
#include <vector>

namespace squad::server {

class metrics_endpoint {
public:
  /// Resolves the per-provider gauges once.
  metrics_endpoint(caf::actor_system& sys, std::shared_ptr<directory> dir, std::vector<std::string> providers);

  /// Answers one scrape (`server` may be null: no connection gauges).
  void serve(std::shared_ptr<responder> out, const std::shared_ptr<http_server>& server);

  /// Sets the gauges of one actor's stats answer (JSON text from `path`; anything but an object is ignored).
  void apply(const std::string& path, const std::string& stats_json);

  struct provider_gauges;

private:
  caf::actor_system& sys_;
  std::shared_ptr<directory> dir_;
  std::vector<std::string> paths_;
  std::shared_ptr<std::vector<std::unique_ptr<provider_gauges>>> providers_; // shared with a scrape in flight
};

} // namespace squad::server
