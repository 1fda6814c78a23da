#pragma once
// Provider actors: one per configured provider, the only place that talks to an upstream.
//
//   provider_call -> upstream_reply   (errors are values: upstream_reply::result says how it ended)
//   (done, id)                         internal (sim): a simulated call's latency is over
//   (done, id, upstream_reply)         internal (http): an exchange ended on an io thread
//   crash         -> (the actor throws: a test hook for supervision)
// A provider_call's request may carry a sink (in-process only); without one it is serialisable.
//
// kind openai / anthropic: the actor builds the request with the adapter and hands it to the provider's
// keep-alive pool on the io threads; the pool is made once per provider (make_provider_pool) and outlives
// the actor's restarts. kind sim: no network at all.
#include "actors/messages.hpp"
#include "runtime/net/http_client.hpp"

#include <map>
#include <memory>

namespace squad {

using provider_actor =
    caf::typed_actor<caf::replies_to<provider_call>::with<upstream_reply>, caf::reacts_to<atoms::done, std::uint64_t>,
                     caf::reacts_to<atoms::done, std::uint64_t, upstream_reply>, caf::reacts_to<atoms::crash>>;

/// HTTP pools by provider name (openai and anthropic providers only).
using provider_pools = std::map<std::string, std::shared_ptr<net::http_pool>>;

/// Spawns the actor for `cfg.kind`; nullptr with `why` set when it cannot run (no pool for an HTTP provider).
provider_actor spawn_provider(caf::local_actor* parent, const provider_config& cfg, const provider_pools& pools,
                              std::string& why);

/// The simulated provider (kind: sim): enforces its own limits at arrival the way a strict upstream does
/// (a sliding window of `requests` per `per` and a concurrency cap, answering rate_limited with a
/// retry-after), then answers deterministically after the configured latency.
provider_actor spawn_sim_provider(caf::local_actor* parent, const provider_config& cfg);

/// An OpenAI-compatible or Anthropic provider over `pool`.
provider_actor spawn_http_provider(caf::local_actor* parent, const provider_config& cfg,
                                   std::shared_ptr<net::http_pool> pool);

/// The pool for an openai/anthropic provider; nullptr with `why` naming the config path on a bad base_url or
/// ca_file.
std::shared_ptr<net::http_pool> make_provider_pool(net::io_runtime& io, const provider_config& cfg, std::string& why);

/// The pool settings a provider config implies (max_connections 0 -> limits.concurrency).
net::pool_options provider_pool_options(const provider_config& cfg, const net::url_parts& origin);

/// The request path: "<base path>/chat/completions" (openai); "<base path>/v1/messages" (anthropic; "/messages"
/// when the base path already ends in /v1).
std::string provider_request_path(const std::string& kind, const std::string& base_path);

} // namespace squad
