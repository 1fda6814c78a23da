#include "actors/provider/adapters.hpp"
#include "actors/provider/chat_params.hpp"
#include "actors/provider/reply_reading.hpp"

#include <nlohmann/json.hpp>

#include <exception>

namespace squad {

using namespace reply_reading;

// -- OpenAI ---------------------------------------------------------------------------------------------

namespace openai {

header_list request_headers(const std::string& api_key) {
  header_list out;
  if (!api_key.empty())
    out.emplace_back("authorization", "Bearer " + api_key);
  out.emplace_back("content-type", "application/json");
  return out;
}

std::string build_request_body(const call_request& req, const std::string& model_id, bool stream) {
  return openai_request_body(req, model_id, stream);
}

upstream_reply parse_response(std::string_view body) {
  try {
    json j = json::parse(body);
    if (is_error_body(j))
      return embedded_error(j, "error in reply");
    const json* choices = find(j, "choices");
    if (!choices || !choices->is_array() || choices->empty())
      return bad_response("reply has no choices");
    const json* message = find((*choices)[0], "message");
    if (!message || !message->is_object())
      return bad_response("choices[0].message is missing or not an object");
    upstream_reply r;
    auto content = string_field(*message, "content"); // null when the model only called tools
    auto finish = string_field((*choices)[0], "finish_reason");
    if (!content)
      return bad_response("choices[0].message.content is not a string");
    if (!finish)
      return bad_response("choices[0].finish_reason is not a string");
    if (!read_openai_usage(find(j, "usage"), r.usage))
      return bad_response("usage is not an object of token counts");
    if (const json* calls = find(*message, "tool_calls"); calls && !calls->is_null()) {
      if (!calls->is_array())
        return bad_response("choices[0].message.tool_calls is not an array");
      if (!calls->empty())
        r.tool_calls_json = calls->dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (const json* lp = find((*choices)[0], "logprobs"); lp && !lp->is_null())
      r.logprobs_json = lp->dump(-1, ' ', false, json::error_handler_t::replace);
    if (auto fp = string_field(j, "system_fingerprint"))
      r.system_fingerprint = std::move(*fp);
    r.text = std::move(*content);
    r.finish_reason = std::move(*finish);
    return r;
  } catch (const std::exception& e) {
    return malformed(e, "reply");
  }
}

std::string stream_accumulator::on_event(const sse_event& ev) {
  if (ended_ || ev.data.empty())
    return {};
  if (ev.data == "[DONE]") {
    ended_ = true;
    return {};
  }
  auto fail = [this](upstream_reply r) {
    r.usage = reply_.usage;
    reply_ = std::move(r);
    ended_ = true;
    return std::string{};
  };
  try {
    json j = json::parse(ev.data);
    if (ev.event == "error" || is_error_body(j))
      return fail(embedded_error(j, "error in stream"));
    if (!read_openai_usage(find(j, "usage"), reply_.usage))
      return fail(bad_response("chunk usage is not an object of token counts"));
    if (auto fp = string_field(j, "system_fingerprint"); fp && !fp->empty())
      reply_.system_fingerprint = std::move(*fp);
    if (const json* groq = find(j, "x_groq")) // Groq puts the usage of its last chunk here
      if (!read_openai_usage(find(*groq, "usage"), reply_.usage))
        return fail(bad_response("chunk x_groq.usage is not an object of token counts"));
    const json* choices = find(j, "choices");
    if (!choices || choices->is_null())
      return {};
    if (!choices->is_array())
      return fail(bad_response("chunk choices is not an array"));
    if (choices->empty())
      return {}; // the usage chunk
    const json& choice = (*choices)[0];
    auto finish = string_field(choice, "finish_reason");
    if (!finish)
      return fail(bad_response("chunk finish_reason is not a string"));
    if (!finish->empty())
      reply_.finish_reason = std::move(*finish);
    const json* delta = find(choice, "delta");
    if (!delta || delta->is_null())
      return {};
    auto content = string_field(*delta, "content");
    if (!delta->is_object() || !content)
      return fail(bad_response("chunk delta.content is not a string"));
    if (const json* calls = find(*delta, "tool_calls"); calls && !calls->is_null()) {
      if (!calls->is_array())
        return fail(bad_response("chunk delta.tool_calls is not an array"));
      for (const auto& c : *calls) {
        const json* index = find(c, "index");
        const json* fn = find(c, "function");
        auto id = string_field(c, "id");
        auto name = fn ? string_field(*fn, "name") : std::string{};
        auto args = fn ? string_field(*fn, "arguments") : std::string{};
        if (!index || !index->is_number_unsigned() || !id || !name || !args ||
            !tools_.add(index->get<std::size_t>(), *id, *name, *args))
          return fail(
              bad_response("chunk delta.tool_calls holds an entry without a valid index, id, name or arguments"));
      }
    }
    reply_.text += *content;
    return std::move(*content);
  } catch (const std::exception& e) {
    return fail(malformed(e, "stream chunk"));
  }
}

upstream_reply stream_accumulator::finish() const {
  auto r = reply_;
  r.tool_calls_json = tools_.calls_json();
  return finish_stream(std::move(r), ended_, "[DONE]");
}

} // namespace openai

} // namespace squad
