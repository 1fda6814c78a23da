#pragma once
// Internal to squad_config: every key of squad.yaml, declared once, as one row of its section's table.
//
// A row names the YAML key, the struct member it lands in, the bounds validate() holds it to and one line of
// documentation. The default is the member's initializer in config.hpp, read through the member pointer, so it
// is written once too. The same rows drive reading (config.cpp), the unknown-key check (a key is known if a row
// or a sub-section names it) and the bounds checks (validate.cpp). Adding a key is one row here plus the member.
#include "runtime/config/yaml_reader.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace squad::detail {

/// What validate() requires of one field; `message` says it in the user's words ("must be > 0").
struct bounds {
  enum class kind : std::uint8_t { any, range, non_empty, one_of, fraction, share, non_negative };
  kind what = kind::any;
  std::int64_t lo = std::numeric_limits<std::int64_t>::min(); ///< range, inclusive; durations in ms
  std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  std::vector<std::string_view> choices; ///< one_of
  bool quote_value = false;              ///< one_of: the message ends in (got "<value>")
  std::string message;
};

bounds any();                                                                 ///< no bound
bounds positive();                                                            ///< "must be > 0"
bounds at_least(std::int64_t lo, std::string_view note = "");                 ///< "must be >= <lo><note>"
bounds between(std::int64_t lo, std::int64_t hi, std::string_view unit = ""); ///< "must be between <lo> and <hi>"
bounds non_empty();                                                           ///< "must not be empty"
bounds required(); ///< "required" (a string that must be given)
bounds one_of(std::vector<std::string_view> choices, std::string message, bool quote_value);
bounds fraction();     ///< "must be in (0, 1]"
bounds share();        ///< "must be in [0, 1)"
bounds non_negative(); ///< "must be >= 0" (a double)

/// Where a field of section struct S lands; the member's type picks how it is read and checked.
template <class S>
using member = std::variant<std::string S::*, std::int64_t S::*, millis S::*, bool S::*, double S::*,
                            std::vector<std::string> S::*, std::optional<std::string> S::*,
                            std::optional<priority_class> S::*, std::optional<std::vector<std::string>> S::*>;

/// One key of a section.
template <class S> struct field {
  std::string_view key; ///< the YAML name; users' scripts rely on it
  member<S> at;
  bounds check;
  std::string_view doc;
  /// For the rare key whose reading depends on another field already read (api_key on kind); null: by type.
  void (*read)(yaml_reader&, const YAML::Node& value, const std::string& path, S& out) = nullptr;
};

template <class S> using table = std::vector<field<S>>;

/// A key that holds a map handled by its own code (limits, providers, ...), so the key check knows it.
struct sub_section {
  std::string_view key;
  std::string_view doc;
};

// The tables, one per section (config_tables.cpp). Paths below are where validate() reports.
const table<config>& root_fields();                ///< top level
const std::vector<sub_section>& root_sections();   ///< server, providers, personas, aliases, supervision, runtime
const table<server_config>& server_fields();       ///< server
const std::vector<sub_section>& server_sections(); ///< keys
const table<key_tier_config>& key_tier_fields();
const table<api_key_config>& api_key_fields();               ///< server.keys.<name>
const table<provider_config>& provider_fields();             ///< providers.<name>
const table<http_client_config>& provider_http_fields();     ///< providers.<name> (max_connections, stream)
const std::vector<sub_section>& provider_sections();         ///< limits, timeouts, breaker, models, sim
const table<limits_config>& limits_fields();                 ///< providers.<name>.limits
const std::vector<sub_section>& limits_sections();           ///< throttle
const table<throttle_config>& throttle_fields();             ///< providers.<name>.limits.throttle
const table<http_client_config>& timeouts_fields();          ///< providers.<name>.timeouts
const table<breaker_config>& breaker_fields();               ///< providers.<name>.breaker
const table<retry_config>& retry_fields();                   ///< providers.<name>.retry
const table<sim_config>& sim_fields();                       ///< providers.<name>.sim
const table<model_config>& model_fields();                   ///< providers.<name>.models.<name>
const std::vector<sub_section>& model_sections();            ///< limits
const table<persona_override>& persona_fields();             ///< personas.<id>
const table<supervision_config>& supervision_fields();       ///< supervision
const table<runtime_config>& runtime_fields();               ///< runtime
const std::vector<sub_section>& runtime_sections();          ///< tolerable_wait
const table<tolerable_wait_config>& tolerable_wait_fields(); ///< runtime.tolerable_wait
const table<storage_config>& storage_fields();               ///< storage
const table<audit_config>& audit_fields();                   ///< audit

/// The keys a map may hold: those of the tables given and the sub-sections.
template <class... S>
std::vector<std::string_view> keys_of(const std::vector<sub_section>& sections, const table<S>&... tables) {
  std::vector<std::string_view> out;
  (..., [&] {
    for (const auto& f : tables)
      out.push_back(f.key);
  }());
  for (const auto& s : sections)
    out.push_back(s.key);
  return out;
}

// Reading one value by its type: only a present, well-formed value replaces the default.
template <class T>
void read_value(yaml_reader& r, const YAML::Node& map, const std::string& path, std::string_view key, T& out) {
  r.get(map, path, key, out);
}
template <class T>
void read_value(yaml_reader& r, const YAML::Node& map, const std::string& path, std::string_view key,
                std::optional<T>& out) {
  T value{};
  if (r.get(map, path, key, value))
    out = std::move(value);
}

/// Reads every row of `t` present in `map` into `out`; a bad value is a problem and keeps its default.
template <class S>
void read_fields(yaml_reader& r, const YAML::Node& map, const std::string& path, const table<S>& t, S& out) {
  for (const auto& f : t) {
    if (f.read) {
      if (auto node = yaml_reader::find(map, f.key))
        f.read(r, *node, join(path, f.key), out);
      continue;
    }
    std::visit([&](auto m) { read_value(r, map, path, f.key, out.*m); }, f.at);
  }
}

// Checking one value against its bounds (validate.cpp); types without bounds accept anything.
void check_value(const bounds& b, std::int64_t v, const std::string& path, std::vector<config_problem>& out);
void check_value(const bounds& b, millis v, const std::string& path, std::vector<config_problem>& out);
void check_value(const bounds& b, const std::string& v, const std::string& path, std::vector<config_problem>& out);
void check_value(const bounds& b, double v, const std::string& path, std::vector<config_problem>& out);
template <class T> void check_value(const bounds&, const T&, const std::string&, std::vector<config_problem>&) {}

/// Checks every row of `t` on `value`, reporting at `path`.<key>.
template <class S>
void check_fields(const table<S>& t, const S& value, const std::string& path, std::vector<config_problem>& out) {
  for (const auto& f : t)
    std::visit([&](auto m) { check_value(f.check, value.*m, join(path, f.key), out); }, f.at);
}

} // namespace squad::detail
