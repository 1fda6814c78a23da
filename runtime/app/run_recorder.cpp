#include "runtime/app/run_recorder.hpp"
#include "runtime/host/event_json.hpp"

#include <algorithm>

#include <cstdio>
#include <fstream>
#include <ostream>

namespace squad {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string seconds(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

// `s` in a column `n` wide; a longer `s` still gets one space before the next column (never run together).
std::string pad(std::string s, std::size_t n) {
  s.append(s.size() < n ? n - s.size() : 1, ' ');
  return s;
}

std::string two_digits(std::int64_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02lld", static_cast<long long>(i));
  return buf;
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out)
    throw std::runtime_error("cannot write " + p.string());
}

} // namespace

run_recorder::run_recorder(fs::path out_dir, std::string task, std::string workflow, std::ostream* term)
    : out_dir_(std::move(out_dir)), task_(std::move(task)), workflow_(std::move(workflow)), term_(term) {
  fs::create_directories(out_dir_);
}

bool run_recorder::on_event(const run_event& ev) {
  auto data = json::parse(ev.data_json, nullptr, false);
  if (data.is_discarded())
    data = json::object();
  run_id_ = ev.run_id;
  events_.push_back(event_json(ev)); // the API's schema (step_id, not step)
  static const char* governance[] = {"call.skipped",   "step.skipped",     "step.degraded",    "call.shed",
                                     "step.escalated", "pressure.changed", "provider.breaker", "provider.throttled",
                                     "step.partial",   "call.cached",      "call.budget_spent"};
  for (auto* g : governance)
    if (ev.type == g)
      governance_.push_back((ev.step_id.empty() ? std::string() : ev.step_id + ": ") + ev.message);
  if (ev.type == "step.started") {
    auto& row = steps_[ev.step_id];
    if (row.index == 0)
      order_.push_back(ev.step_id);
    row.index = data.value("index", 0);
    row.status = "running";
    row.personas = ev.persona;
    row.started_ms = ev.at_ms;
  } else if (ev.type == "step.completed" || ev.type == "step.failed" || ev.type == "step.skipped") {
    auto& row = steps_[ev.step_id];
    if (row.index == 0) {
      order_.push_back(ev.step_id);
      row.index = data.value("index", 0);
    }
    row.status = data.value("status", ev.type.substr(5));
    row.elapsed_ms = ev.at_ms - row.started_ms;
    row.note = data.value("error", "");
    std::string served;
    for (auto& o : data.value("outputs", json::array())) {
      row.tokens += o.value("prompt_tokens", 0) + o.value("completion_tokens", 0);
      if (o.value("ok", false))
        served += (served.empty() ? "" : ",") + o.value("provider", "") + "/" + o.value("model", "");
    }
    row.served_by = served;
    write_step(ev, data);
  } else if (ev.type == "run.completed" || ev.type == "run.failed") {
    status_ = ev.type == "run.completed" ? "completed" : "failed";
    reason_ = data.value("reason", "");
    elapsed_ms_ = data.value("elapsed_ms", ev.at_ms);
    calls_ = data.value("calls", 0);
    tokens_ = data.value("tokens", 0);
  }
  print(ev, data);
  return status_ != "running";
}

void run_recorder::fail(const std::string& reason) {
  status_ = "failed";
  reason_ = reason;
}

void run_recorder::write_step(const run_event& ev, const json& data) {
  auto index = data.value("index", 0);
  auto base = two_digits(index) + "-" + ev.step_id;
  auto outputs = data.value("outputs", json::array());
  std::string md = "# " + ev.step_id + "\n\n- status: " + data.value("status", "") + "\n";
  for (auto& o : outputs) {
    md += "- " + o.value("persona", "") + ": ";
    if (o.value("ok", false))
      md += "served by " + o.value("provider", "") + "/" + o.value("model", "") +
            (o.value("simulated", false) ? " (simulated)" : "") + ", " + std::to_string(o.value("prompt_tokens", 0)) +
            " prompt + " + std::to_string(o.value("completion_tokens", 0)) + " completion tokens, " +
            seconds(o.value("latency_ms", 0)) + ", " + std::to_string(o.value("attempts", 0)) + " attempt(s)\n";
    else
      md += "failed: " + o.value("error", "") + "\n";
  }
  auto error = data.value("error", "");
  if (!error.empty())
    md += "- " + std::string(data.value("status", "") == "completed" ? "degraded: " : "reason: ") + error + "\n";
  md += "\n---\n\n" + data.value("text", "") + "\n";
  if (!governance_.empty()) { // nothing is skipped or degraded silently: every artifact names it so far
    md += "\n---\n\n## Skipped, degraded or rerouted in this run so far\n\n";
    for (auto& line : governance_)
      md += "- " + line + "\n";
  }
  auto file = out_dir_ / (base + ".md");
  write_file(file, md);
  artifacts_.push_back(file);
  if (outputs.size() > 1) // one file per persona of a parallel or cascade step
    for (auto& o : outputs) {
      if (!o.value("ok", false))
        continue;
      auto pf = out_dir_ / (base + "." + o.value("persona", "") + ".md");
      write_file(pf, "# " + ev.step_id + " / " + o.value("persona", "") + "\n\n" + o.value("text", "") + "\n");
      artifacts_.push_back(pf);
    }
}

void run_recorder::expect_steps(const std::vector<std::string>& ids) {
  for (auto& id : ids)
    step_w_ = std::max(step_w_, id.size() + 1);
}

void run_recorder::print(const run_event& ev, const json& data) {
  if (!term_)
    return;
  auto& t = *term_;
  t << pad(seconds(ev.at_ms), 8) << " ";
  if (ev.type == "step.started") {
    t << ">  " << pad(ev.step_id, step_w_) << ev.message.substr(ev.message.find(':') + 2) << "\n";
  } else if (ev.type == "step.completed" || ev.type == "step.failed" || ev.type == "step.skipped") {
    auto& row = steps_[ev.step_id];
    t << (ev.type == "step.completed" ? "ok " : ev.type == "step.failed" ? "!! " : "-- ") << pad(ev.step_id, step_w_);
    for (auto& o : data.value("outputs", json::array())) {
      if (o.value("ok", false))
        t << o.value("persona", "") << " via " << o.value("provider", "") << "/" << o.value("model", "") << " "
          << (o.value("prompt_tokens", 0) + o.value("completion_tokens", 0)) << " tok "
          << seconds(o.value("latency_ms", 0)) << "; ";
      else
        t << o.value("persona", "") << (ev.type == "step.skipped" ? " " : " FAILED: ") << o.value("error", "") << "; ";
    }
    t << "step " << seconds(row.elapsed_ms);
    if (!row.note.empty() && ev.type != "step.skipped")
      t << (ev.type == "step.completed" ? " (degraded: " : " (") << row.note << ")";
    t << "\n";
  } else {
    t << ".. " << pad(ev.type, 15) << (ev.step_id.empty() ? "" : ev.step_id + ": ") << ev.message << "\n";
  }
  t.flush();
}

int run_recorder::finish() {
  json steps = json::object();
  for (auto& [id, row] : steps_)
    steps[id] = {{"index", row.index},       {"status", row.status},
                 {"personas", row.personas}, {"served_by", row.served_by},
                 {"tokens", row.tokens},     {"elapsed_ms", row.elapsed_ms},
                 {"note", row.note}};
  json artifacts = json::array();
  for (auto& a : artifacts_)
    artifacts.push_back(a.filename().string());
  json run{{"run_id", run_id_},      {"task", task_},     {"workflow", workflow_},
           {"status", status_},      {"reason", reason_}, {"elapsed_ms", elapsed_ms_},
           {"calls", calls_},        {"tokens", tokens_}, {"steps", steps},
           {"artifacts", artifacts}, {"events", events_}};
  write_file(out_dir_ / "run.json", run.dump(2) + "\n");
  if (term_) {
    auto& t = *term_;
    // Each column as wide as its widest cell, two spaces apart.
    std::vector<std::vector<std::string>> rows{{"step", "status", "persona(s)", "served by", "tokens", "elapsed"}};
    for (auto& id : order_) {
      auto& r = steps_[id];
      rows.push_back({id, r.status, r.personas, r.served_by, std::to_string(r.tokens), seconds(r.elapsed_ms)});
    }
    std::vector<std::size_t> w(rows.front().size(), 0);
    for (auto& row : rows)
      for (std::size_t i = 0; i < row.size(); ++i)
        w[i] = std::max(w[i], row[i].size());
    t << "\n";
    for (auto& row : rows) {
      for (std::size_t i = 0; i + 1 < row.size(); ++i)
        t << pad(row[i], w[i] + 2);
      t << row.back() << "\n";
    }
    t << "\nrun " << status_ << (reason_.empty() ? "" : " (" + reason_ + ")") << " in " << seconds(elapsed_ms_) << ": "
      << calls_ << " upstream attempts, " << tokens_ << " tokens; " << artifacts_.size()
      << " artifacts and run.json in " << out_dir_.string() << "\n";
    t.flush();
  } else { // quiet: no live view, but where the run went and how it ended
    std::cout << "run " << run_id_ << " " << status_ << (reason_.empty() ? "" : " (" + reason_ + ")") << " in "
              << seconds(elapsed_ms_) << ": " << (out_dir_ / "run.json").string() << "\n";
  }
  return status_ == "completed" ? 0 : 1;
}

} // namespace squad
