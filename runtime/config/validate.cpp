// Every check of a config: the bounds of each field from its section's table, then the rules that cross
// fields, sections and files. Problems are collected, never thrown, so one pass reports them all.
#include "runtime/config/config_tables.hpp"
#include "runtime/config/persona_def.hpp"
#include "runtime/net/url.hpp"
#include "runtime/time/duration.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

namespace squad {

namespace detail {

void check_value(const bounds& b, std::int64_t v, const std::string& path, std::vector<config_problem>& out) {
  if (b.what == bounds::kind::range && (v < b.lo || v > b.hi))
    out.push_back({path, b.message});
}

void check_value(const bounds& b, millis v, const std::string& path, std::vector<config_problem>& out) {
  check_value(b, static_cast<std::int64_t>(v.count()), path, out);
}

void check_value(const bounds& b, const std::string& v, const std::string& path, std::vector<config_problem>& out) {
  if (b.what == bounds::kind::non_empty && v.empty())
    out.push_back({path, b.message});
  if (b.what == bounds::kind::one_of && std::find(b.choices.begin(), b.choices.end(), v) == b.choices.end())
    out.push_back({path, b.quote_value ? b.message + " (got \"" + v + "\")" : b.message});
}

void check_value(const bounds& b, double v, const std::string& path, std::vector<config_problem>& out) {
  if (b.what == bounds::kind::fraction && !(v > 0 && v <= 1)) // written so that NaN fails too
    out.push_back({path, b.message});
  if (b.what == bounds::kind::share && !(v >= 0 && v < 1))
    out.push_back({path, b.message});
  if (b.what == bounds::kind::non_negative && !(v >= 0 && v < 1e12))
    out.push_back({path, b.message});
}

} // namespace detail

namespace {

using detail::check_fields;
using detail::join;

struct problems {
  std::vector<config_problem> out;
  void add(std::string path, std::string message) { out.push_back({std::move(path), std::move(message)}); }
};

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

void check_server(const server_config& s, problems& p) {
  check_fields(detail::server_fields(), s, "server", p.out);
  if (!valid_listen(s.listen))
    p.add("server.listen", "must be host:port");
  if (s.auth == "keys" && s.keys.empty())
    p.add("server.keys", "auth: keys needs at least one key (make one with `squad key hash`)");
  // `squad serve --listen` checks its override through here too (a copy of the config with it set).
  if (s.auth == "none" && valid_listen(s.listen)) {
    auto host = s.listen.substr(0, s.listen.rfind(':'));
    if (host != "127.0.0.1" && host != "localhost" && host != "[::1]")
      p.add("server.listen",
            "auth: none only listens on loopback (127.0.0.1, [::1]); set auth: keys to listen on " + host);
  }
  if (s.ws_max_queued <= s.ws_lag_at)
    p.add("server.ws_max_queued", "must be greater than server.ws_lag_at (" + std::to_string(s.ws_lag_at) + ")");
  for (const auto& k : s.keys) {
    std::string kp = "server.keys." + k.name;
    if (k.sha256.size() != 64 || k.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
      p.add(kp + ".sha256", "must be 64 lowercase hex digits (the output of `squad key hash`)");
    check_fields(detail::api_key_fields(), k, kp, p.out);
    if (!k.tier.empty() && std::none_of(s.tiers.begin(), s.tiers.end(), [&](auto& t) { return t.name == k.tier; })) {
      std::string names;
      for (auto& t : s.tiers)
        names += (names.empty() ? "" : ", ") + t.name;
      p.add(kp + ".tier", "no tier named " + k.tier + " (server.tiers has: " + (names.empty() ? "none" : names) + ")");
    }
  }
  for (const auto& t : s.tiers)
    check_fields(detail::key_tier_fields(), t, "server.tiers." + t.name, p.out);
}

void check_provider(const provider_config& pr, std::set<std::string>& names, problems& p) {
  std::string path = join("providers", pr.name);
  if (!detail::is_name(pr.name))
    p.add(path, "invalid name (use letters, digits, '.', '_', '-')");
  if (!names.insert(pr.name).second)
    p.add(path, "duplicate provider name");
  bool remote = pr.kind == "openai" || pr.kind == "anthropic";
  if (pr.kind.empty())
    p.add(path + ".kind", "required: one of openai, anthropic, sim");
  else if (!remote && pr.kind != "sim")
    p.add(path + ".kind", "must be one of openai, anthropic, sim (got \"" + pr.kind + "\")");
  if (remote && pr.base_url.empty()) {
    p.add(path + ".base_url", "required for kind " + pr.kind);
  } else if (!pr.base_url.empty() && pr.base_url.rfind("http://", 0) != 0 && pr.base_url.rfind("https://", 0) != 0) {
    p.add(path + ".base_url", "must start with http:// or https://");
  } else if (remote) {
    std::string why; // the HTTP client reads the URL with the same parser
    if (!net::parse_url(pr.base_url, why))
      p.add(path + ".base_url", why);
  }
  // Ollama and vLLM take no key, so only Anthropic requires one.
  if (pr.kind == "anthropic" && pr.api_key.empty())
    p.add(path + ".api_key", "required for kind anthropic");
  if (pr.ca_file && pr.ca_file->empty())
    p.add(path + ".ca_file", "must not be empty");
  else if (pr.ca_file && remote && !std::ifstream(*pr.ca_file)) // a sim provider never opens it
    p.add(path + ".ca_file", "cannot read " + *pr.ca_file);

  check_fields(detail::provider_fields(), pr, path, p.out);
  check_fields(detail::provider_http_fields(), pr.http, path, p.out);
  check_fields(detail::limits_fields(), pr.limits, path + ".limits", p.out);
  check_fields(detail::throttle_fields(), pr.limits.throttle, path + ".limits.throttle", p.out);
  check_fields(detail::sim_fields(), pr.sim, path + ".sim", p.out);
  check_fields(detail::timeouts_fields(), pr.http, path + ".timeouts", p.out);
  check_fields(detail::breaker_fields(), pr.breaker, path + ".breaker", p.out);
  check_fields(detail::retry_fields(), pr.retry, path + ".retry", p.out);

  if (pr.models.empty())
    p.add(path + ".models", "at least one model is required");
  std::set<std::string> model_names;
  for (const auto& m : pr.models) {
    std::string mpath = path + ".models." + m.name;
    if (!detail::is_name(m.name))
      p.add(mpath, "invalid name (use letters, digits, '.', '_', '-')");
    if (!model_names.insert(m.name).second)
      p.add(mpath, "duplicate model name");
    check_fields(detail::model_fields(), m, mpath, p.out);
    if (m.limits) {
      check_fields(detail::limits_fields(), *m.limits, mpath + ".limits", p.out);
      check_fields(detail::throttle_fields(), m.limits->throttle, mpath + ".limits.throttle", p.out);
    }
  }
}

// Syntax here; whether each entry names a configured model is resolve_chain's, run with the persona files.
void check_persona_override(const std::string& name, const persona_override& o, problems& p) {
  std::string path = join("personas", name);
  if (!detail::only_chars(name, "-", false))
    p.add(path, "invalid persona id (use a-z, 0-9, '-')");
  check_fields(detail::persona_fields(), o, path, p.out);
  if (o.chain && o.chain->empty())
    p.add(path + ".chain", "must not be empty");
  if (o.chain)
    for (std::size_t i = 0; i < o.chain->size(); ++i)
      if (!detail::is_chain_entry((*o.chain)[i]))
        p.add(detail::at(path + ".chain", i), detail::bad_chain_entry((*o.chain)[i]));
}

void check_alias(const config& cfg, const std::string& name, const std::string& target, problems& p) {
  auto slash = target.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < target.size();
  if (ok && target.substr(0, slash) != "persona") {
    auto* pr = cfg.find_provider(target.substr(0, slash));
    ok = pr && std::any_of(pr->models.begin(), pr->models.end(),
                           [&](const model_config& m) { return m.name == target.substr(slash + 1); });
  }
  if (!ok)
    p.add("aliases." + name, "must name persona/<id> or a configured <provider>/<model> (got \"" + target + "\")");
}

} // namespace

std::vector<config_problem> validate(const config& cfg) {
  problems p;
  check_fields(detail::root_fields(), cfg, "", p.out);
  check_server(cfg.server, p);
  if (cfg.providers.empty())
    p.add("providers", "at least one provider is required");
  std::set<std::string> provider_names;
  for (const auto& pr : cfg.providers)
    check_provider(pr, provider_names, p);
  for (const auto& [name, o] : cfg.personas)
    check_persona_override(name, o, p);
  for (const auto& [name, target] : cfg.aliases)
    check_alias(cfg, name, target, p);
  check_fields(detail::supervision_fields(), cfg.supervision, "supervision", p.out);
  check_fields(detail::runtime_fields(), cfg.runtime, "runtime", p.out);
  check_fields(detail::tolerable_wait_fields(), cfg.runtime.tolerable_wait, "runtime.tolerable_wait", p.out);
  check_fields(detail::storage_fields(), cfg.storage, "storage", p.out);
  check_fields(detail::audit_fields(), cfg.audit, "audit", p.out);
  auto& u = cfg.storage.url;
  if (!u.empty() && u != "none" && u.rfind("sqlite:", 0) != 0 && u.rfind("postgresql://", 0) != 0 &&
      u.rfind("postgres://", 0) != 0)
    p.add("storage.url", "must be sqlite:PATH, postgresql://user@host:port/db or none");
  return std::move(p.out);
}

std::vector<config_problem> validate(const config& cfg, const std::string& dir,
                                     const std::vector<persona_def>& personas, const std::set<std::string>& files,
                                     bool check_chains) {
  namespace fs = std::filesystem;
  problems p;
  for (const auto& [name, o] : cfg.personas)
    if (!files.count(name))
      p.add("personas." + name, "no persona file " + (fs::path(dir) / (name + ".yaml")).string());
  if (check_chains) {
    for (const auto& persona : personas) {
      // Point at whoever wrote the chain: the config's override or the persona file.
      auto o = cfg.personas.find(persona.id);
      bool overridden = o != cfg.personas.end() && o->second.chain;
      std::string path = overridden ? "personas." + persona.id + ".chain"
                                    : (fs::path(dir) / (persona.id + ".yaml")).string() + ": chain";
      auto before = p.out.size();
      auto targets = resolve_chain(persona.chain, cfg, path, p.out);
      if (targets.empty() && p.out.size() == before)
        p.add(path, "resolves to no model (no provider offers a model for it)");
    }
  }
  for (const auto& [name, target] : cfg.aliases) {
    if (target.rfind("persona/", 0) != 0)
      continue; // provider models are validate(cfg)'s
    auto id = target.substr(8);
    bool loaded = std::any_of(personas.begin(), personas.end(), [&](const persona_def& d) { return d.id == id; });
    if (!loaded && !files.count(id))
      p.add("aliases." + name, "names no persona or provider model (got \"" + target + "\")");
  }
  return std::move(p.out);
}

bool chains_in_doubt(const config& cfg, const std::vector<config_problem>& problems) {
  std::set<std::string> paths{"", "providers"}; // "": the document's keys were unreadable
  for (const auto& p : cfg.providers) {
    std::string path = join("providers", p.name);
    paths.insert({path, path + ".models"});
    for (const auto& m : p.models)
      paths.insert({path + ".models." + m.name, path + ".models." + m.name + ".tier"});
  }
  return std::any_of(problems.begin(), problems.end(),
                     [&](const config_problem& p) { return paths.count(p.path) > 0; });
}

} // namespace squad
