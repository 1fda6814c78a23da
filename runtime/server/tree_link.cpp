#include "runtime/server/tree_link.hpp"

#include <memory>

namespace squad::server {

void send_chat_call(const directory_ptr& dir, const std::string& persona, call_request call) {
  auto snap = dir->get();
  if (!persona.empty()) {
    if (auto p = snap->persona(persona))
      return caf::anon_send(p, std::move(call));
  } else if (snap->dispatcher) {
    return caf::anon_send(snap->dispatcher, std::move(call));
  }
  std::exchange(call.sink, nullptr)
      ->failed(call_failure{squad_errc::child_unavailable,
                            (persona.empty() ? std::string{"the dispatcher"} : "persona " + persona) +
                                " is restarting; try again",
                            -1,
                            failure_class::unknown,
                            {}});
}

namespace {

// The actor a stats name stands for ("dispatcher", "providers/<p>:limiter", "providers/<p>:breaker"), or null.
caf::actor stats_actor(const directory::snapshot& snap, const std::string& name) {
  if (name == "dispatcher")
    return caf::actor_cast<caf::actor>(snap.dispatcher);
  auto colon = name.rfind(':');
  auto* h = snap.provider(name.substr(10, colon - 10)); // after "providers/"
  if (!h)
    return {};
  return name.ends_with(":limiter") ? caf::actor_cast<caf::actor>(h->limiter) : caf::actor_cast<caf::actor>(h->breaker);
}

} // namespace

std::vector<std::string> stats_paths(const std::vector<std::string>& providers) {
  std::vector<std::string> paths{"dispatcher"};
  for (auto& p : providers) {
    paths.push_back("providers/" + p + ":limiter");
    if (p.find('/') == std::string::npos) // a model's limits domain shares its provider's breaker
      paths.push_back("providers/" + p + ":breaker");
  }
  return paths;
}

void ask_stats(caf::actor_system& sys, const directory_ptr& dir, std::vector<std::string> paths,
               std::function<void(const std::string& path, const std::string& text)> on_answer,
               std::function<void()> on_all) {
  sys.spawn([paths = std::move(paths), snap = dir->get(), on_answer = std::move(on_answer),
             on_all = std::move(on_all)](caf::event_based_actor* self) {
    auto left = std::make_shared<std::size_t>(paths.size());
    auto finish = [left, on_all] {
      if (--*left == 0)
        on_all();
    };
    for (auto& path : paths)
      self->request(stats_actor(*snap, path), std::chrono::seconds{2}, atoms::stats_v)
          .then(
              [finish, on_answer, path](std::string& text) {
                on_answer(path, text);
                finish();
              },
              [finish, on_answer, path](caf::error&) {
                on_answer(path, {});
                finish();
              });
  });
}

} // namespace squad::server
