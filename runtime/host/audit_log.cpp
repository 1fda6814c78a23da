#include "runtime/host/audit_log.hpp"

namespace squad {

void note_result(call_audit* a, const call_result& r, bool keep_text) {
  if (!a)
    return;
  call_result kept;
  kept.served_by = r.served_by;
  kept.usage = r.usage;
  kept.cached = r.cached;
  kept.attempts = r.attempts;
  kept.latency_ms = r.latency_ms;
  a->result = std::move(kept);
  if (keep_text)
    a->response_body = r.text;
}

void note_failure(call_audit* a, const call_failure& f) {
  if (!a)
    return;
  a->attempts = f.attempts;
  a->error_class = to_string(f.code);
  if (f.upstream != failure_class::unknown)
    a->error_class += std::string{":"} + to_string(f.upstream);
}

audit_log::audit_log(std::shared_ptr<run_journal> journal, const config& cfg)
    : journal_(std::move(journal)), bodies_(cfg.audit.bodies), prices_(cfg) {}

double audit_log::cost(const std::string& provider, const std::string& model, const usage_info& usage,
                       std::int64_t cached_tokens) const {
  return prices_.cost(provider, model, usage.prompt_tokens, usage.completion_tokens, cached_tokens);
}

std::vector<store::audit_row> audit_log::rows(const call_audit& a, std::int64_t now_ms) const {
  std::vector<store::audit_row> out;
  const auto& attempts = a.result ? a.result->attempts : a.attempts;
  store::audit_row base; // what the request row and its attempts' rows share
  base.time_ms = a.started_ms;
  base.request_id = a.request_id;
  base.run_id = a.run_id;
  base.key_id = a.key_id;
  base.persona = a.persona;
  base.trace_id = a.trace_id;
  auto req = base;
  req.id = a.request_id + ":request";
  req.kind = "request";
  req.model = a.model;
  req.status = a.status ? std::to_string(a.status) : "unanswered";
  req.error_class = a.error_class;
  req.latency_ms = std::max<std::int64_t>(0, now_ms - a.started_ms);
  req.fallbacks = attempts.empty() ? 0 : static_cast<std::int64_t>(attempts.size()) - 1;
  if (a.result) {
    auto& r = *a.result;
    req.provider = r.served_by.provider;
    req.model = r.served_by.provider.empty() ? a.model : r.served_by.model;
    req.prompt_tokens = r.usage.prompt_tokens;
    req.completion_tokens = r.usage.completion_tokens;
    req.cost_usd = r.cached ? 0 : cost(r.served_by.provider, r.served_by.model, r.usage);
    if (r.cached)
      req.error_class = "cache_hit"; // no upstream call: nothing spent
  }
  if (bodies_) {
    req.request_body = redactor_.redact(a.request_body);
    req.response_body = redactor_.redact(a.response_body);
  }
  out.push_back(std::move(req));
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    auto& at = attempts[i];
    auto u = base;
    u.id = a.request_id + ":upstream:" + std::to_string(i + 1);
    u.kind = "upstream";
    u.provider = at.provider;
    u.model = at.model;
    u.status = at.outcome;
    u.error_class = at.outcome == "ok" ? "" : at.sent ? at.outcome : "not_sent"; // passed over: never reached it
    u.latency_ms = at.latency_ms;
    u.fallbacks = static_cast<std::int64_t>(i);
    if (a.result && i + 1 == attempts.size() && at.outcome == "ok") { // the attempt that answered: the usage
      u.prompt_tokens = a.result->usage.prompt_tokens;
      u.completion_tokens = a.result->usage.completion_tokens;
      u.cost_usd = out.front().cost_usd;
    }
    if (bodies_ && !at.detail.empty())
      u.response_body = redactor_.redact(at.detail);
    out.push_back(std::move(u));
  }
  return out;
}

void audit_log::record(const call_audit& a, std::int64_t now_ms) {
  journal_->audit(rows(a, now_ms));
}

} // namespace squad
