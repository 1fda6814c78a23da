#include "runtime/config/persona_def.hpp"

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

using namespace squad;

namespace {

std::vector<std::string> strings(const std::vector<config_problem>& problems) {
  std::vector<std::string> out;
  for (const auto& p : problems)
    out.push_back(to_string(p));
  return out;
}

// Two sim providers; "a" lists a worker, a boss, then another worker, so config order is visible.
config two_providers() {
  auto result = load_config_text(R"(
providers:
  a:
    kind: sim
    models:
      a-small: {id: a-s, tier: worker}
      a-big: {id: a-b, tier: boss}
      a-mid: {id: a-m, tier: worker}
  b:
    kind: sim
    models:
      b-small: {id: b-s}
)");
  REQUIRE(result.problems.empty());
  return *result.cfg;
}

std::string persona_yaml(const std::string& id, const std::string& extra = "") {
  return "id: " + id + "\nname: " + id + " name\nrole: a role\ngoal: a goal\nsystem_prompt: |\n  You are " + id +
         ".\n" + extra;
}

} // namespace

TEST_CASE("a persona file parses with defaults for chain and priority", "[config][persona]") {
  // priority defaults to P1 and chain to [@worker, @boss].
  auto result = parse_persona(persona_yaml("pm"), "personas/pm.yaml");
  REQUIRE(result.problems.empty());
  REQUIRE(result.personas.size() == 1);
  const auto& p = result.personas[0];
  CHECK(p.id == "pm");
  CHECK(p.name == "pm name");
  CHECK(p.role == "a role");
  CHECK(p.goal == "a goal");
  CHECK(p.system_prompt == "You are pm.\n");
  CHECK(p.priority == priority_class::p1);
  CHECK(p.chain == std::vector<std::string>{"@worker", "@boss"});
}

TEST_CASE("a persona file sets priority and chain", "[config][persona]") {
  // Explicit priority and chain replace the defaults.
  auto result = parse_persona(persona_yaml("qa", "priority: P3\nchain: [a/a-big, \"@worker\"]\n"), "qa.yaml");
  REQUIRE(result.problems.empty());
  CHECK(result.personas.at(0).priority == priority_class::p3);
  CHECK(result.personas.at(0).chain == std::vector<std::string>{"a/a-big", "@worker"});
}

TEST_CASE("missing persona fields are each reported", "[config][persona]") {
  // Every required field that is absent or blank gets its own problem, prefixed by the origin.
  auto result = parse_persona("id: pm\nname: \"  \"\n", "personas/pm.yaml");
  CHECK(strings(result.problems) == std::vector<std::string>{
                                        "personas/pm.yaml: name: must not be empty",
                                        "personas/pm.yaml: role: required",
                                        "personas/pm.yaml: goal: required",
                                        "personas/pm.yaml: system_prompt: required",
                                    });
  CHECK(result.personas.empty());
}

TEST_CASE("unknown keys and bad values in a persona file are problems", "[config][persona]") {
  // Unknown key, bad priority, bad id and a malformed chain entry are all reported together.
  auto result =
      parse_persona(persona_yaml("Pm", "model: x\npriority: high\nchain: [a/a-big, nonsense]\n"), "personas/pm.yaml");
  CHECK(strings(result.problems) ==
        std::vector<std::string>{
            "personas/pm.yaml: model: unknown key",
            "personas/pm.yaml: id: must use only a-z, 0-9 and '-' (got \"Pm\")",
            "personas/pm.yaml: priority: must be one of P0, P1, P2, P3",
            "personas/pm.yaml: chain[1]: must be provider/model, @worker or @boss (got \"nonsense\")",
        });
}

TEST_CASE("malformed persona YAML is one problem at the file", "[config][persona]") {
  // A syntax error names the file and does not throw.
  auto result = parse_persona("id: [pm\n", "personas/pm.yaml");
  REQUIRE(result.problems.size() == 1);
  CHECK(result.problems[0].path == "personas/pm.yaml");
  CHECK_THAT(result.problems[0].message, Catch::Contains("line"));
}

TEST_CASE("@worker expands across providers in config order", "[config][persona]") {
  // Tier entries list every model of the tier, provider by provider, model by model, without duplicates.
  config cfg = two_providers();
  std::vector<config_problem> problems;
  auto targets = resolve_chain({"a/a-mid", "@worker", "@boss"}, cfg, "chain", problems);
  CHECK(problems.empty());
  std::vector<chain_target> expected = {
      {"a", "a-mid", "a-m", "worker", 0, 0, "", "sim"},
      {"a", "a-small", "a-s", "worker", 0, 0, "", "sim"},
      {"b", "b-small", "b-s", "worker", 0, 0, "", "sim"},
      {"a", "a-big", "a-b", "boss", 0, 0, "", "sim"},
  };
  CHECK(targets == expected);
}

TEST_CASE("unknown providers and models in a chain are problems", "[config][persona]") {
  // Each bad entry is reported at path[index]; good entries still resolve.
  config cfg = two_providers();
  std::vector<config_problem> problems;
  auto targets =
      resolve_chain({"x/a-big", "a/nope", "b/b-small", "@chief", "plain"}, cfg, "personas/pm.yaml: chain", problems);
  CHECK(strings(problems) == std::vector<std::string>{
                                 "personas/pm.yaml: chain[0]: unknown provider \"x\"",
                                 "personas/pm.yaml: chain[1]: unknown model \"nope\" for provider \"a\"",
                                 "personas/pm.yaml: chain[3]: unknown tier \"@chief\" (use @worker or @boss)",
                                 "personas/pm.yaml: chain[4]: must be provider/model, @worker or @boss (got \"plain\")",
                             });
  CHECK(targets == std::vector<chain_target>{{"b", "b-small", "b-s", "worker", 0, 0, "", "sim"}});
}

TEST_CASE("load_personas reads a directory and applies overrides", "[config][persona]") {
  // Config overrides replace the file's priority and chain; personas come back sorted by id.
  test::temp_dir dir;
  dir.write("pm.yaml", persona_yaml("pm"));
  dir.write("analyst.yaml", persona_yaml("analyst", "priority: P2\n"));
  dir.write("notes.txt", "not a persona");
  config cfg = two_providers();
  cfg.personas["analyst"] = persona_override{priority_class::p0, std::vector<std::string>{"b/b-small"}, std::nullopt};
  auto result = load_personas(dir.str(), cfg);
  CHECK(strings(result.problems).empty());
  REQUIRE(result.personas.size() == 2);
  CHECK(result.personas[0].id == "analyst");
  CHECK(result.personas[0].priority == priority_class::p0);
  CHECK(result.personas[0].chain == std::vector<std::string>{"b/b-small"});
  CHECK(result.personas[1].id == "pm");
  CHECK(result.personas[1].priority == priority_class::p1);
}

TEST_CASE("load_personas reports directory-level problems", "[config][persona]") {
  // Wrong ids, overrides without a file and unresolvable chains are reported with useful paths.
  test::temp_dir dir;
  auto pm = dir.write("pm.yaml", persona_yaml("product-manager"));
  auto qa = dir.write("qa.yaml", persona_yaml("qa", "chain: [\"@boss\"]\n"));
  dir.write("dev.yaml", persona_yaml("dev"));
  config cfg = two_providers();
  cfg.personas["foo"] = persona_override{};
  cfg.personas["dev"] = persona_override{std::nullopt, std::vector<std::string>{"a/missing"}, std::nullopt};
  cfg.providers[0].models[1].tier = "worker"; // no boss left anywhere
  auto result = load_personas(dir.str(), cfg);
  std::string foo_file = (std::filesystem::path(dir.str()) / "foo.yaml").string();
  CHECK(strings(result.problems) == std::vector<std::string>{
                                        pm + ": id: must equal the file name \"pm\" (got \"product-manager\")",
                                        "personas.foo: no persona file " + foo_file,
                                        "personas.dev.chain[0]: unknown model \"missing\" for provider \"a\"",
                                        qa + ": chain: resolves to no model (no provider offers a model for it)",
                                    });
  REQUIRE(result.personas.size() == 2);
  CHECK(result.personas[0].id == "dev");
  CHECK(result.personas[1].id == "qa");
}

TEST_CASE("@boss without boss models is fine when the chain still resolves", "[config][persona]") {
  // The default chain [@worker, @boss] only needs one of its tiers to exist.
  test::temp_dir dir;
  dir.write("pm.yaml", persona_yaml("pm"));
  config cfg = two_providers();
  cfg.providers[0].models[1].tier = "worker";
  auto result = load_personas(dir.str(), cfg);
  CHECK(result.problems.empty());
  CHECK(result.personas.size() == 1);
}

TEST_CASE("a missing personas directory is a problem naming it", "[config][persona]") {
  // No directory, no personas, and the path in the problem.
  test::temp_dir dir;
  std::string missing = dir.str() + "/nope";
  auto result = load_personas(missing, two_providers());
  REQUIRE(result.problems.size() == 1);
  CHECK(result.problems[0].path == missing);
  CHECK(result.personas.empty());
}
