#include "runtime/server/usage_endpoint.hpp"
#include "actors/store/writer.hpp"
#include "runtime/server/openai_encoding.hpp"
#include "runtime/time/when.hpp"

#include <nlohmann/json.hpp>

#include <map>

namespace squad::server {

namespace {

using json = nlohmann::json;

std::string decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string{s.substr(i + 1, 2)}, nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> query_of(std::string_view target) {
  std::map<std::string, std::string> q;
  auto at = target.find('?');
  if (at == std::string_view::npos)
    return q;
  auto rest = target.substr(at + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    q[decoded(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : decoded(pair.substr(eq + 1));
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
  }
  return q;
}

// The API's group names and their audit columns.
const std::map<std::string, std::string>& group_columns() {
  static const std::map<std::string, std::string> m = {
      {"key", "key_id"}, {"persona", "persona"}, {"provider", "provider"}, {"model", "model"}, {"run", "run_id"}};
  return m;
}

} // namespace

void serve_usage(run_journal* journal, const request& req, responder& out, bool admin) {
  if (!admin)
    return send_error(out, 403, "GET /v1/usage needs an admin key (server.keys.<name>.admin: true)",
                      "permission_denied");
  if (!journal)
    return send_error(out, 404, "there is no usage to show: storage.url is none (no audit trail is kept)",
                      "invalid_request_error", {}, "no_storage");
  auto q = query_of(req.target);
  for (auto& [k, v] : q)
    if (k != "group_by" && k != "since")
      return send_error(out, 400, "unknown query parameter " + k + " (GET /v1/usage takes group_by and since)",
                        "invalid_request_error", k, "invalid_value");
  std::vector<std::string> names, columns;
  if (auto g = q.find("group_by"); g != q.end() && !g->second.empty()) {
    std::string_view rest = g->second;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string name{rest.substr(0, comma)};
      auto col = group_columns().find(name);
      if (col == group_columns().end())
        return send_error(out, 400, "group_by: cannot group by \"" + name + "\" (key, persona, provider, model, run)",
                          "invalid_request_error", "group_by", "invalid_value");
      names.push_back(name);
      columns.push_back(col->second);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  auto now = unix_ms();
  std::int64_t since = now - now % 86400000;
  if (auto s = q.find("since"); s != q.end()) {
    auto t = parse_since(s->second, now);
    if (!t)
      return send_error(out, 400,
                        "since: not a time (2026-12-01T08:00:00Z, 2026-12-01, unix ms, or a duration back: 24h, 7d)",
                        "invalid_request_error", "since", "invalid_value");
    since = *t;
  }
  std::vector<store::store::usage_row> rows;
  try {
    rows = journal->db().usage(columns, since);
  } catch (const store::store_error& e) {
    return send_error(out, 503, std::string{"the store cannot be read now: "} + e.what(), "server_error", {},
                      "storage_unavailable");
  }
  json data = json::array();
  json total{{"requests", 0}, {"prompt_tokens", 0}, {"completion_tokens", 0}, {"cost_usd", 0.0}};
  for (auto& r : rows) {
    json e = json::object();
    for (std::size_t i = 0; i < names.size(); ++i)
      e[names[i]] = r.group[i];
    e["requests"] = r.requests, e["prompt_tokens"] = r.prompt_tokens;
    e["completion_tokens"] = r.completion_tokens, e["cost_usd"] = r.cost_usd;
    total["requests"] = total["requests"].get<std::int64_t>() + r.requests;
    total["prompt_tokens"] = total["prompt_tokens"].get<std::int64_t>() + r.prompt_tokens;
    total["completion_tokens"] = total["completion_tokens"].get<std::int64_t>() + r.completion_tokens;
    total["cost_usd"] = total["cost_usd"].get<double>() + r.cost_usd;
    data.push_back(std::move(e));
  }
  json body{{"object", "usage"}, {"since", iso_time(since)}, {"group_by", names}, {"data", data}, {"total", total}};
  out.reply(200, json_headers(), body.dump(-1, ' ', false, json::error_handler_t::replace));
}

} // namespace squad::server
