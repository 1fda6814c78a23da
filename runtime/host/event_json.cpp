#include "runtime/host/event_json.hpp"

namespace squad {

nlohmann::json event_json(const run_event& ev) {
  nlohmann::json j{{"type", ev.type}, {"seq", ev.seq}, {"at_ms", ev.at_ms}, {"run_id", ev.run_id}};
  if (!ev.step_id.empty())
    j["step_id"] = ev.step_id;
  if (!ev.persona.empty())
    j["persona"] = ev.persona;
  if (!ev.message.empty())
    j["message"] = ev.message;
  auto data = nlohmann::json::parse(ev.data_json, nullptr, false);
  j["data"] = data.is_discarded() ? nlohmann::json::object() : std::move(data);
  return j;
}

} // namespace squad
