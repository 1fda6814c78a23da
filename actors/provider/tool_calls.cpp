#include "actors/provider/tool_calls.hpp"

#include <nlohmann/json.hpp>

namespace squad {

using nlohmann::ordered_json;

namespace {
std::string dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
} // namespace

bool tool_call_assembler::add(std::size_t index, std::string_view id, std::string_view name,
                              std::string_view arguments) {
  if (index >= max_calls)
    return false;
  if (calls_.size() <= index)
    calls_.resize(index + 1);
  auto& c = calls_[index];
  if (!id.empty())
    c.id = id;
  c.name += name; // sent once in practice; joined like the arguments should an upstream split it
  c.arguments += arguments;
  ordered_json f = {{"index", index}};
  if (!id.empty()) {
    f["id"] = id;
    f["type"] = "function";
  }
  ordered_json fn = ordered_json::object();
  if (!name.empty())
    fn["name"] = name;
  fn["arguments"] = arguments;
  f["function"] = std::move(fn);
  pending_ += (pending_.empty() ? "" : ",") + dump(f);
  return true;
}

std::string tool_call_assembler::take_fragments() {
  if (pending_.empty())
    return {};
  std::string out = "[" + pending_ + "]";
  pending_.clear();
  return out;
}

std::string tool_call_assembler::calls_json() const {
  if (calls_.empty())
    return {};
  ordered_json out = ordered_json::array();
  for (auto& c : calls_)
    out.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  return dump(out);
}

} // namespace squad
