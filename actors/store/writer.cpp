#include "actors/store/writer.hpp"
#include "runtime/metrics/registry.hpp"

#include <chrono>
#include <iostream>

namespace squad {

namespace {

metrics::gauge_family queue_rows{"squad_store_queue_rows",
                                 "Rows waiting for the store's writer (run journal, audit), including a batch kept "
                                 "for retry while the database is unreachable"};
metrics::counter_family rows_written{"squad_store_rows_written_total",
                                     "Rows the store's writer committed (idempotent: a replay is counted again)"};
metrics::counter_family write_failures{"squad_store_write_failures_total",
                                       "Store writes that failed, by reason: unavailable (kept and retried) or "
                                       "rejected (a row the database refused, logged by key)"};
metrics::gauge_family spool_bytes{
    "squad_store_spool_bytes", "Bytes in the store's spool file: rows kept on disk while the database is unreachable"};
metrics::gauge_family store_up{"squad_store_up", "1 when the store's last write or read of the writer succeeded"};

struct writer_state {
  writer_options opts;
  store::write_batch retry; // a batch the database could not take yet (kept in order, before newer rows)
  bool retry_armed = false; // a retry tick is scheduled
  bool up = true;           // the last write went through
  std::int64_t next_prune_ms = 0;
  static inline const char* name = "squad.store_writer";
};

using writer_self = store_writer_actor::stateful_pointer<writer_state>;

template <class Rows, class Key>
void write_rows_alone(writer_self self, const Rows& rows, Key key,
                      void (*put)(store::write_batch&, const typename Rows::value_type&)) {
  for (auto& r : rows) {
    store::write_batch one;
    put(one, r);
    try {
      self->state.opts.db->write(one);
      rows_written.with().inc();
    } catch (const store::store_unavailable&) {
      throw;
    } catch (const store::store_error& e) {
      write_failures.with({{"reason", "rejected"}}).inc();
      std::cerr << "squad store: a row was rejected and is not kept (" << key(r) << "): " << e.what() << "\n";
    }
  }
}

// Writes `b`; true when it is in the store. A rejected batch goes in row by row (see the header).
bool commit(writer_self self, store::write_batch& b) {
  auto& db = *self->state.opts.db;
  try {
    try {
      db.write(b);
      rows_written.with().inc(static_cast<double>(b.size()));
    } catch (const store::store_unavailable&) {
      throw;
    } catch (const store::store_error&) {
      // Runs first (events and audit refer to them only by id), then the rest; one row per transaction.
      write_rows_alone(
          self, b.runs, [](auto& r) { return "run " + r.id; },
          [](store::write_batch& o, const store::run_row& r) { o.runs.push_back(r); });
      write_rows_alone(
          self, b.events, [](auto& r) { return "event " + r.run_id + "#" + std::to_string(r.seq); },
          [](store::write_batch& o, const store::event_row& r) { o.events.push_back(r); });
      write_rows_alone(
          self, b.updates, [](auto& r) { return "run state " + r.id; },
          [](store::write_batch& o, const store::run_update& r) { o.updates.push_back(r); });
      write_rows_alone(
          self, b.audit, [](auto& r) { return "audit " + r.id; },
          [](store::write_batch& o, const store::audit_row& r) { o.audit.push_back(r); });
      write_rows_alone(
          self, b.limiters, [](auto& r) { return "limiter state " + r.provider; },
          [](store::write_batch& o, const store::limiter_row& r) { o.limiters.push_back(r); });
    }
    store_up.with().set(1);
    if (!self->state.up)
      std::cerr << "squad store: " << db.url() << " is back; " << b.size() << " kept row(s) written\n";
    self->state.up = true;
    b = {};
    return true;
  } catch (const store::store_unavailable& e) {
    if (self->state.up)
      std::cerr << "squad store: " << e.what() << "; " << b.size() << " row(s) kept, retrying every second\n";
    write_failures.with({{"reason", "unavailable"}}).inc();
    store_up.with().set(0);
    self->state.up = false;
    return false;
  }
}

// The spool's batches into the database, in order; true when it is empty after.
bool replay_spool(writer_self self) {
  auto& sp = self->state.opts.spool;
  if (!sp || sp->empty())
    return true;
  auto batches = sp->read_all();
  store::write_batch all;
  for (auto& b : batches)
    all.append(std::move(b));
  auto rows = all.size();
  if (!commit(self, all))
    return false;
  sp->clear();
  std::cerr << "squad store: the spool's " << rows << " row(s) are in " << self->state.opts.db->url() << "\n";
  return true;
}

bool flush(writer_self self) {
  auto& st = self->state;
  st.retry.append(st.opts.queue->take());
  bool ok = replay_spool(self);
  if (ok)
    ok = st.retry.empty() || commit(self, st.retry);
  if (!ok && !st.retry.empty() && st.opts.spool && st.opts.spool->append(st.retry))
    st.retry = {}; // on disk now, behind what the spool held: replayed in order
  if (st.opts.spool) {
    spool_bytes.with().set(static_cast<double>(st.opts.spool->bytes()));
    st.opts.queue->spool_bytes = st.opts.spool->bytes();
  }
  st.opts.queue->store_up = st.up;
  ok = ok && st.retry.empty();
  queue_rows.with().set(static_cast<double>(st.retry.size() + st.opts.queue->depth()));
  if (!ok && !st.retry_armed) {
    st.retry_armed = true;
    self->delayed_send(self, std::chrono::seconds{1}, atoms::tick_v);
  }
  return ok;
}

void housekeeping(writer_self self) {
  auto& st = self->state;
  auto now = unix_ms();
  try {
    st.opts.db->renew(st.opts.instance, now + st.opts.lease.count());
    for (auto& kind : st.opts.claim_kinds ? st.opts.claim_kinds() : std::vector<std::string>{})
      if (auto orphans = st.opts.db->claim_orphans(st.opts.instance, kind, now, now + st.opts.lease.count());
          !orphans.empty() && st.opts.on_orphans)
        st.opts.on_orphans(std::move(orphans));
    if (now >= st.next_prune_ms) {
      st.next_prune_ms = now + 3600 * 1000;
      if (auto n = st.opts.db->prune((now - st.opts.retention.count()) / 1000); n > 0)
        std::cout << "squad store: retention pruned " << n << " finished run(s)" << std::endl;
    }
  } catch (const store::store_error& e) {
    store_up.with().set(0);
    std::cerr << "squad store: lease renewal: " << e.what() << "\n";
  }
}

store_writer_actor::behavior_type writer(writer_self self, writer_options opts) {
  self->state.opts = std::move(opts);
  store_up.with().set(1);
  if (auto& sp = self->state.opts.spool; sp && !sp->empty()) { // left by a process that died during an outage
    std::cerr << "squad store: replaying " << sp->bytes() << " spooled byte(s) from " << sp->path() << "\n";
    self->send(self, atoms::tick_v);
  }
  self->send(self, atoms::report_v);
  return {
      [self](atoms::tick) {
        self->state.retry_armed = false;
        flush(self);
      },
      [self](atoms::report) {
        housekeeping(self);
        self->delayed_send(self, self->state.opts.lease / 3, atoms::report_v);
      },
      [self](atoms::query) { housekeeping(self); },
      [self](atoms::done) { return flush(self); },
  };
}

} // namespace

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

store_writer_actor spawn_store_writer(caf::actor_system& sys, writer_options opts) {
  auto queue = opts.queue;
  auto w = sys.spawn<caf::detached>(writer, std::move(opts));
  queue->set_wake([weak = caf::actor_cast<caf::weak_actor_ptr>(w)] {
    if (auto strong = caf::actor_cast<caf::actor>(weak))
      caf::anon_send(caf::actor_cast<store_writer_actor>(strong), atoms::tick_v);
  });
  return w;
}

} // namespace squad
