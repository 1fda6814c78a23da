#include "actors/cache/response_cache.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <set>

using namespace squad;

namespace {

const steady_time t0{};

call_request ask(std::string persona, std::vector<chat_message> msgs) {
  call_request r;
  r.persona = std::move(persona);
  r.messages = std::move(msgs);
  return r;
}

cached_answer answer(std::string text, std::int64_t completion_tokens = 10) {
  cached_answer a;
  a.text = std::move(text);
  a.finish_reason = "stop";
  a.usage.completion_tokens = completion_tokens;
  return a;
}

} // namespace

TEST_CASE("cache keys tell apart persona, roles, contents and message boundaries", "[cache]") {
  std::set<std::string> keys{
      response_cache::key_of(ask("analyst", {{"user", "hi"}})),
      response_cache::key_of(ask("pm", {{"user", "hi"}})),
      response_cache::key_of(ask("analyst", {{"system", "hi"}})),
      response_cache::key_of(ask("analyst", {{"user", "hi!"}})),
      response_cache::key_of(ask("analyst", {{"user", "h"}, {"user", "i"}})),
      response_cache::key_of(ask("analyst", {{"user", "hi"}, {"user", ""}})),
      response_cache::key_of(ask("analyst", {{"user", "1:h"}})),
  };
  CHECK(keys.size() == 7);
  call_request direct;
  direct.chain.push_back({"groq", "llama", "llama-3", "worker"});
  direct.messages = {{"user", "hi"}};
  CHECK(keys.count(response_cache::key_of(direct)) == 0);
  // Sampling parameters are not part of the key.
  auto a = ask("analyst", {{"user", "hi"}}), b = a;
  b.temperature = 0.1;
  b.max_tokens = 17;
  CHECK(response_cache::key_of(a) == response_cache::key_of(b));
}

TEST_CASE("only complete answers are storable", "[cache]") {
  call_result r;
  r.text = "an answer";
  r.finish_reason = "stop";
  CHECK(response_cache::storable(r));
  r.finish_reason = "length";
  CHECK_FALSE(response_cache::storable(r));
  r.finish_reason = "stop";
  r.partial = true;
  CHECK_FALSE(response_cache::storable(r));
  r.partial = false;
  r.text = " \n ";
  CHECK_FALSE(response_cache::storable(r));
}

TEST_CASE("a stored answer is served until its ttl, then missed and dropped", "[cache]") {
  cache_settings s;
  s.ttl = millis{1000};
  response_cache c{s};
  c.put("k", answer("A"), t0);
  REQUIRE(c.get("k", 100, t0 + millis{999}) != nullptr);
  CHECK(c.get("k", 100, t0 + millis{999})->text == "A");
  CHECK(c.get("k", 100, t0 + millis{1000}) == nullptr);
  CHECK(c.size() == 0);
  CHECK(c.bytes() == 0);
  CHECK(c.hits() == 2);
  CHECK(c.misses() == 1);
  CHECK(c.get("other", 100, t0) == nullptr);
  CHECK(c.misses() == 2);
}

TEST_CASE("an answer longer than the call's max_tokens is not served", "[cache]") {
  response_cache c;
  c.put("k", answer("A", 300), t0);
  CHECK(c.get("k", 299, t0) == nullptr);
  CHECK(c.get("k", 300, t0) != nullptr);
  CHECK(c.size() == 1); // still there for calls with room
}

TEST_CASE("the least recently used entry is evicted first, by count and by bytes", "[cache]") {
  cache_settings s;
  s.max_entries = 3;
  response_cache c{s};
  c.put("a", answer("1"), t0);
  c.put("b", answer("2"), t0);
  c.put("c", answer("3"), t0);
  REQUIRE(c.get("a", 100, t0)); // a is now the most recent
  c.put("d", answer("4"), t0);  // b goes
  CHECK(c.get("b", 100, t0) == nullptr);
  CHECK(c.get("a", 100, t0));
  CHECK(c.get("c", 100, t0));
  CHECK(c.get("d", 100, t0));
  CHECK(c.evictions() == 1);

  cache_settings sb;
  sb.max_bytes = 30;
  response_cache cb{sb};
  cb.put("k1", answer(std::string(10, 'x')), t0); // 12 bytes
  cb.put("k2", answer(std::string(10, 'y')), t0); // 24
  cb.put("k3", answer(std::string(10, 'z')), t0); // 36 > 30: k1 goes
  CHECK(cb.size() == 2);
  CHECK(cb.bytes() == 24);
  CHECK(cb.get("k1", 100, t0) == nullptr);
  cb.put("huge", answer(std::string(100, 'h')), t0); // larger than the whole cache: not stored, nothing evicted
  CHECK(cb.size() == 2);
  CHECK(cb.get("huge", 100, t0) == nullptr);
}

TEST_CASE("replacing an entry keeps the byte count exact under random use", "[cache]") {
  cache_settings s;
  s.max_entries = 20;
  s.max_bytes = 400;
  response_cache c{s};
  std::mt19937 rng{7};
  for (int i = 0; i < 5000; ++i) {
    auto key = "k" + std::to_string(rng() % 40);
    if (rng() % 2)
      c.put(key, answer(std::string(rng() % 50, 'x')), t0 + millis{i});
    else
      (void)c.get(key, 100, t0 + millis{i});
    REQUIRE(c.size() <= 20);
    REQUIRE(c.bytes() <= 400);
  }
  // Drain by expiry: every entry reports gone and the byte count returns to zero.
  for (int k = 0; k < 40; ++k)
    (void)c.get("k" + std::to_string(k), 100, t0 + std::chrono::hours{1});
  CHECK(c.size() == 0);
  CHECK(c.bytes() == 0);
}

TEST_CASE("a disabled cache stores nothing", "[cache]") {
  cache_settings s;
  s.enabled = false;
  response_cache c{s};
  c.put("k", answer("A"), t0);
  CHECK(c.get("k", 100, t0) == nullptr);
}
