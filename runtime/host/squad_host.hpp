#pragma once
// One process's boot sequence as one object, so `squad run`, `squad serve` and the benchmarks do not each repeat
// it: the io threads, the actor system configured as runtime.scheduler says (on those io threads by default),
// the HTTP pools of the providers, and the actor tree, started and in its directory. The destructor stops the
// tree, then the actor system, then the io threads, in that order (a late upstream reply never meets a system that
// is gone).
#include "runtime/host/squad_tree.hpp"
#include "runtime/net/io_scheduler.hpp"

namespace squad {

class squad_host {
public:
  /// Boots `squad`. On a provider whose pool cannot be made, `problems` says why and ok() is false (no tree).
  /// With `limiters`, the limiters start from their checkpoints there and save their state there.
  squad_host(const loaded_squad& squad, std::vector<config_problem>& problems,
             std::shared_ptr<limiter_memory> limiters = nullptr);
  ~squad_host();
  squad_host(const squad_host&) = delete;
  squad_host& operator=(const squad_host&) = delete;

  bool ok() const { return started_; }
  caf::actor_system& system() { return sys_; }
  net::io_runtime& io() { return io_; }
  const squad_tree& tree() const { return tree_; }
  const directory_ptr& dir() const { return tree_.dir; }

private:
  struct configured { // the io threads first: with runtime.scheduler io they run the actors
    configured(const runtime_config& rt);
    net::io_runtime io;
    caf::actor_system_config cfg;
  };
  configured boot_;
  net::io_runtime& io_;
  caf::actor_system sys_;
  stop_io_before_system stop_io_;
  provider_pools pools_;
  squad_tree tree_;
  bool started_ = false;
};

} // namespace squad
