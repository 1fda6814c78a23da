#pragma once
// `squad workflows` and `squad personas`: what a config's directories hold, as aligned columns.
#include <string>
#include <vector>

namespace squad {

/// The workflow ids in `dir` (its *.yaml files), sorted; empty when it cannot be read.
std::vector<std::string> workflow_ids(const std::string& dir);

/// Prints the workflows of `config_file` (id, steps, description); exit code 0, or 2 on config problems.
int list_workflows(const std::string& config_file);

/// Prints the personas of `config_file` (id, priority, chain, name); exit code 0, or 2 on config problems.
int list_personas(const std::string& config_file);

/// `rows` as columns two spaces apart, each as wide as its widest cell (the last one left ragged).
std::string columns(const std::vector<std::vector<std::string>>& rows);

} // namespace squad
