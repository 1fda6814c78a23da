#include "runtime/host/squad_host.hpp"

namespace squad {

squad_host::configured::configured(const runtime_config& rt) : io(static_cast<int>(rt.io_threads), rt.io_spin) {
  configure_actor_system(cfg, rt, io);
}

squad_host::squad_host(const loaded_squad& squad, std::vector<config_problem>& problems,
                       std::shared_ptr<limiter_memory> limiters)
    : boot_(squad.cfg->runtime), io_(boot_.io), sys_(boot_.cfg), stop_io_(io_, squad.cfg->runtime) {
  if (needs_http(*squad.cfg)) {
    pools_ = make_provider_pools(io_, *squad.cfg, problems);
    if (!problems.empty())
      return;
  }
  tree_ = start_tree(sys_, squad, pools_, std::move(limiters));
  started_ = await_tree(tree_, squad);
  if (!started_)
    problems.push_back({"runtime", "the actor tree did not start within 10s (see the supervisors' events)"});
}

squad_host::~squad_host() {
  if (tree_.root)
    caf::anon_send_exit(tree_.root, caf::exit_reason::user_shutdown);
}

} // namespace squad
