#pragma once
// A persona file's `tools`: the functions its run calls offer the model, in OpenAI's form. Squad runs no tools
// itself: a call the model makes is recorded in the step's output and as a step.tool_calls event.
//
//   tools:
//     - name: search_docs                       # [A-Za-z0-9_-], 1-64 characters, unique
//       description: Search the product docs    # optional
//       parameters: {type: object, properties: {query: {type: string}}, required: [query]}   # optional
#include "runtime/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace squad {

/// The `tools` node at `path` as a JSON array of {type: function, function: {name, description?, parameters?}};
/// problems (at their paths) for a malformed entry. "" when the list is empty.
std::string read_persona_tools(const YAML::Node& tools, const std::string& path, std::vector<config_problem>& problems);

} // namespace squad
