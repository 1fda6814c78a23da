#pragma once
// Persona files (personas/*.yaml): who a persona is, its default priority and chain, its system prompt.
#include "runtime/config/config.hpp"

#include <set>

namespace squad {

/// One concrete call target after chain resolution.
struct chain_target {
  std::string provider;    ///< provider name from the config
  std::string model;       ///< model name (the key under models:)
  std::string model_id;    ///< upstream model id
  std::string tier;        ///< worker | boss
  double input_price = 0;  ///< USD per 1M prompt tokens (models.<m>.input_price; 0: free or not said)
  double output_price = 0; ///< USD per 1M completion tokens
  /// Whose limits admit a call to it: "provider/model" for a model with its own `limits`; empty: the provider's.
  std::string limits{};
  std::string kind{}; ///< the provider's kind (openai | anthropic | sim): what parameters it can honour
  /// The key of its limiter (the directory's and the dispatcher's queues): `limits`, or the provider's name.
  const std::string& domain() const { return limits.empty() ? provider : limits; }
  friend bool operator==(const chain_target&, const chain_target&) = default;
};

/// The target for `m` of `p` (its limits domain set).
chain_target make_target(const provider_config& p, const model_config& m);
/// The name of model `m`'s own limits domain, "provider/model".
inline std::string limits_domain(const std::string& provider, const std::string& model) {
  return provider + "/" + model;
}

struct persona_def {
  std::string id;   ///< equals the file name without .yaml; [a-z0-9-]+
  std::string name; ///< display name
  std::string role;
  std::string goal;
  priority_class priority = priority_class::p1;
  std::vector<std::string> chain; ///< entries "provider/model" or "@worker" / "@boss" (all models of that tier)
  std::string strategy =
      "preference"; ///< how the chain's ready targets are ordered: preference | latency | cost | adaptive
  std::string system_prompt;
  std::string tools_json; ///< `tools` (persona_tools.hpp) as an OpenAI tools array, offered on its run calls; ""
};

struct personas_load_result {
  std::vector<persona_def> personas; ///< sorted by id
  std::vector<config_problem> problems;
  std::set<std::string> files; ///< the id of every persona file present, parsed cleanly or not
};

/// Loads every *.yaml in `dir`, applies `cfg.personas` overrides, and validates each persona: required
/// fields and unknown keys here, then validate(cfg, dir, personas, files) for what crosses into the config.
/// `check_chains` false leaves chains unresolved (see chains_in_doubt).
personas_load_result load_personas(const std::string& dir, const config& cfg, bool check_chains = true);

/// The checks across a config and its persona files (validate.cpp): every override names a persona file in
/// `dir`, every persona's chain resolves to a model (reported at the config's override or at the file's
/// chain), every `persona/<id>` alias names a loaded persona. `files` are the ids of all persona files present,
/// so a broken file, already reported, does not also make its overrides and aliases unknown.
std::vector<config_problem> validate(const config& cfg, const std::string& dir,
                                     const std::vector<persona_def>& personas, const std::set<std::string>& files,
                                     bool check_chains = true);

/// True if `problems` (of reading and validating `cfg`) touch what chains resolve against: the providers
/// section, a provider, its models or a model's tier. Checking chains then would only echo those problems
/// ("resolves to no model" for every persona), so load_squad leaves the chains for the next pass.
bool chains_in_doubt(const config& cfg, const std::vector<config_problem>& problems);

/// Parses one persona file's YAML text (no overrides, no chain resolution); `origin` prefixes problem paths.
personas_load_result parse_persona(const std::string& yaml_text, const std::string& origin);

/// Expands a chain into concrete targets in order, without duplicates: "@worker" is every model of tier
/// worker across providers in config order. Unknown providers/models are problems with `path` as prefix.
std::vector<chain_target> resolve_chain(const std::vector<std::string>& chain, const config& cfg,
                                        const std::string& path, std::vector<config_problem>& problems);

} // namespace squad
