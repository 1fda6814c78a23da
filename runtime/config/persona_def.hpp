#pragma once
// Persona files (personas/*.yaml): who a persona is, its default priority and chain, its system prompt.
#include "runtime/config/config.hpp"

namespace squad {

/// One concrete call target after chain resolution.
struct chain_target {
  std::string provider; ///< provider name from the config
  std::string model;    ///< model name (the key under models:)
  std::string model_id; ///< upstream model id
  std::string tier;     ///< worker | boss
  friend bool operator==(const chain_target&, const chain_target&) = default;
};

struct persona_def {
  std::string id;            ///< equals the file name without .yaml; [a-z0-9-]+
  std::string name;          ///< display name
  std::string role;
  std::string goal;
  priority_class priority = priority_class::p1;
  std::vector<std::string> chain; ///< entries "provider/model" or "@worker" / "@boss" (all models of that tier)
  std::string system_prompt;
};

struct personas_load_result {
  std::vector<persona_def> personas; ///< sorted by id
  std::vector<config_problem> problems;
};

/// Loads every *.yaml in `dir`, applies `cfg.personas` overrides, and validates each persona:
/// required fields, unknown keys, chain entries resolvable against `cfg`, overrides naming known personas.
personas_load_result load_personas(const std::string& dir, const config& cfg);

/// Parses one persona file's YAML text (no overrides, no chain resolution); `origin` prefixes problem paths.
personas_load_result parse_persona(const std::string& yaml_text, const std::string& origin);

/// Expands a chain into concrete targets in order, without duplicates: "@worker" is every model of tier
/// worker across providers in config order. Unknown providers/models are problems with `path` as prefix.
std::vector<chain_target> resolve_chain(const std::vector<std::string>& chain, const config& cfg,
                                        const std::string& path, std::vector<config_problem>& problems);

} // namespace squad
