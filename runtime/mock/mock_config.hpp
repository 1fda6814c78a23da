#pragma once
// Configuration of squad-mock-provider: several named fake LLM upstreams, each on its own port.
// Pure: YAML text in, structs or every problem out. Each field's default is written beside it.
#include "runtime/config/config.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace squad::mock {

/// Which endpoints an upstream serves: openai = /v1/chat/completions + /v1/embeddings,
/// anthropic = /v1/messages, both = all three.
enum class api_style : std::uint8_t { openai, anthropic, both };

std::optional<api_style> parse_api_style(std::string_view text); ///< "openai" | "anthropic" | "both"
const char* to_string(api_style s);

struct mock_limits {
  std::int64_t requests = 60;   ///< requests admitted per `per` sliding window (> 0)
  millis per{60000};            ///< window length (> 0), default 60s
  std::int64_t concurrency = 4; ///< requests in flight at once; 0 = unlimited
  std::int64_t tokens = 0;      ///< prompt + max_tokens estimates per window; 0 = unlimited
};

struct mock_latency {
  millis fixed{0};     ///< before the response head, default 0ms
  millis jitter{0};    ///< seeded pseudo-random extra in [0, jitter], default 0ms
  millis per_token{0}; ///< per completion token (between stream chunks; summed up front otherwise)
};

struct mock_upstream_config {
  std::string name;                   ///< the key under `upstreams:`
  std::string listen = "127.0.0.1:0"; ///< IPv4:port; port 0 = any free port
  std::string host = "127.0.0.1";     ///< parsed from `listen`
  std::uint16_t port = 0;             ///< parsed from `listen`
  api_style style = api_style::both;
  mock_limits limits;
  mock_latency latency;
  std::int64_t reply_tokens = 40; ///< `reply.tokens`: completion tokens of an answer (>= 1)
  std::int64_t context = 0;       ///< context window: prompt + max_tokens above it is a 400; 0 = unlimited
  std::int64_t max_output = 0;    ///< max_tokens above it is a 400 (bad request); 0 = unlimited
  std::string api_key;            ///< when non-empty, requests must carry it; default "" (no check)
};

struct mock_config {
  std::vector<mock_upstream_config> upstreams; ///< in file order; at least one
};

struct mock_config_result {
  std::optional<mock_config> cfg; ///< set only when there were no problems
  std::vector<config_problem> problems;
};

/// Parses and validates YAML text; unknown keys and bad values are problems with their paths.
mock_config_result load_mock_config_text(const std::string& yaml_text);

/// Reads the file then calls load_mock_config_text; an unreadable file is one problem with path = file.
mock_config_result load_mock_config_file(const std::string& file);

/// Semantic checks on parsed structs (limits > 0, names, distinct fixed ports).
std::vector<config_problem> validate(const mock_config& cfg);

} // namespace squad::mock
