#include "actors/provider/embeddings.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

namespace squad {

using json = nlohmann::json;

std::string embeddings_body(const call_request& req, const std::string& model_id) {
  json body = json::object();
  if (!req.params_json.empty()) {
    auto params = json::parse(req.params_json, nullptr, false);
    if (params.is_object())
      body = std::move(params);
  }
  body["model"] = model_id;
  body["input"] = json::parse(req.embed_input_json, nullptr, false);
  return body.dump();
}

upstream_reply parse_embeddings(std::string_view body) {
  upstream_reply r;
  auto j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty()) {
    r.result = outcome::bad_response;
    r.detail = "an embeddings reply without a data array";
    return r;
  }
  r.embeddings_json = j["data"].dump();
  if (auto u = j.find("usage"); u != j.end() && u->is_object())
    r.usage.prompt_tokens = u->value("prompt_tokens", std::int64_t{0});
  r.finish_reason = "stop";
  return r;
}

embed_input_shape embed_input_of(std::string_view input_json) {
  embed_input_shape out;
  auto j = json::parse(input_json, nullptr, false);
  auto tokens_of = [](const json& x) -> std::int64_t {
    if (x.is_string())
      return static_cast<std::int64_t>(x.get_ref<const std::string&>().size() / 4 + 1);
    if (x.is_array() && !x.empty() &&
        std::all_of(x.begin(), x.end(), [](const json& t) { return t.is_number_integer(); }))
      return static_cast<std::int64_t>(x.size());
    return -1;
  };
  if (j.is_string()) {
    out.inputs = 1;
    out.tokens = tokens_of(j);
    return out;
  }
  if (!j.is_array() || j.empty())
    return out;
  // An array of token ids is one input; an array of strings or of token arrays is one input each.
  if (std::all_of(j.begin(), j.end(), [](const json& t) { return t.is_number_integer(); })) {
    out.inputs = 1;
    out.tokens = static_cast<std::int64_t>(j.size());
    return out;
  }
  std::int64_t n = 0, tokens = 0;
  for (auto& x : j) {
    auto t = tokens_of(x);
    if (t < 0)
      return out;
    ++n;
    tokens += t;
  }
  out.inputs = n;
  out.tokens = tokens;
  return out;
}

std::string embeddings_refusal(const std::string& kind, const std::string& provider) {
  return kind == "anthropic" ? "provider " + provider + " (kind anthropic) has no embeddings API (param model)"
                             : std::string{};
}

upstream_reply sim_embeddings(const std::string& input_json, std::int64_t dims) {
  upstream_reply r;
  auto j = json::parse(input_json, nullptr, false);
  std::vector<json> inputs;
  if (j.is_array() && !j.empty() && !j.front().is_number_integer())
    inputs.assign(j.begin(), j.end());
  else
    inputs.push_back(j);
  json data = json::array();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto seed = std::hash<std::string>{}(inputs[i].dump());
    std::vector<double> v(static_cast<std::size_t>(std::max<std::int64_t>(1, dims)));
    double norm = 0;
    for (auto& x : v) { // a deterministic walk from the input's hash
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      x = static_cast<double>(seed >> 11) / static_cast<double>(1ULL << 53) * 2 - 1;
      norm += x * x;
    }
    for (auto& x : v)
      x /= std::sqrt(norm);
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", v}});
  }
  r.embeddings_json = data.dump();
  r.usage.prompt_tokens = embed_input_of(input_json).tokens;
  r.finish_reason = "stop";
  r.simulated = true;
  return r;
}

} // namespace squad
