#include "runtime/app/listings.hpp"
#include "runtime/config/workflow.hpp"
#include "runtime/host/squad_tree.hpp"

#include <algorithm>
#include <filesystem>
#include <iostream>

namespace squad {

std::vector<std::string> workflow_ids(const std::string& dir) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().extension() == ".yaml")
      ids.push_back(entry.path().stem().string());
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string columns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      width.resize(std::max(width.size(), r.size()));
      width[i] = std::max(width[i], r[i].size());
    }
  std::string out;
  for (auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size())
        line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

namespace {

bool load(const std::string& config_file, loaded_squad& out) {
  std::vector<config_problem> problems;
  out = load_squad(config_file, problems);
  if (out.cfg)
    return true;
  std::cerr << config_file << ": " << problems.size() << " problem(s)\n";
  for (auto& p : problems)
    std::cerr << "  " << to_string(p) << "\n";
  return false;
}

} // namespace

int list_workflows(const std::string& config_file) {
  loaded_squad sq;
  if (!load(config_file, sq))
    return 2;
  std::vector<std::vector<std::string>> rows{{"WORKFLOW", "STEPS", "DESCRIPTION"}};
  for (auto& id : workflow_ids(sq.cfg->workflows_dir)) {
    auto wf = load_workflow(sq.cfg->workflows_dir, id, sq.persona_ids());
    if (!wf.workflow) {
      rows.push_back({id, "-", "invalid: " + (wf.problems.empty() ? std::string{} : to_string(wf.problems.front()))});
      continue;
    }
    auto name = id == sq.cfg->default_workflow ? id + " (default)" : id;
    rows.push_back({name, std::to_string(wf.workflow->steps.size()), wf.workflow->description});
  }
  std::cout << columns(rows);
  return 0;
}

int list_personas(const std::string& config_file) {
  loaded_squad sq;
  if (!load(config_file, sq))
    return 2;
  std::vector<std::vector<std::string>> rows{{"PERSONA", "CLASS", "CHAIN", "NAME"}};
  for (auto& p : sq.personas) {
    std::string chain;
    for (auto& t : sq.chains[p.id])
      chain += (chain.empty() ? "" : ",") + t.provider + "/" + t.model;
    rows.push_back({p.id, to_string(p.priority), chain, p.name});
  }
  std::cout << columns(rows);
  return 0;
}

} // namespace squad
