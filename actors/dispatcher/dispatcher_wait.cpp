// Calls that wait outside a limiter's queue and are moved on from here: resting calls woken when a breaker of
// their chain opens, and calls held for the global cap (runtime.global_concurrency) released as others answer.
#include "actors/dispatcher/dispatcher_state.hpp"
#include "actors/limiter/limiter.hpp"

#include <algorithm>

namespace squad::dispatch {

// `provider`'s breaker opened: calls resting before another try of it look again now, so a chain that has become
// hopeless answers at once rather than after its backoff (they see the open breaker, and wait for its probe only
// when that fits).
void wake_resting(dispatcher_self self, const std::string& provider) {
  std::vector<std::uint64_t> woke;
  for (auto& [id, c] : self->state.calls)
    if (c.resting && std::any_of(c.req.chain.begin(), c.req.chain.end(),
                                 [&](const chain_target& t) { return t.provider == provider; }))
      woke.push_back(id);
  for (auto id : woke) // step() ends the rests at providers whose breaker is open (open_breakers)
    if (auto c = self->state.calls.find(id); c != self->state.calls.end()) {
      c->second.resting = false;
      step(self, id);
    }
}

void release_global(dispatcher_self self, std::uint64_t id) {
  auto& st = self->state;
  auto give_back = [self](const dispatcher_state::held_send& h) {
    auto p = handles_of(self, h.provider);
    caf::anon_send(p.limiter, atoms::release_v, h.permit, std::int64_t{-1}, limit_signals{}, outcome::unavailable);
    caf::anon_send(p.breaker, atoms::cancel_v, h.ticket);
  };
  if (st.upstream_now.erase(id) == 0) {
    auto h = std::find_if(st.held.begin(), st.held.end(), [id](auto& x) { return x.id == id; });
    if (h != st.held.end()) { // it ended while held (its deadline)
      give_back(*h);
      st.held.erase(h);
    }
    return;
  }
  while (!st.held.empty()) {
    auto h = st.held.front();
    st.held.pop_front();
    if (st.calls.count(h.id) == 0) {
      give_back(h);
      continue;
    }
    st.upstream_now.insert(h.id);
    return send_call(self, h.id, h.target, h.permit, h.ticket);
  }
}

} // namespace squad::dispatch
