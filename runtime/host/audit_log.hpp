#pragma once
// The audit trail of the API: for every chat or embeddings request, one "request" row (status, key, persona,
// provider and model that served it, tokens, cost, latency, fallbacks) and one "upstream" row per attempt the
// dispatcher made, written through the run journal's writer (off the request path; the rows are idempotent by
// request id and attempt). Bodies are kept only with audit.bodies, and redacted before they leave this class.
// Costs come from the models' prices (providers.<p>.models.<m>.input_price, output_price, cached_input_price).
#include "actors/messages.hpp"
#include "runtime/audit/redactor.hpp"
#include "runtime/config/config.hpp"
#include "runtime/config/price_book.hpp"
#include "runtime/host/run_journal.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace squad {

/// What one API call leaves for the audit trail, filled as it goes (by the gateway and the call's sink).
struct call_audit {
  std::string request_id, route; ///< route: "chat" | "embeddings"
  std::string key_id;            ///< the key's name under server.keys (never the key)
  std::string model, persona;    ///< the model as the client named it; the persona when it names one
  std::string run_id, trace_id;  ///< X-Squad-Run; the completion id
  std::string request_body;      ///< raw; redacted before it is kept, and only with audit.bodies
  std::int64_t started_ms = 0;   ///< unix ms of its arrival
  int status = 0;                ///< the HTTP status answered (0: none)
  std::string error_class;       ///< the error body's code, or the failure's class ("" when answered)
  std::string response_body;     ///< the answer's text (or error body), kept as the request's
  std::optional<call_result> result;
  std::vector<attempt_info> attempts; ///< of a failed call (a result carries its own)
};

/// The call's answer, for its audit rows (a, when not null).
void note_result(call_audit* a, const call_result& r, bool keep_text);
/// The call's failure: its attempts, and its class (squad_errc, then the upstreams' class when known).
void note_failure(call_audit* a, const call_failure& f);

class audit_log {
public:
  audit_log(std::shared_ptr<run_journal> journal, const config& cfg);

  bool bodies() const { return bodies_; }
  /// The price of `usage` on provider/model (0 for a model without prices).
  double cost(const std::string& provider, const std::string& model, const usage_info& usage,
              std::int64_t cached_tokens = 0) const;
  /// The rows of a call that ended at `now_ms`.
  std::vector<store::audit_row> rows(const call_audit& a, std::int64_t now_ms) const;
  /// rows(), queued for the writer.
  void record(const call_audit& a, std::int64_t now_ms);

private:
  std::shared_ptr<run_journal> journal_;
  bool bodies_;
  price_book prices_;
  audit::redactor redactor_;
};

} // namespace squad
