// libFuzzer target: the SSE parser, fed the input in chunks cut where the input's first byte says (streams arrive
// in arbitrary pieces). No input may crash it, leak, or make it hold more than its event bound.
#include "actors/provider/sse_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  std::size_t step = 1 + data[0] % 17;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  squad::sse_parser p(4096);
  for (std::size_t at = 0; at < in.size() && !p.failed(); at += step)
    p.feed(in.substr(at, step));
  return 0;
}
