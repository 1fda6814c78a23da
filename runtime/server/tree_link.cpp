#include "runtime/server/tree_link.hpp"

#include <memory>

namespace squad::server {

void send_chat_call(const caf::actor& root, const std::string& persona, call_request call) {
  if (!persona.empty())
    caf::anon_send(root, atoms::forward_v, "personas/" + persona, caf::make_message(std::move(call)));
  else
    caf::anon_send(root, atoms::forward_v, std::string{"dispatcher"}, caf::make_message(std::move(call)));
}

std::vector<std::string> stats_paths(const std::vector<std::string>& providers) {
  std::vector<std::string> paths{"dispatcher"};
  for (auto& p : providers) {
    paths.push_back("providers/" + p + ":limiter");
    paths.push_back("providers/" + p + ":breaker");
  }
  return paths;
}

void ask_stats(caf::actor_system& sys, const caf::actor& root, std::vector<std::string> paths,
               std::function<void(const std::string& path, const std::string& text)> on_answer,
               std::function<void()> on_all) {
  sys.spawn([paths = std::move(paths), root, on_answer = std::move(on_answer),
             on_all = std::move(on_all)](caf::event_based_actor* self) {
    auto left = std::make_shared<std::size_t>(paths.size());
    auto finish = [left, on_all] {
      if (--*left == 0)
        on_all();
    };
    for (auto& path : paths)
      self->request(root, std::chrono::seconds{2}, atoms::forward_v, path, caf::make_message(atoms::stats_v))
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
