#include "runtime/config/workflow.hpp"

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

using namespace squad;

namespace {

const std::set<std::string> personas = {"analyst", "pm", "architect", "ux-expert", "dev"};

std::vector<std::string> problems_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& p : parse_workflow(yaml, "wf.yaml", personas).problems)
    out.push_back(to_string(p));
  return out;
}

const std::string greenfield = R"(
id: greenfield
description: From idea to architecture.
budget: {calls: 12, tokens: 50000}
steps:
  - id: brief
    persona: analyst
    prompt: "Write a project brief for: {{task}}"
  - id: prd
    persona: pm
    inputs: [brief]
    prompt: Write the PRD.
  - id: design
    strategy: parallel        # single | parallel | cascade
    personas: [architect, ux-expert]
    merge: concat             # concat | best  (parallel only)
    inputs: [prd]
    priority: P1
    max_tokens: 800
    optional: false
  - id: review
    strategy: cascade
    personas: [dev, architect]
    inputs: [design, prd]
    prompt: Review the design.
    optional: true
)";

} // namespace

TEST_CASE("the documented workflow shape parses", "[config][workflow]") {
  // Every step field lands in workflow_step, with persona as shorthand for personas.
  // (The design step from the notes has no prompt; give it one so the file is valid.)
  std::string text = greenfield;
  text.replace(text.find("    optional: false"), 0, "    prompt: Design it.\n");
  auto result = parse_workflow(text, "greenfield.yaml", personas);
  INFO((result.problems.empty() ? std::string() : to_string(result.problems[0])));
  REQUIRE(result.workflow);
  const auto& wf = *result.workflow;
  CHECK(wf.id == "greenfield");
  CHECK(wf.description == "From idea to architecture.");
  CHECK(wf.budget_calls == 12);
  CHECK(wf.budget_tokens == 50000);
  REQUIRE(wf.steps.size() == 4);
  CHECK(wf.steps[0].personas == std::vector<std::string>{"analyst"});
  CHECK(wf.steps[0].strategy == step_strategy::single);
  CHECK(wf.steps[0].prompt == "Write a project brief for: {{task}}");
  CHECK(wf.steps[0].max_tokens == 1024);
  CHECK_FALSE(wf.steps[0].priority.has_value());
  const auto& design = wf.steps[2];
  CHECK(design.strategy == step_strategy::parallel);
  CHECK(design.personas == std::vector<std::string>{"architect", "ux-expert"});
  CHECK(design.merge == "concat");
  CHECK(design.inputs == std::vector<std::string>{"prd"});
  CHECK(design.priority == priority_class::p1);
  CHECK(design.max_tokens == 800);
  CHECK_FALSE(design.optional);
  CHECK(wf.steps[3].strategy == step_strategy::cascade);
  CHECK(wf.steps[3].optional);
  CHECK(topological_order(wf) == std::vector<std::string>{"brief", "prd", "design", "review"});
}

TEST_CASE("a cycle is named step by step", "[config][workflow]") {
  // a reads c, b reads a, c reads b: the problem spells the loop out.
  auto problems = problems_of(R"(
id: wf
steps:
  - {id: a, persona: pm, prompt: x, inputs: [c]}
  - {id: b, persona: pm, prompt: x, inputs: [a]}
  - {id: c, persona: pm, prompt: x, inputs: [b]}
  - {id: d, persona: pm, prompt: x}
)");
  CHECK(problems == std::vector<std::string>{"wf.yaml: steps: cycle: a -> c -> b -> a"});
}

TEST_CASE("two separate cycles are both reported", "[config][workflow]") {
  // Reporting keeps going past the first cycle.
  auto problems = problems_of(R"(
id: wf
steps:
  - {id: a, persona: pm, prompt: x, inputs: [b]}
  - {id: b, persona: pm, prompt: x, inputs: [a]}
  - {id: c, persona: pm, prompt: x, inputs: [d]}
  - {id: d, persona: pm, prompt: x, inputs: [c]}
)");
  CHECK(problems ==
        std::vector<std::string>{"wf.yaml: steps: cycle: a -> b -> a", "wf.yaml: steps: cycle: c -> d -> c"});
}

TEST_CASE("step-level mistakes are each reported", "[config][workflow]") {
  // Unknown persona, missing input, self-input and duplicate id, all in one file.
  auto problems = problems_of(R"(
id: wf
steps:
  - {id: a, persona: nobody, prompt: x}
  - {id: b, persona: pm, prompt: x, inputs: [a, ghost]}
  - {id: c, persona: pm, prompt: x, inputs: [c]}
  - {id: a, persona: pm, prompt: x}
)");
  CHECK(problems == std::vector<std::string>{
                        "wf.yaml: steps[0].persona: unknown persona \"nobody\"",
                        "wf.yaml: steps[3].id: duplicate step id \"a\" (first at steps[0])",
                        "wf.yaml: steps[1].inputs[1]: unknown step \"ghost\"",
                        "wf.yaml: steps[2].inputs[0]: a step cannot read its own output",
                    });
}

TEST_CASE("bad workflows report exactly the expected problems", "[config][workflow]") {
  // Table: one mistake per row and its complete problem list.
  struct row {
    const char* name;
    std::string yaml;
    std::vector<std::string> expected;
  };
  const row rows[] = {
      {"no steps", "id: wf\nsteps: []\n", {"wf.yaml: steps: at least one step is required"}},
      {"steps missing", "id: wf\n", {"wf.yaml: steps: at least one step is required"}},
      {"id missing", "steps:\n  - {id: a, persona: pm, prompt: x}\n", {"wf.yaml: id: required"}},
      {"unknown top key",
       "id: wf\nowner: me\nsteps:\n  - {id: a, persona: pm, prompt: x}\n",
       {"wf.yaml: owner: unknown key"}},
      {"unknown step key",
       "id: wf\nsteps:\n  - {id: a, persona: pm, prompt: x, model: y}\n",
       {"wf.yaml: steps[0].model: unknown key"}},
      {"persona and personas",
       "id: wf\nsteps:\n  - {id: a, persona: pm, personas: [pm, dev], prompt: x}\n",
       {"wf.yaml: steps[0]: give either persona or personas, not both"}},
      {"neither persona nor personas",
       "id: wf\nsteps:\n  - {id: a, prompt: x}\n",
       {"wf.yaml: steps[0]: persona or personas is required"}},
      {"single with two personas",
       "id: wf\nsteps:\n  - {id: a, personas: [pm, dev], prompt: x}\n",
       {"wf.yaml: steps[0].personas: strategy single needs exactly 1 persona (got 2)"}},
      {"parallel with one persona",
       "id: wf\nsteps:\n  - {id: a, strategy: parallel, persona: pm, prompt: x}\n",
       {"wf.yaml: steps[0].persona: strategy parallel needs at least 2 personas (got 1)"}},
      {"cascade with one persona",
       "id: wf\nsteps:\n  - {id: a, strategy: cascade, personas: [pm], prompt: x}\n",
       {"wf.yaml: steps[0].personas: strategy cascade needs at least 2 personas (got 1)"}},
      {"unknown strategy",
       "id: wf\nsteps:\n  - {id: a, strategy: vote, persona: pm, prompt: x}\n",
       {"wf.yaml: steps[0].strategy: must be one of single, parallel, cascade (got \"vote\")"}},
      {"empty prompt",
       "id: wf\nsteps:\n  - {id: a, persona: pm, prompt: \"  \"}\n",
       {"wf.yaml: steps[0].prompt: must not be empty"}},
      {"missing prompt", "id: wf\nsteps:\n  - {id: a, persona: pm}\n", {"wf.yaml: steps[0].prompt: required"}},
      {"max_tokens zero",
       "id: wf\nsteps:\n  - {id: a, persona: pm, prompt: x, max_tokens: 0}\n",
       {"wf.yaml: steps[0].max_tokens: must be > 0"}},
      {"bad merge",
       "id: wf\nsteps:\n  - {id: a, strategy: parallel, personas: [pm, dev], merge: vote, prompt: x}\n",
       {"wf.yaml: steps[0].merge: must be concat or best (got \"vote\")"}},
      {"merge on single",
       "id: wf\nsteps:\n  - {id: a, persona: pm, merge: best, prompt: x}\n",
       {"wf.yaml: steps[0].merge: only applies to strategy parallel"}},
      {"optional not a bool",
       "id: wf\nsteps:\n  - {id: a, persona: pm, prompt: x, optional: yes}\n",
       {"wf.yaml: steps[0].optional: must be true or false"}},
      {"budget zero",
       "id: wf\nbudget: {calls: 0}\nsteps:\n  - {id: a, persona: pm, prompt: x}\n",
       {"wf.yaml: budget.calls: must be > 0"}},
      {"budget tokens zero",
       "id: wf\nbudget: {calls: 2, tokens: 0}\nsteps:\n  - {id: a, persona: pm, prompt: x}\n",
       {"wf.yaml: budget.tokens: must be > 0 (leave it out for no token limit)"}},
      {"budget unknown key",
       "id: wf\nbudget: {calls: 2, dollars: 3}\nsteps:\n  - {id: a, persona: pm, prompt: x}\n",
       {"wf.yaml: budget.dollars: unknown key"}},
      {"bad step id",
       "id: wf\nsteps:\n  - {id: A B, persona: pm, prompt: x}\n",
       {"wf.yaml: steps[0].id: must use only a-z, 0-9, '_' and '-' (got \"A B\")"}},
      {"step is a string", "id: wf\nsteps:\n  - just text\n", {"wf.yaml: steps[0]: must be a map"}},
      {"malformed yaml", "id: wf\nsteps: [\n", {}},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    INFO(r.yaml);
    auto result = parse_workflow(r.yaml, "wf.yaml", personas);
    CHECK_FALSE(result.workflow);
    if (r.expected.empty()) { // yaml-cpp's own wording; only the shape is ours
      REQUIRE(result.problems.size() == 1);
      CHECK(result.problems[0].path == "wf.yaml");
      continue;
    }
    std::vector<std::string> got;
    for (const auto& p : result.problems)
      got.push_back(to_string(p));
    CHECK(got == r.expected);
  }
}

TEST_CASE("topological order of a diamond follows file order among ready steps", "[config][workflow]") {
  // top feeds left and right, which both feed bottom; listed bottom-up, the order is still valid and stable.
  workflow_def wf;
  auto step = [](std::string id, std::vector<std::string> inputs) {
    workflow_step s;
    s.id = std::move(id);
    s.inputs = std::move(inputs);
    return s;
  };
  wf.steps = {step("bottom", {"right", "left"}), step("right", {"top"}), step("left", {"top"}), step("top", {})};
  CHECK(topological_order(wf) == std::vector<std::string>{"top", "right", "left", "bottom"});

  wf.steps = {step("top", {}), step("left", {"top"}), step("right", {"top"}), step("bottom", {"left", "right"})};
  CHECK(topological_order(wf) == std::vector<std::string>{"top", "left", "right", "bottom"});

  // An independent step listed first goes first; one listed last goes as soon as it is reached.
  wf.steps = {step("solo", {}), step("b", {"a"}), step("a", {}), step("late", {})};
  CHECK(topological_order(wf) == std::vector<std::string>{"solo", "a", "b", "late"});
}

TEST_CASE("load_workflow reads <dir>/<id>.yaml and checks the id", "[config][workflow]") {
  // The file loads by id; a mismatched id, a missing file and a path-like id are problems.
  test::temp_dir dir;
  dir.write("quick.yaml", "id: quick\nsteps:\n  - {id: a, persona: pm, prompt: x}\n");
  auto other = dir.write("other.yaml", "id: quick\nsteps:\n  - {id: a, persona: pm, prompt: x}\n");

  auto quick = load_workflow(dir.str(), "quick", personas);
  CHECK(quick.problems.empty());
  REQUIRE(quick.workflow);
  CHECK(quick.workflow->steps.size() == 1);

  auto mismatched = load_workflow(dir.str(), "other", personas);
  CHECK_FALSE(mismatched.workflow);
  REQUIRE(mismatched.problems.size() == 1);
  CHECK(to_string(mismatched.problems[0]) == other + ": id: must equal the file name \"other\" (got \"quick\")");

  auto missing = load_workflow(dir.str(), "nope", personas);
  REQUIRE(missing.problems.size() == 1);
  CHECK(missing.problems[0].path == (std::filesystem::path(dir.str()) / "nope.yaml").string());

  auto escape = load_workflow(dir.str(), "../etc/passwd", personas);
  REQUIRE(escape.problems.size() == 1);
  CHECK_FALSE(escape.workflow);
}
