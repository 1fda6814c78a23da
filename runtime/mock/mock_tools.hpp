#pragma once
// Tool calling in the mock upstream, as pure logic: when a request offers tools, the mock "model" calls them,
// in OpenAI's or Anthropic's shape, whole or streamed, so a client's full tool loop can run against it:
//   - it calls every offered tool once (two tools: two parallel calls), or only the one tool_choice names, or
//     only the first when parallel calls are off (parallel_tool_calls false / disable_parallel_tool_use);
//   - it answers in text instead when tool_choice is none, or when the last message carries tool results;
//   - a call's arguments are a JSON object with "mock-<name>" for each property of the tool's parameters.
// Streamed arguments come in two fragments, so a client's reassembly is exercised.
#include "runtime/mock/mock_upstream.hpp"

#include <string>
#include <vector>

namespace squad::mock {

struct mock_tool_call {
  std::string id;
  std::string name;
  std::string arguments; ///< JSON object text
};

/// The calls the mock makes for this request body (empty: answer in text). `anthropic`: a /v1/messages body.
std::vector<mock_tool_call> plan_tool_calls(const std::string& body, bool anthropic, std::int64_t seq);

std::string openai_tool_json(const completion& c, const std::vector<mock_tool_call>& calls);
std::vector<sse_frame> openai_tool_sse(const completion& c, const std::vector<mock_tool_call>& calls,
                                       bool include_usage); ///< ends with [DONE]
/// A text block ("calling tools") and then one tool_use block per call; stop_reason tool_use.
std::string anthropic_tool_json(const completion& c, const std::vector<mock_tool_call>& calls);
std::vector<sse_frame> anthropic_tool_sse(const completion& c, const std::vector<mock_tool_call>& calls);

} // namespace squad::mock
