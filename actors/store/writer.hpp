#pragma once
// The store's writer: one detached actor (its own thread: SQLite and PostgreSQL calls block) that takes what the
// write_queue holds and commits it as one transaction per wake-up (group commit), so writes never sit on a
// request's path. On a transport failure (PostgreSQL down) the batch goes to the spool file (fsync'd), and so
// does every batch after it while the spool holds anything (order is kept); every second the spool is replayed
// in order and emptied once the database took it all. Nothing is dropped (a full spool keeps rows in memory),
// and a replay writes nothing twice (the store's keys). A spool left by a process that died is replayed at start. A
// batch the database rejects is retried row by row: a row rejected alone is logged (by table and key, never its
// content) and counted, and the rest go in. Every `lease / 3` it renews this process's run leases, and asks for
// orphaned runs (whose process stopped renewing them), handing them to `on_orphans`; once an hour, and at its start, it
// prunes past `retention`.
//
// Protocol (store_writer_actor):
//   (tick)        flush now (also what the queue's wake-up sends)
//   (report)      internal: the lease / claim / prune timer
//   (query)       renew and claim now (a resume handler was just set)
//   (done) -> bool flush, then answer whether the store took everything (shutdown, tests)
#include "actors/messages.hpp"
#include "runtime/store/spool.hpp"
#include "runtime/store/write_queue.hpp"

#include <functional>

namespace squad {

using store_writer_actor = caf::typed_actor<caf::reacts_to<atoms::tick>, caf::reacts_to<atoms::report>,
                                            caf::reacts_to<atoms::query>, caf::replies_to<atoms::done>::with<bool>>;

struct writer_options {
  std::shared_ptr<store::store> db;
  std::shared_ptr<store::write_queue> queue;
  std::shared_ptr<store::spool> spool;       ///< null: a batch the database cannot take waits in memory only
  std::string instance;                      ///< this process's name in run leases
  millis lease{10000};                       ///< how long a lease lasts without renewal
  millis retention{30LL * 24 * 3600 * 1000}; ///< finished runs older than this are pruned
  /// Called on the writer's thread with the orphaned runs this process just took over (may start actors).
  std::function<void(std::vector<store::run_row>)> on_orphans;
  /// The kinds of run this process resumes (asked before each claim; none: it claims nothing).
  std::function<std::vector<std::string>()> claim_kinds;
};

/// Spawns the writer (detached) and points the queue's wake-up at it.
store_writer_actor spawn_store_writer(caf::actor_system& sys, writer_options opts);

/// Unix time in milliseconds and seconds (wall clock: leases and retention are shared across processes).
std::int64_t unix_ms();

} // namespace squad
