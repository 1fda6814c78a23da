#pragma once
// The response cache: exact-match answers to earlier calls, as pure logic (time comes in as `now`).
//
// The key is what the answer depends on: the persona (or, for a direct call, the chain's provider/model list),
// every message (role, content, tool calls, tool_call_id, name) and the other chat parameters (params_json:
// tools, stop, seed, ...), length-prefixed so no two different calls share a key. max_tokens and temperature
// are not in the key; instead only complete answers are stored (finish_reason not "length", not partial, no
// tool calls), and an answer is served only to a call whose max_tokens (when set) covers the answer's completion
// tokens. So a call degraded to fewer tokens can still use an answer made at full size, if it fits.
//
// Entries expire `ttl` after they were stored; the least recently used entry goes first when the entry count or
// the byte total (keys plus texts) is over its bound.
#include "actors/limiter/sliding_window.hpp"
#include "actors/messages.hpp"

#include <list>
#include <unordered_map>

namespace squad {

struct cache_settings {
  bool enabled = true;
  std::size_t max_entries = 1000;       ///< default 1000
  std::size_t max_bytes = 64u << 20;    ///< keys plus texts, default 64 MiB
  millis ttl{std::chrono::minutes{10}}; ///< default 10 minutes
};

struct cached_answer {
  std::string text;
  std::string finish_reason;
  chain_target served_by;
  usage_info usage;
  bool simulated = false;
  std::string embeddings_json; ///< an embeddings call's data array ("" for chat)
};

class response_cache {
public:
  explicit response_cache(cache_settings s = {});

  /// The key of a call (see the file comment).
  static std::string key_of(const call_request& req);

  /// Whether an answer may be stored at all: ok, complete (finish_reason not "length"), not partial, not empty,
  /// no tool calls (a cached_answer holds text only).
  static bool storable(const call_result& r);

  /// The answer for `key` if one is stored, unexpired, and fits in `max_tokens`; counts a hit or a miss.
  const cached_answer* get(const std::string& key, std::int64_t max_tokens, steady_time now);

  /// Stores (or replaces) the answer for `key`, then evicts down to the bounds. An entry larger than max_bytes
  /// alone is not stored.
  void put(const std::string& key, cached_answer a, steady_time now);

  std::size_t size() const { return index_.size(); }
  std::size_t bytes() const { return bytes_; }
  std::int64_t hits() const { return hits_; }
  std::int64_t misses() const { return misses_; }
  std::int64_t evictions() const { return evictions_; }
  const cache_settings& settings() const { return s_; }

private:
  struct entry {
    std::string key;
    cached_answer answer;
    steady_time stored;
  };
  void erase(std::list<entry>::iterator it);
  static std::size_t cost(const entry& e) {
    return e.key.size() + e.answer.text.size() + e.answer.embeddings_json.size();
  }

  cache_settings s_;
  std::list<entry> lru_;                                                   // most recently used first
  std::unordered_map<std::string_view, std::list<entry>::iterator> index_; // views into lru_'s keys
  std::size_t bytes_ = 0;
  std::int64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

} // namespace squad
