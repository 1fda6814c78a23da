#pragma once
// GET /v1/usage?group_by=key,persona,provider,model,run&since=TIME: what the API's calls used and cost, summed
// from the audit trail (request rows), dearest group first. Admin keys only (with auth: none, loopback clients).
// TIME as `squad audit export --since` takes it (runtime/time/when.hpp); default: the start of the UTC day.
#include "runtime/host/run_journal.hpp"
#include "runtime/server/http_server.hpp"

namespace squad::server {

void serve_usage(run_journal* journal, const request& req, responder& out, bool admin);

} // namespace squad::server
