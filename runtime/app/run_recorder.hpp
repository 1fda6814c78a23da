#pragma once
// The terminal view and the files of one run: a line per step state change, a Markdown artifact per step
// (and per persona of a parallel step), run.json with the full event log, and a summary table.
// Fed with run events in order; knows nothing of actors.
#include "actors/messages.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iosfwd>
#include <map>

namespace squad {

class run_recorder {
public:
  /// Artifacts go to `out_dir` (created). `term` receives the live view; null for none.
  run_recorder(std::filesystem::path out_dir, std::string task, std::string workflow, std::ostream* term);

  /// Records one event; writes artifacts for finished steps. Returns true when the run has ended.
  bool on_event(const run_event& ev);
  /// The workflow's step ids, so that the live view's step column is as wide as the longest.
  void expect_steps(const std::vector<std::string>& ids);

  /// Writes run.json and prints the summary; returns the process exit status (0 completed, 1 failed).
  int finish();

  /// Marks the run failed for a reason outside its event stream (e.g. the boss died).
  void fail(const std::string& reason);

  const std::vector<std::filesystem::path>& artifacts() const { return artifacts_; }

private:
  void write_step(const run_event& ev, const nlohmann::json& data);
  void print(const run_event& ev, const nlohmann::json& data);

  std::filesystem::path out_dir_;
  std::string task_, workflow_, run_id_;
  std::ostream* term_;
  nlohmann::json events_ = nlohmann::json::array();
  struct step_row {
    std::int64_t index = 0;
    std::string status = "pending", personas, served_by, note;
    std::int64_t tokens = 0, started_ms = 0, elapsed_ms = 0;
  };
  std::map<std::string, step_row> steps_;
  std::vector<std::string> order_;
  std::size_t step_w_ = 12;             // the live view's step column
  std::vector<std::string> governance_; // skipped / degraded / shed / escalated / pressure lines, in order
  std::string status_ = "running", reason_;
  std::int64_t elapsed_ms_ = 0, calls_ = 0, tokens_ = 0;
  std::vector<std::filesystem::path> artifacts_;
};

} // namespace squad
