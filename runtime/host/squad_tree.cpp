#include "runtime/host/squad_tree.hpp"

#include "actors/dispatcher/dispatcher.hpp"
#include "actors/limiter/limiter.hpp"
#include "actors/persona/persona.hpp"
#include "actors/provider/provider.hpp"
#include "actors/supervisor/supervisor.hpp"
#include "runtime/net/io_scheduler.hpp"

#include <algorithm>
#include <filesystem>
#include <thread>

namespace squad {

std::set<std::string> loaded_squad::persona_ids() const {
  std::set<std::string> out;
  for (auto& p : personas)
    out.insert(p.id);
  return out;
}

namespace {

// Reads on past every problem: the personas are checked against the config as read even when the config has
// problems (a bad field at its default), and with `workflows` set every workflow is checked against the persona
// files, so one pass reports all of a squad's problems. Every check itself is a validate() of squad_config.
loaded_squad finish_loading(config_load_result loaded, std::vector<config_problem>& problems, bool workflows) {
  loaded_squad out;
  problems = std::move(loaded.problems);
  if (!loaded.as_read)
    return out;
  const config& cfg = *loaded.as_read;
  // A bad directory setting is reported at its own path, and looking inside it would only add noise.
  auto bad = [&problems](std::string_view path) {
    return std::any_of(problems.begin(), problems.end(), [path](const config_problem& p) { return p.path == path; });
  };
  personas_load_result personas;
  if (!bad("personas_dir")) {
    personas = load_personas(cfg.personas_dir, cfg, !chains_in_doubt(cfg, problems));
    problems.insert(problems.end(), personas.problems.begin(), personas.problems.end());
  }
  // With no persona file to check them against, every step would name an unknown persona: noise.
  if (workflows && !bad("workflows_dir") && !personas.files.empty()) {
    std::error_code ec;
    for (auto& entry : std::filesystem::directory_iterator(cfg.workflows_dir, ec)) {
      if (entry.path().extension() != ".yaml")
        continue;
      auto wf = load_workflow(cfg.workflows_dir, entry.path().stem().string(), personas.files);
      problems.insert(problems.end(), wf.problems.begin(), wf.problems.end());
    }
    if (ec)
      problems.push_back({"workflows_dir", "cannot read " + cfg.workflows_dir + ": " + ec.message()});
  }
  if (!problems.empty() || !loaded.cfg)
    return out;
  for (auto& p : personas.personas) {
    std::vector<config_problem> unused; // validate() above resolved every chain already
    out.chains[p.id] = resolve_chain(p.chain, cfg, cfg.personas_dir + "/" + p.id + ".yaml: chain", unused);
  }
  out.cfg = loaded.cfg;
  out.personas = std::move(personas.personas);
  return out;
}

} // namespace

loaded_squad load_squad(const std::string& config_file, std::vector<config_problem>& problems) {
  return finish_loading(load_config_file(config_file), problems, false);
}

loaded_squad load_squad_text(const std::string& yaml_text, std::vector<config_problem>& problems) {
  return finish_loading(load_config_text(yaml_text), problems, false);
}

loaded_squad check_squad(const std::string& config_file, std::vector<config_problem>& problems) {
  return finish_loading(load_config_file(config_file), problems, true);
}

void configure_actor_system(caf::actor_system_config& cfg, std::int64_t scheduler_threads, std::int64_t spin_polls) {
  register_message_types(cfg);
  cfg.set("scheduler.max-threads", static_cast<std::size_t>(scheduler_threads));
  // Workers otherwise nap in 50us polls that a message from a non-CAF thread does not interrupt.
  cfg.set("work-stealing.moderate-poll-attempts", static_cast<std::size_t>(0));
  // Then poll a while before sleeping: a message from an io thread finds the worker awake (measured: the added
  // latency of a gateway call fell from 0.15 ms to 0.03 ms p50 at 20000 polls).
  cfg.set("work-stealing.aggressive-poll-attempts", static_cast<std::size_t>(std::max<std::int64_t>(1, spin_polls)));
}

void configure_actor_system(caf::actor_system_config& cfg, const runtime_config& rt, net::io_runtime& io) {
  configure_actor_system(cfg, rt.scheduler_threads, rt.spin_polls);
  if (rt.scheduler != "caf") // io, the default (config validation allows only these two)
    net::run_actors_on_io_threads(cfg, io);
}

stop_io_before_system::~stop_io_before_system() {
  if (caf_workers_)
    io_.stop();
}

bool needs_http(const config& cfg) {
  for (auto& p : cfg.providers)
    if (p.kind != "sim")
      return true;
  return false;
}

provider_pools make_provider_pools(net::io_runtime& io, const config& cfg, std::vector<config_problem>& problems) {
  provider_pools pools;
  for (auto& p : cfg.providers) {
    if (p.kind == "sim")
      continue;
    std::string why;
    if (auto pool = make_provider_pool(io, p, why))
      pools.emplace(p.name, std::move(pool));
    else
      problems.push_back({"providers." + p.name, why});
  }
  return pools;
}

squad_tree start_tree(caf::actor_system& sys, const loaded_squad& squad, const provider_pools& pools,
                      std::shared_ptr<limiter_memory> limiters) {
  auto& cfg = *squad.cfg;
  supervisor_options root_opts{"root", static_cast<std::size_t>(cfg.supervision.max_restarts), cfg.supervision.period};
  auto root = spawn_supervisor(sys, root_opts, {});
  auto dir = std::make_shared<directory>();
  auto opts = [&](std::string name) {
    return supervisor_options{std::move(name), root_opts.max_restarts, root_opts.period};
  };
  // Each factory announces the handle it spawned: at the first start and at every restart.
  std::vector<child_spec> providers;
  for (auto& p : cfg.providers)
    providers.push_back({p.name, restart_kind::permanent, [p, pools, dir](caf::local_actor* parent) {
                           std::string why;
                           auto h = spawn_provider(parent, p, pools, why);
                           if (h)
                             dir->announce(p.name, h);
                           return caf::actor_cast<caf::actor>(h);
                         }});
  for (auto& p : cfg.providers) { // governance beside each provider
    providers.push_back({p.name + ":limiter", restart_kind::permanent, [p, dir, limiters](caf::local_actor* parent) {
                           auto h = spawn_limiter(parent, p, true, dir, limiters);
                           dir->announce(p.name, h);
                           return caf::actor_cast<caf::actor>(h);
                         }});
    for (auto& m : p.models) // a model with its own limits has its own limiter, named by its domain
      if (m.limits) {
        auto q = p;
        q.name = limits_domain(p.name, m.name);
        q.limits = *m.limits;
        providers.push_back(
            {p.name + ":" + m.name + ":limiter", restart_kind::permanent, [q, dir, limiters](caf::local_actor* parent) {
               auto h = spawn_limiter(parent, q, true, dir, limiters);
               dir->announce(q.name, h);
               return caf::actor_cast<caf::actor>(h);
             }});
      }
    providers.push_back({p.name + ":breaker", restart_kind::permanent, [p, dir](caf::local_actor* parent) {
                           auto h = spawn_breaker(parent, p, dir);
                           dir->announce(p.name, h);
                           return caf::actor_cast<caf::actor>(h);
                         }});
  }
  dispatch_options dopts;
  dopts.walker.retry = {4, millis{1000}, millis{30000}, 0.2}; // a provider's retry: defaults
  for (const auto& p : cfg.providers)
    dopts.retry[p.name] = {p.retry.retries, p.retry.base, p.retry.cap, p.retry.jitter};
  dopts.probe_wait = cfg.runtime.probe_wait;
  dopts.global_concurrency = cfg.runtime.global_concurrency;
  dopts.walker.seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  dopts.queue_wait = cfg.runtime.queue_wait;
  dopts.route_slack = cfg.runtime.route_slack;
  dopts.cache.enabled = cfg.runtime.cache;
  dopts.cache.max_entries = static_cast<std::size_t>(cfg.runtime.cache_entries);
  dopts.cache.ttl = cfg.runtime.cache_ttl;
  dopts.request_calls = cfg.runtime.request_calls;
  dopts.shared_calls = cfg.runtime.shared_calls;
  auto& tw = cfg.runtime.tolerable_wait;
  dopts.tolerable_wait = {millis::max(), tw.p1, tw.p2, tw.p3};
  dopts.bind_horizon = cfg.runtime.bind_horizon;
  std::vector<child_spec> personas;
  for (auto& p : squad.personas)
    personas.push_back(
        {p.id, restart_kind::permanent, [p, chain = squad.chains.at(p.id), dir](caf::local_actor* parent) {
           auto h = spawn_persona(parent, p, chain, dir);
           dir->announce(p.id, h);
           return caf::actor_cast<caf::actor>(h);
         }});
  auto announce_as = [dir](std::string role) {
    return [dir, role](const supervisor_actor& h) { dir->announce(role, h); };
  };
  caf::anon_send(root, atoms::start_child_v, supervisor_child(opts("providers"), std::move(providers)));
  caf::anon_send(
      root, atoms::start_child_v,
      supervisor_child(opts("personas"), std::move(personas), restart_kind::permanent, announce_as("personas")));
  caf::anon_send(root, atoms::start_child_v,
                 child_spec{"dispatcher", restart_kind::permanent, [dir, dopts](caf::local_actor* parent) {
                              auto h = spawn_dispatcher(parent, dir, dopts);
                              dir->announce(h);
                              return caf::actor_cast<caf::actor>(h);
                            }});
  caf::anon_send(root, atoms::start_child_v,
                 supervisor_child(opts("runs"), {}, restart_kind::permanent, announce_as("runs")));
  return {root, dir};
}

bool await_tree(const squad_tree& tree, const loaded_squad& squad, millis timeout) {
  auto complete = [&] {
    auto s = tree.dir->get();
    if (!s->dispatcher || !s->runs || !s->personas_supervisor)
      return false;
    for (auto& p : squad.personas)
      if (!s->persona(p.id))
        return false;
    for (auto& p : squad.cfg->providers) {
      auto* h = s->provider(p.name);
      if (!h || !h->provider || !h->limiter || !h->breaker)
        return false;
      for (auto& m : p.models)
        if (auto* d = s->provider(limits_domain(p.name, m.name)); m.limits && (!d || !d->limiter || !d->provider))
          return false;
    }
    return true;
  };
  // Start-up takes a few scheduler turns; a short poll on the directory's version is simpler than a handshake.
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!complete()) {
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  return true;
}

void price_worst_case(run_spec& spec, const loaded_squad& squad) {
  for (auto& step : spec.workflow.steps)
    for (auto& id : step.personas)
      if (auto c = squad.chains.find(id); c != squad.chains.end())
        for (auto& t : c->second) {
          spec.worst_input_price = std::max(spec.worst_input_price, t.input_price);
          spec.worst_output_price = std::max(spec.worst_output_price, t.output_price);
        }
}

} // namespace squad
