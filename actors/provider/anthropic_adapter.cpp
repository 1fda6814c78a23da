#include "actors/provider/adapters.hpp"
#include "actors/provider/chat_params.hpp"
#include "actors/provider/reply_reading.hpp"

#include <nlohmann/json.hpp>

#include <exception>

namespace squad {

using namespace reply_reading;

// -- Anthropic ------------------------------------------------------------------------------------------

namespace anthropic {

header_list request_headers(const std::string& api_key) {
  return {{"x-api-key", api_key}, {"anthropic-version", api_version}, {"content-type", "application/json"}};
}

std::string build_request_body(const call_request& req, const std::string& model_id, bool stream) {
  return anthropic_request_body(req, model_id, stream);
}

upstream_reply parse_response(std::string_view body) {
  try {
    json j = json::parse(body);
    if (is_error_body(j))
      return embedded_error(j, "error in reply");
    const json* content = find(j, "content");
    if (!content || !content->is_array())
      return bad_response("reply content is missing or not an array");
    upstream_reply r;
    json calls = json::array();
    for (const auto& block : *content) {
      const json* type = find(block, "type");
      if (!type || !type->is_string())
        return bad_response("reply content holds a block that is not an object with a type");
      if (*type == "tool_use") {
        auto id = string_field(block, "id");
        auto name = string_field(block, "name");
        const json* input = find(block, "input");
        if (!id || !name || id->empty() || name->empty())
          return bad_response("tool_use block has no id or name");
        calls.push_back({{"id", *id},
                         {"type", "function"},
                         {"function", {{"name", *name}, {"arguments", input ? input->dump() : "{}"}}}});
        continue;
      }
      if (*type != "text")
        continue; // thinking, ...
      auto text = string_field(block, "text");
      if (!text)
        return bad_response("text block's text is not a string");
      r.text += *text;
    }
    auto stop = string_field(j, "stop_reason");
    if (!stop)
      return bad_response("stop_reason is not a string");
    r.finish_reason = map_stop_reason(*stop);
    if (!calls.empty())
      r.tool_calls_json = calls.dump(-1, ' ', false, json::error_handler_t::replace);
    const json* usage = find(j, "usage");
    if (usage && !read_anthropic_usage(*usage, r.usage))
      return bad_response("usage is not an object of token counts");
    return r;
  } catch (const std::exception& e) {
    return malformed(e, "reply");
  }
}

std::string stream_accumulator::on_event(const sse_event& ev) {
  if (ended_ || ev.data.empty())
    return {};
  auto fail = [this](upstream_reply r) {
    r.usage = reply_.usage;
    reply_ = std::move(r);
    ended_ = true;
    return std::string{};
  };
  try {
    json j = json::parse(ev.data);
    auto type = string_field(j, "type");
    if (!j.is_object() || !type)
      return fail(bad_response("stream event is not an object with a type"));
    if (type->empty())
      type = ev.event;
    if (*type == "error" || is_error_body(j))
      return fail(embedded_error(j, "error event"));
    if (*type == "message_start") {
      const json* message = find(j, "message");
      const json* usage = message ? find(*message, "usage") : nullptr;
      if (usage && !read_anthropic_usage(*usage, reply_.usage))
        return fail(bad_response("message_start usage is not an object of token counts"));
    } else if (*type == "content_block_delta") {
      const json* delta = find(j, "delta");
      auto delta_type = delta ? string_field(*delta, "type") : std::nullopt;
      if (!delta || !delta_type)
        return fail(bad_response("content_block_delta has no delta with a type"));
      if (*delta_type == "input_json_delta") {
        const json* index = find(j, "index");
        auto it = index && index->is_number_integer() ? tool_of_block_.find(index->get<std::int64_t>())
                                                      : tool_of_block_.end();
        auto part = string_field(*delta, "partial_json");
        if (it == tool_of_block_.end() || !part)
          return fail(bad_response("input_json_delta outside a tool_use block, or without partial_json"));
        tools_.add(it->second, {}, {}, *part);
        return {};
      }
      if (*delta_type != "text_delta")
        return {}; // thinking_delta, signature_delta
      auto text = string_field(*delta, "text");
      if (!text)
        return fail(bad_response("text_delta's text is not a string"));
      reply_.text += *text;
      return std::move(*text);
    } else if (*type == "message_delta") {
      const json* delta = find(j, "delta");
      auto stop = delta ? string_field(*delta, "stop_reason") : std::string{};
      if (!stop)
        return fail(bad_response("message_delta stop_reason is not a string"));
      if (!stop->empty())
        reply_.finish_reason = map_stop_reason(*stop);
      const json* usage = find(j, "usage");
      if (usage && !read_anthropic_usage(*usage, reply_.usage))
        return fail(bad_response("message_delta usage is not an object of token counts"));
    } else if (*type == "content_block_start") {
      const json* block = find(j, "content_block");
      const json* index = find(j, "index");
      if (block && string_field(*block, "type").value_or("") == "tool_use") {
        auto id = string_field(*block, "id");
        auto name = string_field(*block, "name");
        if (!index || !index->is_number_integer() || !id || !name || id->empty() || name->empty())
          return fail(bad_response("tool_use content_block_start has no index, id or name"));
        std::size_t tool = tool_of_block_.size();
        if (!tools_.add(tool, *id, *name, {}))
          return fail(bad_response("too many tool_use blocks"));
        tool_of_block_[index->get<std::int64_t>()] = tool;
      }
    } else if (*type == "message_stop") {
      ended_ = true;
    }
    return {}; // ping, other content_block_start, content_block_stop, and event types added later
  } catch (const std::exception& e) {
    return fail(malformed(e, "stream event"));
  }
}

upstream_reply stream_accumulator::finish() const {
  auto r = reply_;
  r.tool_calls_json = tools_.calls_json();
  return finish_stream(std::move(r), ended_, "message_stop");
}

} // namespace anthropic

} // namespace squad
