#pragma once
// Every answer of the API counted and timed by route (squad_http_requests_total, squad_http_request_duration_seconds),
// and anything else that must happen when an answer ends (a key's concurrency slot released), as a responder that
// wraps the connection's. No Beast here.
#include "runtime/server/http_server.hpp"
#include "runtime/server/routes.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace squad::server {

/// Wraps `inner`: counts the answer's status under `r` and times it from `t0`, echoes `request_id` as x-request-id
/// (when not ""), and calls `on_end` once the answer is complete (or the responder dies unanswered).
std::shared_ptr<responder> metered(std::shared_ptr<responder> inner, route r, std::chrono::steady_clock::time_point t0,
                                   std::string request_id);

/// Wraps `inner` only to call `on_end` once when the answer ends (counted by no route).
std::shared_ptr<responder> on_answer_end(std::shared_ptr<responder> inner, std::function<void()> on_end);

/// `inner`, whose answer (a reply, or a stream's head) also carries `extra` headers.
std::shared_ptr<responder> with_headers(std::shared_ptr<responder> inner, header_list extra);

} // namespace squad::server
