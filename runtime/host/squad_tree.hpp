#pragma once
// Loading a squad (config + personas) and starting its actor tree:
//
//   root (supervisor)
//    |- providers (supervisor)   per provider: its provider actor, limiter and breaker
//    |- personas  (supervisor)   one persona actor per persona
//    |- dispatcher               walks each call's chain (the governance seam)
//    |- runs      (supervisor)   per run: a boss (temporary), which owns a worker supervisor
//
// Every child is announced in the tree's directory when it starts and again when it is restarted, so callers
// hold typed handles (gateway -> persona -> dispatcher -> limiter / breaker / provider), never paths.
#include "actors/boss/boss.hpp"
#include "actors/messages.hpp"
#include "actors/provider/provider.hpp"
#include "actors/registry/directory.hpp"
#include "runtime/config/workflow.hpp"

#include <map>

namespace squad {

/// A validated config with its personas and their resolved chains.
struct loaded_squad {
  config_ptr cfg;
  std::vector<persona_def> personas;
  std::map<std::string, std::vector<chain_target>> chains; ///< by persona id
  std::set<std::string> persona_ids() const;
};

/// Sets a run's worst-case prices (a money budget reserves at them): the dearest input and output prices among
/// the targets the chains of the workflow's personas resolve to.
void price_worst_case(run_spec& spec, const loaded_squad& squad);

/// Loads the config file and the personas it names. On problems, `problems` lists every one and the
/// result has no config.
loaded_squad load_squad(const std::string& config_file, std::vector<config_problem>& problems);

/// The same from YAML text (relative paths in it resolve against the working directory).
loaded_squad load_squad_text(const std::string& yaml_text, std::vector<config_problem>& problems);

/// load_squad plus every workflow in the config's workflows_dir, checked against the persona files: all the
/// problems of a squad in one pass (`squad config check`).
loaded_squad check_squad(const std::string& config_file, std::vector<config_problem>& problems);

/// Applies Squad's scheduler settings (threads, no sleep-and-poll phase) and registers message types.
/// `spin_polls`: runtime.spin_polls (CAF's aggressive-poll-attempts).
void configure_actor_system(caf::actor_system_config& cfg, std::int64_t scheduler_threads,
                            std::int64_t spin_polls = 100);

/// The same as runtime.scheduler says: "io" runs the actors on `io`'s threads (net::run_actors_on_io_threads;
/// `io` must then outlive the actor system), "caf" on CAF's workers (scheduler_threads, spin_polls).
void configure_actor_system(caf::actor_system_config& cfg, const runtime_config& rt, net::io_runtime& io);

/// Declare right after the actor system configured with `io`: with runtime.scheduler caf it stops the io
/// threads before the system goes, so no late upstream reply reaches a system that is gone (with io, the
/// system's scheduler stops them itself, after its actors are done).
class stop_io_before_system {
public:
  stop_io_before_system(net::io_runtime& io, const runtime_config& rt) : io_(io), caf_workers_(rt.scheduler == "caf") {}
  ~stop_io_before_system();
  stop_io_before_system(const stop_io_before_system&) = delete;
  stop_io_before_system& operator=(const stop_io_before_system&) = delete;

private:
  net::io_runtime& io_;
  bool caf_workers_;
};

/// Whether any provider talks HTTP (then an io_runtime and make_provider_pools are needed).
bool needs_http(const config& cfg);

/// One keep-alive pool per openai/anthropic provider; a problem per provider whose pool cannot be made.
provider_pools make_provider_pools(net::io_runtime& io, const config& cfg, std::vector<config_problem>& problems);

/// A started tree: its root supervisor (send it an exit to stop everything) and the directory of its actors.
struct squad_tree {
  supervisor_actor root;
  directory_ptr dir;
};

/// Spawns the root supervisor and asks it to start its children, in order. The children are started
/// when root processes those messages (at once with a real scheduler; after sched.run() in tests).
/// `pools` must hold a pool for every openai/anthropic provider (an HTTP provider without one fails to start).
/// With `limiters`, each limiter starts from its checkpoint there and saves its state there (spawn_limiter).
squad_tree start_tree(caf::actor_system& sys, const loaded_squad& squad, const provider_pools& pools = {},
                      std::shared_ptr<limiter_memory> limiters = nullptr);

/// Blocks until every persona, provider and the dispatcher of `tree` is in its directory (a real scheduler only),
/// at most `timeout`; false if that did not happen.
bool await_tree(const squad_tree& tree, const loaded_squad& squad, millis timeout = millis{10000});

} // namespace squad
