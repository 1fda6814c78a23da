#include "runtime/store/spool.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace squad::store {

using json = nlohmann::json;

namespace {

json run_json(const run_row& r) {
  return {{"id", r.id},           {"owner", r.owner},     {"task", r.task},         {"workflow", r.workflow},
          {"request", r.request}, {"state", r.state},     {"reason", r.reason},     {"summary", r.summary},
          {"created", r.created}, {"updated", r.updated}, {"instance", r.instance}, {"lease_until", r.lease_until},
          {"kind", r.kind}};
}

run_row run_of(const json& j) {
  run_row r;
  r.id = j.at("id"), r.owner = j.at("owner"), r.task = j.at("task"), r.workflow = j.at("workflow");
  r.request = j.at("request"), r.state = j.at("state"), r.reason = j.at("reason"), r.summary = j.at("summary");
  r.created = j.at("created"), r.updated = j.at("updated"), r.instance = j.at("instance");
  r.lease_until = j.at("lease_until"), r.kind = j.at("kind");
  return r;
}

json audit_json(const audit_row& a) {
  return {{"id", a.id},
          {"time_ms", a.time_ms},
          {"kind", a.kind},
          {"request_id", a.request_id},
          {"run_id", a.run_id},
          {"step", a.step},
          {"key_id", a.key_id},
          {"persona", a.persona},
          {"provider", a.provider},
          {"model", a.model},
          {"status", a.status},
          {"error_class", a.error_class},
          {"trace_id", a.trace_id},
          {"prompt_tokens", a.prompt_tokens},
          {"completion_tokens", a.completion_tokens},
          {"cached_tokens", a.cached_tokens},
          {"latency_ms", a.latency_ms},
          {"fallbacks", a.fallbacks},
          {"cost_usd", a.cost_usd},
          {"request_body", a.request_body},
          {"response_body", a.response_body}};
}

audit_row audit_of(const json& j) {
  audit_row a;
  a.id = j.at("id"), a.time_ms = j.at("time_ms"), a.kind = j.at("kind"), a.request_id = j.at("request_id");
  a.run_id = j.at("run_id"), a.step = j.at("step"), a.key_id = j.at("key_id"), a.persona = j.at("persona");
  a.provider = j.at("provider"), a.model = j.at("model"), a.status = j.at("status");
  a.error_class = j.at("error_class"), a.trace_id = j.at("trace_id"), a.prompt_tokens = j.at("prompt_tokens");
  a.completion_tokens = j.at("completion_tokens"), a.cached_tokens = j.at("cached_tokens");
  a.latency_ms = j.at("latency_ms"), a.fallbacks = j.at("fallbacks"), a.cost_usd = j.at("cost_usd");
  a.request_body = j.at("request_body"), a.response_body = j.at("response_body");
  return a;
}

} // namespace

std::string to_line(const write_batch& b) {
  json runs = json::array(), updates = json::array(), events = json::array(), audit = json::array();
  for (auto& r : b.runs)
    runs.push_back(run_json(r));
  for (auto& u : b.updates)
    updates.push_back(
        {{"id", u.id}, {"state", u.state}, {"reason", u.reason}, {"summary", u.summary}, {"updated", u.updated}});
  for (auto& e : b.events)
    events.push_back({{"run_id", e.run_id}, {"seq", e.seq}, {"type", e.type}, {"body", e.body}});
  for (auto& a : b.audit)
    audit.push_back(audit_json(a));
  json limiters = json::array();
  for (auto& l : b.limiters)
    limiters.push_back({{"provider", l.provider}, {"body", l.body}, {"updated_ms", l.updated_ms}});
  json j{{"runs", runs}, {"updates", updates}, {"events", events}, {"audit", audit}, {"limiters", limiters}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<write_batch> from_line(const std::string& line) {
  auto j = json::parse(line, nullptr, false);
  if (!j.is_object())
    return std::nullopt;
  try {
    write_batch b;
    for (auto& r : j.at("runs"))
      b.runs.push_back(run_of(r));
    for (auto& u : j.at("updates"))
      b.updates.push_back({u.at("id"), u.at("state"), u.at("reason"), u.at("summary"), u.at("updated")});
    for (auto& e : j.at("events"))
      b.events.push_back({e.at("run_id"), e.at("seq"), e.at("type"), e.at("body")});
    for (auto& a : j.at("audit"))
      b.audit.push_back(audit_of(a));
    if (j.contains("limiters")) // absent in a spool an older squad wrote
      for (auto& l : j.at("limiters"))
        b.limiters.push_back({l.at("provider"), l.at("body"), l.at("updated_ms")});
    return b;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

spool::spool(std::string path, std::uint64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) // left by a process that died during an outage
    bytes_ = static_cast<std::uint64_t>(st.st_size);
}

bool spool::open_file() {
  if (fd_ >= 0)
    return true;
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0 && !warned_) {
    warned_ = true;
    std::fprintf(stderr, "squad store: cannot open the spool file %s: %s (storage.spool: a writable path)\n",
                 path_.c_str(), std::strerror(errno));
  }
  if (fd_ < 0)
    return false;
  struct stat st {};
  char last = '\n';
  if (::fstat(fd_, &st) == 0 && st.st_size > 0 && ::pread(fd_, &last, 1, st.st_size - 1) == 1 && last != '\n')
    if (::write(fd_, "\n", 1) == 1) // a torn line left by a crash ends here, or it would swallow the next batch
      ++bytes_;
  return true;
}

spool::~spool() {
  if (fd_ >= 0)
    ::close(fd_);
}

bool spool::append(const write_batch& b) {
  auto line = to_line(b) + "\n";
  if (bytes_ + line.size() > max_bytes_ || !open_file())
    return false;
  std::size_t done = 0;
  while (done < line.size()) {
    auto n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) { // a partial line stays as a torn line, skipped on reading; the batch is not kept here
      if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(bytes_)) != 0)
        bytes_ += done;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd_) != 0)
    return false;
  bytes_ += line.size();
  return true;
}

std::vector<write_batch> spool::read_all() const {
  std::vector<write_batch> out;
  std::ifstream in{path_};
  std::string line;
  while (std::getline(in, line))
    if (auto b = from_line(line))
      out.push_back(std::move(*b));
  return out;
}

void spool::clear() { // no file is left once its rows are in the database
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
  if (::unlink(path_.c_str()) == 0 || errno == ENOENT)
    bytes_ = 0;
}

} // namespace squad::store
