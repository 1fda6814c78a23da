#pragma once
// Workflows as data (config/workflows/*.yaml): a DAG of steps.
#include "runtime/config/config.hpp"

#include <set>

namespace squad {

enum class step_strategy : std::uint8_t {
  single,   ///< one persona
  parallel, ///< several personas at once; results merged (merge: concat) or the best kept (merge: best)
  cascade,  ///< several personas in order, each refining the previous one's output
};

struct workflow_step {
  std::string id; ///< [a-z0-9_-]+, unique in the workflow
  step_strategy strategy = step_strategy::single;
  std::vector<std::string> personas;      ///< `persona: x` is shorthand for personas: [x]
  std::optional<priority_class> priority; ///< default: the (first) persona's
  std::vector<std::string> inputs;        ///< ids of earlier steps whose output this step reads
  std::string prompt;                     ///< instruction; "{{task}}" is replaced by the run's task
  std::string merge = "concat";           ///< parallel only: concat | best
  std::int64_t max_tokens = 1024;         ///< completion tokens asked for
  bool optional = false;                  ///< may be dropped under pressure
  millis feedback{0};                     ///< > 0: after its output, the step waits this long for a person's input
};

struct workflow_def {
  std::string id; ///< equals the file name without .yaml
  std::string description;
  std::int64_t budget_calls = 16;   ///< LLM calls a run of this workflow may make (budget: {calls: N})
  std::int64_t budget_tokens = 0;   ///< tokens (prompt + completion) it may use (budget: {tokens: N}); 0: no limit
  double budget_usd = 0;            ///< USD it may spend (budget: {usd: X}), a hard cap; 0: no money limit
  std::vector<workflow_step> steps; ///< in file order
};

struct workflow_load_result {
  std::optional<workflow_def> workflow;
  std::vector<config_problem> problems;
};

/// Parses and validates a workflow's YAML text: unknown keys, duplicate ids, unknown inputs, cycles
/// (the problem names the cycle, e.g. "cycle: a -> b -> a"), strategies and persona counts.
/// `known_personas` are the persona ids the step personas must be among; `origin` prefixes problem paths.
workflow_load_result parse_workflow(const std::string& yaml_text, const std::string& origin,
                                    const std::set<std::string>& known_personas);

/// Loads `<dir>/<id>.yaml`.
workflow_load_result load_workflow(const std::string& dir, const std::string& id,
                                   const std::set<std::string>& known_personas);

/// Step ids in an order where every step comes after its inputs (stable: file order among ready steps).
std::vector<std::string> topological_order(const workflow_def& wf);

} // namespace squad
