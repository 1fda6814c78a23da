#include "runtime/server/api_ids.hpp"

#include <algorithm>
#include <random>

namespace squad::server {

std::string random_id(std::size_t length) {
  static constexpr char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64{seq};
  }()};
  std::uniform_int_distribution<std::size_t> pick(0, sizeof(alphabet) - 2);
  std::string out(length, '0');
  for (auto& c : out)
    c = alphabet[pick(gen)];
  return out;
}

std::string request_id_for(std::string_view client_value) {
  bool usable = !client_value.empty() && client_value.size() <= 128 &&
                std::all_of(client_value.begin(), client_value.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  return usable ? std::string{client_value} : "req_" + random_id(24);
}

} // namespace squad::server
