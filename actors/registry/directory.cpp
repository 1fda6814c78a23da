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

void directory::announce(const std::string& provider_name, provider_actor h) {
  update([&](snapshot& s) { s.providers[provider_name].provider = std::move(h); });
}

void directory::announce(const std::string& provider_name, limiter_actor h) {
  update([&](snapshot& s) { s.providers[provider_name].limiter = std::move(h); });
}

void directory::announce(const std::string& provider_name, breaker_actor h) {
  update([&](snapshot& s) { s.providers[provider_name].breaker = std::move(h); });
}

void directory::announce(dispatcher_actor h) {
  update([&](snapshot& s) { s.dispatcher = std::move(h); });
}

void directory::announce(const std::string& role, supervisor_actor h) {
  update([&](snapshot& s) { (role == "runs" ? s.runs : s.personas_supervisor) = std::move(h); });
}

} // namespace squad
