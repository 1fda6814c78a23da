#include "actors/registry/directory.hpp"

namespace squad {

persona_actor directory::snapshot::persona(std::string_view id) const {
  auto it = personas.find(id);
  return it == personas.end() ? persona_actor{} : it->second;
}

const provider_handles* directory::snapshot::provider(std::string_view name) const {
  auto it = providers.find(name);
  return it == providers.end() ? nullptr : &it->second;
}

namespace {
// The provider a domain belongs to: "groq" for "groq" and for "groq/llama".
std::string_view provider_of(std::string_view domain) {
  return domain.substr(0, domain.find('/'));
}
} // namespace

std::vector<limiter_actor> directory::snapshot::limiters_of(std::string_view name) const {
  std::vector<limiter_actor> out;
  for (const auto& [domain, handles] : providers)
    if (provider_of(domain) == name && handles.limiter)
      out.push_back(handles.limiter);
  return out;
}

directory::directory() : current_(std::make_shared<const snapshot>()) {}

void directory::update(const std::function<void(snapshot&)>& change) {
  std::lock_guard<std::mutex> g{write_};
  auto next = std::make_shared<snapshot>(*current_.load(std::memory_order_acquire));
  change(*next);
  next->version = version_.load(std::memory_order_relaxed) + 1;
  current_.store(std::move(next), std::memory_order_release);
  version_.store(version_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

void directory::announce(const std::string& persona_id, persona_actor h) {
  update([&](snapshot& s) { s.personas[persona_id] = std::move(h); });
}

// A provider's provider actor and breaker are also its model domains'; a domain announced later copies them.
void directory::announce(const std::string& provider_name, provider_actor h) {
  update([&](snapshot& s) {
    for (auto& [domain, handles] : s.providers)
      if (provider_of(domain) == provider_name)
        handles.provider = h;
    s.providers[provider_name].provider = std::move(h);
  });
}

void directory::announce(const std::string& domain, limiter_actor h) {
  update([&](snapshot& s) {
    auto& entry = s.providers[domain];
    entry.limiter = std::move(h);
    if (auto base = provider_of(domain); base != domain)
      if (auto it = s.providers.find(base); it != s.providers.end()) {
        entry.provider = it->second.provider;
        entry.breaker = it->second.breaker;
      }
  });
}

void directory::announce(const std::string& provider_name, breaker_actor h) {
  update([&](snapshot& s) {
    for (auto& [domain, handles] : s.providers)
      if (provider_of(domain) == provider_name)
        handles.breaker = h;
    s.providers[provider_name].breaker = std::move(h);
  });
}

void directory::announce(dispatcher_actor h) {
  update([&](snapshot& s) { s.dispatcher = std::move(h); });
}

void directory::announce(const std::string& role, supervisor_actor h) {
  update([&](snapshot& s) { (role == "runs" ? s.runs : s.personas_supervisor) = std::move(h); });
}

} // namespace squad
