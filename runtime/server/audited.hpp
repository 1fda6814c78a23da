#pragma once
// A responder that writes a call's audit rows (runtime/host/audit_log.hpp) once its answer ends: whatever the
// answer was (a refusal on the io thread, an upstream's answer, a failure), its status and error code are read
// from what went to the client. The call's sink adds the result or the failure's attempts before it answers.
#include "runtime/host/audit_log.hpp"
#include "runtime/server/http_server.hpp"

#include <memory>

namespace squad::server {

/// Wraps `inner`: `a` is recorded through `log` when the answer is complete (or the responder dies unanswered).
std::shared_ptr<responder> audited(std::shared_ptr<responder> inner, std::shared_ptr<audit_log> log,
                                   std::shared_ptr<call_audit> a);

} // namespace squad::server
