#include "actors/supervisor/supervisor.hpp"

namespace squad {

namespace {

struct child_slot {
  child_spec spec;
  caf::actor handle; // null while down (between a crash and its restart, or stopped)
  std::int64_t restarts = 0;
};

struct supervisor_state {
  supervisor_options opts;
  std::vector<child_slot> children;
  std::optional<restart_intensity<caf::actor_clock::time_point>> intensity;
  std::vector<caf::actor> subscribers;
  // Every child started, shared with a cleanup hook that stops them even when this supervisor is killed.
  std::shared_ptr<std::vector<caf::actor>> started = std::make_shared<std::vector<caf::actor>>();
  static inline const char* name = "squad.supervisor";
};

using supervisor_self = supervisor_actor::stateful_pointer<supervisor_state>;

void notify(supervisor_self self, const child_slot& c, const char* what, const caf::error& reason) {
  child_event ev{self->state.opts.name, c.spec.name, what, self->system().render(reason), c.restarts};
  for (auto& s : self->state.subscribers)
    caf::anon_send(s, ev); // subscribers are dynamically typed (bosses, listeners)
}

child_slot* find_by_name(supervisor_self self, const std::string& name) {
  for (auto& c : self->state.children)
    if (c.spec.name == name)
      return &c;
  return nullptr;
}

child_slot* find_by_addr(supervisor_self self, const caf::actor_addr& addr) {
  for (auto& c : self->state.children)
    if (c.handle && c.handle.address() == addr)
      return &c;
  return nullptr;
}

// Starts (or restarts) a child. A factory that throws counts as a crash of the child.
bool start(supervisor_self self, child_slot& c) {
  try {
    c.handle = c.spec.start(self);
  } catch (...) {
    c.handle = nullptr;
  }
  if (!c.handle)
    return false;
  // Monitors, not links: a child killed with exit_reason::kill must not take its supervisor along.
  self->monitor(c.handle);
  self->state.started->push_back(c.handle);
  return true;
}

// Stops every child with `reason`, then exits with it.
void shut_down(supervisor_self self, const caf::error& reason) {
  for (auto& c : self->state.children)
    if (c.handle) {
      self->demonitor(c.handle);
      self->send_exit(c.handle, reason ? reason : caf::error{caf::exit_reason::user_shutdown});
      c.handle = nullptr;
    }
  self->quit(reason);
}

void on_child_exit(supervisor_self self, child_slot& c, const caf::error& reason) {
  c.handle = nullptr;
  bool abnormal = reason && reason != caf::exit_reason::user_shutdown;
  if (!should_restart(c.spec.restart, abnormal)) {
    if (abnormal)
      notify(self, c, "stopped", reason);
    auto& cs = self->state.children; // finished children leave no slot behind
    cs.erase(cs.begin() + (&c - cs.data()));
    return;
  }
  // Restart now if the intensity limit allows; a failed start counts as another restart.
  while (self->state.intensity->try_restart(self->clock().now())) {
    ++c.restarts;
    if (start(self, c)) {
      notify(self, c, "restarted", reason);
      return;
    }
  }
  notify(self, c, "escalated", reason);
  shut_down(self, make_squad_error(squad_errc::intensity_exceeded,
                                   self->state.opts.name + ": more than " +
                                       std::to_string(self->state.opts.max_restarts) + " restarts in " +
                                       std::to_string(caf::timespan{self->state.opts.period}.count() / 1000000) +
                                       "ms (last: " + c.spec.name + ", " + self->system().render(reason) + ")"));
}

supervisor_actor::behavior_type supervisor_impl(supervisor_self self, supervisor_options opts,
                                                std::vector<child_spec> specs) {
  self->state.intensity.emplace(opts.max_restarts, opts.period);
  self->state.opts = std::move(opts);
  self->attach_functor([started = self->state.started] {
    for (auto& c : *started)
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (msg.reason) // an exit request (from our parent) takes us and our children down
      shut_down(self, msg.reason);
  });
  self->set_down_handler([self](caf::down_msg& msg) {
    if (auto* c = find_by_addr(self, msg.source)) {
      auto& started = *self->state.started;
      started.erase(std::remove(started.begin(), started.end(), c->handle), started.end());
      on_child_exit(self, *c, msg.reason);
      return;
    }
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(), [&](const caf::actor& a) { return a.address() == msg.source; }),
               subs.end());
  });
  for (auto& spec : specs) {
    self->state.children.push_back(child_slot{std::move(spec), nullptr, 0});
    auto& c = self->state.children.back();
    if (!start(self, c)) {
      shut_down(self, make_squad_error(squad_errc::intensity_exceeded,
                                       self->state.opts.name + ": child " + c.spec.name + " failed to start"));
      return supervisor_actor::behavior_type::make_empty_behavior();
    }
  }
  return {
      [self](atoms::whereis, const std::string& name) -> caf::result<caf::actor> {
        auto* c = find_by_name(self, name);
        if (!c)
          return make_squad_error(squad_errc::no_such_child, self->state.opts.name + " has no child " + name);
        if (!c->handle)
          return make_squad_error(squad_errc::child_unavailable, self->state.opts.name + "/" + name + " is restarting");
        return c->handle;
      },
      [self](atoms::start_child, child_spec& spec) -> caf::result<caf::actor> {
        // Dynamic children reuse finished slots of the same name.
        auto* c = find_by_name(self, spec.name);
        if (c && c->handle)
          return make_squad_error(squad_errc::no_such_child, spec.name + " is already running");
        if (!c) {
          self->state.children.push_back(child_slot{std::move(spec), nullptr, 0});
          c = &self->state.children.back();
        } else {
          c->spec = std::move(spec);
        }
        if (!start(self, *c))
          return make_squad_error(squad_errc::child_unavailable, c->spec.name + " failed to start");
        return c->handle;
      },
      [self](atoms::subscribe, const caf::actor& who) {
        self->monitor(who);
        self->state.subscribers.push_back(who);
      },
      [self](atoms::unsubscribe, const caf::actor& who) {
        auto& subs = self->state.subscribers;
        subs.erase(std::remove(subs.begin(), subs.end(), who), subs.end());
      },
      [self](atoms::children) {
        std::vector<std::string> out;
        for (auto& c : self->state.children)
          out.push_back(c.spec.name + (c.handle ? " running " : " down ") + std::to_string(c.restarts));
        return out;
      },
  };
}

} // namespace

supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_options opts, std::vector<child_spec> children) {
  return sys.spawn(supervisor_impl, std::move(opts), std::move(children));
}

supervisor_actor spawn_child_supervisor(caf::local_actor* parent, supervisor_options opts,
                                        std::vector<child_spec> children) {
  return parent->spawn(supervisor_impl, std::move(opts), std::move(children));
}

child_spec supervisor_child(supervisor_options opts, std::vector<child_spec> children, restart_kind restart,
                            std::function<void(const supervisor_actor&)> started) {
  auto name = opts.name;
  return child_spec{std::move(name), restart,
                    [opts = std::move(opts), children = std::move(children), started](caf::local_actor* parent) {
                      auto h = parent->spawn(supervisor_impl, opts, children);
                      if (started)
                        started(h);
                      return caf::actor_cast<caf::actor>(h);
                    }};
}

} // namespace squad
