// classify_attempts: the typed class of an exhausted chain, from its attempts' outcome names.
#include "actors/messages.hpp"

#include <catch2/catch.hpp>

using namespace squad;

namespace {
attempt_info tried(std::string outcome) {
  return {"p", "m", std::move(outcome), "detail says timeout", 5};
}
} // namespace

TEST_CASE("failure class: refusals of the request alone are request_refused") {
  // bad_request and context_too_long, with nothing another try could cure: the client's to fix.
  CHECK(classify_attempts({tried("bad_request")}) == failure_class::request_refused);
  CHECK(classify_attempts({tried("context_too_long"), tried("bad_request")}) == failure_class::request_refused);
  CHECK(classify_attempts({tried("bad_request"), tried("overloaded")}) == failure_class::request_refused);
}

TEST_CASE("failure class: a curable end anywhere makes the chain unavailable") {
  // A rate limit, timeout, limiter refusal or open breaker on any target: another try could succeed.
  for (auto o : {"rate_limited", "server_error", "timeout", "connect_failed", "limited", "breaker_open"})
    CHECK(classify_attempts({tried("bad_request"), tried(o)}) == failure_class::unavailable);
  CHECK(classify_attempts({}) == failure_class::unavailable);
  CHECK(classify_attempts({tried("auth_failed")}) == failure_class::unavailable);
}

TEST_CASE("failure class: the detail's words do not classify an attempt") {
  // Each attempt's detail says "timeout"; only the outcome names count.
  CHECK(classify_attempts({tried("bad_request")}) == failure_class::request_refused);
}

TEST_CASE("failure class: every attempt at a rate limit is rate_limited") {
  // 429s and limiter refusals only: rate_limited; any other outcome among them: unavailable.
  CHECK(classify_attempts({tried("rate_limited")}) == failure_class::rate_limited);
  CHECK(classify_attempts({tried("rate_limited"), tried("limited")}) == failure_class::rate_limited);
  CHECK(classify_attempts({tried("rate_limited"), tried("server_error")}) == failure_class::unavailable);
  CHECK(classify_attempts({tried("limited"), tried("breaker_open")}) == failure_class::unavailable);
}
