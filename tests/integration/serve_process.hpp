#pragma once
// The real `squad serve` binary as a child process on a config written to a private temp dir, listening on a
// free loopback port (--listen 127.0.0.1:0; the port is read from its "listening on" line). Stopped with SIGTERM
// on scope exit; stop() returns the exit status so a test can assert a clean drain.
#include "tests/integration/mock_process.hpp"

#include <regex>

namespace squad::test {

class serve_process {
public:
  /// `storage`: a --storage URL; empty is a SQLite file of this process's own (two processes share one to
  /// test a restart).
  explicit serve_process(const std::string& yaml, std::vector<std::string> env = {}, std::string storage = {}) {
    std::ofstream(dir_ / "squad.yaml") << yaml;
    if (storage.empty())
      storage = "sqlite:" + (dir_ / "squad.db").string();
    std::vector<std::string> args = {SQUAD_BIN,  "serve",       "--config",  (dir_ / "squad.yaml").string(),
                                     "--listen", "127.0.0.1:0", "--storage", storage};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
      env_strings.emplace_back(*e);
    env_strings.insert(env_strings.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& e : env_strings)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, (dir_ / "stdout.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ / "stderr.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("cannot start " SQUAD_BIN);
    }
    // Waiting for start-up: the "listening on" line appears once the socket accepts.
    static const std::regex listening{R"(listening on http://[^:]+:(\d+))"};
    auto deadline = std::chrono::steady_clock::now() + 15s;
    for (;;) {
      std::smatch m;
      auto out = slurp(dir_ / "stdout.txt");
      if (std::regex_search(out, m, listening)) {
        port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
        break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        throw std::runtime_error("squad serve exited at start: " + slurp(dir_ / "stderr.txt"));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error("squad serve did not listen within 15s: " + slurp(dir_ / "stderr.txt"));
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  ~serve_process() { stop(); }

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string stdout_text() const { return slurp(dir_ / "stdout.txt"); }
  std::string stderr_text() const { return slurp(dir_ / "stderr.txt"); }

  /// Sends SIGTERM without waiting.
  void terminate() {
    if (pid_ > 0)
      kill(pid_, SIGTERM);
  }

  /// SIGKILL (a crash: nothing flushed, no lease handed on), reaped.
  void kill_hard() {
    if (pid_ <= 0)
      return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  /// SIGTERM, then the exit status (-1 if it had to be killed after `grace`).
  int stop(std::chrono::milliseconds grace = 10s) {
    if (pid_ <= 0)
      return exit_status_;
    kill(pid_, SIGTERM);
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return exit_status_ = -1;
      }
      std::this_thread::sleep_for(5ms);
    }
    pid_ = -1;
    return exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

private:
  temp_dir dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  int exit_status_ = -1;
};

} // namespace squad::test
