#include "runtime/mock/mock_config.hpp"

#include "runtime/config/yaml_reader.hpp"

#include <arpa/inet.h>

#include <set>
#include <utility>

namespace squad::mock {

namespace {

using detail::join;
using detail::yaml_reader;

// "127.0.0.1:8080" -> host and port. Only IPv4 literals: the mock is for loopback tests and benchmarks,
// and a literal never needs a resolver.
std::optional<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos)
    return std::nullopt;
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  in_addr addr{};
  if (inet_pton(AF_INET, host.c_str(), &addr) != 1)
    return std::nullopt;
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  long value = std::stol(port);
  if (value > 65535)
    return std::nullopt;
  return std::pair{host, static_cast<std::uint16_t>(value)};
}

void read_upstream(yaml_reader& r, const YAML::Node& node, const std::string& path, mock_upstream_config& u) {
  if (!r.is_map(node, path))
    return;
  r.check_keys(node, path, {"listen", "style", "limits", "latency", "reply", "context", "max_output", "api_key"});
  r.get(node, path, "listen", u.listen);
  std::string style;
  if (r.get(node, path, "style", style)) {
    if (auto s = parse_api_style(style))
      u.style = *s;
    else
      r.problem(join(path, "style"), "must be one of openai, anthropic, both (got \"" + style + "\")");
  }
  if (auto n = yaml_reader::find(node, "limits"); n && r.is_map(*n, join(path, "limits"))) {
    std::string p = join(path, "limits");
    r.check_keys(*n, p, {"requests", "per", "concurrency", "tokens"});
    r.get(*n, p, "requests", u.limits.requests);
    r.get(*n, p, "per", u.limits.per);
    r.get(*n, p, "concurrency", u.limits.concurrency);
    r.get(*n, p, "tokens", u.limits.tokens);
  }
  if (auto n = yaml_reader::find(node, "latency"); n && r.is_map(*n, join(path, "latency"))) {
    std::string p = join(path, "latency");
    r.check_keys(*n, p, {"fixed", "jitter", "per_token"});
    r.get(*n, p, "fixed", u.latency.fixed);
    r.get(*n, p, "jitter", u.latency.jitter);
    r.get(*n, p, "per_token", u.latency.per_token);
  }
  if (auto n = yaml_reader::find(node, "reply"); n && r.is_map(*n, join(path, "reply"))) {
    std::string p = join(path, "reply");
    r.check_keys(*n, p, {"tokens"});
    r.get(*n, p, "tokens", u.reply_tokens);
  }
  r.get(node, path, "context", u.context);
  r.get(node, path, "max_output", u.max_output);
  r.get(node, path, "api_key", u.api_key);
}

// A problem already reported at `path` or above it (a parse error) explains what validate() says there.
bool covered(const std::vector<config_problem>& earlier, const std::string& path) {
  for (const auto& e : earlier)
    if (path == e.path ||
        (path.size() > e.path.size() && path.compare(0, e.path.size(), e.path) == 0 && path[e.path.size()] == '.'))
      return true;
  return false;
}

} // namespace

std::optional<api_style> parse_api_style(std::string_view text) {
  if (text == "openai")
    return api_style::openai;
  if (text == "anthropic")
    return api_style::anthropic;
  if (text == "both")
    return api_style::both;
  return std::nullopt;
}

const char* to_string(api_style s) {
  switch (s) {
  case api_style::openai:
    return "openai";
  case api_style::anthropic:
    return "anthropic";
  case api_style::both:
    return "both";
  }
  return "both";
}

std::vector<config_problem> validate(const mock_config& cfg) {
  std::vector<config_problem> out;
  auto add = [&out](std::string path, std::string message) { out.push_back({std::move(path), std::move(message)}); };
  if (cfg.upstreams.empty())
    add("upstreams", "at least one upstream is required");
  std::set<std::string> names;
  std::set<std::uint16_t> ports;
  for (const auto& u : cfg.upstreams) {
    std::string path = join("upstreams", u.name);
    if (!detail::is_name(u.name))
      add(path, "invalid name (use letters, digits, '.', '_', '-')");
    if (!names.insert(u.name).second)
      add(path, "duplicate upstream name");
    if (auto hp = parse_listen(u.listen); !hp)
      add(path + ".listen", "must be IPv4:port, e.g. 127.0.0.1:0 (got \"" + u.listen + "\")");
    else if (hp->second != 0 && !ports.insert(hp->second).second)
      add(path + ".listen", "port " + std::to_string(hp->second) + " is used by another upstream");
    if (u.limits.requests <= 0)
      add(path + ".limits.requests", "must be > 0");
    if (u.limits.per.count() <= 0)
      add(path + ".limits.per", "must be > 0");
    if (u.limits.concurrency < 0)
      add(path + ".limits.concurrency", "must be >= 0 (0 = unlimited)");
    if (u.limits.tokens < 0)
      add(path + ".limits.tokens", "must be >= 0 (0 = unlimited)");
    if (u.max_output < 0)
      add(path + ".max_output", "must be >= 0 (0 = unlimited)");
    if (u.context < 0)
      add(path + ".context", "must be >= 0 (0 = unlimited)");
    if (u.reply_tokens <= 0)
      add(path + ".reply.tokens", "must be > 0");
  }
  return out;
}

mock_config_result load_mock_config_text(const std::string& yaml_text) {
  mock_config_result result;
  try {
    auto root = detail::parse_yaml(yaml_text, "yaml", result.problems);
    if (!root)
      return result;
    // ${VAR} expands, so an api_key can come from the environment as in the main config.
    yaml_reader r(result.problems, true);
    if (!root->IsMap() && !root->IsNull()) {
      r.problem("yaml", "the document must be a map of settings");
      return result;
    }
    mock_config cfg;
    r.check_keys(*root, "", {"upstreams"});
    if (auto n = yaml_reader::find(*root, "upstreams"); n && r.is_map(*n, "upstreams")) {
      for (auto& [name, value] : r.entries(*n, "upstreams")) {
        mock_upstream_config u;
        u.name = name;
        read_upstream(r, value, join("upstreams", name), u);
        cfg.upstreams.push_back(std::move(u));
      }
    }
    std::vector<config_problem> parse_problems = result.problems;
    for (auto& p : validate(cfg))
      if (!covered(parse_problems, p.path))
        result.problems.push_back(std::move(p));
    if (!result.problems.empty())
      return result;
    for (auto& u : cfg.upstreams) {
      auto hp = parse_listen(u.listen); // validated above
      u.host = hp->first;
      u.port = hp->second;
    }
    result.cfg = std::move(cfg);
  } catch (const std::exception& e) {
    // yaml-cpp can still throw on shapes we did not foresee; report it rather than crash.
    result.cfg.reset();
    result.problems.push_back({"yaml", std::string("unexpected error: ") + e.what()});
  }
  return result;
}

mock_config_result load_mock_config_file(const std::string& file) {
  std::string text;
  if (!detail::read_file(file, text)) {
    mock_config_result result;
    result.problems.push_back({file, "cannot read file"});
    return result;
  }
  auto result = load_mock_config_text(text);
  for (auto& p : result.problems)
    if (p.path == "yaml")
      p.path = file;
  return result;
}

} // namespace squad::mock
