#include "runtime/config/persona_def.hpp"

#include "runtime/config/persona_tools.hpp"
#include "runtime/config/yaml_reader.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

namespace squad {

namespace {
bool is_strategy(const std::string& s) {
  return s == "preference" || s == "latency" || s == "cost" || s == "adaptive";
}
std::string strategy_problem(const std::string& s) {
  return "must be one of preference, latency, cost, adaptive (got \"" + s + "\")";
}
} // namespace

namespace fs = std::filesystem;
using detail::yaml_reader;

namespace {

// parse_persona plus, when loading from a directory, the check that the id matches the file name,
// done here so that it is reported even when other fields of the file are broken.
personas_load_result parse_persona_file(const std::string& yaml_text, const std::string& origin,
                                        const std::string* expected_id) {
  personas_load_result result;
  auto& problems = result.problems;
  try {
    auto root = detail::parse_yaml(yaml_text, origin, problems);
    if (!root)
      return result;
    if (!root->IsMap()) {
      problems.push_back({origin, "must be a map with id, name, role, goal and system_prompt"});
      return result;
    }
    const std::string base = origin + ": ";
    yaml_reader r(problems, false);
    r.check_keys(*root, base,
                 {"id", "name", "role", "goal", "priority", "chain", "strategy", "system_prompt", "tools"});

    persona_def p;
    auto required = [&](std::string_view key, std::string& out) {
      if (!yaml_reader::find(*root, key))
        r.problem(detail::join(base, key), "required");
      else if (r.get(*root, base, key, out) && out.find_first_not_of(" \t\r\n") == std::string::npos)
        r.problem(detail::join(base, key), "must not be empty");
    };
    required("id", p.id);
    required("name", p.name);
    required("role", p.role);
    required("goal", p.goal);
    required("system_prompt", p.system_prompt);
    if (!p.id.empty() && !detail::only_chars(p.id, "-", false))
      r.problem(base + "id", "must use only a-z, 0-9 and '-' (got \"" + p.id + "\")");
    else if (!p.id.empty() && expected_id && p.id != *expected_id)
      r.problem(base + "id", "must equal the file name \"" + *expected_id + "\" (got \"" + p.id + "\")");
    r.get(*root, base, "priority", p.priority);
    if (r.get(*root, base, "strategy", p.strategy) && !is_strategy(p.strategy))
      r.problem(base + "strategy", strategy_problem(p.strategy));

    p.chain = {"@worker", "@boss"};
    if (r.get(*root, base, "chain", p.chain)) {
      if (p.chain.empty())
        r.problem(base + "chain", "must not be empty");
      for (std::size_t i = 0; i < p.chain.size(); ++i)
        if (!detail::is_chain_entry(p.chain[i]))
          r.problem(detail::at(base + "chain", i), detail::bad_chain_entry(p.chain[i]));
    }
    if (auto tools = yaml_reader::find(*root, "tools"))
      p.tools_json = read_persona_tools(*tools, base + "tools", problems);
    if (problems.empty())
      result.personas.push_back(std::move(p));
  } catch (const std::exception& e) {
    problems.push_back({origin, std::string("unexpected error: ") + e.what()});
  }
  return result;
}

} // namespace

personas_load_result parse_persona(const std::string& yaml_text, const std::string& origin) {
  return parse_persona_file(yaml_text, origin, nullptr);
}

chain_target make_target(const provider_config& p, const model_config& m) {
  return {p.name, m.name, m.id, m.tier, m.input_price, m.output_price, m.limits ? limits_domain(p.name, m.name) : "",
          p.kind};
}

std::vector<chain_target> resolve_chain(const std::vector<std::string>& chain, const config& cfg,
                                        const std::string& path, std::vector<config_problem>& problems) {
  std::vector<chain_target> out;
  auto add = [&out](const provider_config& p, const model_config& m) {
    auto t = make_target(p, m);
    if (std::find(out.begin(), out.end(), t) == out.end())
      out.push_back(std::move(t));
  };
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const std::string& entry = chain[i];
    std::string entry_path = detail::at(path, i);
    if (!entry.empty() && entry[0] == '@') {
      std::string tier = entry.substr(1);
      if (tier != "worker" && tier != "boss") {
        problems.push_back({entry_path, "unknown tier \"" + entry + "\" (use @worker or @boss)"});
        continue;
      }
      // A tier nobody offers adds nothing; the caller checks that the whole chain resolves to something.
      for (const auto& p : cfg.providers)
        for (const auto& m : p.models)
          if (m.tier == tier)
            add(p, m);
      continue;
    }
    auto slash = entry.find('/');
    if (slash == std::string::npos) {
      problems.push_back({entry_path, detail::bad_chain_entry(entry)});
      continue;
    }
    std::string provider = entry.substr(0, slash);
    std::string model = entry.substr(slash + 1);
    const provider_config* p = cfg.find_provider(provider);
    if (!p) {
      problems.push_back({entry_path, "unknown provider \"" + provider + "\""});
      continue;
    }
    auto m =
        std::find_if(p->models.begin(), p->models.end(), [&model](const model_config& mc) { return mc.name == model; });
    if (m == p->models.end()) {
      problems.push_back({entry_path, "unknown model \"" + model + "\" for provider \"" + provider + "\""});
      continue;
    }
    add(*p, *m);
  }
  return out;
}

personas_load_result load_personas(const std::string& dir, const config& cfg, bool check_chains) {
  personas_load_result result;
  auto& problems = result.problems;
  try {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      problems.push_back({dir, "personas directory not found"});
      return result;
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().extension() == ".yaml")
        files.push_back(it->path());
    if (ec)
      problems.push_back({dir, "cannot list directory: " + ec.message()});
    std::sort(files.begin(), files.end());
    if (files.empty() && !ec)
      problems.push_back({dir, "no persona files (*.yaml)"});

    std::set<std::string> stems; // every file present, parsed cleanly or not
    for (const auto& file : files) {
      std::string origin = file.string();
      std::string stem = file.stem().string();
      stems.insert(stem);
      std::string text;
      if (!detail::read_file(origin, text)) {
        problems.push_back({origin, "cannot read file"});
        continue;
      }
      auto one = parse_persona_file(text, origin, &stem);
      problems.insert(problems.end(), one.problems.begin(), one.problems.end());
      for (auto& p : one.personas)
        result.personas.push_back(std::move(p));
    }
    std::sort(result.personas.begin(), result.personas.end(),
              [](const persona_def& a, const persona_def& b) { return a.id < b.id; });

    for (const auto& [name, o] : cfg.personas) {
      auto p = std::find_if(result.personas.begin(), result.personas.end(),
                            [&name](const persona_def& d) { return d.id == name; });
      if (p == result.personas.end())
        continue; // no such file, or the file had problems: validate() below reports it
      if (o.priority)
        p->priority = *o.priority;
      if (o.chain)
        p->chain = *o.chain;
      if (o.strategy && is_strategy(*o.strategy))
        p->strategy = *o.strategy;
      else if (o.strategy)
        problems.push_back({"personas." + name + ".strategy", strategy_problem(*o.strategy)});
    }
    result.files = std::move(stems);
    for (auto& pr : validate(cfg, dir, result.personas, result.files, check_chains))
      problems.push_back(std::move(pr));
  } catch (const std::exception& e) {
    problems.push_back({dir, std::string("unexpected error: ") + e.what()});
  }
  return result;
}

} // namespace squad
