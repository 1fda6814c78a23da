#include "runtime/host/limiter_state.hpp"

#include <caf/scoped_actor.hpp>

#include <iostream>

namespace squad {

std::set<std::string> limiter_domains(const config& cfg) {
  std::set<std::string> out;
  for (auto& p : cfg.providers) {
    out.insert(p.name);
    for (auto& m : p.models)
      if (m.limits)
        out.insert(limits_domain(p.name, m.name));
  }
  return out;
}

std::shared_ptr<limiter_memory> load_limiter_memory(store::store& db, const config& cfg) {
  auto memory = std::make_shared<limiter_memory>();
  auto domains = limiter_domains(cfg);
  for (auto& row : db.limiters()) {
    if (!domains.count(row.provider)) { // a provider (or a model's limits) taken out of the config
      std::cout << "squad: limiter state for " << row.provider << " ignored: no such limiter in the config"
                << std::endl;
      continue;
    }
    auto cp = limiter_checkpoint_from_json(row.body);
    if (!cp) {
      std::cerr << "squad: limiter state for " << row.provider
                << " ignored: not a checkpoint this squad reads (it starts empty)\n";
      continue;
    }
    memory->seed(row.provider, std::move(*cp));
  }
  return memory;
}

void keep_limiters_in(limiter_memory& memory, const std::shared_ptr<run_journal>& journal) {
  memory.set_sink(
      [weak = std::weak_ptr<run_journal>(journal)](const std::string& domain, const limiter_checkpoint& cp) {
        if (auto j = weak.lock())
          j->limiter_state({domain, to_json(cp), cp.saved_ms});
      });
}

std::size_t save_limiters(caf::actor_system& sys, const directory& dir, millis timeout) {
  auto snap = dir.get();
  caf::scoped_actor self{sys};
  std::size_t answered = 0;
  auto until = std::chrono::steady_clock::now() + timeout; // one deadline for all of them
  for (auto& [name, h] : snap->providers) {
    auto left = std::chrono::duration_cast<millis>(until - std::chrono::steady_clock::now());
    if (!h.limiter || left <= millis::zero())
      continue;
    self->request(h.limiter, left, atoms::done_v).receive([&](bool) { ++answered; }, [](const caf::error&) {});
  }
  return answered;
}

} // namespace squad
