#include "runtime/host/run_journal.hpp"

#include <caf/scoped_actor.hpp>

#include <random>
#include <unistd.h>

namespace squad {

using json = nlohmann::json;

namespace {

std::string make_instance() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::mt19937_64 rng{std::random_device{}()};
  char buf[320];
  std::snprintf(buf, sizeof buf, "%s:%d:%06llx", host, static_cast<int>(getpid()),
                static_cast<unsigned long long>(rng() & 0xffffff));
  return buf;
}

} // namespace

std::shared_ptr<run_journal> run_journal::open(caf::actor_system& sys, const storage_config& cfg) {
  auto db = open_store(cfg);
  return db ? std::make_shared<run_journal>(sys, cfg, std::move(db)) : nullptr;
}

std::shared_ptr<store::store> run_journal::open_store(const storage_config& cfg) {
  if (cfg.url == "none")
    return nullptr;
  return store::store::open(cfg.url);
}

run_journal::run_journal(caf::actor_system& sys, const storage_config& cfg, std::shared_ptr<store::store> db)
    : sys_(sys), db_(std::move(db)),
      queue_(std::make_shared<store::write_queue>(static_cast<std::size_t>(cfg.queue_limit))),
      instance_(make_instance()), lease_(cfg.lease) {
  writer_options o;
  o.db = db_;
  o.queue = queue_;
  o.spool = std::make_shared<store::spool>(cfg.spool, static_cast<std::uint64_t>(cfg.spool_limit));
  o.instance = instance_;
  o.lease = cfg.lease;
  o.retention = cfg.retention;
  o.on_orphans = [this](std::vector<store::run_row> rows) {
    std::vector<std::pair<std::function<void(std::vector<store::run_row>)>, std::vector<store::run_row>>> calls;
    {
      std::lock_guard<std::mutex> g{m_};
      std::map<std::string, std::vector<store::run_row>> by_kind;
      for (auto& r : rows)
        by_kind[r.kind].push_back(std::move(r));
      for (auto& [kind, list] : by_kind) {
        auto h = handlers_.find(kind);
        if (h != handlers_.end())
          calls.emplace_back(h->second, std::move(list));
        else
          waiting_.insert(waiting_.end(), list.begin(), list.end());
      }
    }
    for (auto& [fn, list] : calls)
      fn(std::move(list));
  };
  o.claim_kinds = [this] {
    std::lock_guard<std::mutex> g{m_};
    std::vector<std::string> kinds;
    for (auto& [k, fn] : handlers_)
      kinds.push_back(k);
    return kinds;
  };
  writer_ = spawn_store_writer(sys, std::move(o));
}

run_journal::~run_journal() {
  flush();
  try { // a clean stop hands this process's unfinished runs on at once, not a lease from now
    db_->renew(instance_, 0);
  } catch (const store::store_error&) {
  }
  caf::anon_send_exit(writer_, caf::exit_reason::user_shutdown);
}

std::int64_t run_journal::lease_until() const {
  return unix_ms() + lease_.count();
}

void run_journal::started(store::run_row r) {
  r.instance = instance_;
  r.lease_until = lease_until();
  store::write_batch b;
  b.runs.push_back(std::move(r));
  queue_->push(std::move(b));
}

void run_journal::event(const std::string& run_id, const json& ev) {
  store::write_batch b;
  b.events.push_back({run_id, ev.value("seq", std::int64_t{0}), ev.value("type", ""),
                      ev.dump(-1, ' ', false, json::error_handler_t::replace)});
  queue_->push(std::move(b));
}

void run_journal::state(const std::string& id, const std::string& state, const std::string& reason,
                        const json& summary) {
  store::write_batch b;
  b.updates.push_back(
      {id, state, reason, summary.dump(-1, ' ', false, json::error_handler_t::replace), unix_ms() / 1000});
  queue_->push(std::move(b));
}

void run_journal::audit(store::audit_row r) {
  store::write_batch b;
  b.audit.push_back(std::move(r));
  queue_->push(std::move(b));
}

void run_journal::audit(std::vector<store::audit_row> rows) {
  store::write_batch b;
  b.audit = std::move(rows);
  queue_->push(std::move(b));
}

void run_journal::limiter_state(store::limiter_row r) {
  store::write_batch b;
  b.limiters.push_back(std::move(r));
  queue_->push(std::move(b));
}

bool run_journal::flush() {
  caf::scoped_actor self{sys_};
  bool ok = false;
  self->request(writer_, std::chrono::seconds{30}, atoms::done_v)
      .receive([&](bool took) { ok = took; }, [&](const caf::error&) { ok = false; });
  return ok;
}

void run_journal::on_orphans(const std::string& kind, std::function<void(std::vector<store::run_row>)> fn) {
  std::vector<store::run_row> mine;
  {
    std::lock_guard<std::mutex> g{m_};
    handlers_[kind] = fn;
    for (auto it = waiting_.begin(); it != waiting_.end();)
      if (it->kind == kind) {
        mine.push_back(std::move(*it));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
  }
  if (!mine.empty())
    fn(std::move(mine));
  caf::anon_send(writer_, atoms::query_v); // claim now, not a third of a lease from now
}

std::optional<store::run_row> run_journal::claim(const std::string& id, std::int64_t* held_until) {
  auto now = unix_ms();
  if (auto r = db_->claim(id, instance_, now, lease_until()))
    return r;
  if (held_until)
    if (auto r = db_->run(id); r && !r->finished())
      *held_until = r->lease_until;
  return std::nullopt;
}

std::vector<json> event_bodies(const std::vector<store::event_row>& rows) {
  std::vector<json> out;
  out.reserve(rows.size());
  for (auto& r : rows) {
    auto j = json::parse(r.body, nullptr, false);
    if (!j.is_discarded())
      out.push_back(std::move(j));
  }
  return out;
}

run_resume resume_from(const std::vector<json>& events) {
  run_resume r;
  r.active = true;
  for (auto& ev : events) {
    r.seq = std::max(r.seq, ev.value("seq", std::int64_t{0}));
    r.at_ms = std::max(r.at_ms, ev.value("at_ms", std::int64_t{0}));
    auto type = ev.value("type", "");
    auto step = ev.value("step_id", "");
    static const json empty = json::object();
    auto& d = ev.contains("data") && ev["data"].is_object() ? ev["data"] : empty;
    if (type == "step.completed" || type == "step.failed" || type == "step.skipped") {
      step_result s;
      s.step_id = step;
      s.status = d.value("status", type.substr(5));
      s.text = d.value("text", "");
      s.error = d.value("error", "");
      for (auto& o : d.value("outputs", json::array())) {
        step_output x;
        x.persona = o.value("persona", "");
        x.ok = o.value("ok", false);
        x.text = o.value("text", "");
        x.error = o.value("error", "");
        x.served_by.provider = o.value("provider", "");
        x.served_by.model = o.value("model", "");
        x.usage.prompt_tokens = o.value("prompt_tokens", std::int64_t{0});
        x.usage.completion_tokens = o.value("completion_tokens", std::int64_t{0});
        x.latency_ms = o.value("latency_ms", std::int64_t{0});
        x.simulated = o.value("simulated", false);
        x.partial = o.value("partial", false);
        r.calls += o.value("attempts", std::int64_t{0});
        r.tokens += x.usage.prompt_tokens + x.usage.completion_tokens;
        if (auto c = o.find("cost_usd"); c != o.end() && c->is_number())
          r.usd += c->get<double>();
        s.outputs.push_back(std::move(x));
      }
      r.done[step] = std::move(s);
    } else if (type == "step.awaiting_feedback" && r.done.count(step)) {
      r.done[step].status = "awaiting_feedback";
    } else if (type == "step.feedback" && r.done.count(step)) {
      r.done[step].status = "completed";
      r.done[step].text += "\n\n### Feedback from a person on " + step + "\n" + d.value("text", "") + "\n";
    } else if (type == "step.feedback_timeout" && r.done.count(step)) {
      r.done[step].status = "completed";
    }
  }
  return r;
}

} // namespace squad
