// libFuzzer target: config durations ("500ms", "2s", ...). Whatever parses must format and parse back the same.
#include "runtime/time/duration.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto d = squad::parse_duration(in)) {
    auto again = squad::parse_duration(squad::format_duration(*d));
    if (!again || *again != *d)
      std::abort(); // formatting a parsed duration must give it back
  }
  return 0;
}
