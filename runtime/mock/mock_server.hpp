#pragma once
// The HTTP side of squad-mock-provider: one listening socket per upstream, all served by one
// io_context (the only file that includes Beast). The behaviour lives in mock_upstream.
#include "runtime/mock/mock_config.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace squad::mock {

struct listening_upstream {
  std::string name;
  std::string host;
  std::uint16_t port = 0; ///< the bound port (the real one when the config said 0)
};

/// Binds every upstream, calls `on_listening` once all are bound, then serves until SIGTERM or SIGINT.
/// Runs the io_context on `threads` threads. Throws std::runtime_error when a port cannot be bound.
void run_mock_server(const mock_config& cfg, int threads,
                     const std::function<void(const std::vector<listening_upstream>&)>& on_listening);

} // namespace squad::mock
