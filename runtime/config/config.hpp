#pragma once
// Squad's configuration: typed structs with their defaults in one place, loaded from YAML.
// Every field's default is written beside it. Relative paths resolve against the working directory.
// Each member that squad.yaml sets has one row in runtime/config/config_tables.cpp (its YAML key, bounds and doc
// line); that row is what reads it, accepts its key and checks its bounds. A new field: the member, then the row.
#include "runtime/time/duration.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace squad {

/// P0 always runs; P1 cache then LLM; P2 cache then skip; P3 skipped under load.
enum class priority_class : std::uint8_t { p0 = 0, p1 = 1, p2 = 2, p3 = 3 };

std::optional<priority_class> parse_priority(std::string_view text); ///< "P0".."P3"
const char* to_string(priority_class p);                             ///< "P0".."P3"

/// One problem found in a config, persona or workflow file.
struct config_problem {
  std::string path;    ///< e.g. "providers.groq.limits.requests"; for files: "personas/pm.yaml: chain[1]"
  std::string message; ///< e.g. "must be > 0"
};

/// Renders "path: message".
std::string to_string(const config_problem& p);

/// The adaptive throttle: `after` 429s within `period` cut the rate by `step` (down to `floor` of it); each
/// `quiet` without a 429 restores a step.
struct throttle_config {
  std::int64_t after = 3; ///< 429s within `period` that cut the rate (>= 1)
  millis period{60000};   ///< default 60s
  double step = 0.2;      ///< the share of the rate one cut takes, in (0, 1]
  double floor = 0.5;     ///< the lowest share of the configured rate, in (0, 1]
  millis quiet{600000};   ///< without a 429 this long, one step comes back; default 10m
};

struct limits_config {
  std::int64_t requests = 60;   ///< requests admitted per `per` window (> 0)
  millis per{60000};            ///< window length (> 0), default 60s
  std::int64_t burst = 1;       ///< token-bucket burst (>= 1)
  std::int64_t concurrency = 4; ///< calls in flight at once (>= 1)
  millis min_interval{0};       ///< minimum gap between two sends, default 0ms
  std::int64_t tokens = 0;      ///< LLM tokens per `per` window; 0 = not limited
  std::int64_t per_day = 0;     ///< requests per 24 h (a fixed window from its first call); 0 = not limited
  millis expected_latency{0};   ///< how long a call takes until replies have measured it (plans concurrency from
                                ///< the first call); 0: a sim provider's own latency, else 1s
  throttle_config throttle;     ///< limits.throttle
};

struct model_config {
  std::string name;               ///< the key under `models:`; targets are written "provider/name"
  std::string id;                 ///< the upstream model id (required)
  std::string tier = "worker";    ///< worker | boss
  double input_price = 0;         ///< USD per 1M prompt tokens, for strategy: cost (0: free or not said)
  double output_price = 0;        ///< USD per 1M completion tokens
  double cached_input_price = -1; ///< USD per 1M prompt tokens served from the upstream's prompt cache; <0: input
  /// `models.<m>.limits`: this model's own limits (most providers limit each model apart), its unset keys those
  /// of the provider's `limits`. Without it the model shares the provider's limits with its other such models.
  std::optional<limits_config> limits{};
};

/// Behaviour of a `kind: sim` provider (ignored by other kinds).
struct sim_config {
  millis latency{150};           ///< fixed part of a call's latency
  millis jitter{50};             ///< deterministic jitter added on top, in [0, jitter]
  millis per_token{0};           ///< added per completion token
  std::int64_t max_tokens = 400; ///< completion tokens of a simulated answer at most
  /// A fault to simulate (demos, tests of governance without a network): none | server_error (a 500) | cut (a
  /// stream cut after a few words, its text kept as partial). Applied to every `fault_every`-th call.
  std::string fault = "none";
  std::int64_t fault_every = 1;
};

/// How an openai/anthropic provider talks HTTP (ignored by kind sim).
struct http_client_config {
  millis connect_timeout{10000};    ///< DNS + TCP + TLS handshake, default 10s
  millis first_byte_timeout{60000}; ///< request sent -> response head, default 60s
  millis idle_timeout{30000};       ///< gap between two pieces of a body, default 30s
  millis total_timeout{300000};     ///< a whole attempt, default 5m (a call's own deadline may cut it shorter)
  std::int64_t max_connections = 0; ///< keep-alive pool cap; 0 = limits.concurrency
  bool stream = false;              ///< stream from the upstream even when the caller did not ask to
};

/// When a provider's circuit breaker opens and how it probes again.
/// How a call retries one provider after a retryable failure (5xx, timeout, cut stream, overloaded): it rests that
/// target for base * 2^(n-1) (capped, +-jitter) and tries others meanwhile; after `retries` further failures the
/// target leaves the call's walk. A 429 rests it until its Retry-After instead and is not counted here.
struct retry_config {
  std::int64_t retries = 4; ///< further tries after the first failure: 1s, 2s, 4s, 8s with the defaults
  millis base{1000};        ///< the first rest, default 1s
  millis cap{30000};        ///< no rest is longer, default 30s
  double jitter = 0.2;      ///< each rest is moved by up to this share either way, default +-20%
};

struct breaker_config {
  std::int64_t failures = 10;  ///< consecutive failures that open it
  double ratio = 0.8;          ///< or this share of failures among the calls of `window`...
  std::int64_t min_calls = 10; ///< ...once the window holds at least this many calls
  millis window{60000};
  millis cooldown{60000};         ///< open this long, then half-open
  std::int64_t probes = 1;        ///< calls let through while half-open
  bool count_rate_limits = false; ///< a 429 counts as a failure (default: it is the limiter's business)
};

struct provider_config {
  std::string name;                   ///< the key under `providers:`
  std::string kind;                   ///< openai | anthropic | sim (required)
  std::string base_url;               ///< required for openai and anthropic
  std::string api_key;                ///< after ${VAR} expansion; never logged
  std::optional<std::string> ca_file; ///< extra CA bundle for TLS verification
  limits_config limits;
  http_client_config http;
  breaker_config breaker;
  retry_config retry;
  std::vector<model_config> models; ///< in file order; at least one
  sim_config sim;
};

struct persona_override {
  std::optional<priority_class> priority;
  std::optional<std::vector<std::string>> chain;
  std::optional<std::string> strategy;
};

/// An API key of `squad serve`, stored as the SHA-256 of the key (`squad key hash` prints it).
/// A named set of key limits (server.tiers.<name>): keys of the tier inherit each one they do not set.
struct key_tier_config {
  std::string name;
  std::int64_t rpm = 0, concurrency = 0, daily_calls = 0; ///< 0: unlimited
  double daily_usd = 0, monthly_usd = 0;                  ///< spend per UTC day / calendar month (UTC), 0: unlimited
};

struct api_key_config {
  std::string name;             ///< the key's name in metrics and logs
  std::string sha256;           ///< 64 lowercase hex digits
  std::string tier;             ///< a server.tiers name: its limits where this key sets none ("" : no tier)
  std::int64_t rpm = 0;         ///< requests per minute, 0: unlimited
  std::int64_t concurrency = 0; ///< requests in flight, 0: unlimited
  std::int64_t daily_calls = 0; ///< requests per UTC day, 0: unlimited
  /// Money budgets: each call reserves its worst case (prompt estimate + max_tokens at the dearest price of its
  /// chain) before it goes, and settles at its real cost after. 0: unlimited.
  double daily_usd = 0, monthly_usd = 0;
  std::vector<std::string>
      models;         ///< API model names this key may use (persona/<id>, <provider>/<model>, alias); empty: all
  bool admin = false; ///< sees, follows and cancels every key's runs; other keys see only their own
};

struct server_config {
  std::string listen = "127.0.0.1:8080";      ///< host:port
  std::string auth = "none";                  ///< none (loopback only) | keys
  std::vector<api_key_config> keys;           ///< with auth: keys (a tier's limits already applied)
  std::vector<key_tier_config> tiers;         ///< server.tiers, by name
  std::int64_t body_limit = 1 << 20;          ///< request body limit in bytes, default 1 MiB
  std::int64_t header_limit = 16384;          ///< request header limit in bytes, default 16 KiB
  millis read_timeout{30000};                 ///< a request must arrive within this, default 30s
  millis drain_timeout{30000};                ///< on SIGTERM, in-flight work gets this long, default 30s
  millis linger_time{30000};                  ///< lingering close after a refused request: at most this long in all
  millis linger_timeout{5000};                ///< ... and this long waiting for more of it
  std::int64_t linger_bytes = 64 << 20;       ///< ... discarding at most this many bytes
  std::int64_t max_client_header_reads = 256; ///< connections of one address yet to send a first request head
  millis call_timeout{60000};               ///< an API chat call's deadline (X-Squad-Timeout may ask less), default 60s
  std::int64_t stream_max_queued = 8 << 20; ///< answer bytes queued for a slow HTTP reader before it is cut off
  std::int64_t ws_lag_at = 256;      ///< WebSocket messages queued before step.delta events are dropped (`lagged`)
  std::int64_t ws_max_queued = 1024; ///< WebSocket messages queued before a session that does not read is closed
};

struct supervision_config {
  std::int64_t max_restarts = 5; ///< restarts allowed within `period` before escalating
  millis period{10000};          ///< default 10s
};

/// How long an API call of each class may wait for a slot its chain does not have yet, counted from its arrival
/// (P0 waits as long as its deadline allows). Past it the call is refused (429 shed, Retry-After the earliest slot).
struct tolerable_wait_config {
  millis p1{60000}; ///< default 60s
  millis p2{30000}; ///< default 30s
  millis p3{10000}; ///< default 10s
};

struct runtime_config {
  /// Which threads run the actors: "io" (default) the io threads themselves, so a call never changes threads;
  /// "caf" CAF's own work-stealing workers (scheduler_threads, spin_polls), for actors that may block.
  std::string scheduler = "io";
  std::int64_t scheduler_threads = 2; ///< CAF worker threads (1..64), with scheduler: caf
  std::int64_t io_threads = 1;        ///< Asio threads for every socket (1..16); with scheduler io, for the actors too
  /// How long an idle io thread keeps polling, yielding the CPU between polls, before it sleeps (0..100ms; 0
  /// sleeps at once). Waking a sleeping thread costs tens of microseconds per hop on a VM.
  millis io_spin{1};
  /// With scheduler caf: times an idle CAF worker polls its queue before it sleeps (0..1000000). A message from
  /// an io thread reaches a polling worker at once, but must wake a sleeping one (tens of microseconds on a VM):
  /// more polls, lower latency, more CPU spent while busy (an idle process still sleeps after about a millisecond).
  std::int64_t spin_polls = 20000;
  millis step_timeout{120000};          ///< a workflow step's deadline, default 120s
  millis queue_wait{30000};             ///< longest wait in one limiter's queue before falling back, default 30s
  millis route_slack{250};              ///< routing leaves the preferred target only to be sooner by more than this
  bool cache = true;                    ///< the response cache (exact match, complete answers only)
  std::int64_t cache_entries = 1000;    ///< its size bound in entries, default 1000
  millis cache_ttl{600000};             ///< how long an answer is served, default 10 minutes
  std::int64_t request_calls = 5;       ///< LLM calls (retries and fallbacks included) a call outside a run may make
  std::int64_t shared_calls = 16;       ///< LLM calls the API calls sharing one X-Squad-Run id may make together
  tolerable_wait_config tolerable_wait; ///< runtime.tolerable_wait: {P1, P2, P3}
  millis bind_horizon{1000}; ///< a call whose earliest slot is further away waits unbound (late binding); 0: off
  /// The longest a call waits for an open breaker's half-open probe (within its deadline and tolerable wait);
  /// a chain whose targets are all open further than this answers at once, naming them. Default 2s.
  millis probe_wait{2000};
  /// Upstream calls in flight across every provider at once (the global semaphore); 0: no cap beyond each
  /// provider's own concurrency. A call over it waits in the dispatcher (late binding) until one finishes.
  std::int64_t global_concurrency = 0;
};

/// Durable state: the run journal (runs survive a restart), audit rows, retention.
struct storage_config {
  /// sqlite:PATH (embedded, the default: a file in the working directory), postgresql://user@host:port/db (a
  /// password comes from the environment: ${VAR}), or none (nothing kept past the process).
  std::string url = "sqlite:squad.db";
  millis retention{30LL * 24 * 3600 * 1000}; ///< finished runs and audit rows older than this are pruned
  /// How long an unfinished run stays this process's without renewal: a process that dies holding runs has them
  /// resumed by the next one to start (or a live peer) this long after its last renewal.
  millis lease{10000};
  std::int64_t queue_limit = 100000; ///< rows waiting for the writer before it spools or refuses new runs
  /// Where rows go while the database is unreachable (fsync'd, replayed in order when it is back).
  std::string spool = "squad-spool.jsonl";
  std::int64_t spool_limit = 256LL << 20; ///< bytes; past it rows wait in memory (bounded by queue_limit)
};

/// The audit trail: one row per API call and per upstream attempt, in the store (storage.url).
struct audit_config {
  bool enabled = true; ///< off: no audit rows (storage none: none either)
  /// Keep the request and answer bodies, redacted first (e-mail, phone, cards, IBAN, CPF/CNPJ, IPs, tokens, keys).
  bool bodies = false;
};

struct config {
  server_config server;
  std::string personas_dir = "personas";
  std::string workflows_dir = "config/workflows";
  std::string default_workflow = "greenfield";
  std::vector<provider_config> providers; ///< in file order; at least one
  std::map<std::string, persona_override> personas;
  std::map<std::string, std::string> aliases; ///< model name -> "persona/<id>" or "<provider>/<model>" (the API)
  supervision_config supervision;
  runtime_config runtime;
  storage_config storage;
  audit_config audit;

  const provider_config* find_provider(std::string_view name) const;
};

using config_ptr = std::shared_ptr<const config>;

/// The outcome of loading: a config when there were no problems, else every problem found.
struct config_load_result {
  config_ptr cfg;
  std::vector<config_problem> problems;
  /// The config as read even when there were problems (each bad field at its default), so the checks that
  /// need it (personas, workflows) still run and a file's problems are all reported in one pass. Null only
  /// when the text was not a YAML map at all.
  config_ptr as_read;
};

/// Loads and validates YAML text. `${VAR}` in scalar values expands from the environment
/// (an unset variable is a problem naming it). Unknown keys are problems.
config_load_result load_config_text(const std::string& yaml_text);

/// Reads the file then calls load_config_text; an unreadable file is one problem with path = file.
config_load_result load_config_file(const std::string& file);

/// One key of squad.yaml as the section tables declare it (`squad config keys` prints them).
struct config_key_doc {
  std::string path;          ///< e.g. "providers.<name>.limits.requests"
  std::string default_value; ///< as YAML would write it ("60", "60s", "\"io\""); "" for a map
  std::string bounds;        ///< e.g. "> 0", "between 1 and 64"; "" when any value goes
  std::string doc;           ///< one line
};

/// Every key, section by section, in table order.
std::vector<config_key_doc> config_reference();

/// Every check of a config on its own, each problem with its path: the bounds of each field (from the
/// section tables), then the rules across fields and sections (kinds and their base_url, api_key and
/// readable ca_file; auth and listen; persona override chains; aliases naming a configured model).
/// The checks against the persona files are the overload in persona_def.hpp.
std::vector<config_problem> validate(const config& cfg);

} // namespace squad
