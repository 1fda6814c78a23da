#pragma once
// `squad audit export --config FILE [--storage URL] [--since TIME] [--format jsonl|csv]`: the audit rows of the
// config's store, oldest first, on stdout. TIME: an RFC 3339 time (2026-12-01T08:00:00Z), a date (2026-12-01,
// UTC), unix milliseconds, or a duration back from now (24h, 7d). Exit 0 ok, 1 store unreachable, 2 bad usage.
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace squad {

struct audit_export_options {
  std::string config_file, storage, since, format = "jsonl";
};

int audit_export(const audit_export_options& o, std::ostream& out);

} // namespace squad
