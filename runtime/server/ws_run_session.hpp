#pragma once
// The WebSocket run protocol of GET /v1/ws (docs/api.md): one session starts, follows, cancels and answers the
// feedback of several runs over one connection (run.start, run.subscribe, run.cancel, step.feedback), with slow
// readers handled by ws_flow. No Beast here: http_server.cpp owns the socket.
#include "runtime/server/http_server.hpp"
#include "runtime/server/runs.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace squad::server {

/// A session for `who`. `lag_at`: queued messages past which step.delta events are dropped (server.ws_lag_at).
/// `admit` (may be empty) is asked before each run.start: a refusal's text, or nullopt to go ahead.
std::shared_ptr<ws_handler> make_ws_run_session(std::shared_ptr<run_hub> hub, run_caller who, std::size_t lag_at,
                                                std::function<std::optional<std::string>()> admit);

} // namespace squad::server
