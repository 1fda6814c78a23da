#pragma once
// Streamed tool calls, reassembled: both APIs send a call in pieces (OpenAI: delta.tool_calls entries keyed by
// index, the arguments in fragments; Anthropic: a tool_use content block, then input_json_delta fragments).
// Pure logic, no JSON types in the interface: the adapters feed the pieces they read, and take back
//   - the fragments to pass on to a streaming client, in OpenAI's delta.tool_calls shape, and
//   - the whole calls once the stream ended, in OpenAI's message.tool_calls shape.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace squad {

class tool_call_assembler {
public:
  /// At most this many calls per answer; a higher index is an upstream fault.
  static constexpr std::size_t max_calls = 128;

  /// Takes one piece of call `index`: its id and name (when this piece carries them, usually the first) and an
  /// arguments fragment. False when `index` is out of range (nothing is recorded).
  bool add(std::size_t index, std::string_view id, std::string_view name, std::string_view arguments);

  /// The pieces added since the last take, as a JSON array of {index, id?, type?, function: {name?, arguments}};
  /// "" when none.
  std::string take_fragments();

  /// Every call so far, as a JSON array of {id, type: function, function: {name, arguments}}; "" when none.
  std::string calls_json() const;

  bool empty() const { return calls_.empty(); }

private:
  struct call {
    std::string id, name, arguments;
  };
  std::vector<call> calls_;
  std::string pending_; // fragments not yet taken, comma-joined JSON objects
};

} // namespace squad
