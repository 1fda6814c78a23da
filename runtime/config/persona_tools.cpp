#include "runtime/config/persona_tools.hpp"

#include <nlohmann/json.hpp>

#include <set>

namespace squad {

namespace {

using json = nlohmann::json;

// YAML as JSON: plain scalars that read as null, booleans or numbers become them; quoted ones stay strings.
json to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    json o = json::object();
    for (auto it = n.begin(); it != n.end(); ++it)
      o[it->first.as<std::string>()] = to_json(it->second);
    return o;
  }
  if (n.IsSequence()) {
    json a = json::array();
    for (auto& x : n)
      a.push_back(to_json(x));
    return a;
  }
  if (!n.IsScalar())
    return nullptr;
  auto s = n.Scalar();
  if (n.Tag() == "!") // quoted
    return s;
  if (s == "~" || s == "null")
    return nullptr;
  if (s == "true" || s == "false")
    return s == "true";
  auto parsed = json::parse(s, nullptr, false);
  return parsed.is_number() ? parsed : json(s);
}

bool good_name(const std::string& s) {
  if (s.empty() || s.size() > 64)
    return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
      return false;
  return true;
}

} // namespace

std::string read_persona_tools(const YAML::Node& tools, const std::string& path,
                               std::vector<config_problem>& problems) {
  if (!tools.IsSequence()) {
    problems.push_back({path, "must be a list of tools ({name, description?, parameters?})"});
    return {};
  }
  json out = json::array();
  std::set<std::string> names;
  for (std::size_t i = 0; i < tools.size(); ++i) {
    auto at = path + "[" + std::to_string(i) + "]";
    auto& t = tools[i];
    if (!t.IsMap()) {
      problems.push_back({at, "must be a map: {name, description?, parameters?}"});
      continue;
    }
    for (auto it = t.begin(); it != t.end(); ++it) {
      auto key = it->first.as<std::string>();
      if (key != "name" && key != "description" && key != "parameters")
        problems.push_back({at + "." + key, "unknown key"});
    }
    auto name = t["name"] && t["name"].IsScalar() ? t["name"].Scalar() : std::string{};
    if (!good_name(name)) {
      problems.push_back(
          {at + ".name", "required: 1-64 characters of A-Z, a-z, 0-9, '_' and '-' (got \"" + name + "\")"});
      continue;
    }
    if (!names.insert(name).second)
      problems.push_back({at + ".name", "\"" + name + "\" is declared twice"});
    json fn{{"name", name}};
    if (t["description"]) {
      if (!t["description"].IsScalar())
        problems.push_back({at + ".description", "must be a string"});
      else
        fn["description"] = t["description"].Scalar();
    }
    if (t["parameters"]) {
      if (!t["parameters"].IsMap())
        problems.push_back({at + ".parameters", "must be a JSON schema object ({type: object, properties: ...})"});
      else
        fn["parameters"] = to_json(t["parameters"]);
    }
    out.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return out.empty() ? std::string{} : out.dump();
}

} // namespace squad
