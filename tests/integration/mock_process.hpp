#pragma once
// The real squad-mock-provider binary as a child process, for integration tests and benchmarks.
// Failures to start throw std::runtime_error (Catch reports it; a benchmark prints it).
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace squad::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string default_mock_binary() {
#ifdef SQUAD_MOCK_BIN
  return SQUAD_MOCK_BIN;
#else
  return "squad-mock-provider";
#endif
}

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs `cmd` through the shell to its end: its stdout (and what it redirects there), its exit status in `status`
/// (-1 when it did not exit normally).
inline std::string run_command(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p)
    throw std::runtime_error("cannot run " + cmd);
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, p))
    out.append(buf, n);
  int st = pclose(p);
  status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// A private directory, removed on scope exit (also when a constructor holding it throws).
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("squad-mock-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  fs::path operator/(const std::string& name) const { return path / name; }
};

// The mock binary running on a config, in a private temp dir; stopped (SIGTERM, then SIGKILL) on scope exit.
class mock_process {
public:
  explicit mock_process(const std::string& yaml, const std::string& binary = default_mock_binary()) {
    std::ofstream(dir_ / "mock.yaml") << yaml;
    std::vector<std::string> args = {binary, "--config", (dir_ / "mock.yaml").string(), "--ports-file",
                                     (dir_ / "ports.json").string()};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, (dir_ / "stdout.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ / "stderr.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("cannot start " + binary);
    }
    // Waiting for process start-up: the ports file appears (renamed into place) once every port listens.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!fs::exists(dir_ / "ports.json")) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("the mock exited at start: " + slurp(dir_ / "stderr.txt"));
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error("the mock did not write its ports file within 10s");
      }
      std::this_thread::sleep_for(5ms);
    }
    try {
      nlohmann::json ports = nlohmann::json::parse(slurp(dir_ / "ports.json"));
      for (auto& [name, port] : ports.items())
        ports_[name] = port.get<std::uint16_t>();
    } catch (...) {
      stop(); // the destructor does not run when the constructor throws
      throw;
    }
  }

  ~mock_process() { stop(); }

  std::uint16_t port(const std::string& name) const { return ports_.at(name); }
  std::size_t upstream_count() const { return ports_.size(); }
  std::string stdout_text() const { return slurp(dir_ / "stdout.txt"); }

  /// SIGTERM, then the exit status (or -1 if it had to be killed).
  int stop() {
    if (pid_ <= 0)
      return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(5ms);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

private:
  temp_dir dir_;
  pid_t pid_ = -1;
  std::map<std::string, std::uint16_t> ports_;
};

} // namespace squad::test
