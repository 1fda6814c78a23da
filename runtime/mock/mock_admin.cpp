// The mock upstream's names (fault modes, rejection reasons) and its admin endpoints: faults set and read, the
// counters and the limits reset, over the same HTTP as the API.
#include "runtime/mock/mock_upstream.hpp"

#include <nlohmann/json.hpp>

namespace squad::mock {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------------
// Names

const char* to_string(reject_reason r) {
  switch (r) {
  case reject_reason::none:
    return "none";
  case reject_reason::requests:
    return "requests";
  case reject_reason::concurrency:
    return "concurrency";
  case reject_reason::tokens:
    return "tokens";
  }
  return "none";
}

namespace {
constexpr std::pair<fault_mode, const char*> fault_names[] = {{fault_mode::none, "none"},
                                                              {fault_mode::down, "down"},
                                                              {fault_mode::error500, "error500"},
                                                              {fault_mode::slow, "slow"},
                                                              {fault_mode::garbage, "garbage"},
                                                              {fault_mode::cut, "cut"},
                                                              {fault_mode::unauthorized, "unauthorized"},
                                                              {fault_mode::overloaded, "overloaded"},
                                                              {fault_mode::ratelimited, "ratelimited"}};
} // namespace

std::optional<fault_mode> parse_fault_mode(std::string_view text) {
  for (auto [mode, name] : fault_names)
    if (text == name)
      return mode;
  return std::nullopt;
}

const char* to_string(fault_mode m) {
  for (auto [mode, name] : fault_names)
    if (m == mode)
      return name;
  return "none";
}

// ---------------------------------------------------------------------------------------------------
// Admin

mock_reply mock_upstream::admin(const mock_request& req, const std::string& path) {
  mock_reply r;
  auto fail = [&r](int status, const std::string& message) {
    r.status = status;
    r.body = error_body(false, status, message);
    return r;
  };
  if (path == "/stats") {
    if (req.method != "GET")
      return fail(405, "use GET /stats");
    r.body = json{{"admitted", stats_.admitted},
                  {"rejected",
                   {{"requests", stats_.rejected_requests},
                    {"concurrency", stats_.rejected_concurrency},
                    {"tokens", stats_.rejected_tokens}}},
                  {"max_window_occupancy", stats_.max_window_occupancy},
                  {"max_in_flight", stats_.max_in_flight},
                  {"connections_opened", stats_.connections_opened},
                  {"requests_total", stats_.requests_total},
                  {"repeated", stats_.repeated},
                  {"in_flight", in_flight_},
                  {"fault", to_string(fault_.mode)}}
                 .dump();
    return r;
  }
  if (path == "/admin/requests") { // what reached this upstream, oldest first: tests check what was sent
    if (req.method != "GET")
      return fail(405, "use GET /admin/requests");
    json list = json::array();
    for (auto& [p, body] : recent_) {
      auto parsed = json::parse(body, nullptr, false);
      list.push_back({{"path", p}, {"body", parsed.is_discarded() ? json(body) : parsed}});
    }
    r.body = json{{"requests", std::move(list)}}.dump();
    return r;
  }
  if (path != "/admin/fault" && path != "/admin/reset")
    return fail(404, "Unknown request URL: " + req.method + " " + path);
  if (req.method != "POST")
    return fail(405, "use POST " + path);
  if (path == "/admin/reset") {
    reset();
    r.body = R"({"reset":true})";
    return r;
  }
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(400, "body must be a JSON object");
  fault_state f;
  for (const auto& [key, value] : j.items()) {
    if (key == "mode" && value.is_string() && parse_fault_mode(value.get<std::string>()))
      f.mode = *parse_fault_mode(value.get<std::string>());
    else if (key == "fraction" && value.is_number() && value.get<double>() >= 0 && value.get<double>() <= 1)
      f.fraction = value.get<double>();
    else if (key == "slow_ms" && value.is_number_integer() && value.get<std::int64_t>() >= 0)
      f.slow = millis{value.get<std::int64_t>()};
    else if (key == "cut_after" && value.is_number_integer() && value.get<std::int64_t>() >= 0)
      f.cut_after = value.get<std::int64_t>();
    else if (key == "retry_after_ms" && value.is_number_integer() && value.get<std::int64_t>() >= 0)
      f.retry_after = millis{value.get<std::int64_t>()};
    else if (key == "mode" || key == "fraction" || key == "slow_ms" || key == "cut_after" || key == "retry_after_ms")
      return fail(400, "bad value for '" + key +
                           "' (mode: none|down|error500|slow|garbage|cut|unauthorized|overloaded|ratelimited; "
                           "fraction: 0..1; slow_ms, cut_after, retry_after_ms: integers >= 0)");
    else
      return fail(400, "unknown key '" + key + "'");
  }
  if (!j.contains("mode"))
    return fail(400, "'mode' is required");
  set_fault(f);
  r.body = json{{"mode", to_string(f.mode)}}.dump();
  return r;
}

} // namespace squad::mock
