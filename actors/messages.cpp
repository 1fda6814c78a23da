#include "actors/messages.hpp"

namespace squad {

caf::error make_squad_error(squad_errc code, std::string detail) {
  return caf::make_error(code, std::move(detail));
}

std::string error_detail(const caf::actor_system& sys, const caf::error& err) {
  if (!err) // CAF 0.17: category() of an empty error dereferences null
    return "normal exit";
  if (err.category() == caf::atom("squad")) {
    std::string out = to_string(static_cast<squad_errc>(err.code()));
    if (err.context().match_elements<std::string>())
      out += ": " + err.context().get_as<std::string>(0);
    return out;
  }
  return sys.render(err);
}

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::squad>();
  cfg.add_error_category(caf::atom("squad"), [](std::uint8_t code, caf::atom_value, const caf::message& ctx) {
    std::string out = to_string(static_cast<squad_errc>(code));
    if (ctx.match_elements<std::string>())
      out += ": " + ctx.get_as<std::string>(0);
    return out;
  });
}

} // namespace squad
