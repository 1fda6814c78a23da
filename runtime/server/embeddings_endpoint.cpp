#include "runtime/server/embeddings_endpoint.hpp"
#include "actors/provider/embeddings.hpp"
#include "runtime/server/openai_encoding.hpp"

#include <atomic>
#include <cstring>

namespace squad::server {

using json = nlohmann::json;

namespace {

api_error invalid(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), {}, 0};
}

std::string base64_of_floats(const json& v) {
  static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  for (auto& x : v) {
    auto f = static_cast<float>(x.get<double>());
    char b[4];
    std::memcpy(b, &f, 4); // little-endian on every platform Squad builds for (x86-64, arm64)
    bytes.append(b, 4);
  }
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size())
      n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size())
      n |= static_cast<unsigned char>(bytes[i + 2]);
    out += digits[(n >> 18) & 63];
    out += digits[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? digits[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? digits[n & 63] : '=';
  }
  return out;
}

class embeddings_sink final : public call_sink {
public:
  embeddings_sink(std::shared_ptr<responder> out, std::string model, bool base64, std::shared_ptr<call_audit> audit)
      : out_(std::move(out)), model_(std::move(model)), base64_(base64), audit_(std::move(audit)) {}
  ~embeddings_sink() override {
    if (!answered_.exchange(true)) // released unanswered (its message was lost): the client still gets an answer
      send_error(*out_, 503, "the call was lost inside Squad; try again", "service_unavailable", {}, "lost");
  }
  void delta(std::string_view) override {}
  bool committed() const override { return answered_; }
  void done(call_result r) override {
    if (answered_.exchange(true)) // the dispatcher's delivery after a direct answer from the io thread
      return;
    note_result(audit_.get(), r, false); // vectors are not kept
    out_->reply(200, json_headers(), embeddings_json(r, model_, base64_));
  }
  void failed(call_failure f) override {
    if (answered_.exchange(true))
      return;
    note_failure(audit_.get(), f);
    send_error(*out_, error_for(f, false));
  }
  bool abandoned() const override { return out_->gone(); }

private:
  std::shared_ptr<responder> out_;
  std::string model_;
  bool base64_;
  std::shared_ptr<call_audit> audit_;
  std::atomic<bool> answered_{false};
};

} // namespace

std::variant<parsed_embeddings, api_error> parse_embeddings_request(const json& b, const chat_headers& headers,
                                                                    const chat_context& ctx) {
  auto found = find_api_model(b, ctx);
  if (auto* e = std::get_if<api_error>(&found))
    return *e;
  parsed_embeddings out;
  out.model = std::get<const api_model*>(found);
  if (!b.contains("input") || b["input"].is_null())
    return invalid("input", "input is required: a string, or an array of strings or of token ids");
  auto text = b["input"].dump(-1, ' ', false, json::error_handler_t::replace);
  auto shape = embed_input_of(text);
  if (shape.inputs < 1)
    return invalid("input", "input must be a non-empty string, or a non-empty array of strings, of token ids or of "
                            "arrays of token ids");
  if (shape.inputs > 2048)
    return invalid("input", "input holds " + std::to_string(shape.inputs) + " items; at most 2048");
  auto empty_string = [](const json& x) { return x.is_string() && x.get_ref<const std::string&>().empty(); };
  if (empty_string(b["input"]) ||
      (b["input"].is_array() && std::any_of(b["input"].begin(), b["input"].end(), empty_string)))
    return invalid("input", "input must not hold an empty string");
  json params = json::object();
  for (auto& [k, v] : b.items()) {
    if (k == "model" || k == "input")
      continue;
    if (k == "encoding_format") {
      if (!v.is_null() && v != "float" && v != "base64")
        return invalid(k, "encoding_format must be \"float\" or \"base64\"");
      out.base64 = v == "base64";
    } else if (k == "dimensions") {
      if (!v.is_null() && (!v.is_number_integer() || v.get<std::int64_t>() < 1))
        return invalid(k, "dimensions must be a positive integer");
    } else if (k == "user") {
      if (!v.is_null() && !v.is_string())
        return invalid(k, "user must be a string");
    }
    params[k] = v; // every field the client set reaches the upstream as written
  }
  out.call.embed_input_json = std::move(text);
  if (!params.empty())
    out.call.params_json = params.dump(-1, ' ', false, json::error_handler_t::replace);
  out.call.priority = static_cast<std::uint8_t>(out.model->priority);
  if (auto no = read_headers(headers, ctx.call_timeout, out.call))
    return *no;
  out.call.chain = out.model->chain;
  return out;
}

std::string embeddings_json(const call_result& r, const std::string& model, bool base64) {
  auto data = json::parse(r.embeddings_json, nullptr, false);
  if (!data.is_array())
    data = json::array();
  if (base64)
    for (auto& d : data)
      if (d.is_object() && d.contains("embedding") && d["embedding"].is_array())
        d["embedding"] = base64_of_floats(d["embedding"]);
  json body{{"object", "list"},
            {"data", std::move(data)},
            {"model", model},
            {"usage", {{"prompt_tokens", r.usage.prompt_tokens}, {"total_tokens", r.usage.prompt_tokens}}}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::shared_ptr<call_sink> make_embeddings_sink(std::shared_ptr<responder> out, std::string model, bool base64,
                                                std::shared_ptr<call_audit> audit) {
  return std::make_shared<embeddings_sink>(std::move(out), std::move(model), base64, std::move(audit));
}

} // namespace squad::server
