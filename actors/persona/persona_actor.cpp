#include "actors/dispatcher/route_choice.hpp"
#include "actors/persona/persona.hpp"
#include "actors/registry/directory.hpp"
#include "actors/stray_errors.hpp"

namespace squad {

namespace {

struct persona_state {
  persona_def def;
  std::vector<chain_target> chain;
  directory_view dir;
  static inline const char* name = "squad.persona";
};

using persona_self = persona_actor::stateful_pointer<persona_state>;

persona_actor::behavior_type persona(persona_self self, persona_def def, std::vector<chain_target> chain,
                                     std::shared_ptr<directory> dir) {
  survive_stray_errors(self, "persona");
  self->state.def = std::move(def);
  self->state.chain = std::move(chain);
  self->state.dir = directory_view{std::move(dir)};
  return {
      [self](call_request& req) -> caf::result<call_result> {
        auto& st = self->state;
        if (req.chain.empty())
          req.chain = st.chain;
        req.persona = st.def.id;
        if (req.priority > 3)
          req.priority = static_cast<std::uint8_t>(st.def.priority);
        if (req.strategy == 255)
          req.strategy =
              static_cast<std::uint8_t>(parse_route_strategy(st.def.strategy).value_or(route_strategy::preference));
        // A run's calls offer the persona's declared tools (an API caller brings its own).
        if (!req.run_id.empty() && !st.def.tools_json.empty() && req.params_json.empty())
          req.params_json = R"({"tools":)" + st.def.tools_json + "}";
        // The persona's system prompt comes first; a caller's own system message (an API client's) follows it.
        bool has_own = !req.messages.empty() && req.messages.front().role == "system" &&
                       req.messages.front().content == st.def.system_prompt;
        if (!has_own)
          req.messages.insert(req.messages.begin(), chat_message{"system", st.def.system_prompt});
        auto dispatcher = st.dir->dispatcher;
        if (!dispatcher) { // between the dispatcher's crash and its restart
          auto why = std::string{"the dispatcher is restarting"};
          if (req.sink)
            std::exchange(req.sink, nullptr)
                ->failed(call_failure{squad_errc::child_unavailable, why, -1, failure_class::unknown, {}});
          return make_squad_error(squad_errc::child_unavailable, std::move(why));
        }
        return self->delegate(dispatcher, std::move(req));
      },
      [](atoms::crash) { throw std::runtime_error("crash requested (test hook)"); },
  };
}

} // namespace

persona_actor spawn_persona(caf::local_actor* parent, persona_def def, std::vector<chain_target> chain,
                            std::shared_ptr<directory> dir) {
  return parent->spawn(persona, std::move(def), std::move(chain), std::move(dir));
}

} // namespace squad
