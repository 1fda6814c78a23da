#pragma once
// CAF's scheduler replaced by the io threads: actors are resumed by the same Asio threads that run every socket,
// so a call from a client to the actors and back to the upstream and the client never changes threads.
//
// Why: on a small machine each crossing between an io thread and a CAF worker is a thread wake-up (25 us p50
// tuned) or a spinning worker that holds a core the io thread, the client and the upstream need; at one
// connection that contention is the whole latency tail (docs/architecture.md, section 4).
//
// How: every resumable CAF schedules (an actor with new mail) joins a FIFO of jobs, and a handler that runs the
// oldest job is given to the io_context. From an io thread the handler is deferred: it joins the back of the
// io_context's queue once the current handler returns, without waking another thread (with one io thread a post
// does the same); from any other thread (CAF's clock, a test's main thread) it is posted, which wakes an io
// thread. An actor runs at most `max_throughput` messages per turn and then queues again, behind the sockets'
// handlers.
// Actors must not block: a blocking actor stalls every socket of its thread (use `runtime.scheduler: caf`).
#include <caf/actor_system_config.hpp>

namespace squad::net {

class io_runtime;

/// Makes the actor system built from `cfg` run its actors on `io`'s threads. `io` must outlive that actor
/// system (declare it first), and the system must not be destroyed on one of `io`'s threads: stopping it waits
/// for the actors' queued turns, then stops and joins `io`'s threads (io_runtime::stop), so no io handler (a
/// late upstream reply) runs against a system that is gone; jobs never run are released as CAF's own
/// scheduler releases them.
void run_actors_on_io_threads(caf::actor_system_config& cfg, io_runtime& io, std::size_t max_throughput = 64);

} // namespace squad::net
