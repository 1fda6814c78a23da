#pragma once
// A run event as JSON, one schema for every place that shows one: the runs API, its SSE stream and WebSocket
// sessions, and `squad run`'s run.json (docs/api.md, "Run events").
#include "actors/vocabulary.hpp"

#include <nlohmann/json.hpp>

namespace squad {

/// {type, seq, at_ms, run_id, step_id?, persona?, message?, data}.
nlohmann::json event_json(const run_event& ev);

} // namespace squad
