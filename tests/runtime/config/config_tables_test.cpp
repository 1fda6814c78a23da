// The section tables: every key they declare is accepted where it belongs, an unknown one is refused with its
// path, each field's bounds hold exactly at its limits, and a file's problems in different sections all come
// out of one pass.
#include "runtime/config/config_tables.hpp"
#include "runtime/config/persona_def.hpp"

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <set>

using namespace squad;
using namespace squad::detail;

namespace {

std::vector<std::string> strings(const std::vector<config_problem>& problems) {
  std::vector<std::string> out;
  for (const auto& p : problems)
    out.push_back(to_string(p));
  return out;
}

// A YAML value that the reader takes for a member of this type (the bounds are not the point here).
std::string yaml_value(const std::string& v) {
  return "\"" + v + "\"";
}
std::string yaml_value(std::int64_t v) {
  return std::to_string(v);
}
std::string yaml_value(millis v) {
  return format_duration(v);
}
std::string yaml_value(bool v) {
  return v ? "true" : "false";
}
std::string yaml_value(double v) {
  return std::to_string(v);
}
std::string yaml_value(const std::vector<std::string>&) {
  return "[]";
}
std::string yaml_value(const std::optional<std::string>&) {
  return "\"x\"";
}
std::string yaml_value(const std::optional<priority_class>&) {
  return "P1";
}
std::string yaml_value(const std::optional<std::vector<std::string>>&) {
  return "[\"@worker\"]";
}

// Every key of a section with a value of its type (read from the default-constructed struct).
template <class S> std::vector<std::pair<std::string, std::string>> keys_with_values(const table<S>& t) {
  S defaults{};
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : t)
    std::visit([&](auto m) { out.emplace_back(std::string(f.key), yaml_value(defaults.*m)); }, f.at);
  return out;
}

void add(std::vector<std::pair<std::string, std::string>>& to, const std::vector<sub_section>& sections) {
  for (const auto& s : sections)
    to.emplace_back(std::string(s.key), "{}");
}

// `key: value` nested under `at` ({"providers", "p", "limits"}), in block style.
std::string nested(const std::vector<std::string>& at, const std::string& key, const std::string& value) {
  std::string yaml, indent;
  for (const auto& segment : at) {
    yaml += indent + segment + ":\n";
    indent += "  ";
  }
  return yaml + indent + key + ": " + value + "\n";
}

struct section_case {
  std::string path;            // where problems are reported
  std::vector<std::string> at; // the YAML nesting that leads there
  std::vector<std::pair<std::string, std::string>> keys;
};

std::vector<section_case> every_section() {
  std::vector<section_case> out;
  auto root = keys_with_values(root_fields());
  add(root, root_sections());
  out.push_back({"", {}, root});
  auto server = keys_with_values(server_fields());
  add(server, server_sections());
  out.push_back({"server", {"server"}, server});
  out.push_back({"server.keys.k", {"server", "keys", "k"}, keys_with_values(api_key_fields())});
  out.push_back({"server.tiers.t", {"server", "tiers", "t"}, keys_with_values(key_tier_fields())});
  auto provider = keys_with_values(provider_fields());
  for (auto& kv : keys_with_values(provider_http_fields()))
    provider.push_back(kv);
  add(provider, provider_sections());
  out.push_back({"providers.p", {"providers", "p"}, provider});
  auto limits = keys_with_values(limits_fields());
  add(limits, limits_sections());
  out.push_back({"providers.p.limits", {"providers", "p", "limits"}, limits});
  out.push_back(
      {"providers.p.limits.throttle", {"providers", "p", "limits", "throttle"}, keys_with_values(throttle_fields())});
  out.push_back({"providers.p.timeouts", {"providers", "p", "timeouts"}, keys_with_values(timeouts_fields())});
  out.push_back({"providers.p.breaker", {"providers", "p", "breaker"}, keys_with_values(breaker_fields())});
  out.push_back({"providers.p.retry", {"providers", "p", "retry"}, keys_with_values(retry_fields())});
  out.push_back({"providers.p.sim", {"providers", "p", "sim"}, keys_with_values(sim_fields())});
  auto model = keys_with_values(model_fields());
  add(model, model_sections());
  out.push_back({"providers.p.models.m", {"providers", "p", "models", "m"}, model});
  auto model_limits = keys_with_values(limits_fields());
  add(model_limits, limits_sections());
  out.push_back({"providers.p.models.m.limits", {"providers", "p", "models", "m", "limits"}, model_limits});
  out.push_back({"personas.pm", {"personas", "pm"}, keys_with_values(persona_fields())});
  out.push_back({"supervision", {"supervision"}, keys_with_values(supervision_fields())});
  auto runtime = keys_with_values(runtime_fields());
  add(runtime, runtime_sections());
  out.push_back({"runtime", {"runtime"}, runtime});
  out.push_back({"runtime.tolerable_wait", {"runtime", "tolerable_wait"}, keys_with_values(tolerable_wait_fields())});
  out.push_back({"storage", {"storage"}, keys_with_values(storage_fields())});
  out.push_back({"audit", {"audit"}, keys_with_values(audit_fields())});
  return out;
}

// A config that validates, for the bounds checks to break one field at a time.
config valid_config() {
  config cfg;
  provider_config p;
  p.name = "p";
  p.kind = "sim";
  p.models.push_back({"m", "id", "worker"});
  cfg.providers.push_back(p);
  api_key_config k;
  k.name = "k";
  k.sha256 = std::string(64, 'a');
  cfg.server.keys.push_back(k);
  cfg.personas["pm"] = {};
  return cfg;
}

// The problems validate() reports at exactly `path` once `set` has changed the config.
std::vector<std::string> at_path(const std::string& path, const std::function<void(config&)>& set) {
  config cfg = valid_config();
  set(cfg);
  std::vector<std::string> out;
  for (const auto& p : validate(cfg))
    if (p.path == path)
      out.push_back(p.message);
  return out;
}

// For each row of `t`: the value just past each bound is refused with the row's message, the bound itself passes.
template <class S> void check_bounds(const table<S>& t, const std::string& path, S& (*section)(config&)) {
  for (const auto& f : t) {
    const bounds& b = f.check;
    std::string fpath = join(path, f.key);
    INFO(fpath);
    auto expect = [&](auto value, bool ok, std::string message) {
      std::visit(
          [&](auto m) {
            using member_type = std::decay_t<decltype(std::declval<S&>().*m)>;
            if constexpr (std::is_constructible_v<member_type, decltype(value)>) {
              auto got = at_path(fpath, [&](config& c) { section(c).*m = member_type(value); });
              INFO(yaml_value(member_type(value)));
              CHECK(got == (ok ? std::vector<std::string>{} : std::vector<std::string>{message}));
            } else {
              FAIL("bounds of a kind this member type cannot hold");
            }
          },
          f.at);
    };
    bool is_ms = std::holds_alternative<millis S::*>(f.at);
    auto number = [&](std::int64_t v) {
      if (is_ms)
        expect(millis{v}, true, "");
      else
        expect(v, true, "");
    };
    auto refused = [&](std::int64_t v) {
      if (is_ms)
        expect(millis{v}, false, b.message);
      else
        expect(v, false, b.message);
    };
    switch (b.what) {
    case bounds::kind::any:
      break;
    case bounds::kind::range:
      number(b.lo == std::numeric_limits<std::int64_t>::min() ? 0 : b.lo);
      if (b.lo != std::numeric_limits<std::int64_t>::min())
        refused(b.lo - 1);
      if (b.hi != std::numeric_limits<std::int64_t>::max()) {
        number(b.hi);
        refused(b.hi + 1);
      }
      break;
    case bounds::kind::non_empty:
      expect(std::string("x"), true, "");
      expect(std::string(), false, b.message);
      break;
    case bounds::kind::one_of:
      for (auto c : b.choices)
        expect(std::string(c), true, "");
      expect(std::string("nope"), false, b.message + (b.quote_value ? " (got \"nope\")" : ""));
      break;
    case bounds::kind::fraction:
      expect(1.0, true, "");
      expect(0.001, true, "");
      expect(0.0, false, b.message);
      expect(1.5, false, b.message);
      break;
    case bounds::kind::non_negative:
      expect(0.0, true, "");
      expect(2.5, true, "");
      expect(-0.01, false, b.message);
      break;
    case bounds::kind::share:
      expect(0.0, true, "");
      expect(0.5, true, "");
      expect(1.0, false, b.message);
      expect(-0.1, false, b.message);
      break;
    }
  }
}

const std::string two_sims = R"(
providers:
  a:
    kind: sim
    models: {small: {id: a-s, tier: worker}}
  b:
    kind: sim
    models: {big: {id: b-b, tier: boss}}
)";

std::string persona_yaml(const std::string& id) {
  return "id: " + id + "\nname: " + id + "\nrole: r\ngoal: g\nsystem_prompt: p\n";
}

} // namespace

TEST_CASE("every key in the tables is accepted where it belongs", "[config][tables]") {
  // A key any row or sub-section declares never draws "unknown key", whatever else is wrong with the file.
  for (const auto& s : every_section())
    for (const auto& [key, value] : s.keys) {
      auto yaml = nested(s.at, key, value);
      INFO(yaml);
      for (const auto& p : load_config_text(yaml).problems)
        CHECK(p.message != "unknown key");
    }
}

TEST_CASE("an unknown key is refused with its path in every section", "[config][tables]") {
  // The same misspelling, one section at a time: each is a problem at <section>.<key>.
  for (const auto& s : every_section()) {
    auto yaml = nested(s.at, "no_such_key", "1");
    INFO(yaml);
    auto got = strings(load_config_text(yaml).problems);
    CHECK(std::count(got.begin(), got.end(), join(s.path, "no_such_key") + ": unknown key") == 1);
  }
}

TEST_CASE("no section declares a key twice", "[config][tables]") {
  // Two rows with one YAML name would read one value into two places.
  for (const auto& s : every_section()) {
    std::set<std::string> seen;
    for (const auto& [key, value] : s.keys) {
      INFO(s.path << ": " << key);
      CHECK(seen.insert(key).second);
    }
  }
}

TEST_CASE("each field's bounds hold exactly at its limits", "[config][tables]") {
  // Per row: the bound itself is accepted, one past it is refused at the field's path with the row's message.
  REQUIRE(validate(valid_config()).empty());
  check_bounds<config>(root_fields(), "", [](config& c) -> config& { return c; });
  check_bounds<server_config>(server_fields(), "server", [](config& c) -> server_config& { return c.server; });
  check_bounds<api_key_config>(api_key_fields(), "server.keys.k",
                               [](config& c) -> api_key_config& { return c.server.keys[0]; });
  check_bounds<provider_config>(provider_fields(), "providers.p",
                                [](config& c) -> provider_config& { return c.providers[0]; });
  check_bounds<http_client_config>(provider_http_fields(), "providers.p",
                                   [](config& c) -> http_client_config& { return c.providers[0].http; });
  check_bounds<limits_config>(limits_fields(), "providers.p.limits",
                              [](config& c) -> limits_config& { return c.providers[0].limits; });
  check_bounds<throttle_config>(throttle_fields(), "providers.p.limits.throttle",
                                [](config& c) -> throttle_config& { return c.providers[0].limits.throttle; });
  check_bounds<http_client_config>(timeouts_fields(), "providers.p.timeouts",
                                   [](config& c) -> http_client_config& { return c.providers[0].http; });
  check_bounds<breaker_config>(breaker_fields(), "providers.p.breaker",
                               [](config& c) -> breaker_config& { return c.providers[0].breaker; });
  check_bounds<retry_config>(retry_fields(), "providers.p.retry",
                             [](config& c) -> retry_config& { return c.providers[0].retry; });
  check_bounds<sim_config>(sim_fields(), "providers.p.sim",
                           [](config& c) -> sim_config& { return c.providers[0].sim; });
  check_bounds<model_config>(model_fields(), "providers.p.models.m",
                             [](config& c) -> model_config& { return c.providers[0].models[0]; });
  check_bounds<supervision_config>(supervision_fields(), "supervision",
                                   [](config& c) -> supervision_config& { return c.supervision; });
  check_bounds<runtime_config>(runtime_fields(), "runtime", [](config& c) -> runtime_config& { return c.runtime; });
  check_bounds<tolerable_wait_config>(tolerable_wait_fields(), "runtime.tolerable_wait",
                                      [](config& c) -> tolerable_wait_config& { return c.runtime.tolerable_wait; });
}

TEST_CASE("a bounds problem in a file reads as before", "[config][tables]") {
  // The messages users' scripts match on come out of the rows unchanged.
  CHECK(strings(load_config_text(two_sims + "    limits: {requests: 0}\n").problems) ==
        std::vector<std::string>{"providers.b.limits.requests: must be > 0"});
  CHECK(strings(load_config_text("runtime: {cache_entries: 0, io_threads: 17}\n" + two_sims).problems) ==
        std::vector<std::string>{"runtime.io_threads: must be between 1 and 16",
                                 "runtime.cache_entries: must be >= 1 (turn the cache off with runtime.cache: false)"});
  CHECK(strings(load_config_text(two_sims + "    breaker: {ratio: nope}\n").problems) ==
        std::vector<std::string>{"providers.b.breaker.ratio: must be a number between 0 and 1"});
}

TEST_CASE("three mistakes in three sections are all reported in one pass", "[config][tables]") {
  // An unknown key (providers), a bad value (runtime) and a chain naming no provider (personas): reading carries
  // on past the first two, so the persona check still runs on the config as read and finds the third.
  test::temp_dir dir;
  dir.write("pm.yaml", persona_yaml("pm"));
  auto loaded = load_config_text("personas_dir: " + dir.str() + "\nruntime: {scheduler_threads: 0}\n" +
                                 "personas:\n  pm: {chain: [nope/big]}\n" + two_sims + "    limits: {rpm: 5}\n");
  CHECK_FALSE(loaded.cfg);
  REQUIRE(loaded.as_read);
  auto problems = loaded.problems;
  auto personas = load_personas(loaded.as_read->personas_dir, *loaded.as_read);
  problems.insert(problems.end(), personas.problems.begin(), personas.problems.end());
  CHECK(strings(problems) == std::vector<std::string>{
                                 "providers.b.limits.rpm: unknown key",
                                 "runtime.scheduler_threads: must be between 1 and 64",
                                 "personas.pm.chain[0]: unknown provider \"nope\"",
                             });
}

TEST_CASE("the checks moved into validate keep their messages and paths", "[config][tables]") {
  // Once in squad_tree.cpp (base_url, ca_file) and the gateway (aliases): now validate(), same words.
  const std::string head = "providers:\n  p:\n    kind: openai\n    models: {m: {id: x}}\n";
  CHECK(strings(load_config_text(head + "    base_url: https://user@example.com\n").problems) ==
        std::vector<std::string>{"providers.p.base_url: must not contain user information (put keys in api_key)"});
  CHECK(strings(load_config_text(head + "    base_url: https://example.com\n    ca_file: /nonexistent/ca.pem\n")
                    .problems) == std::vector<std::string>{"providers.p.ca_file: cannot read /nonexistent/ca.pem"});

  test::temp_dir dir;
  dir.write("pm.yaml", persona_yaml("pm"));
  dir.write("broken.yaml", "id: broken\n");
  auto loaded = load_config_text(two_sims + "aliases:\n  good: persona/pm\n  ghost: persona/nobody\n" +
                                 "  half: persona/broken\n  model: a/small\n");
  REQUIRE(loaded.cfg);
  auto personas = load_personas(dir.str(), *loaded.cfg);
  auto got = strings(personas.problems);
  // broken.yaml's own problems are its file's; its alias is not reported a second time.
  CHECK(std::count(got.begin(), got.end(),
                   "aliases.ghost: names no persona or provider model (got \"persona/nobody\")") == 1);
  for (const auto& g : got)
    CHECK(g.rfind("aliases.half", 0) != 0);
  CHECK(personas.files == std::set<std::string>{"broken", "pm"});
}

TEST_CASE("the reference lists every key once with the default from config.hpp", "[config][tables]") {
  // config_reference() (squad config keys) is made from the same rows, its defaults read from the structs.
  auto ref = config_reference();
  std::size_t keys = 0;
  for (const auto& s : every_section())
    keys += s.keys.size();
  CHECK(ref.size() == keys);
  std::set<std::string> paths;
  for (const auto& k : ref) {
    INFO(k.path);
    CHECK(paths.insert(k.path).second);
    CHECK_FALSE(k.doc.empty());
  }
  auto find = [&](const std::string& path) {
    auto it = std::find_if(ref.begin(), ref.end(), [&](const config_key_doc& k) { return k.path == path; });
    REQUIRE(it != ref.end());
    return *it;
  };
  CHECK(find("providers.<name>.limits.requests").default_value == "60");
  CHECK(find("providers.<name>.limits.requests").bounds == "> 0");
  CHECK(find("providers.<name>.limits.per").default_value == "1m");
  CHECK(find("providers.<name>.breaker.ratio").default_value == "0.8");
  CHECK(find("runtime.scheduler").default_value == "\"io\"");
  CHECK(find("runtime.scheduler").bounds == "io or caf");
  CHECK(find("runtime.scheduler_threads").bounds == "between 1 and 64");
  CHECK(find("providers.<name>.timeouts.connect").default_value == "10s");
}

TEST_CASE("chains are left for the next pass only when the providers they resolve against are in doubt",
          "[config][tables]") {
  // A broken provider or model would make every persona "resolve to no model": an echo, not a mistake.
  auto doubt = [](const std::string& yaml) {
    auto loaded = load_config_text(yaml);
    REQUIRE(loaded.as_read);
    return chains_in_doubt(*loaded.as_read, loaded.problems);
  };
  CHECK(doubt("providers: [a, b]\n"));
  CHECK(doubt("providers:\n  p: 7\n"));
  CHECK(doubt(two_sims + "    models: [x]\n"));
  CHECK(doubt("providers:\n  p:\n    kind: sim\n    models: {m: {id: x, tier: chief}}\n"));
  CHECK_FALSE(doubt(two_sims + "    limits: {rpm: 5}\n"));
  CHECK_FALSE(doubt("runtime: {scheduler_threads: 0}\n" + two_sims));
  CHECK_FALSE(doubt(two_sims));
}
