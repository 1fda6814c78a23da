// runtime.scheduler io: CAF actors resumed by the io threads of an io_runtime (real threads, real CAF).
#include "runtime/net/http_client.hpp"
#include "runtime/net/io_scheduler.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

using namespace std::chrono_literals;
using squad::millis;
using squad::net::io_runtime;

namespace {

// The id of the thread that runs `io`'s handlers (io_runtime with one thread).
std::thread::id io_thread_of(io_runtime& io) {
  std::promise<std::thread::id> id;
  boost::asio::post(*io.context(), [&id] { id.set_value(std::this_thread::get_id()); });
  auto f = id.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

caf::behavior where_am_i(caf::event_based_actor*) {
  return {
      [](caf::get_atom) { return std::hash<std::thread::id>{}(std::this_thread::get_id()); },
  };
}

struct count_state {
  std::int64_t next = 0; // the number of messages seen, each the one expected next
};

// Counts messages that came in the order sent; answers the count to whoever asks.
caf::behavior counter(caf::stateful_actor<count_state>* self) {
  return {
      [self](std::int64_t i) {
        if (i == self->state.next)
          ++self->state.next;
      },
      [self](caf::get_atom) { return self->state.next; },
  };
}

struct scheduled_system {
  io_runtime io;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  explicit scheduled_system(millis spin = millis{0}, int threads = 1, std::size_t turn = 64) : io(threads, spin) {
    squad::net::run_actors_on_io_threads(cfg, io, turn);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

} // namespace

TEST_CASE("actors run on the io thread, and a request from outside is answered", "[io_scheduler]") {
  // Intent: with the io scheduler no CAF worker exists: the actor's handler runs on the io_runtime's thread.
  scheduled_system s;
  auto io_id = io_thread_of(s.io);
  auto a = s.sys->spawn(where_am_i);
  caf::scoped_actor self{*s.sys};
  std::size_t ran_on = 0;
  self->request(a, 10s, caf::get_atom_v)
      .receive([&](std::size_t id) { ran_on = id; }, [&](caf::error& err) { FAIL(to_string(err)); });
  CHECK(ran_on == std::hash<std::thread::id>{}(io_id));
  CHECK(ran_on != std::hash<std::thread::id>{}(std::this_thread::get_id()));
  self->send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("many messages through a short turn arrive complete and in order, on one and on two io threads",
          "[io_scheduler]") {
  // Intent: an actor with more mail than its turn (here 8 messages) is put back in the queue and resumed until
  // its mailbox is empty; nothing is lost or reordered, with one thread and with two taking turns.
  for (int threads : {1, 2}) {
    INFO("io threads: " << threads);
    scheduled_system s{millis{0}, threads, 8};
    auto c = s.sys->spawn(counter);
    constexpr std::int64_t n = 20000;
    // Sent from an io thread (deferred there) and from this thread (posted), interleaved per sender.
    auto from_io = s.sys->spawn([c](caf::event_based_actor* self) -> caf::behavior {
      return {[self, c](caf::ok_atom) {
        for (std::int64_t i = 0; i < n; ++i)
          self->send(c, i);
      }};
    });
    caf::scoped_actor self{*s.sys};
    self->send(from_io, caf::ok_atom_v);
    std::int64_t got = -1;
    for (int tries = 0; tries < 500 && got != n; ++tries) // polls the answer, not the time: each ask is a message
      self->request(c, 10s, caf::get_atom_v)
          .receive([&](std::int64_t x) { got = x; }, [&](caf::error& err) { FAIL(to_string(err)); });
    CHECK(got == n);
    self->send_exit(c, caf::exit_reason::user_shutdown);
    self->send_exit(from_io, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("timers and timeouts fire through CAF's clock thread onto the io thread", "[io_scheduler]") {
  // Intent: delayed messages and request timeouts (CAF's clock) reach actors that live on the io threads.
  scheduled_system s{millis{1}};
  // Holds every request's promise and never answers.
  auto silent = s.sys->spawn([](caf::event_based_actor* me) -> caf::behavior {
    auto held = std::make_shared<std::vector<caf::response_promise>>();
    return {[me, held](caf::get_atom) { held->push_back(me->make_response_promise()); }};
  });
  caf::scoped_actor self{*s.sys};
  self->delayed_send(self, 20ms, caf::ok_atom_v);
  bool delayed = false;
  self->receive([&](caf::ok_atom) { delayed = true; }, caf::after(10s) >> [] {});
  CHECK(delayed);
  // An actor on the io thread whose request to a silent actor times out.
  auto asker = s.sys->spawn([silent](caf::event_based_actor* me) -> caf::behavior {
    return {[me, silent](caf::ok_atom) -> caf::result<std::string> {
      auto rp = me->make_response_promise<std::string>();
      me->request(silent, 30ms, caf::get_atom_v)
          .then([rp]() mutable { rp.deliver(std::string{"answered"}); },
                [rp](caf::error& err) mutable { rp.deliver(to_string(err)); });
      return rp;
    }};
  });
  std::string outcome;
  self->request(asker, 10s, caf::ok_atom_v)
      .receive([&](std::string& x) { outcome = x; },
               [&](caf::error& err) { outcome = "asker failed: " + to_string(err); });
  CHECK_THAT(outcome, Catch::Contains("request_timeout"));
  self->send_exit(asker, caf::exit_reason::user_shutdown);
  self->send_exit(silent, caf::exit_reason::user_shutdown);
}

TEST_CASE("shutting the actor system down lets its actors finish, then stops the io threads", "[io_scheduler]") {
  // Intent: the system waits for its actors (which need the io threads to end), then stops the io_context, so
  // no io handler that still holds an actor handle (a late upstream reply) runs against a system that is gone.
  for (auto spin : {millis{0}, millis{2}}) {
    INFO("io_spin " << spin.count() << "ms");
    scheduled_system s{spin};
    std::atomic<int> ended{0};
    for (int i = 0; i < 50; ++i) {
      auto a = s.sys->spawn([&ended](caf::event_based_actor* self) -> caf::behavior {
        self->attach_functor([&ended] { ++ended; });
        return {[](caf::get_atom) {}};
      });
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    }
    CHECK_FALSE(s.io.context()->stopped());
    s.sys.reset(); // waits for every actor, then stops the scheduler
    CHECK(ended == 50);
    CHECK(s.io.context()->stopped());
  }
}

TEST_CASE("an io_runtime that polls before it sleeps runs work posted from other threads and stops at once",
          "[io_scheduler]") {
  // Intent: the spinning loop neither loses posted handlers nor keeps the threads alive after stop().
  io_runtime io{2, millis{5}};
  std::atomic<int> ran{0};
  std::promise<void> all;
  constexpr int n = 5000;
  std::thread poster([&] {
    for (int i = 0; i < n; ++i)
      boost::asio::post(*io.context(), [&] {
        if (++ran == n)
          all.set_value();
      });
  });
  poster.join();
  REQUIRE(all.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(ran == n);
  auto t0 = std::chrono::steady_clock::now();
  io.stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(io.context()->stopped());
}
