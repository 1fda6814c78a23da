// The gateway's money budgets (server.keys.<k>.daily_usd / monthly_usd, or the key's tier's): see spend_limits.hpp.
#include "actors/store/writer.hpp"
#include "runtime/metrics/registry.hpp"
#include "runtime/server/answer_meter.hpp"
#include "runtime/server/gateway.hpp"
#include "runtime/server/openai_encoding.hpp"

#include <ctime>
#include <iostream>

namespace squad::server {

namespace {

const metrics::counter_family budget_refusals{"squad_budget_refusals_total",
                                              "API calls refused because a key's money budget would be passed, by key "
                                              "and budget (daily, monthly)"};

/// A call's completion tokens when it sets no max_tokens: what its worst case reserves.
constexpr std::int64_t unset_max_tokens_reserve = 4096;

std::int64_t unix_s() {
  return unix_ms() / 1000;
}

// The most the call can cost: its prompt (about 4 characters a token) and its completion cap, at the dearest
// price among the targets of its chain.
double worst_cost(const price_book& prices, const api_model& model, const call_request& call) {
  std::int64_t chars = 0;
  for (auto& m : call.messages)
    chars += static_cast<std::int64_t>(m.content.size() + m.tool_calls_json.size()) + 16;
  auto prompt = (chars + 3) / 4;
  auto completion = call.max_tokens > 0 ? call.max_tokens : unset_max_tokens_reserve;
  double worst = 0;
  for (auto& t : model.chain)
    worst = std::max(worst, prices.cost(t.provider, t.model, prompt, completion));
  return worst;
}

} // namespace

bool gateway::admit_spend(std::size_t key, const api_model& model, const call_request& call,
                          std::shared_ptr<responder>& out, std::shared_ptr<call_audit>& audit) {
  auto now = unix_s();
  double worst = worst_cost(*prices_, model, call);
  spend_verdict v;
  {
    std::lock_guard<std::mutex> g{keys_->m};
    auto& s = keys_->spend[key];
    if (!s.limited())
      return true;
    v = s.reserve(worst, now);
  }
  if (!v.ok) {
    auto which = v.why.rfind("daily", 0) == 0 ? "daily" : "monthly";
    budget_refusals.with({{"key", cfg_->server.keys[key].name}, {"budget", which}}).inc();
    send_error(*out, 429, "API key " + cfg_->server.keys[key].name + ": " + v.why, "insufficient_quota", {},
               "budget_exceeded", v.retry_after_s);
    return false;
  }
  if (!audit)
    audit = std::make_shared<call_audit>(); // the sink notes the result here, for the settlement
  out = on_answer_end(out, [table = keys_, key, worst, a = audit, prices = prices_] {
    double actual = 0;
    if (a->result && !a->result->cached)
      actual = prices->cost(a->result->served_by.provider, a->result->served_by.model, a->result->usage.prompt_tokens,
                            a->result->usage.completion_tokens);
    std::lock_guard<std::mutex> g{table->m};
    table->spend[key].settle(worst, actual, unix_s());
  });
  return true;
}

void gateway::restore_spend() {
  if (!journal_)
    return;
  auto now = unix_s();
  auto day_start = (now - now % 86400) * 1000;
  auto t = static_cast<std::time_t>(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  tm.tm_mday = 1, tm.tm_hour = 0, tm.tm_min = 0, tm.tm_sec = 0;
  auto month_start = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  try {
    auto today = journal_->db().spend_by_key(day_start);
    auto month = journal_->db().spend_by_key(month_start);
    std::lock_guard<std::mutex> g{keys_->m};
    for (std::size_t i = 0; i < cfg_->server.keys.size(); ++i) {
      auto& name = cfg_->server.keys[i].name;
      if (keys_->spend[i].limited())
        keys_->spend[i].restore(today.count(name) ? today[name] : 0, month.count(name) ? month[name] : 0, now);
    }
  } catch (const store::store_error& e) {
    std::cerr << "squad serve: cannot read this period's spend from the store (" << e.what()
              << "); money budgets start from nothing spent\n";
  }
}

} // namespace squad::server
