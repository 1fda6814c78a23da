#include "runtime/app/audit_export.hpp"
#include "actors/store/writer.hpp"
#include "runtime/config/config.hpp"
#include "runtime/store/store.hpp"
#include "runtime/time/when.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace squad {

namespace {

nlohmann::ordered_json row_json(const store::audit_row& a) {
  nlohmann::ordered_json j{{"request_id", a.request_id},
                           {"kind", a.kind},
                           {"time", iso_time(a.time_ms)},
                           {"time_ms", a.time_ms},
                           {"run_id", a.run_id},
                           {"step", a.step},
                           {"key_id", a.key_id},
                           {"persona", a.persona},
                           {"provider", a.provider},
                           {"model", a.model},
                           {"status", a.status},
                           {"error_class", a.error_class},
                           {"prompt_tokens", a.prompt_tokens},
                           {"completion_tokens", a.completion_tokens},
                           {"cached_tokens", a.cached_tokens},
                           {"cost_usd", a.cost_usd},
                           {"latency_ms", a.latency_ms},
                           {"fallbacks", a.fallbacks},
                           {"trace_id", a.trace_id}};
  if (!a.request_body.empty())
    j["request_body"] = a.request_body;
  if (!a.response_body.empty())
    j["response_body"] = a.response_body;
  return j;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos)
    return s;
  std::string out = "\"";
  for (char c : s)
    out += c == '"' ? std::string{"\"\""} : std::string(1, c);
  return out + "\"";
}

} // namespace

int audit_export(const audit_export_options& o, std::ostream& out) {
  if (o.format != "jsonl" && o.format != "csv") {
    std::cerr << "squad audit export: --format must be jsonl or csv (got " << o.format << ")\n";
    return 2;
  }
  auto since = parse_since(o.since, unix_ms());
  if (!since) {
    std::cerr << "squad audit export: --since " << o.since
              << ": not a time (2026-12-01T08:00:00Z, 2026-12-01, unix ms, or a duration back from now: 24h, 7d)\n";
    return 2;
  }
  std::string url = o.storage;
  if (url.empty()) {
    auto loaded = load_config_file(o.config_file);
    if (!loaded.cfg) {
      for (auto& p : loaded.problems)
        std::cerr << to_string(p) << "\n";
      return 2;
    }
    url = loaded.cfg->storage.url;
  }
  if (url == "none") {
    std::cerr << "squad audit export: storage.url is none: there is no audit trail to export\n";
    return 2;
  }
  std::unique_ptr<store::store> db;
  try {
    db = store::store::open(url);
  } catch (const store::store_unavailable& e) {
    std::cerr << "squad audit export: " << e.what() << "\n";
    return 1;
  } catch (const store::store_error& e) {
    std::cerr << "squad audit export: " << e.what() << "\n";
    return 2;
  }
  static const char* header = "request_id,kind,time,run_id,step,key_id,persona,provider,model,status,error_class,"
                              "prompt_tokens,completion_tokens,cached_tokens,cost_usd,latency_ms,fallbacks,trace_id,"
                              "request_body,response_body";
  if (o.format == "csv")
    out << header << "\n";
  constexpr std::size_t page = 5000;
  std::int64_t from = *since;
  std::string last_id;
  for (;;) { // pages in (time, id) order, each after the last row of the one before
    auto rows = db->audit(from, page, last_id);
    for (auto& a : rows) {
      if (o.format == "jsonl") {
        out << row_json(a).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      } else {
        char cost[32];
        std::snprintf(cost, sizeof cost, "%.10g", a.cost_usd);
        out << csv_field(a.request_id) << ',' << a.kind << ',' << iso_time(a.time_ms) << ',' << csv_field(a.run_id)
            << ',' << csv_field(a.step) << ',' << csv_field(a.key_id) << ',' << csv_field(a.persona) << ','
            << csv_field(a.provider) << ',' << csv_field(a.model) << ',' << csv_field(a.status) << ','
            << csv_field(a.error_class) << ',' << a.prompt_tokens << ',' << a.completion_tokens << ','
            << a.cached_tokens << ',' << cost << ',' << a.latency_ms << ',' << a.fallbacks << ','
            << csv_field(a.trace_id) << ',' << csv_field(a.request_body) << ',' << csv_field(a.response_body) << "\n";
      }
    }
    if (rows.size() < page)
      break;
    from = rows.back().time_ms;
    last_id = rows.back().id;
  }
  out.flush();
  return out ? 0 : 1;
}

} // namespace squad
