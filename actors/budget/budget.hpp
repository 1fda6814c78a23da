#pragma once
// Budget allocator actors: one per run (and per API request outside a run when it asks for one), addressed by
// handle. A thin adapter around budget_ledger (reserve-then-reconcile) and the shedding policy (pressure.hpp):
// a step asks for a call token before calling; under pressure or with the budget spent, low classes give way.
//
//   (acquire, u8 priority, i64 tokens, i64 max_tokens, f64 temperature, bool optional) -> budget_grant
//        decides call | cache | skip (with the reason) for one call, and the degraded parameters for it;
//        cache: no LLM call, but an answer from the response cache may be used (on a miss the step is skipped)
//   (release, u64 id, i64 actual_tokens)   settles a granted call (actual_tokens < 0: unknown, counted as estimated;
//                                          its cost unknown: the money budget counts its worst case)
//   (release, u64 id, i64 actual_tokens, f64 usd)  the same with the call's real cost (its tokens at the prices of
//                                          the model that answered)
//   (cancel, u64 id)                       the granted call never reached an LLM: its reservation comes back
//   (stats)                        -> std::string   JSON: calls granted/spent/left, usd spent/reserved/left, skips
//
// With a money budget (`usd` > 0) a call is also granted only when its worst case fits (money_ledger.hpp): its
// prompt estimate and max_tokens at the dearest prices the run's personas may be routed to. That limit is hard
// for every class, P0 included: the run is skipped past it, never overspent.
//
// The pressure level comes from the dispatcher ((phase) -> u8 level, why), asked once per acquire; the dispatcher is
// found in the directory.
#include "actors/messages.hpp"

namespace squad {

struct budget_options {
  std::int64_t calls = 8;                         ///< LLM calls the run may make
  std::int64_t tokens = 0;                        ///< 0: not limited
  std::int64_t p0_reserve = 1;                    ///< calls only P0 may use
  std::int64_t spent_calls = 0, spent_tokens = 0; ///< already spent (a resumed run): they count against the budget
  double usd = 0;                                 ///< USD the run may spend; 0: no money limit
  double spent_usd = 0;                           ///< already spent (a resumed run)
  double worst_input_price = 0, worst_output_price = 0; ///< USD per 1M tokens: the dearest the run may pay
};

using budget_actor = caf::typed_actor<
    caf::replies_to<atoms::acquire, std::uint8_t, std::int64_t, std::int64_t, double, bool>::with<budget_grant>,
    caf::reacts_to<atoms::release, std::uint64_t, std::int64_t>,
    caf::reacts_to<atoms::release, std::uint64_t, std::int64_t, double>, caf::reacts_to<atoms::cancel, std::uint64_t>,
    caf::replies_to<atoms::stats>::with<std::string>>;

class directory;

/// Counts one budget decision (squad_budget_decisions_total{class, action, reason}); no lock after a label set's
/// first use on a thread. The dispatcher's own sheds (wait, X-Squad-Run budgets) are counted here too.
void count_budget_decision(std::string_view cls, std::string_view action, std::string_view reason);

budget_actor spawn_budget(caf::local_actor* parent, budget_options opts, std::shared_ptr<directory> dir);

} // namespace squad
