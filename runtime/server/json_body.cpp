#include "runtime/server/json_body.hpp"

#include <algorithm>

namespace squad::server {

std::variant<nlohmann::json, api_error> parse_json_body(const std::string& body) {
  using json = nlohmann::json;
  int deepest = 0;
  json::parser_callback_t cb = [&deepest](int depth, json::parse_event_t, json&) {
    deepest = std::max(deepest, depth);
    return depth <= max_json_depth;
  };
  api_error e;
  try {
    auto j = json::parse(body, cb);
    if (deepest <= max_json_depth)
      return j;
    e.message = "the JSON body is nested deeper than " + std::to_string(max_json_depth) + " levels";
    e.code = "json_too_deep";
  } catch (const json::parse_error& x) { // x.what() is the library's wording: say where, in our words
    e.message = x.byte <= 1 && body.empty()
                    ? std::string{"the body is empty: send a JSON object"}
                    : "the body is not valid JSON (error near byte " + std::to_string(x.byte) + ")";
  } catch (const json::exception&) { // a number past a double's range (1e999): found by tests/fuzz, it was uncaught
    e.message = "the body holds a number out of range";
  }
  return e;
}

} // namespace squad::server
