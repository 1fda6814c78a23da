#include "runtime/config/yaml_reader.hpp"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

namespace squad {

namespace detail {

std::string join(const std::string& base, std::string_view key) {
  if (base.empty())
    return std::string(key);
  // File origins end in ": " and are followed directly by the field name.
  if (base.size() >= 2 && base.compare(base.size() - 2, 2, ": ") == 0)
    return base + std::string(key);
  return base + "." + std::string(key);
}

std::string origin_of(const std::string& base) {
  if (base.size() >= 2 && base.compare(base.size() - 2, 2, ": ") == 0)
    return base.substr(0, base.size() - 2);
  return base;
}

std::string at(const std::string& base, std::size_t index) {
  return base + "[" + std::to_string(index) + "]";
}

bool only_chars(std::string_view text, std::string_view punct, bool upper) {
  if (text.empty())
    return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
              punct.find(c) != std::string_view::npos;
    if (!ok)
      return false;
  }
  return true;
}

bool is_name(std::string_view text) {
  return only_chars(text, "._-", true);
}

bool is_chain_entry(std::string_view text) {
  if (text == "@worker" || text == "@boss")
    return true;
  auto slash = text.find('/');
  return slash != std::string_view::npos && is_name(text.substr(0, slash)) && is_name(text.substr(slash + 1));
}

std::string bad_chain_entry(std::string_view text) {
  return "must be provider/model, @worker or @boss (got \"" + std::string(text) + "\")";
}

bool read_file(const std::string& path, std::string& out) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return false;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

std::optional<YAML::Node> parse_yaml(const std::string& text, const std::string& path,
                                     std::vector<config_problem>& problems) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string where;
    if (!e.mark.is_null())
      where = "line " + std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1) + ": ";
    problems.push_back({path, "invalid YAML: " + where + e.msg});
  }
  return std::nullopt;
}

yaml_reader::yaml_reader(std::vector<config_problem>& problems, bool expand_env)
    : problems_(problems), expand_env_(expand_env) {}

void yaml_reader::problem(std::string path, std::string message) {
  problems_.push_back({std::move(path), std::move(message)});
}

bool yaml_reader::is_map(const YAML::Node& node, const std::string& path) {
  if (node.IsMap() || node.IsNull())
    return true;
  problem(path, "must be a map");
  return false;
}

void yaml_reader::check_keys(const YAML::Node& map, const std::string& path,
                             std::initializer_list<std::string_view> allowed) {
  check_keys(map, path, std::vector<std::string_view>(allowed));
}

void yaml_reader::check_keys(const YAML::Node& map, const std::string& path,
                             const std::vector<std::string_view>& allowed) {
  if (!map.IsMap())
    return;
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      problem(origin_of(path), "keys must be strings");
      continue;
    }
    const std::string& key = kv.first.Scalar();
    bool known = false;
    for (auto a : allowed)
      known = known || a == key;
    if (!known)
      problem(join(path, key), "unknown key");
    else if (!seen.insert(key).second)
      problem(join(path, key), "duplicate key");
  }
}

std::optional<YAML::Node> yaml_reader::find(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap())
    return std::nullopt;
  for (const auto& kv : map)
    if (kv.first.IsScalar() && kv.first.Scalar() == key)
      return kv.second;
  return std::nullopt;
}

std::vector<std::pair<std::string, YAML::Node>> yaml_reader::entries(const YAML::Node& map, const std::string& path) {
  std::vector<std::pair<std::string, YAML::Node>> out;
  if (!map.IsMap())
    return out;
  for (const auto& kv : map) {
    if (kv.first.IsScalar())
      out.emplace_back(kv.first.Scalar(), kv.second);
    else
      problem(origin_of(path), "keys must be strings");
  }
  return out;
}

bool yaml_reader::expand(const std::string& raw, const std::string& path, std::string& out, bool env_required) {
  out.clear();
  if (!expand_env_) {
    out = raw;
    return true;
  }
  bool ok = true;
  std::size_t pos = 0;
  for (;;) {
    auto start = raw.find("${", pos);
    if (start == std::string::npos) {
      out.append(raw, pos);
      return ok;
    }
    out.append(raw, pos, start - pos);
    auto end = raw.find('}', start + 2);
    if (end == std::string::npos) {
      problem(path, "unterminated ${ (write ${NAME})");
      return false;
    }
    std::string name = raw.substr(start + 2, end - start - 2);
    if (!only_chars(name, "_", true) || (name[0] >= '0' && name[0] <= '9')) {
      problem(path, "invalid environment variable name \"" + name + "\"");
      ok = false;
    } else if (const char* value = std::getenv(name.c_str())) {
      out += value;
    } else if (env_required) {
      // Names the variable only: the value may be a secret.
      problem(path, "environment variable " + name + " is not set");
      ok = false;
    }
    pos = end + 1;
  }
}

bool yaml_reader::text(const YAML::Node& node, const std::string& path, std::string& out, bool env_required) {
  if (node.IsNull()) {
    out.clear();
    return true;
  }
  if (!node.IsScalar()) {
    problem(path, "must be a string");
    return false;
  }
  std::string value;
  if (!expand(node.Scalar(), path, value, env_required))
    return false;
  out = std::move(value);
  return true;
}

bool yaml_reader::get(const YAML::Node& map, const std::string& path, std::string_view key, std::string& out) {
  auto node = find(map, key);
  return node && text(*node, join(path, key), out);
}

bool yaml_reader::get(const YAML::Node& map, const std::string& path, std::string_view key, std::int64_t& out) {
  auto node = find(map, key);
  if (!node)
    return false;
  std::string p = join(path, key);
  std::string value;
  if (!node->IsScalar()) {
    problem(p, "must be an integer");
    return false;
  }
  if (!expand(node->Scalar(), p, value, true))
    return false;
  std::int64_t parsed = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (ec != std::errc{} || end != value.data() + value.size()) {
    problem(p, "must be an integer");
    return false;
  }
  out = parsed;
  return true;
}

bool yaml_reader::get(const YAML::Node& map, const std::string& path, std::string_view key, millis& out) {
  auto node = find(map, key);
  if (!node)
    return false;
  std::string p = join(path, key);
  std::string value;
  if (!node->IsScalar() && !node->IsNull()) {
    problem(p, "must be a duration (use e.g. 500ms, 2s, 60s, 10m)");
    return false;
  }
  std::string raw = node->IsScalar() ? node->Scalar() : "";
  if (!expand(raw, p, value, true))
    return false;
  auto parsed = parse_duration(value);
  if (!parsed) {
    // Quotes the text as written in the file, never an expanded environment value.
    problem(p, "invalid duration \"" + raw + "\" (use e.g. 500ms, 2s, 60s, 10m)");
    return false;
  }
  out = *parsed;
  return true;
}

bool yaml_reader::get(const YAML::Node& map, const std::string& path, std::string_view key, priority_class& out) {
  auto node = find(map, key);
  if (!node)
    return false;
  std::string p = join(path, key);
  std::string value;
  if (!node->IsScalar()) {
    problem(p, "must be one of P0, P1, P2, P3");
    return false;
  }
  if (!expand(node->Scalar(), p, value, true))
    return false;
  auto parsed = parse_priority(value);
  if (!parsed) {
    problem(p, "must be one of P0, P1, P2, P3");
    return false;
  }
  out = *parsed;
  return true;
}

bool yaml_reader::get(const YAML::Node& map, const std::string& path, std::string_view key, double& out) {
  std::string value;
  if (!get(map, path, key, value))
    return false;
  // The whole text must be the number: "0.5x" or "" is a mistake, not 0.5 or 0.
  double parsed = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (value.empty() || ec != std::errc{} || end != value.data() + value.size()) {
    problem(join(path, key), "must be a number between 0 and 1");
    return false;
  }
  out = parsed;
  return true;
}

bool yaml_reader::get(const YAML::Node& map, const std::string& path, std::string_view key, bool& out) {
  auto node = find(map, key);
  if (!node)
    return false;
  std::string p = join(path, key);
  std::string value;
  if (!node->IsScalar()) {
    problem(p, "must be true or false");
    return false;
  }
  if (!expand(node->Scalar(), p, value, true))
    return false;
  // Only the two spellings people mean; YAML 1.1's yes/no/on/off are too easy to write by accident.
  if (value != "true" && value != "false") {
    problem(p, "must be true or false");
    return false;
  }
  out = value == "true";
  return true;
}

bool yaml_reader::get(const YAML::Node& map, const std::string& path, std::string_view key,
                      std::vector<std::string>& out) {
  auto node = find(map, key);
  if (!node)
    return false;
  std::string p = join(path, key);
  if (node->IsNull()) {
    out.clear();
    return true;
  }
  if (!node->IsSequence()) {
    problem(p, "must be a list");
    return false;
  }
  std::vector<std::string> values;
  bool ok = true;
  for (std::size_t i = 0; i < node->size(); ++i) {
    std::string value;
    const YAML::Node item = (*node)[i];
    if (item.IsScalar())
      ok = text(item, at(p, i), value) && ok;
    else {
      problem(at(p, i), "must be a string");
      ok = false;
    }
    values.push_back(std::move(value));
  }
  if (ok)
    out = std::move(values);
  return ok;
}

} // namespace detail

} // namespace squad
