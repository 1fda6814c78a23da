// A WebSocket session's flow policy: deltas give way to a slow reader, lifecycle events never do.
#include "runtime/server/ws_flow.hpp"

#include <catch2/catch.hpp>

using squad::server::ws_flow;

TEST_CASE("ws_flow: deltas are dropped while the queue is at lag_at; the next message sent carries the count") {
  ws_flow f{4};
  f.track("r1");
  auto d = f.on_event("r1", true, false, 3);
  CHECK(d.send);
  CHECK(d.lagged == 0);
  for (int i = 0; i < 5; ++i) { // the client is behind: 4, 5, ... queued
    auto x = f.on_event("r1", true, false, 4 + static_cast<std::size_t>(i));
    CHECK(x.tracked);
    CHECK_FALSE(x.send);
  }
  auto next = f.on_event("r1", true, false, 1); // caught up: this delta goes, after a marker for the 5 dropped
  CHECK(next.send);
  CHECK(next.lagged == 5);
  CHECK(f.on_event("r1", true, false, 1).lagged == 0); // counted once
}

TEST_CASE("ws_flow: lifecycle events are sent however full the queue is, and carry the lagged count") {
  ws_flow f{2};
  f.track("r1");
  CHECK_FALSE(f.on_event("r1", true, false, 100).send);
  CHECK_FALSE(f.on_event("r1", true, false, 100).send);
  auto completed = f.on_event("r1", false, false, 100);
  CHECK(completed.send);
  CHECK(completed.lagged == 2);
  auto end = f.on_event("r1", false, true, 100);
  CHECK(end.send);
  CHECK_FALSE(f.tracks("r1")); // the run ended: its tracking too
  CHECK_FALSE(f.on_event("r1", false, false, 0).tracked);
}

TEST_CASE("ws_flow: runs are counted apart; an untracked run is not this session's") {
  ws_flow f{1};
  f.track("a");
  f.track("b");
  CHECK(f.runs() == 2);
  CHECK_FALSE(f.on_event("a", true, false, 5).send);
  auto b = f.on_event("b", false, false, 5);
  CHECK(b.send);
  CHECK(b.lagged == 0); // a's drops are a's
  CHECK(f.on_event("a", false, false, 5).lagged == 1);
  CHECK_FALSE(f.on_event("zzz", false, false, 0).tracked);
  f.untrack("a");
  CHECK(f.runs() == 1);
}
