// The tables: one row per key of squad.yaml. Defaults are the initializers in config.hpp; bounds messages are
// the ones users and their scripts see (`providers.groq.limits.requests: must be > 0`).
#include "runtime/config/config_tables.hpp"

namespace squad::detail {

bounds any() {
  return {};
}

bounds positive() {
  bounds b;
  b.what = bounds::kind::range;
  b.lo = 1;
  b.message = "must be > 0";
  return b;
}

bounds at_least(std::int64_t lo, std::string_view note) {
  bounds b;
  b.what = bounds::kind::range;
  b.lo = lo;
  b.message = "must be >= " + std::to_string(lo) + std::string(note);
  return b;
}

bounds between(std::int64_t lo, std::int64_t hi, std::string_view unit) {
  bounds b;
  b.what = bounds::kind::range;
  b.lo = lo;
  b.hi = hi;
  b.message =
      "must be between " + std::to_string(lo) + std::string(unit) + " and " + std::to_string(hi) + std::string(unit);
  return b;
}

bounds non_empty() {
  bounds b;
  b.what = bounds::kind::non_empty;
  b.message = "must not be empty";
  return b;
}

// A string that must be given; "required" is the message users already know for these.
bounds required() {
  bounds b = non_empty();
  b.message = "required";
  return b;
}

bounds one_of(std::vector<std::string_view> choices, std::string message, bool quote_value) {
  bounds b;
  b.what = bounds::kind::one_of;
  b.choices = std::move(choices);
  b.message = std::move(message);
  b.quote_value = quote_value;
  return b;
}

bounds non_negative() {
  bounds b;
  b.what = bounds::kind::non_negative;
  b.message = "must be >= 0";
  return b;
}

bounds share() {
  bounds b;
  b.what = bounds::kind::share;
  b.message = "must be in [0, 1)";
  return b;
}

bounds fraction() {
  bounds b;
  b.what = bounds::kind::fraction;
  b.message = "must be in (0, 1]";
  return b;
}

namespace {

// A sim provider never sends the key, so an unset variable there is not worth failing over (kind is read first).
void read_api_key(yaml_reader& r, const YAML::Node& value, const std::string& path, provider_config& p) {
  r.text(value, path, p.api_key, p.kind != "sim");
}

} // namespace

// Each table below: {key, member, bounds, doc}. Cross-field rules (kind needs base_url, ws_max_queued above
// ws_lag_at, chains naming known models, ...) are in validate.cpp.

const table<config>& root_fields() {
  static const table<config> t{
      {"personas_dir", &config::personas_dir, non_empty(), "directory of persona files (*.yaml)"},
      {"workflows_dir", &config::workflows_dir, non_empty(), "directory of workflow files (*.yaml)"},
      {"default_workflow", &config::default_workflow, non_empty(), "the workflow `squad run` uses when none is named"},
  };
  return t;
}

const std::vector<sub_section>& root_sections() {
  static const std::vector<sub_section> s{
      {"server", "the HTTP API of `squad serve`"},
      {"providers", "upstream LLM endpoints by name; at least one"},
      {"personas", "per-persona overrides of priority and chain, by persona id"},
      {"aliases", "API model names for persona/<id> or <provider>/<model>"},
      {"supervision", "restart intensity of every supervisor"},
      {"runtime", "threads, deadlines, routing, cache and call budgets"},
      {"storage", "durable state: where runs and audit rows are kept, and for how long"},
      {"audit", "the audit trail: a row per API call and per upstream attempt"},
  };
  return s;
}

const table<server_config>& server_fields() {
  using s = server_config;
  static const table<s> t{
      {"listen", &s::listen, any(), "host:port the API listens on"},
      {"auth", &s::auth, one_of({"none", "keys"}, "must be none or keys", true), "none (loopback only) | keys"},
      {"body_limit", &s::body_limit, at_least(1024, " bytes"), "request body limit in bytes"},
      {"header_limit", &s::header_limit, at_least(1024, " bytes"), "request header limit in bytes"},
      {"read_timeout", &s::read_timeout, positive(), "a request must arrive within this"},
      {"drain_timeout", &s::drain_timeout, positive(), "on SIGTERM, how long in-flight work may take"},
      {"linger_time", &s::linger_time, positive(),
       "after refusing a request (413, 431, ...), read and drop what the client still sends for at most this long"},
      {"linger_timeout", &s::linger_timeout, positive(), "lingering close: the longest wait for more of it"},
      {"linger_bytes", &s::linger_bytes, at_least(0), "lingering close: the most bytes read and dropped"},
      {"max_client_header_reads", &s::max_client_header_reads, at_least(0, " (0: no bound)"),
       "connections of one address yet to send a first request head; past it the oldest is closed for a new one"},
      {"call_timeout", &s::call_timeout, positive(),
       "an API chat call's deadline; a client's X-Squad-Timeout header may ask for less"},
      {"stream_max_queued", &s::stream_max_queued, at_least(65536, " bytes"), "answer bytes queued for a slow reader"},
      {"ws_lag_at", &s::ws_lag_at, at_least(1), "WebSocket messages queued before step.delta events are dropped"},
      {"ws_max_queued", &s::ws_max_queued, any(),
       "WebSocket messages queued before the session is closed; above ws_lag_at"},
  };
  return t;
}

const std::vector<sub_section>& server_sections() {
  static const std::vector<sub_section> s{{"keys", "API keys by name, with auth: keys"},
                                          {"tiers", "named sets of key limits a key takes with tier: <name>"}};
  return s;
}

const table<api_key_config>& api_key_fields() {
  using k = api_key_config;
  static const table<k> t{
      {"sha256", &k::sha256, any(), "SHA-256 of the key in hex (`squad key hash`)"},
      {"tier", &k::tier, any(), "a server.tiers name: its limits where this key sets none"},
      {"rpm", &k::rpm, at_least(0, " (0: unlimited)"), "requests per minute"},
      {"concurrency", &k::concurrency, at_least(0, " (0: unlimited)"), "requests in flight"},
      {"daily_calls", &k::daily_calls, at_least(0, " (0: unlimited)"), "requests per UTC day"},
      {"daily_usd", &k::daily_usd, non_negative(), "USD per UTC day (worst case reserved, settled after); 0: none"},
      {"monthly_usd", &k::monthly_usd, non_negative(), "USD per calendar month (UTC); 0: unlimited"},
      {"models", &k::models, any(), "API model names this key may use; empty: all"},
      {"admin", &k::admin, any(), "sees, follows and cancels every key's runs"},
  };
  return t;
}

const table<key_tier_config>& key_tier_fields() {
  using t = key_tier_config;
  static const table<t> tab{
      {"rpm", &t::rpm, at_least(0, " (0: unlimited)"), "requests per minute"},
      {"concurrency", &t::concurrency, at_least(0, " (0: unlimited)"), "requests in flight"},
      {"daily_calls", &t::daily_calls, at_least(0, " (0: unlimited)"), "requests per UTC day"},
      {"daily_usd", &t::daily_usd, non_negative(), "USD per UTC day; 0: unlimited"},
      {"monthly_usd", &t::monthly_usd, non_negative(), "USD per calendar month (UTC); 0: unlimited"},
  };
  return tab;
}

const table<provider_config>& provider_fields() {
  using p = provider_config;
  static const table<p> t{
      {"kind", &p::kind, any(), "openai | anthropic | sim (required)"},
      {"base_url", &p::base_url, any(), "http(s)://host[:port][/path], required for openai and anthropic"},
      {"api_key", &p::api_key, any(), "the key, usually ${VAR}; never logged", read_api_key},
      {"ca_file", &p::ca_file, any(), "extra CA bundle for TLS verification"},
  };
  return t;
}

const table<http_client_config>& provider_http_fields() {
  using h = http_client_config;
  static const table<h> t{
      {"max_connections", &h::max_connections, at_least(0, " (0: as many as limits.concurrency)"),
       "keep-alive pool cap"},
      {"stream", &h::stream, any(), "stream from the upstream even when the caller did not ask to"},
  };
  return t;
}

const std::vector<sub_section>& provider_sections() {
  static const std::vector<sub_section> s{
      {"limits", "rate and concurrency limits"},
      {"timeouts", "HTTP timeouts"},
      {"breaker", "circuit breaker"},
      {"retry", "retries of this provider after a failure"},
      {"models", "models by name; at least one"},
      {"sim", "behaviour of kind sim"},
  };
  return s;
}

const table<limits_config>& limits_fields() {
  using l = limits_config;
  static const table<l> t{
      {"requests", &l::requests, positive(), "requests admitted per `per` window"},
      {"per", &l::per, positive(), "window length"},
      {"burst", &l::burst, at_least(1), "token-bucket burst"},
      {"concurrency", &l::concurrency, at_least(1), "calls in flight at once"},
      {"min_interval", &l::min_interval, any(), "minimum gap between two sends"},
      {"tokens", &l::tokens, at_least(0), "LLM tokens per `per` window; 0: not limited"},
      {"per_day", &l::per_day, at_least(0, " (0: not limited)"),
       "requests per 24 h, a fixed window from its first call (free tiers' daily quota)"},
      {"expected_latency", &l::expected_latency, any(),
       "the hold time routing plans concurrency with until replies measure it; 0: a sim provider's latency, else 1s"},
  };
  return t;
}

const std::vector<sub_section>& limits_sections() {
  static const std::vector<sub_section> s{{"throttle", "the adaptive throttle after repeated 429s"}};
  return s;
}

const table<throttle_config>& throttle_fields() {
  using t = throttle_config;
  static const table<t> f{
      {"after", &t::after, at_least(1), "429s within `period` that cut the rate"},
      {"period", &t::period, positive(), "the window those 429s are counted in"},
      {"step", &t::step, fraction(), "the share of the rate one cut takes"},
      {"floor", &t::floor, fraction(), "the lowest share of the configured rate"},
      {"quiet", &t::quiet, positive(), "without a 429 this long, one step comes back"},
  };
  return f;
}

const table<http_client_config>& timeouts_fields() {
  using h = http_client_config;
  static const table<h> t{
      {"connect", &h::connect_timeout, positive(), "DNS + TCP + TLS handshake"},
      {"first_byte", &h::first_byte_timeout, positive(), "request sent to response head"},
      {"idle", &h::idle_timeout, positive(), "gap between two pieces of a body"},
      {"total", &h::total_timeout, positive(), "a whole attempt"},
  };
  return t;
}

const table<breaker_config>& breaker_fields() {
  using b = breaker_config;
  static const table<b> t{
      {"failures", &b::failures, at_least(1), "consecutive failures that open it"},
      {"ratio", &b::ratio, fraction(), "or this share of failures among the calls of `window`"},
      {"min_calls", &b::min_calls, at_least(1), "once the window holds at least this many calls"},
      {"window", &b::window, positive(), "the window of `ratio`"},
      {"cooldown", &b::cooldown, positive(), "open this long, then half-open"},
      {"probes", &b::probes, at_least(1), "calls let through while half-open"},
      {"count_rate_limits", &b::count_rate_limits, any(), "a 429 counts as a failure"},
  };
  return t;
}

const table<retry_config>& retry_fields() {
  using r = retry_config;
  static const table<r> t{
      {"retries", &r::retries, between(0, 100), "further tries of this provider after a call's first failure"},
      {"base", &r::base, positive(), "the first rest; each further one doubles"},
      {"cap", &r::cap, positive(), "no rest is longer"},
      {"jitter", &r::jitter, share(), "each rest moves by up to this share either way"},
  };
  return t;
}

const table<sim_config>& sim_fields() {
  using s = sim_config;
  static const table<s> t{
      {"latency", &s::latency, any(), "fixed part of a call's latency"},
      {"jitter", &s::jitter, any(), "deterministic jitter added on top, in [0, jitter]"},
      {"per_token", &s::per_token, any(), "added per completion token"},
      {"max_tokens", &s::max_tokens, positive(), "completion tokens of a simulated answer at most"},
      {"fault", &s::fault, one_of({"none", "server_error", "cut"}, "must be none, server_error or cut", true),
       "a simulated fault: none | server_error | cut (a stream cut after a few words)"},
      {"fault_every", &s::fault_every, at_least(1), "the fault hits every n-th call (1: all)"},
  };
  return t;
}

const table<model_config>& model_fields() {
  using m = model_config;
  static const table<m> t{
      {"id", &m::id, required(), "the upstream model id"},
      {"tier", &m::tier, one_of({"worker", "boss"}, "must be worker or boss", false), "worker | boss"},
      {"input_price", &m::input_price, non_negative(), "USD per 1M prompt tokens (strategy: cost); 0: free"},
      {"output_price", &m::output_price, non_negative(), "USD per 1M completion tokens"},
      {"cached_input_price", &m::cached_input_price, any(),
       "USD per 1M prompt tokens the upstream served from its prompt cache; unset: input_price"},
  };
  return t;
}

const std::vector<sub_section>& model_sections() {
  static const std::vector<sub_section> s{
      {"limits", "this model's own limits (keys as the provider's limits, which it inherits where unset)"}};
  return s;
}

const table<persona_override>& persona_fields() {
  using o = persona_override;
  static const table<o> t{
      {"priority", &o::priority, any(), "P0..P3, instead of the persona file's"},
      {"strategy", &o::strategy, any(), "preference | latency | cost | adaptive, instead of the persona file's"},
      {"chain", &o::chain, any(), "provider/model, @worker or @boss entries, instead of the persona file's"},
  };
  return t;
}

const table<supervision_config>& supervision_fields() {
  using s = supervision_config;
  static const table<s> t{
      {"max_restarts", &s::max_restarts, at_least(0), "restarts allowed within `period` before escalating"},
      {"period", &s::period, positive(), "the window of max_restarts"},
  };
  return t;
}

const std::vector<sub_section>& runtime_sections() {
  static const std::vector<sub_section> s{{"tolerable_wait", "how long an API call of each class waits for a slot"}};
  return s;
}

const table<tolerable_wait_config>& tolerable_wait_fields() {
  using w = tolerable_wait_config;
  static const table<w> t{
      {"P1", &w::p1, positive(), "a P1 call's longest wait for a slot, from its arrival"},
      {"P2", &w::p2, positive(), "a P2 call's longest wait for a slot"},
      {"P3", &w::p3, positive(), "a P3 call's longest wait for a slot"},
  };
  return t;
}

const table<runtime_config>& runtime_fields() {
  using r = runtime_config;
  static const table<r> t{
      {"scheduler", &r::scheduler, one_of({"io", "caf"}, "must be io or caf", true),
       "io | caf: which threads run actors"},
      {"scheduler_threads", &r::scheduler_threads, between(1, 64), "CAF worker threads, with scheduler: caf"},
      {"io_threads", &r::io_threads, between(1, 16), "Asio threads for every socket"},
      {"io_spin", &r::io_spin, between(0, 100, "ms"), "how long an idle io thread polls before it sleeps"},
      {"spin_polls", &r::spin_polls, between(0, 1000000), "polls of an idle CAF worker before it sleeps"},
      {"step_timeout", &r::step_timeout, positive(), "a workflow step's deadline"},
      {"queue_wait", &r::queue_wait, any(), "longest wait in one limiter's queue before falling back"},
      {"route_slack", &r::route_slack, any(), "leave the preferred target only to be sooner by more than this"},
      {"cache", &r::cache, any(), "the response cache (exact match, complete answers)"},
      {"cache_entries", &r::cache_entries, at_least(1, " (turn the cache off with runtime.cache: false)"),
       "the cache's size bound in entries"},
      {"cache_ttl", &r::cache_ttl, positive(), "how long a cached answer is served"},
      {"request_calls", &r::request_calls, at_least(1), "LLM calls a call outside a run may make"},
      {"shared_calls", &r::shared_calls, at_least(1), "LLM calls the API calls of one X-Squad-Run id may make"},
      {"bind_horizon", &r::bind_horizon, between(0, 600000, "ms"),
       "a call whose earliest slot is further away waits in the dispatcher and binds when a target frees; 0: off"},
      {"probe_wait", &r::probe_wait, between(0, 600000, "ms"),
       "the longest a call waits for an open breaker's probe; a chain open longer than this answers at once"},
      {"global_concurrency", &r::global_concurrency, at_least(0, " (0: no global cap)"),
       "upstream calls in flight across every provider"},
  };
  return t;
}

const table<audit_config>& audit_fields() {
  using a = audit_config;
  static const table<a> t{
      {"enabled", &a::enabled, any(), "write audit rows (needs storage.url other than none)"},
      {"bodies", &a::bodies, any(), "keep request and answer bodies, PII and secrets redacted before they are kept"},
  };
  return t;
}

const table<storage_config>& storage_fields() {
  using s = storage_config;
  static const table<s> t{
      {"url", &s::url, non_empty(), "sqlite:PATH (embedded) | postgresql://user@host:port/db | none"},
      {"retention", &s::retention, positive(), "finished runs and audit rows older than this are pruned"},
      {"lease", &s::lease, between(1000, 600000, "ms"),
       "an unfinished run is resumed by another process this long after its own stopped renewing it"},
      {"queue_limit", &s::queue_limit, at_least(100),
       "rows waiting for the writer; past this a new run is refused (503 storage_behind)"},
      {"spool", &s::spool, non_empty(), "the file rows go to while the database is unreachable, replayed in order"},
      {"spool_limit", &s::spool_limit, at_least(65536, " bytes"), "the spool file's size limit in bytes"},
  };
  return t;
}

// ---------------------------------------------------------------------------------------------------
// The reference listing: the same rows, with each default read from a default-constructed struct.

namespace {

std::string shown(const std::string& v) {
  return "\"" + v + "\"";
}
std::string shown(std::int64_t v) {
  return std::to_string(v);
}
std::string shown(millis v) {
  return format_duration(v);
}
std::string shown(bool v) {
  return v ? "true" : "false";
}
std::string shown(double v) {
  std::string text = std::to_string(v);
  while (text.size() > 1 && text.back() == '0' && text[text.size() - 2] != '.')
    text.pop_back();
  return text;
}
std::string shown(const std::vector<std::string>& v) {
  std::string text = "[";
  for (std::size_t i = 0; i < v.size(); ++i)
    text += (i ? ", " : "") + v[i];
  return text + "]";
}
template <class T> std::string shown(const std::optional<T>&) {
  return "unset";
}

template <class S>
void describe(std::vector<config_key_doc>& out, const std::string& path, const table<S>& t,
              const std::vector<sub_section>& sections = {}) {
  const S defaults{};
  for (const auto& f : t) {
    std::string limit = f.check.message;
    if (limit.rfind("must be ", 0) == 0)
      limit = limit.substr(8);
    std::visit(
        [&](auto m) {
          out.push_back({join(path, f.key), shown(defaults.*m), limit, std::string(f.doc)});
        },
        f.at);
  }
  for (const auto& s : sections)
    out.push_back({join(path, s.key), "", "", std::string(s.doc)});
}

} // namespace

} // namespace squad::detail

namespace squad {

std::vector<config_key_doc> config_reference() {
  using namespace detail;
  std::vector<config_key_doc> out;
  describe(out, "", root_fields(), root_sections());
  describe(out, "server", server_fields(), server_sections());
  describe(out, "server.keys.<name>", api_key_fields());
  describe(out, "server.tiers.<name>", key_tier_fields());
  describe(out, "providers.<name>", provider_fields());
  describe(out, "providers.<name>", provider_http_fields(), provider_sections());
  describe(out, "providers.<name>.limits", limits_fields(), limits_sections());
  describe(out, "providers.<name>.limits.throttle", throttle_fields());
  describe(out, "providers.<name>.timeouts", timeouts_fields());
  describe(out, "providers.<name>.breaker", breaker_fields());
  describe(out, "providers.<name>.retry", retry_fields());
  describe(out, "providers.<name>.sim", sim_fields());
  describe(out, "providers.<name>.models.<name>", model_fields(), model_sections());
  describe(out, "providers.<name>.models.<name>.limits", limits_fields(), limits_sections());
  describe(out, "personas.<id>", persona_fields());
  describe(out, "supervision", supervision_fields());
  describe(out, "runtime", runtime_fields(), runtime_sections());
  describe(out, "runtime.tolerable_wait", tolerable_wait_fields());
  describe(out, "storage", storage_fields());
  describe(out, "audit", audit_fields());
  return out;
}

} // namespace squad
