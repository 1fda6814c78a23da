#include "actors/persona/persona.hpp"

namespace squad {

namespace {

struct persona_state {
  persona_def def;
  std::vector<chain_target> chain;
  caf::actor root;
  static inline const char* name = "squad.persona";
};

using persona_actor = caf::stateful_actor<persona_state>;

caf::behavior persona(persona_actor* self, persona_def def, std::vector<chain_target> chain, caf::actor root) {
  self->state.def = std::move(def);
  self->state.chain = std::move(chain);
  self->state.root = std::move(root);
  return {
    [self](call_request& req) -> caf::result<call_result> {
      auto& st = self->state;
      if (req.chain.empty())
        req.chain = st.chain;
      req.persona = st.def.id;
      if (req.priority > 3)
        req.priority = static_cast<std::uint8_t>(st.def.priority);
      // The persona's system prompt comes first; a caller's own system message (an API client's) follows it.
      bool has_own = !req.messages.empty() && req.messages.front().role == "system" &&
                     req.messages.front().content == st.def.system_prompt;
      if (!has_own)
        req.messages.insert(req.messages.begin(), chat_message{"system", st.def.system_prompt});
      self->delegate(st.root, atoms::forward_v, std::string{"dispatcher"}, caf::make_message(std::move(req)));
      return caf::delegated<call_result>{};
    },
    [](atoms::crash) { throw std::runtime_error("crash requested (test hook)"); },
  };
}

} // namespace

caf::actor spawn_persona(caf::local_actor* parent, persona_def def, std::vector<chain_target> chain, caf::actor root) {
  return parent->spawn(persona, std::move(def), std::move(chain), std::move(root));
}

} // namespace squad
