// squad-mock-provider: strict fake LLM upstreams (OpenAI and Anthropic shapes) for tests and benchmarks.
//   squad-mock-provider --config FILE [--ports-file FILE] [--threads N]
// Prints "upstream NAME listening on HOST:PORT" per upstream once all are bound; exit codes:
// 0 stopped by SIGTERM/SIGINT, 1 runtime error (e.g. a port in use), 2 bad config.
#include "runtime/mock/mock_config.hpp"
#include "runtime/mock/mock_server.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

using namespace squad::mock;

namespace {

// Written to a temporary name then renamed, so a reader polling for the file never sees half of it.
void write_ports_file(const std::string& file, const std::vector<listening_upstream>& bound) {
  nlohmann::json ports = nlohmann::json::object();
  for (const auto& u : bound)
    ports[u.name] = u.port;
  std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp);
    out << ports.dump() << "\n";
    if (!out.flush())
      throw std::runtime_error("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec)
    throw std::runtime_error("cannot write " + file + ": " + ec.message());
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"squad-mock-provider: strict fake LLM upstreams for tests and benchmarks"};
  std::string config_file;
  std::string ports_file;
  int threads = 1;
  app.add_option("--config", config_file, "YAML file describing the upstreams")->required();
  app.add_option("--ports-file", ports_file, "write {\"name\": port, ...} here once every upstream listens");
  app.add_option("--threads", threads, "io threads (default 1)")->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);

  auto loaded = load_mock_config_file(config_file);
  if (!loaded.cfg) {
    std::cerr << config_file << ": " << loaded.problems.size() << " problem" << (loaded.problems.size() == 1 ? "" : "s")
              << "\n";
    for (const auto& p : loaded.problems)
      std::cerr << "  " << squad::to_string(p) << "\n";
    return 2;
  }
  try {
    run_mock_server(*loaded.cfg, threads, [&](const std::vector<listening_upstream>& bound) {
      for (const auto& u : bound)
        std::cout << "upstream " << u.name << " listening on " << u.host << ":" << u.port << "\n";
      std::cout.flush();
      if (!ports_file.empty())
        write_ports_file(ports_file, bound);
    });
  } catch (const std::exception& e) {
    std::cerr << "squad-mock-provider: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
