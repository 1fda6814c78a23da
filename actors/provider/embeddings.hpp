#pragma once
// Embeddings calls (POST /v1/embeddings) as pure logic: the OpenAI-compatible request body and reply, and the
// simulated provider's vectors. Anthropic has no embeddings API: a call routed there is refused (bad_request),
// so a chain falls back to a target that has one.
#include "actors/messages.hpp"

#include <string>
#include <string_view>

namespace squad {

/// {"model": model_id, "input": ..., every parameter of params_json (dimensions, encoding_format, user, ...)}.
std::string embeddings_body(const call_request& req, const std::string& model_id);

/// A whole /embeddings reply: `data` (kept verbatim, an array of {object, index, embedding}) and usage's
/// prompt_tokens. An empty or missing `data` is bad_response.
upstream_reply parse_embeddings(std::string_view body);

/// How many inputs `input_json` holds (a string: 1; an array of strings or of token arrays: its size), and its
/// size estimate in tokens (characters / 4, or the token count); -1 inputs when it is neither.
struct embed_input_shape {
  std::int64_t inputs = -1;
  std::int64_t tokens = 0;
};
embed_input_shape embed_input_of(std::string_view input_json);

/// Why a provider of `kind` named `provider` cannot serve an embeddings call ("" when it can): Anthropic has none.
std::string embeddings_refusal(const std::string& kind, const std::string& provider);

/// A simulated provider's answer: one deterministic unit vector of `dims` numbers per input (the same input gives
/// the same vector), as an OpenAI `data` array; usage counts the input's tokens.
upstream_reply sim_embeddings(const std::string& input_json, std::int64_t dims);

} // namespace squad
