// The OpenAI encoding: error bodies, the HTTP status of a failed call from its typed failure (never its text), and
// the completion and chunk shapes.
#include "runtime/server/openai_encoding.hpp"
#include "runtime/server/routes.hpp"

#include <catch2/catch.hpp>

using nlohmann::json;
using namespace squad;
using namespace squad::server;

TEST_CASE("error bodies: message and type always, param and code null when not given") {
  // OpenAI's shape, so SDKs parse it.
  auto e = json::parse(error_body("bad", "invalid_request_error"));
  CHECK(e["error"]["message"] == "bad");
  CHECK(e["error"]["param"].is_null());
  CHECK(e["error"]["code"].is_null());
  auto f = json::parse(error_body(api_error{404, "gone", "invalid_request_error", "model", "model_not_found", 0}));
  CHECK(f["error"]["param"] == "model");
  CHECK(f["error"]["code"] == "model_not_found");
}

TEST_CASE("failed calls: an exhausted chain's status comes from its class, whatever its detail says") {
  // The same detail text gives 400 or 503 by failure_class alone; words in the detail decide nothing.
  auto words = std::string{"a/m: bad_request (rate_limited? no: timeout in the message)"};
  auto refused = error_for({squad_errc::chain_exhausted, words, -1, failure_class::request_refused, {}}, false);
  CHECK(refused.status == 400);
  CHECK(refused.code == "upstream_bad_request");
  auto unavailable =
      error_for({squad_errc::chain_exhausted, "a/m: bad_request", -1, failure_class::unavailable, {}}, false);
  CHECK(unavailable.status == 503);
  CHECK(unavailable.code == "no_provider");
  CHECK(unavailable.retry_after_s == 1);
}

TEST_CASE("failed calls: each squad_errc has its status") {
  // Budget spent 429 (an hour), shed 429 (its earliest slot, rounded up to seconds), or a cache miss 404 with
  // X-Squad-Cache: only; deadline 504; cancelled 499; anything else 503 naming the code.
  auto f = [](squad_errc c, std::int64_t retry_ms = -1) { return call_failure{c, "why", retry_ms, {}, {}}; };
  CHECK(error_for(f(squad_errc::budget_spent), false).status == 429);
  CHECK(error_for(f(squad_errc::budget_spent), false).retry_after_s == 3600);
  CHECK(error_for(f(squad_errc::shed, 1200), false).retry_after_s == 2);
  CHECK(error_for(f(squad_errc::shed, 0), false).retry_after_s == 1);
  CHECK(error_for(f(squad_errc::shed), false).retry_after_s == 5);
  CHECK(error_for(f(squad_errc::shed), true).status == 404);
  CHECK(error_for(f(squad_errc::shed), true).code == "cache_miss");
  CHECK(error_for(f(squad_errc::deadline_exceeded), false).status == 504);
  CHECK(error_for(f(squad_errc::cancelled), false).status == 499);
  auto other = error_for(f(squad_errc::child_unavailable), false);
  CHECK(other.status == 503);
  CHECK(other.code == "child_unavailable");
}

TEST_CASE("completions: a tool-only answer has null content, chunks repeat the ids, usage sums tokens") {
  // The non-streamed body and the streamed pieces in OpenAI's shapes, with Squad's extension.
  call_result r;
  r.tool_calls_json = R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}])";
  r.served_by = {"oa", "m", "m-1", "boss"};
  r.usage = {3, 4};
  completion_ids ids{"chatcmpl-x", "oa/m", 17, "fp"};
  auto body = json::parse(completion_json(ids, r));
  CHECK(body["choices"][0]["message"]["content"].is_null());
  CHECK(body["choices"][0]["message"]["tool_calls"][0]["id"] == "c1");
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  CHECK(body["usage"]["total_tokens"] == 7);
  CHECK(body["system_fingerprint"] == "fp");
  CHECK(body["squad"]["served_by"] == "oa/m");
  auto chunk = chunk_event(ids, json{{"content", "hi"}}, nullptr);
  REQUIRE(chunk.rfind("data: ", 0) == 0);
  auto c = json::parse(chunk.substr(6));
  CHECK(c["object"] == "chat.completion.chunk");
  CHECK(c["id"] == "chatcmpl-x");
  CHECK(c["created"] == 17);
  CHECK(tool_calls_delta(r)["tool_calls"][0]["index"] == 0);
  CHECK(tool_calls_delta(call_result{}).is_null());
}

TEST_CASE("routes: every path has one job, unknown paths are other") {
  // The table's names are the route labels of the request metrics.
  CHECK(route_of("/v1/chat/completions") == route::chat);
  CHECK(route_of("/v1/models") == route::models);
  CHECK(route_of("/v1/models/persona%2Fa") == route::model);
  CHECK(route_of("/v1/runs") == route::runs);
  CHECK(route_of("/v1/runs/r1") == route::runs);
  CHECK(route_of("/v1/runs/r1/events") == route::run_events);
  CHECK(route_of("/v1/ws") == route::ws);
  CHECK(route_of("/metrics") == route::metrics);
  CHECK(route_of("/v1/chat") == route::other);
  CHECK(std::string{spec_of(route::run_events).name} == "run_events");
  CHECK(spec_of(route::healthz).open);
  for (std::size_t i = 0; i < route_count; ++i) // the table is indexed by route
    CHECK(route_table()[i].id == static_cast<route>(i));
  CHECK_FALSE(spec_of(route::chat).open);
}

TEST_CASE("failed calls: every target at its rate limit is a 429 with when to retry; open breakers say when") {
  // rate_limited: 429 upstream_rate_limited, Retry-After from the walk (rounded up); an unavailable chain whose
  // breakers are open carries the soonest probe as its Retry-After.
  auto limited =
      error_for({squad_errc::chain_exhausted, "a/m: rate_limited", 2300, failure_class::rate_limited, {}}, false);
  CHECK(limited.status == 429);
  CHECK(limited.code == "upstream_rate_limited");
  CHECK(limited.type == "rate_limit_exceeded");
  CHECK(limited.retry_after_s == 3);
  auto open =
      error_for({squad_errc::chain_exhausted, "a/m: breaker_open", 41000, failure_class::unavailable, {}}, false);
  CHECK(open.status == 503);
  CHECK(open.retry_after_s == 41);
}
