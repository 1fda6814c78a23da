#include "actors/registry/directory.hpp"
#include "actors/stray_errors.hpp"

#include <nlohmann/json.hpp>

namespace squad {

namespace {

struct breaker_actor_state {
  std::string provider;
  std::shared_ptr<directory> dir;
  std::optional<breaker_state> breaker;
  breaker_phase told = breaker_phase::closed;
  std::int64_t opens = 0, refusals = 0;
  static inline const char* name = "squad.breaker";
};

using breaker_self = breaker_actor::stateful_pointer<breaker_actor_state>;

// Tells the limiters (for admission and routing estimates) whenever the phase it knows is out of date, or always
// (`always`: the limiter asked, or this breaker just started), straight to its handle.
void tell_limiter(breaker_self self, bool always = false) {
  auto& st = self->state;
  auto now = self->clock().now();
  auto phase = st.breaker->phase(now);
  if (phase == st.told && !always)
    return;
  st.told = phase;
  auto open_ms = phase == breaker_phase::open ? std::chrono::ceil<millis>(st.breaker->open_until() - now).count()
                                              : std::int64_t{0};
  if (st.dir) // the provider's limiter and those of its models with their own limits
    for (auto& l : st.dir->get()->limiters_of(st.provider))
      self->send(l, atoms::phase_v, static_cast<std::uint8_t>(phase), open_ms, st.breaker->generation());
  if (phase == breaker_phase::open) // tell again when it turns half-open
    self->delayed_send(self, st.breaker->open_until() - now, atoms::tick_v);
}

// Records an outcome (for the generation of its ticket, when given); the transition as "closed->open", or "".
std::string on_report(breaker_self self, outcome result, std::optional<std::uint64_t> generation) {
  auto& st = self->state;
  auto now = self->clock().now();
  auto before = st.breaker->phase(now);
  auto after = generation ? st.breaker->record(result, now, *generation) : st.breaker->record(result, now);
  tell_limiter(self);
  if (!after)
    return {};
  if (*after == breaker_phase::open)
    ++st.opens;
  return std::string(to_string(before)) + "->" + to_string(*after);
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): CAF passes a function actor's arguments by value
breaker_actor::behavior_type breaker(breaker_self self, provider_config cfg, std::shared_ptr<directory> dir) {
  survive_stray_errors(self, "breaker");
  self->state.provider = cfg.name;
  self->state.dir = std::move(dir);
  self->state.breaker.emplace(breaker_settings_from(cfg));
  tell_limiter(self, true); // a (re)started breaker's phase replaces whatever the limiter knew
  return {
      [self](atoms::allow) {
        auto ok = self->state.breaker->allow(self->clock().now());
        self->state.refusals += ok ? 0 : 1;
        tell_limiter(self);
        return ok;
      },
      [self](atoms::allow, atoms::report) -> std::uint64_t { // a ticket: generation + 1; 0 = refused
        auto gen = self->state.breaker->admit(self->clock().now());
        self->state.refusals += gen ? 0 : 1;
        tell_limiter(self);
        return gen ? *gen + 1 : 0;
      },
      [self](atoms::report, outcome result, std::uint64_t ticket) { return on_report(self, result, ticket - 1); },
      [self](atoms::cancel, std::uint64_t ticket) {
        self->state.breaker->record(outcome::bad_request, self->clock().now(), ticket - 1); // neutral: frees a probe
      },
      [self](atoms::report, outcome result) { return on_report(self, result, std::nullopt); },
      [self](atoms::cancel) {
        self->state.breaker->record(outcome::bad_request, self->clock().now()); // neutral: frees a probe slot
      },
      [self](atoms::tick) { tell_limiter(self); },
      [self](atoms::phase) { tell_limiter(self, true); },
      [self](atoms::stats) {
        auto& st = self->state;
        auto now = self->clock().now();
        return nlohmann::json{{"provider", st.provider},
                              {"phase", to_string(st.breaker->phase(now))},
                              {"consecutive_failures", st.breaker->consecutive_failures()},
                              {"opens", st.opens},
                              {"refusals", st.refusals}}
            .dump();
      },
      [](atoms::crash) { throw std::runtime_error("crash requested (test hook)"); },
  };
}

} // namespace

breaker_settings breaker_settings_from(const provider_config& cfg) {
  breaker_settings s;
  s.consecutive = cfg.breaker.failures;
  s.ratio = cfg.breaker.ratio;
  s.min_calls = cfg.breaker.min_calls;
  s.window = cfg.breaker.window;
  s.cooldown = cfg.breaker.cooldown;
  s.probes = cfg.breaker.probes;
  s.rate_limit_is_failure = cfg.breaker.count_rate_limits;
  return s;
}

breaker_actor spawn_breaker(caf::local_actor* parent, const provider_config& cfg, std::shared_ptr<directory> dir) {
  return parent->spawn(breaker, cfg, std::move(dir));
}

} // namespace squad
