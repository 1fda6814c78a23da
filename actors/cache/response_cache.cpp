#include "actors/cache/response_cache.hpp"

namespace squad {

response_cache::response_cache(cache_settings s) : s_(s) {}

std::string response_cache::key_of(const call_request& req) {
  std::string k;
  auto add = [&k](const std::string& s) {
    k += std::to_string(s.size());
    k += ':';
    k += s;
  };
  if (!req.persona.empty()) {
    add("persona");
    add(req.persona);
  } else {
    for (auto& t : req.chain)
      add(t.provider + "/" + t.model);
  }
  for (auto& m : req.messages) {
    add(m.role);
    add(m.content);
    add(m.tool_calls_json);
    add(m.tool_call_id);
    add(m.name);
  }
  add(req.params_json);                // tools, response_format, stop, seed, ...: each can change the answer
  if (!req.embed_input_json.empty()) { // an embeddings call: its input is the question
    add("embeddings");
    add(req.embed_input_json);
  }
  return k;
}

bool response_cache::storable(const call_result& r) {
  return !r.partial && r.finish_reason != "length" && r.finish_reason != "partial" && r.tool_calls_json.empty() &&
         (r.text.find_first_not_of(" \t\r\n") != std::string::npos || !r.embeddings_json.empty());
}

void response_cache::erase(std::list<entry>::iterator it) {
  bytes_ -= cost(*it);
  index_.erase(std::string_view{it->key});
  lru_.erase(it);
}

const cached_answer* response_cache::get(const std::string& key, std::int64_t max_tokens, steady_time now) {
  auto i = index_.find(std::string_view{key});
  if (i == index_.end()) {
    ++misses_;
    return nullptr;
  }
  auto it = i->second;
  if (now >= it->stored + s_.ttl) {
    erase(it);
    ++misses_;
    return nullptr;
  }
  if (max_tokens > 0 && it->answer.usage.completion_tokens >
                            max_tokens) { // 0: the call sets no cap // made with more room than this call allows
    ++misses_;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it);
  ++hits_;
  return &it->answer;
}

void response_cache::put(const std::string& key, cached_answer a, steady_time now) {
  if (!s_.enabled || s_.max_entries == 0)
    return;
  if (auto i = index_.find(std::string_view{key}); i != index_.end())
    erase(i->second);
  entry e{key, std::move(a), now};
  if (cost(e) > s_.max_bytes)
    return;
  bytes_ += cost(e);
  lru_.push_front(std::move(e));
  index_.emplace(std::string_view{lru_.front().key}, lru_.begin());
  while (!lru_.empty() && (index_.size() > s_.max_entries || bytes_ > s_.max_bytes)) {
    erase(std::prev(lru_.end()));
    ++evictions_;
  }
}

} // namespace squad
