#include "actors/messages.hpp"

#include <algorithm>

namespace squad {

const char* to_string(failure_class c) {
  switch (c) {
  case failure_class::unknown:
    return "unknown";
  case failure_class::request_refused:
    return "request_refused";
  case failure_class::unavailable:
    return "unavailable";
  case failure_class::rate_limited:
    return "rate_limited";
  }
  return "unknown";
}

namespace {

// The rule of classify_attempts, over attempt outcome names: a refusal of the request itself, and the ends another
// try (later, or at another target) could cure. Other outcomes (overloaded, auth_failed, ...) count for neither.
constexpr std::string_view refusals[] = {"bad_request", "context_too_long"};
constexpr std::string_view curable[] = {"rate_limited",   "server_error", "timeout",
                                        "connect_failed", "limited",      "breaker_open"};

} // namespace

failure_class classify_attempts(const std::vector<attempt_info>& attempts) {
  bool refused = false, other = false;
  bool limited = !attempts.empty() && std::all_of(attempts.begin(), attempts.end(), [](auto& a) {
    return a.outcome == "rate_limited" || a.outcome == "limited";
  });
  if (limited)
    return failure_class::rate_limited;
  for (auto& a : attempts) {
    refused = refused || std::find(std::begin(refusals), std::end(refusals), a.outcome) != std::end(refusals);
    other = other || std::find(std::begin(curable), std::end(curable), a.outcome) != std::end(curable);
  }
  return refused && !other ? failure_class::request_refused : failure_class::unavailable;
}

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
