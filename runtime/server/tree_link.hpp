#pragma once
// The API's only contacts with the actor tree, kept in one place: a chat call goes to its persona or the dispatcher,
// and /metrics asks the dispatcher, each limiter and each breaker for their stats. Both reach the actors by their
// typed handles in the tree's directory (never by path).
#include "actors/registry/directory.hpp"

#include <functional>
#include <string>
#include <vector>

namespace squad::server {

/// Sends the call (its sink set) to persona <persona>, or to the dispatcher when `persona` is "". Fire and forget:
/// the answer comes back through the sink (503 child_unavailable when that actor is between a crash and a restart).
void send_chat_call(const directory_ptr& dir, const std::string& persona, call_request call);

/// Whose stats /metrics shows: "dispatcher", then "providers/<p>:limiter" and "providers/<p>:breaker" per provider.
std::vector<std::string> stats_paths(const std::vector<std::string>& providers);

/// Asks every path for its stats (a JSON text) at once, with a 2 s timeout each. `on_answer(path, text)` runs per
/// answer ("" when that actor did not answer), then `on_all()` once, all on one actor's thread.
void ask_stats(caf::actor_system& sys, const directory_ptr& dir, std::vector<std::string> paths,
               std::function<void(const std::string& path, const std::string& text)> on_answer,
               std::function<void()> on_all);

} // namespace squad::server
