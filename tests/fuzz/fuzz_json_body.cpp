// libFuzzer target: request bodies as the API and the WebSocket read them (JSON with a nesting limit of 32): any
// input is either a value or a 400 in the API's words, never a crash or a deep recursion.
#include "runtime/server/json_body.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  auto r = squad::server::parse_json_body(body);
  if (auto* e = std::get_if<squad::server::api_error>(&r); e && e->message.empty())
    __builtin_trap(); // every refusal says what is wrong
  return 0;
}
