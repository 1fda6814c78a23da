#include "runtime/config/config.hpp"

#include "runtime/config/yaml_reader.hpp"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

namespace squad {

// ---------------------------------------------------------------------------------------------------
// Shared helpers (declared in yaml_reader.hpp)

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
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z')
              || punct.find(c) != std::string_view::npos;
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

std::vector<std::pair<std::string, YAML::Node>> yaml_reader::entries(const YAML::Node& map,
                                                                    const std::string& path) {
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

bool yaml_reader::expand(const std::string& raw, const std::string& path, std::string& out,
                         bool env_required) {
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

bool yaml_reader::get(const YAML::Node& map, const std::string& path, std::string_view key,
                      std::int64_t& out) {
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

bool yaml_reader::get(const YAML::Node& map, const std::string& path, std::string_view key,
                      priority_class& out) {
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
// Reading

namespace {

using detail::join;
using detail::yaml_reader;

void read_limits(yaml_reader& r, const YAML::Node& node, const std::string& path, limits_config& out) {
  if (!r.is_map(node, path))
    return;
  r.check_keys(node, path, {"requests", "per", "burst", "concurrency", "min_interval", "tokens", "expected_latency"});
  r.get(node, path, "requests", out.requests);
  r.get(node, path, "per", out.per);
  r.get(node, path, "burst", out.burst);
  r.get(node, path, "concurrency", out.concurrency);
  r.get(node, path, "min_interval", out.min_interval);
  r.get(node, path, "tokens", out.tokens);
  r.get(node, path, "expected_latency", out.expected_latency);
}

void read_sim(yaml_reader& r, const YAML::Node& node, const std::string& path, sim_config& out) {
  if (!r.is_map(node, path))
    return;
  r.check_keys(node, path, {"latency", "jitter", "per_token", "max_tokens"});
  r.get(node, path, "latency", out.latency);
  r.get(node, path, "jitter", out.jitter);
  r.get(node, path, "per_token", out.per_token);
  r.get(node, path, "max_tokens", out.max_tokens);
}

void read_models(yaml_reader& r, const YAML::Node& node, const std::string& path,
                 std::vector<model_config>& out) {
  if (!r.is_map(node, path))
    return;
  for (auto& [name, value] : r.entries(node, path)) {
    model_config m;
    m.name = name;
    std::string p = join(path, name);
    if (r.is_map(value, p)) {
      r.check_keys(value, p, {"id", "tier"});
      r.get(value, p, "id", m.id);
      r.get(value, p, "tier", m.tier);
    }
    out.push_back(std::move(m));
  }
}

void read_http(yaml_reader& r, const YAML::Node& node, const std::string& path, http_client_config& out) {
  if (auto n = yaml_reader::find(node, "timeouts")) {
    std::string tpath = join(path, "timeouts");
    if (r.is_map(*n, tpath)) {
      r.check_keys(*n, tpath, {"connect", "first_byte", "idle", "total"});
      r.get(*n, tpath, "connect", out.connect_timeout);
      r.get(*n, tpath, "first_byte", out.first_byte_timeout);
      r.get(*n, tpath, "idle", out.idle_timeout);
      r.get(*n, tpath, "total", out.total_timeout);
    }
  }
  r.get(node, path, "max_connections", out.max_connections);
  r.get(node, path, "stream", out.stream);
}

void read_breaker(yaml_reader& r, const YAML::Node& node, const std::string& path, breaker_config& out) {
  if (!r.is_map(node, path))
    return;
  r.check_keys(node, path, {"failures", "ratio", "min_calls", "window", "cooldown", "probes", "count_rate_limits"});
  r.get(node, path, "failures", out.failures);
  std::string ratio;
  if (r.get(node, path, "ratio", ratio)) {
    try {
      std::size_t used = 0;
      out.ratio = std::stod(ratio, &used);
      if (used != ratio.size())
        throw std::invalid_argument(ratio);
    } catch (const std::exception&) {
      r.problem(join(path, "ratio"), "must be a number between 0 and 1");
    }
  }
  r.get(node, path, "min_calls", out.min_calls);
  r.get(node, path, "window", out.window);
  r.get(node, path, "cooldown", out.cooldown);
  r.get(node, path, "probes", out.probes);
  r.get(node, path, "count_rate_limits", out.count_rate_limits);
}

provider_config read_provider(yaml_reader& r, const std::string& name, const YAML::Node& node,
                              const std::string& path) {
  provider_config p;
  p.name = name;
  if (!r.is_map(node, path))
    return p;
  r.check_keys(node, path,
               {"kind", "base_url", "api_key", "ca_file", "limits", "timeouts", "max_connections", "stream", "breaker",
                "models", "sim"});
  r.get(node, path, "kind", p.kind);
  r.get(node, path, "base_url", p.base_url);
  // A sim provider never sends the key, so an unset variable there is not worth failing over.
  if (auto key = yaml_reader::find(node, "api_key"))
    r.text(*key, join(path, "api_key"), p.api_key, p.kind != "sim");
  std::string ca_file;
  if (r.get(node, path, "ca_file", ca_file))
    p.ca_file = ca_file;
  if (auto n = yaml_reader::find(node, "limits"))
    read_limits(r, *n, join(path, "limits"), p.limits);
  read_http(r, node, path, p.http);
  if (auto n = yaml_reader::find(node, "breaker"))
    read_breaker(r, *n, join(path, "breaker"), p.breaker);
  if (auto n = yaml_reader::find(node, "models"))
    read_models(r, *n, join(path, "models"), p.models);
  if (auto n = yaml_reader::find(node, "sim"))
    read_sim(r, *n, join(path, "sim"), p.sim);
  return p;
}

// False when the document is not a map at all, so there is nothing worth validating.
bool read_config(yaml_reader& r, const YAML::Node& root, config& cfg) {
  if (!root.IsMap() && !root.IsNull()) {
    r.problem("yaml", "the document must be a map of settings");
    return false;
  }
  r.check_keys(root, "", {"server", "personas_dir", "workflows_dir", "default_workflow", "providers",
                          "personas", "supervision", "runtime", "aliases"});
  if (auto n = yaml_reader::find(root, "server"); n && r.is_map(*n, "server")) {
    r.check_keys(*n, "server", {"listen", "auth", "keys", "body_limit", "header_limit", "read_timeout", "drain_timeout",
                                "stream_max_queued", "ws_lag_at", "ws_max_queued"});
    r.get(*n, "server", "stream_max_queued", cfg.server.stream_max_queued);
    r.get(*n, "server", "ws_lag_at", cfg.server.ws_lag_at);
    r.get(*n, "server", "ws_max_queued", cfg.server.ws_max_queued);
    r.get(*n, "server", "listen", cfg.server.listen);
    r.get(*n, "server", "auth", cfg.server.auth);
    r.get(*n, "server", "body_limit", cfg.server.body_limit);
    r.get(*n, "server", "header_limit", cfg.server.header_limit);
    r.get(*n, "server", "read_timeout", cfg.server.read_timeout);
    r.get(*n, "server", "drain_timeout", cfg.server.drain_timeout);
    if (auto keys = yaml_reader::find(*n, "keys"); keys && r.is_map(*keys, "server.keys"))
      for (auto& [name, value] : r.entries(*keys, "server.keys")) {
        std::string p = join("server.keys", name);
        api_key_config k;
        k.name = name;
        if (r.is_map(value, p)) {
          r.check_keys(value, p, {"sha256", "rpm", "concurrency", "daily_calls", "models", "admin"});
          r.get(value, p, "sha256", k.sha256);
          r.get(value, p, "rpm", k.rpm);
          r.get(value, p, "concurrency", k.concurrency);
          r.get(value, p, "daily_calls", k.daily_calls);
          r.get(value, p, "models", k.models);
          r.get(value, p, "admin", k.admin);
        }
        cfg.server.keys.push_back(std::move(k));
      }
  }
  if (auto n = yaml_reader::find(root, "aliases"); n && r.is_map(*n, "aliases"))
    for (auto& [name, value] : r.entries(*n, "aliases")) {
      std::string target;
      if (r.text(value, join("aliases", name), target))
        cfg.aliases[name] = target;
    }
  r.get(root, "", "personas_dir", cfg.personas_dir);
  r.get(root, "", "workflows_dir", cfg.workflows_dir);
  r.get(root, "", "default_workflow", cfg.default_workflow);
  if (auto n = yaml_reader::find(root, "providers"); n && r.is_map(*n, "providers"))
    for (auto& [name, value] : r.entries(*n, "providers"))
      cfg.providers.push_back(read_provider(r, name, value, join("providers", name)));
  if (auto n = yaml_reader::find(root, "personas"); n && r.is_map(*n, "personas")) {
    for (auto& [name, value] : r.entries(*n, "personas")) {
      std::string p = join("personas", name);
      persona_override o;
      if (r.is_map(value, p)) {
        r.check_keys(value, p, {"priority", "chain"});
        priority_class prio{};
        if (r.get(value, p, "priority", prio))
          o.priority = prio;
        std::vector<std::string> chain;
        if (r.get(value, p, "chain", chain))
          o.chain = std::move(chain);
      }
      cfg.personas[name] = std::move(o);
    }
  }
  if (auto n = yaml_reader::find(root, "supervision"); n && r.is_map(*n, "supervision")) {
    r.check_keys(*n, "supervision", {"max_restarts", "period"});
    r.get(*n, "supervision", "max_restarts", cfg.supervision.max_restarts);
    r.get(*n, "supervision", "period", cfg.supervision.period);
  }
  if (auto n = yaml_reader::find(root, "runtime"); n && r.is_map(*n, "runtime")) {
    r.check_keys(*n, "runtime", {"scheduler_threads", "io_threads", "step_timeout", "queue_wait", "route_slack", "cache",
                                 "cache_entries", "cache_ttl", "request_calls", "spin_polls",
                                 "shared_calls", "scheduler", "io_spin"});
    r.get(*n, "runtime", "io_spin", cfg.runtime.io_spin);
    r.get(*n, "runtime", "scheduler", cfg.runtime.scheduler);
    r.get(*n, "runtime", "shared_calls", cfg.runtime.shared_calls);
    r.get(*n, "runtime", "spin_polls", cfg.runtime.spin_polls);
    r.get(*n, "runtime", "cache", cfg.runtime.cache);
    r.get(*n, "runtime", "cache_entries", cfg.runtime.cache_entries);
    r.get(*n, "runtime", "cache_ttl", cfg.runtime.cache_ttl);
    r.get(*n, "runtime", "request_calls", cfg.runtime.request_calls);
    r.get(*n, "runtime", "queue_wait", cfg.runtime.queue_wait);
    r.get(*n, "runtime", "route_slack", cfg.runtime.route_slack);
    r.get(*n, "runtime", "scheduler_threads", cfg.runtime.scheduler_threads);
    r.get(*n, "runtime", "io_threads", cfg.runtime.io_threads);
    r.get(*n, "runtime", "step_timeout", cfg.runtime.step_timeout);
  }
  return true;
}

bool valid_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (!bracketed && host.find_first_of(":[] ") != std::string::npos)
    return false;
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return false;
  return std::stol(port) <= 65535; // port 0 is allowed: tests listen on an ephemeral port
}

// True if a problem already reported at `path` or above it explains whatever validate() says there.
bool covered(const std::vector<config_problem>& earlier, const std::string& path) {
  for (const auto& e : earlier) {
    if (path == e.path)
      return true;
    if (path.size() > e.path.size() && path.compare(0, e.path.size(), e.path) == 0
        && (path[e.path.size()] == '.' || path[e.path.size()] == '['))
      return true;
  }
  return false;
}

} // namespace

// ---------------------------------------------------------------------------------------------------
// Validation

std::vector<config_problem> validate(const config& cfg) {
  std::vector<config_problem> out;
  auto add = [&out](std::string path, std::string message) {
    out.push_back({std::move(path), std::move(message)});
  };
  auto positive = [&add](const std::string& path, std::int64_t v) {
    if (v <= 0)
      add(path, "must be > 0");
  };
  auto positive_ms = [&add](const std::string& path, millis v) {
    if (v.count() <= 0)
      add(path, "must be > 0");
  };

  if (!valid_listen(cfg.server.listen))
    add("server.listen", "must be host:port");
  if (cfg.personas_dir.empty())
    add("personas_dir", "must not be empty");
  if (cfg.workflows_dir.empty())
    add("workflows_dir", "must not be empty");
  if (cfg.default_workflow.empty())
    add("default_workflow", "must not be empty");

  if (cfg.providers.empty())
    add("providers", "at least one provider is required");
  std::set<std::string> provider_names;
  for (const auto& p : cfg.providers) {
    std::string path = join("providers", p.name);
    if (!detail::is_name(p.name))
      add(path, "invalid name (use letters, digits, '.', '_', '-')");
    if (!provider_names.insert(p.name).second)
      add(path, "duplicate provider name");
    bool remote = p.kind == "openai" || p.kind == "anthropic";
    if (p.kind.empty())
      add(path + ".kind", "required: one of openai, anthropic, sim");
    else if (!remote && p.kind != "sim")
      add(path + ".kind", "must be one of openai, anthropic, sim (got \"" + p.kind + "\")");
    if (remote && p.base_url.empty())
      add(path + ".base_url", "required for kind " + p.kind);
    else if (!p.base_url.empty() && p.base_url.rfind("http://", 0) != 0 && p.base_url.rfind("https://", 0) != 0)
      add(path + ".base_url", "must start with http:// or https://");
    // Ollama and vLLM take no key, so only Anthropic requires one.
    if (p.kind == "anthropic" && p.api_key.empty())
      add(path + ".api_key", "required for kind anthropic");
    if (p.ca_file && p.ca_file->empty())
      add(path + ".ca_file", "must not be empty");

    const auto& l = p.limits;
    positive(path + ".limits.requests", l.requests);
    positive_ms(path + ".limits.per", l.per);
    if (l.burst < 1)
      add(path + ".limits.burst", "must be >= 1");
    if (l.concurrency < 1)
      add(path + ".limits.concurrency", "must be >= 1");
    if (l.tokens < 0)
      add(path + ".limits.tokens", "must be >= 0");
    positive(path + ".sim.max_tokens", p.sim.max_tokens);
    positive_ms(path + ".timeouts.connect", p.http.connect_timeout);
    positive_ms(path + ".timeouts.first_byte", p.http.first_byte_timeout);
    positive_ms(path + ".timeouts.idle", p.http.idle_timeout);
    positive_ms(path + ".timeouts.total", p.http.total_timeout);
    if (p.breaker.failures < 1)
      add(path + ".breaker.failures", "must be >= 1");
    if (!(p.breaker.ratio > 0 && p.breaker.ratio <= 1))
      add(path + ".breaker.ratio", "must be in (0, 1]");
    if (p.breaker.min_calls < 1)
      add(path + ".breaker.min_calls", "must be >= 1");
    positive_ms(path + ".breaker.window", p.breaker.window);
    positive_ms(path + ".breaker.cooldown", p.breaker.cooldown);
    if (p.breaker.probes < 1)
      add(path + ".breaker.probes", "must be >= 1");
    if (p.http.max_connections < 0)
      add(path + ".max_connections", "must be >= 0 (0: as many as limits.concurrency)");

    if (p.models.empty())
      add(path + ".models", "at least one model is required");
    std::set<std::string> model_names;
    for (const auto& m : p.models) {
      std::string mpath = path + ".models." + m.name;
      if (!detail::is_name(m.name))
        add(mpath, "invalid name (use letters, digits, '.', '_', '-')");
      if (!model_names.insert(m.name).second)
        add(mpath, "duplicate model name");
      if (m.id.empty())
        add(mpath + ".id", "required");
      if (m.tier != "worker" && m.tier != "boss")
        add(mpath + ".tier", "must be worker or boss");
    }
  }

  for (const auto& [name, o] : cfg.personas) {
    std::string path = join("personas", name);
    if (!detail::only_chars(name, "-", false))
      add(path, "invalid persona id (use a-z, 0-9, '-')");
    if (o.chain && o.chain->empty())
      add(path + ".chain", "must not be empty");
    if (o.chain)
      for (std::size_t i = 0; i < o.chain->size(); ++i)
        if (!detail::is_chain_entry((*o.chain)[i]))
          add(detail::at(path + ".chain", i), detail::bad_chain_entry((*o.chain)[i]));
  }

  if (cfg.supervision.max_restarts < 0)
    add("supervision.max_restarts", "must be >= 0");
  positive_ms("supervision.period", cfg.supervision.period);
  if (cfg.runtime.io_threads < 1 || cfg.runtime.io_threads > 16)
    add("runtime.io_threads", "must be between 1 and 16");
  if (cfg.runtime.scheduler != "io" && cfg.runtime.scheduler != "caf")
    add("runtime.scheduler", "must be io or caf (got \"" + cfg.runtime.scheduler + "\")");
  if (cfg.runtime.io_spin.count() < 0 || cfg.runtime.io_spin.count() > 100)
    add("runtime.io_spin", "must be between 0ms and 100ms");
  if (cfg.runtime.spin_polls < 0 || cfg.runtime.spin_polls > 1000000)
    add("runtime.spin_polls", "must be between 0 and 1000000");
  if (cfg.runtime.scheduler_threads < 1 || cfg.runtime.scheduler_threads > 64)
    add("runtime.scheduler_threads", "must be between 1 and 64");
  positive_ms("runtime.step_timeout", cfg.runtime.step_timeout);
  if (cfg.server.auth != "none" && cfg.server.auth != "keys")
    add("server.auth", "must be none or keys (got \"" + cfg.server.auth + "\")");
  if (cfg.server.auth == "keys" && cfg.server.keys.empty())
    add("server.keys", "auth: keys needs at least one key (make one with `squad key hash`)");
  if (cfg.server.auth == "none" && valid_listen(cfg.server.listen)) {
    auto host = cfg.server.listen.substr(0, cfg.server.listen.rfind(':'));
    if (host != "127.0.0.1" && host != "localhost" && host != "[::1]")
      add("server.listen", "auth: none only listens on loopback (127.0.0.1, [::1]); set auth: keys to listen on " + host);
  }
  for (const auto& k : cfg.server.keys) {
    std::string kp = "server.keys." + k.name;
    if (k.sha256.size() != 64 || k.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
      add(kp + ".sha256", "must be 64 lowercase hex digits (the output of `squad key hash`)");
    if (k.rpm < 0 || k.concurrency < 0 || k.daily_calls < 0)
      add(kp, "rpm, concurrency and daily_calls must be >= 0 (0: unlimited)");
  }
  if (cfg.server.body_limit < 1024)
    add("server.body_limit", "must be >= 1024 bytes");
  if (cfg.server.header_limit < 1024)
    add("server.header_limit", "must be >= 1024 bytes");
  if (cfg.server.stream_max_queued < 65536)
    add("server.stream_max_queued", "must be >= 65536 bytes");
  if (cfg.server.ws_lag_at < 1)
    add("server.ws_lag_at", "must be >= 1");
  if (cfg.server.ws_max_queued <= cfg.server.ws_lag_at)
    add("server.ws_max_queued", "must be greater than server.ws_lag_at (" + std::to_string(cfg.server.ws_lag_at) + ")");
  positive_ms("server.read_timeout", cfg.server.read_timeout);
  positive_ms("server.drain_timeout", cfg.server.drain_timeout);
  for (const auto& [name, target] : cfg.aliases) {
    auto slash = target.find('/');
    bool ok = slash != std::string::npos && slash > 0 && slash + 1 < target.size();
    if (ok && target.substr(0, slash) != "persona") {
      auto* p = cfg.find_provider(target.substr(0, slash));
      ok = p && std::any_of(p->models.begin(), p->models.end(),
                            [&](const model_config& m) { return m.name == target.substr(slash + 1); });
    }
    if (!ok)
      add("aliases." + name, "must name persona/<id> or a configured <provider>/<model> (got \"" + target + "\")");
  }
  positive_ms("runtime.cache_ttl", cfg.runtime.cache_ttl);
  if (cfg.runtime.cache_entries < 1)
    add("runtime.cache_entries", "must be >= 1 (turn the cache off with runtime.cache: false)");
  if (cfg.runtime.request_calls < 1)
    add("runtime.request_calls", "must be >= 1");
  if (cfg.runtime.shared_calls < 1)
    add("runtime.shared_calls", "must be >= 1");
  return out;
}

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
      if (!covered(parse_problems, p.path))
        result.problems.push_back(std::move(p));
    if (result.problems.empty())
      result.cfg = std::move(cfg);
  } catch (const std::exception& e) {
    // yaml-cpp can still throw on shapes we did not foresee; a config error must not crash startup.
    result.cfg.reset();
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
