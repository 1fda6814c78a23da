#pragma once
// POST /v1/embeddings: an OpenAI embeddings request checked and made a call_request (governed like a chat call:
// the model's chain, its limiters and breakers, fallbacks, per-key limits), and its answer in OpenAI's shape.
// No Beast here.
#include "runtime/host/audit_log.hpp"
#include "runtime/server/chat_request.hpp"
#include "runtime/server/http_server.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <variant>

namespace squad::server {

/// A request the gateway may send: call has embed_input_json, params, chain, priority and timeout set.
struct parsed_embeddings {
  call_request call;
  const api_model* model = nullptr;
  bool base64 = false; ///< encoding_format: base64 (the official SDKs' default): vectors as base64 float32
};

/// model (as for chat), input (a string, or 1-2048 strings, token ids or arrays of token ids; none empty),
/// encoding_format (float | base64), dimensions (a positive integer), user (a string); other fields are kept in
/// params_json and sent to the upstream as written. The X-Squad-* headers apply as for chat.
std::variant<parsed_embeddings, api_error>
parse_embeddings_request(const nlohmann::json& body, const chat_headers& headers, const chat_context& ctx);

/// {object: list, data: [{object: embedding, index, embedding}], model, usage}; with `base64`, each vector of
/// numbers is sent as base64 of its little-endian float32s (an upstream's base64 strings pass as they are).
std::string embeddings_json(const call_result& r, const std::string& model, bool base64);

/// The sink that answers `out` with embeddings_json, or with the failure's error.
std::shared_ptr<call_sink> make_embeddings_sink(std::shared_ptr<responder> out, std::string model, bool base64,
                                                std::shared_ptr<call_audit> audit = nullptr);

} // namespace squad::server
