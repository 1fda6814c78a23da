#pragma once
// Internal to squad_config: reads typed fields out of yaml-cpp nodes, turning every type error into a
// config_problem instead of an exception, so a loader can report all problems of a file in one pass.
#include "runtime/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace squad::detail {

/// Joins a problem path and a key: "a" + "b" is "a.b"; a file origin "f.yaml: " + "b" is "f.yaml: b".
std::string join(const std::string& base, std::string_view key);

/// A path usable on its own: "f.yaml: " becomes "f.yaml"; dotted paths are returned as they are.
std::string origin_of(const std::string& base);

/// Appends an index: "chain" + 1 is "chain[1]".
std::string at(const std::string& base, std::size_t index);

/// True if `text` is non-empty and made only of a-z, 0-9, `punct`, and A-Z when `upper` is set.
bool only_chars(std::string_view text, std::string_view punct, bool upper);

/// Provider and model names: [A-Za-z0-9._-]+.
bool is_name(std::string_view text);

/// A syntactically valid chain entry: "provider/model", "@worker" or "@boss".
bool is_chain_entry(std::string_view text);

/// The message for a malformed chain entry (quotes the entry).
std::string bad_chain_entry(std::string_view text);

/// True if a problem in `earlier` sits at `path` or above it, and so already explains whatever is wrong there
/// (a field that failed to read keeps its default; validate() must not report it again).
bool covered(const std::vector<config_problem>& earlier, const std::string& path);

/// Reads a whole regular file; false if it is missing, a directory or unreadable.
bool read_file(const std::string& path, std::string& out);

/// Parses YAML text; a syntax error becomes one problem at `path` with yaml-cpp's line and column.
std::optional<YAML::Node> parse_yaml(const std::string& text, const std::string& path,
                                     std::vector<config_problem>& problems);

/// Reads fields into typed values and records a problem for each bad one.
class yaml_reader {
public:
  /// `expand_env` turns on ${VAR} expansion; only the main config wants it (prompts may contain "${").
  yaml_reader(std::vector<config_problem>& problems, bool expand_env);

  void problem(std::string path, std::string message);

  /// True for a map; null counts as an empty map so "key:" with nothing under it is not an error.
  bool is_map(const YAML::Node& node, const std::string& path);

  /// Reports unknown, duplicate and non-string keys of a map.
  void check_keys(const YAML::Node& map, const std::string& path, std::initializer_list<std::string_view> allowed);
  void check_keys(const YAML::Node& map, const std::string& path, const std::vector<std::string_view>& allowed);

  /// The value under `key`, if the map has it.
  static std::optional<YAML::Node> find(const YAML::Node& map, std::string_view key);

  /// The entries of a map whose keys are names chosen by the user (providers, models), in file order.
  std::vector<std::pair<std::string, YAML::Node>> entries(const YAML::Node& map, const std::string& path);

  /// Each `get` reads map[key] into `out` when present and valid; returns true only then.
  bool get(const YAML::Node& map, const std::string& path, std::string_view key, std::string& out);
  bool get(const YAML::Node& map, const std::string& path, std::string_view key, std::int64_t& out);
  bool get(const YAML::Node& map, const std::string& path, std::string_view key, millis& out);
  bool get(const YAML::Node& map, const std::string& path, std::string_view key, priority_class& out);
  bool get(const YAML::Node& map, const std::string& path, std::string_view key, bool& out);
  bool get(const YAML::Node& map, const std::string& path, std::string_view key, double& out);
  bool get(const YAML::Node& map, const std::string& path, std::string_view key, std::vector<std::string>& out);

  /// Reads a scalar as text (null is ""); `env_required` false lets an unset ${VAR} expand to "".
  bool text(const YAML::Node& node, const std::string& path, std::string& out, bool env_required = true);

private:
  bool expand(const std::string& raw, const std::string& path, std::string& out, bool env_required);

  std::vector<config_problem>& problems_;
  bool expand_env_;
};

} // namespace squad::detail
