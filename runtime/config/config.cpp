// Reading squad.yaml through the section tables (config_tables.cpp), then validate() (validate.cpp).
#include "runtime/config/config.hpp"

#include "runtime/config/config_tables.hpp"

namespace squad {

// ---------------------------------------------------------------------------------------------------
// Small public helpers

std::optional<priority_class> parse_priority(std::string_view text) {
  if (text == "P0")
    return priority_class::p0;
  if (text == "P1")
    return priority_class::p1;
  if (text == "P2")
    return priority_class::p2;
  if (text == "P3")
    return priority_class::p3;
  return std::nullopt;
}

const char* to_string(priority_class p) {
  switch (p) {
  case priority_class::p0:
    return "P0";
  case priority_class::p1:
    return "P1";
  case priority_class::p2:
    return "P2";
  case priority_class::p3:
    return "P3";
  }
  return "P?";
}

std::string to_string(const config_problem& p) {
  return p.path.empty() ? p.message : p.path + ": " + p.message;
}

const provider_config* config::find_provider(std::string_view name) const {
  for (const auto& p : providers)
    if (p.name == name)
      return &p;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------------
// Reading: every section is a map checked against its table's keys, then read row by row. Nothing stops at
// a problem: a bad value keeps its default and the reader records it, so validate() still sees the rest.

namespace {

using detail::join;
using detail::keys_of;
using detail::read_fields;
using detail::yaml_reader;

// A map section with one table and no sub-sections.
template <class S>
void read_section(yaml_reader& r, const YAML::Node& node, const std::string& path, const detail::table<S>& t, S& out) {
  if (!r.is_map(node, path))
    return;
  r.check_keys(node, path, keys_of({}, t));
  read_fields(r, node, path, t, out);
}

// Calls `read(node, path)` for `key` of `map` if present.
template <class F> void with_sub(const YAML::Node& map, const std::string& path, std::string_view key, F read) {
  if (auto n = yaml_reader::find(map, key)) {
    std::string sub = join(path, key);
    read(*n, sub);
  }
}

// `limits` (a provider's, or a model's over a copy of its provider's) with its `throttle`.
void read_limits(yaml_reader& r, const YAML::Node& n, const std::string& sp, limits_config& out) {
  if (!r.is_map(n, sp))
    return;
  r.check_keys(n, sp, keys_of(detail::limits_sections(), detail::limits_fields()));
  read_fields(r, n, sp, detail::limits_fields(), out);
  with_sub(n, sp, "throttle",
           [&](auto& tn, auto& tp) { read_section(r, tn, tp, detail::throttle_fields(), out.throttle); });
}

provider_config read_provider(yaml_reader& r, const std::string& name, const YAML::Node& node,
                              const std::string& path) {
  provider_config p;
  p.name = name;
  if (!r.is_map(node, path))
    return p;
  r.check_keys(node, path,
               keys_of(detail::provider_sections(), detail::provider_fields(), detail::provider_http_fields()));
  read_fields(r, node, path, detail::provider_fields(), p);
  read_fields(r, node, path, detail::provider_http_fields(), p.http);
  with_sub(node, path, "limits", [&](auto& n, auto& sp) { read_limits(r, n, sp, p.limits); });
  with_sub(node, path, "timeouts",
           [&](auto& n, auto& sp) { read_section(r, n, sp, detail::timeouts_fields(), p.http); });
  with_sub(node, path, "breaker",
           [&](auto& n, auto& sp) { read_section(r, n, sp, detail::breaker_fields(), p.breaker); });
  with_sub(node, path, "retry", [&](auto& n, auto& sp) { read_section(r, n, sp, detail::retry_fields(), p.retry); });
  with_sub(node, path, "sim", [&](auto& n, auto& sp) { read_section(r, n, sp, detail::sim_fields(), p.sim); });
  with_sub(node, path, "models", [&](auto& n, auto& sp) {
    if (!r.is_map(n, sp))
      return;
    for (auto& [model, value] : r.entries(n, sp)) {
      model_config m;
      m.name = model;
      auto mp = join(sp, model);
      if (r.is_map(value, mp)) {
        r.check_keys(value, mp, keys_of(detail::model_sections(), detail::model_fields()));
        read_fields(r, value, mp, detail::model_fields(), m);
        with_sub(value, mp, "limits", [&](auto& ln, auto& lp) { read_limits(r, ln, lp, m.limits.emplace(p.limits)); });
      }
      p.models.push_back(std::move(m));
    }
  });
  return p;
}

void read_server(yaml_reader& r, const YAML::Node& node, server_config& out) {
  const std::string path = "server";
  if (!r.is_map(node, path))
    return;
  r.check_keys(node, path, keys_of(detail::server_sections(), detail::server_fields()));
  read_fields(r, node, path, detail::server_fields(), out);
  with_sub(node, path, "keys", [&](auto& n, auto& sp) {
    if (!r.is_map(n, sp))
      return;
    for (auto& [name, value] : r.entries(n, sp)) {
      api_key_config k;
      k.name = name;
      read_section(r, value, join(sp, name), detail::api_key_fields(), k);
      out.keys.push_back(std::move(k));
    }
  });
  with_sub(node, path, "tiers", [&](auto& n, auto& sp) {
    if (!r.is_map(n, sp))
      return;
    for (auto& [name, value] : r.entries(n, sp)) {
      key_tier_config t;
      t.name = name;
      read_section(r, value, join(sp, name), detail::key_tier_fields(), t);
      out.tiers.push_back(std::move(t));
    }
  });
  // A key takes its tier's limits where it sets none (an unknown tier is validate()'s problem).
  for (auto& k : out.keys)
    for (auto& t : out.tiers)
      if (t.name == k.tier) {
        auto inherit = [](auto& mine, auto theirs) {
          if (mine == 0)
            mine = theirs;
        };
        inherit(k.rpm, t.rpm), inherit(k.concurrency, t.concurrency), inherit(k.daily_calls, t.daily_calls);
        inherit(k.daily_usd, t.daily_usd), inherit(k.monthly_usd, t.monthly_usd);
      }
}

// False when the document is not a map at all, so there is nothing worth validating.
bool read_config(yaml_reader& r, const YAML::Node& root, config& cfg) {
  if (!root.IsMap() && !root.IsNull()) {
    r.problem("yaml", "the document must be a map of settings");
    return false;
  }
  r.check_keys(root, "", keys_of(detail::root_sections(), detail::root_fields()));
  read_fields(r, root, "", detail::root_fields(), cfg);
  with_sub(root, "", "server", [&](auto& n, auto&) { read_server(r, n, cfg.server); });
  with_sub(root, "", "providers", [&](auto& n, auto& sp) {
    if (r.is_map(n, sp))
      for (auto& [name, value] : r.entries(n, sp))
        cfg.providers.push_back(read_provider(r, name, value, join(sp, name)));
  });
  with_sub(root, "", "personas", [&](auto& n, auto& sp) {
    if (r.is_map(n, sp))
      for (auto& [name, value] : r.entries(n, sp))
        read_section(r, value, join(sp, name), detail::persona_fields(), cfg.personas[name]);
  });
  with_sub(root, "", "aliases", [&](auto& n, auto& sp) {
    if (!r.is_map(n, sp))
      return;
    for (auto& [name, value] : r.entries(n, sp)) {
      std::string target;
      if (r.text(value, join(sp, name), target))
        cfg.aliases[name] = target;
    }
  });
  with_sub(root, "", "supervision",
           [&](auto& n, auto& sp) { read_section(r, n, sp, detail::supervision_fields(), cfg.supervision); });
  with_sub(root, "", "storage",
           [&](auto& n, auto& sp) { read_section(r, n, sp, detail::storage_fields(), cfg.storage); });
  with_sub(root, "", "audit", [&](auto& n, auto& sp) { read_section(r, n, sp, detail::audit_fields(), cfg.audit); });
  with_sub(root, "", "runtime", [&](auto& n, auto& sp) {
    if (!r.is_map(n, sp))
      return;
    r.check_keys(n, sp, keys_of(detail::runtime_sections(), detail::runtime_fields()));
    read_fields(r, n, sp, detail::runtime_fields(), cfg.runtime);
    with_sub(n, sp, "tolerable_wait", [&](auto& wn, auto& wp) {
      read_section(r, wn, wp, detail::tolerable_wait_fields(), cfg.runtime.tolerable_wait);
    });
  });
  return true;
}

} // namespace

namespace detail {

bool covered(const std::vector<config_problem>& earlier, const std::string& path) {
  for (const auto& e : earlier) {
    if (path == e.path)
      return true;
    if (path.size() > e.path.size() && path.compare(0, e.path.size(), e.path) == 0 &&
        (path[e.path.size()] == '.' || path[e.path.size()] == '['))
      return true;
  }
  return false;
}

} // namespace detail

// ---------------------------------------------------------------------------------------------------
// Loading

config_load_result load_config_text(const std::string& yaml_text) {
  config_load_result result;
  try {
    auto root = detail::parse_yaml(yaml_text, "yaml", result.problems);
    if (!root)
      return result;
    auto cfg = std::make_shared<config>();
    yaml_reader reader(result.problems, true);
    if (!read_config(reader, *root, *cfg))
      return result;
    // A field that failed to parse keeps its default or stays empty; don't report it twice.
    std::vector<config_problem> parse_problems = result.problems;
    for (auto& p : validate(*cfg))
      if (!detail::covered(parse_problems, p.path))
        result.problems.push_back(std::move(p));
    result.as_read = cfg;
    if (result.problems.empty())
      result.cfg = std::move(cfg);
  } catch (const std::exception& e) {
    // yaml-cpp can still throw on shapes we did not foresee; a config error must not crash startup.
    result.cfg.reset();
    result.as_read.reset();
    result.problems.push_back({"yaml", std::string("unexpected error: ") + e.what()});
  }
  return result;
}

config_load_result load_config_file(const std::string& file) {
  config_load_result result;
  std::string text;
  if (!detail::read_file(file, text)) {
    result.problems.push_back({file, "cannot read file"});
    return result;
  }
  result = load_config_text(text);
  for (auto& p : result.problems)
    if (p.path == "yaml")
      p.path = file;
  return result;
}

} // namespace squad
