#include "runtime/config/workflow.hpp"

#include "runtime/config/yaml_reader.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

namespace squad {

namespace {

using detail::at;
using detail::join;
using detail::yaml_reader;

bool is_step_id(std::string_view text) {
  return detail::only_chars(text, "_-", false);
}

workflow_step read_step(yaml_reader& r, const YAML::Node& node, const std::string& path,
                        const std::set<std::string>& known_personas) {
  workflow_step s;
  if (!r.is_map(node, path))
    return s;
  r.check_keys(node, path,
               {"id", "persona", "personas", "strategy", "merge", "inputs", "priority", "prompt", "max_tokens",
                "optional", "feedback"});

  if (!yaml_reader::find(node, "id"))
    r.problem(join(path, "id"), "required");
  else if (r.get(node, path, "id", s.id) && !is_step_id(s.id))
    r.problem(join(path, "id"), "must use only a-z, 0-9, '_' and '-' (got \"" + s.id + "\")");

  bool strategy_ok = true;
  std::string strategy;
  if (r.get(node, path, "strategy", strategy)) {
    if (strategy == "single")
      s.strategy = step_strategy::single;
    else if (strategy == "parallel")
      s.strategy = step_strategy::parallel;
    else if (strategy == "cascade")
      s.strategy = step_strategy::cascade;
    else {
      r.problem(join(path, "strategy"), "must be one of single, parallel, cascade (got \"" + strategy + "\")");
      strategy_ok = false;
    }
  } else if (yaml_reader::find(node, "strategy")) {
    strategy_ok = false;
  }

  // `persona: x` is shorthand for `personas: [x]`; problems point at whichever key was written.
  auto one = yaml_reader::find(node, "persona");
  auto many = yaml_reader::find(node, "personas");
  std::string key = one ? "persona" : "personas";
  bool personas_ok = false;
  if (one && many) {
    r.problem(path, "give either persona or personas, not both");
  } else if (!one && !many) {
    r.problem(path, "persona or personas is required");
  } else if (one) {
    std::string name;
    if (r.get(node, path, "persona", name)) {
      s.personas = {name};
      personas_ok = true;
      if (!known_personas.count(name))
        r.problem(join(path, "persona"), "unknown persona \"" + name + "\"");
    }
  } else if (r.get(node, path, "personas", s.personas)) {
    personas_ok = true;
    for (std::size_t i = 0; i < s.personas.size(); ++i)
      if (!known_personas.count(s.personas[i]))
        r.problem(at(join(path, "personas"), i), "unknown persona \"" + s.personas[i] + "\"");
  }
  if (personas_ok && strategy_ok) {
    auto n = std::to_string(s.personas.size());
    if (s.strategy == step_strategy::single && s.personas.size() != 1)
      r.problem(join(path, key), "strategy single needs exactly 1 persona (got " + n + ")");
    else if (s.strategy != step_strategy::single && s.personas.size() < 2)
      r.problem(join(path, key), "strategy " + strategy + " needs at least 2 personas (got " + n + ")");
  }

  if (r.get(node, path, "merge", s.merge)) {
    if (s.merge != "concat" && s.merge != "best")
      r.problem(join(path, "merge"), "must be concat or best (got \"" + s.merge + "\")");
    else if (strategy_ok && s.strategy != step_strategy::parallel)
      r.problem(join(path, "merge"), "only applies to strategy parallel");
  }

  r.get(node, path, "inputs", s.inputs);
  priority_class prio{};
  if (r.get(node, path, "priority", prio))
    s.priority = prio;

  if (!yaml_reader::find(node, "prompt"))
    r.problem(join(path, "prompt"), "required");
  else if (r.get(node, path, "prompt", s.prompt) && s.prompt.find_first_not_of(" \t\r\n") == std::string::npos)
    r.problem(join(path, "prompt"), "must not be empty");

  if (r.get(node, path, "max_tokens", s.max_tokens) && s.max_tokens <= 0)
    r.problem(join(path, "max_tokens"), "must be > 0");
  r.get(node, path, "optional", s.optional);
  if (r.get(node, path, "feedback", s.feedback) && s.feedback.count() <= 0)
    r.problem(join(path, "feedback"), "must be a positive duration (how long the step waits for a person's input)");
  return s;
}

// Depth-first search over "reads from" edges; every back edge closes one cycle, reported as the path
// from the re-entered step round to itself.
class cycle_finder {
public:
  cycle_finder(const std::vector<workflow_step>& steps, const std::map<std::string, std::size_t>& index)
      : steps_(steps), index_(index), color_(steps.size(), white) {}

  std::vector<std::string> find() {
    for (std::size_t i = 0; i < steps_.size(); ++i)
      if (is_node(i) && color_[i] == white)
        visit(i);
    return cycles_;
  }

private:
  enum color { white, gray, black };

  bool is_node(std::size_t i) const {
    auto it = index_.find(steps_[i].id);
    return it != index_.end() && it->second == i; // later duplicates are reported elsewhere
  }

  void visit(std::size_t i) {
    color_[i] = gray;
    stack_.push_back(i);
    for (const auto& input : steps_[i].inputs) {
      auto it = index_.find(input);
      if (it == index_.end() || it->second == i)
        continue; // unknown inputs and self-reads have their own problems
      std::size_t j = it->second;
      if (color_[j] == gray) {
        std::string text = "cycle: ";
        for (auto k = std::find(stack_.begin(), stack_.end(), j); k != stack_.end(); ++k)
          text += steps_[*k].id + " -> ";
        cycles_.push_back(text + steps_[j].id);
      } else if (color_[j] == white) {
        visit(j);
      }
    }
    stack_.pop_back();
    color_[i] = black;
  }

  const std::vector<workflow_step>& steps_;
  const std::map<std::string, std::size_t>& index_;
  std::vector<color> color_;
  std::vector<std::size_t> stack_;
  std::vector<std::string> cycles_;
};

void check_graph(yaml_reader& r, const std::vector<workflow_step>& steps, const std::string& steps_path) {
  std::map<std::string, std::size_t> index; // id -> first step with it
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].id.empty())
      continue;
    auto [it, fresh] = index.emplace(steps[i].id, i);
    if (!fresh)
      r.problem(join(at(steps_path, i), "id"),
                "duplicate step id \"" + steps[i].id + "\" (first at steps[" + std::to_string(it->second) + "])");
  }
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& s = steps[i];
    for (std::size_t j = 0; j < s.inputs.size(); ++j) {
      std::string path = at(join(at(steps_path, i), "inputs"), j);
      if (!s.id.empty() && s.inputs[j] == s.id)
        r.problem(path, "a step cannot read its own output");
      else if (!index.count(s.inputs[j]))
        r.problem(path, "unknown step \"" + s.inputs[j] + "\"");
    }
  }
  for (auto& cycle : cycle_finder(steps, index).find())
    r.problem(steps_path, cycle);
}

// parse_workflow plus, for load_workflow, the check that the id matches the file name.
workflow_load_result parse_workflow_file(const std::string& yaml_text, const std::string& origin,
                                         const std::set<std::string>& known_personas, const std::string* expected_id) {
  workflow_load_result result;
  auto& problems = result.problems;
  try {
    auto root = detail::parse_yaml(yaml_text, origin, problems);
    if (!root)
      return result;
    if (!root->IsMap()) {
      problems.push_back({origin, "must be a map with id and steps"});
      return result;
    }
    const std::string base = origin + ": ";
    yaml_reader r(problems, false);
    r.check_keys(*root, base, {"id", "description", "budget", "steps"});

    workflow_def wf;
    if (!yaml_reader::find(*root, "id"))
      r.problem(base + "id", "required");
    else if (r.get(*root, base, "id", wf.id)) {
      if (!is_step_id(wf.id))
        r.problem(base + "id", "must use only a-z, 0-9, '_' and '-' (got \"" + wf.id + "\")");
      else if (expected_id && wf.id != *expected_id)
        r.problem(base + "id", "must equal the file name \"" + *expected_id + "\" (got \"" + wf.id + "\")");
    }
    r.get(*root, base, "description", wf.description);
    if (auto budget = yaml_reader::find(*root, "budget"); budget && r.is_map(*budget, base + "budget")) {
      r.check_keys(*budget, base + "budget", {"calls", "tokens", "usd"});
      if (r.get(*budget, base + "budget", "calls", wf.budget_calls) && wf.budget_calls <= 0)
        r.problem(base + "budget.calls", "must be > 0");
      if (r.get(*budget, base + "budget", "tokens", wf.budget_tokens) && wf.budget_tokens <= 0)
        r.problem(base + "budget.tokens", "must be > 0 (leave it out for no token limit)");
      if (r.get(*budget, base + "budget", "usd", wf.budget_usd) && !(wf.budget_usd > 0))
        r.problem(base + "budget.usd", "must be > 0 (USD; leave it out for no money limit)");
    }

    const std::string steps_path = base + "steps";
    auto steps = yaml_reader::find(*root, "steps");
    if (!steps || steps->IsNull() || (steps->IsSequence() && steps->size() == 0))
      r.problem(steps_path, "at least one step is required");
    else if (!steps->IsSequence())
      r.problem(steps_path, "must be a list");
    else
      for (std::size_t i = 0; i < steps->size(); ++i)
        wf.steps.push_back(read_step(r, (*steps)[i], at(steps_path, i), known_personas));
    check_graph(r, wf.steps, steps_path);

    if (problems.empty())
      result.workflow = std::move(wf);
  } catch (const std::exception& e) {
    problems.push_back({origin, std::string("unexpected error: ") + e.what()});
  }
  return result;
}

} // namespace

workflow_load_result parse_workflow(const std::string& yaml_text, const std::string& origin,
                                    const std::set<std::string>& known_personas) {
  return parse_workflow_file(yaml_text, origin, known_personas, nullptr);
}

workflow_load_result load_workflow(const std::string& dir, const std::string& id,
                                   const std::set<std::string>& known_personas) {
  workflow_load_result result;
  // The id may come from a request; keep it from naming a file outside `dir`.
  if (!is_step_id(id)) {
    result.problems.push_back({id, "invalid workflow id (use a-z, 0-9, '_' and '-')"});
    return result;
  }
  std::string file = (std::filesystem::path(dir) / (id + ".yaml")).string();
  std::string text;
  if (!detail::read_file(file, text)) {
    result.problems.push_back({file, "cannot read file"});
    return result;
  }
  return parse_workflow_file(text, file, known_personas, &id);
}

std::vector<std::string> topological_order(const workflow_def& wf) {
  std::set<std::string> ids;
  for (const auto& s : wf.steps)
    ids.insert(s.id);
  std::set<std::string> done;
  std::vector<bool> placed(wf.steps.size(), false);
  std::vector<std::string> order;
  // Rescan from the top after each placement so the earliest ready step in file order always goes next.
  // Steps on a cycle never become ready and are left out; validated workflows have none.
  for (bool progress = true; progress;) {
    progress = false;
    for (std::size_t i = 0; i < wf.steps.size() && !progress; ++i) {
      if (placed[i])
        continue;
      const auto& s = wf.steps[i];
      bool ready = std::all_of(s.inputs.begin(), s.inputs.end(), [&](const std::string& in) {
        return done.count(in) || !ids.count(in); // unknown inputs cannot block
      });
      if (ready) {
        placed[i] = true;
        done.insert(s.id);
        order.push_back(s.id);
        progress = true;
      }
    }
  }
  return order;
}

} // namespace squad
