#pragma once
// A request body read as JSON with a nesting limit, refused in the API's words (pure).
#include "runtime/server/api_error.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <variant>

namespace squad::server {

/// Bodies nested deeper than this are refused (a parser's stack is not the client's to grow).
inline constexpr int max_json_depth = 32;

/// The parsed body, or a 400 saying what is wrong (empty, not JSON and near which byte, nested too deep).
std::variant<nlohmann::json, api_error> parse_json_body(const std::string& body);

} // namespace squad::server
