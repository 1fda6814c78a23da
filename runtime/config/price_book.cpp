#include "runtime/config/price_book.hpp"

#include <algorithm>

namespace squad {

price_book::price_book(const config& cfg) {
  for (auto& p : cfg.providers)
    for (auto& m : p.models) {
      auto key = p.name + "/" + m.name;
      prices_[key] = {m.input_price, m.output_price, m.cached_input_price < 0 ? m.input_price : m.cached_input_price};
      by_upstream_id_[p.name + "/" + m.id] = key;
    }
}

model_price price_book::price(const std::string& provider, const std::string& model) const {
  auto key = provider + "/" + model;
  auto it = prices_.find(key);
  if (it == prices_.end())
    if (auto id = by_upstream_id_.find(key); id != by_upstream_id_.end())
      it = prices_.find(id->second);
  return it == prices_.end() ? model_price{} : it->second;
}

double price_book::cost(const std::string& provider, const std::string& model, std::int64_t prompt_tokens,
                        std::int64_t completion_tokens, std::int64_t cached_tokens) const {
  auto p = price(provider, model);
  auto fresh = std::max<std::int64_t>(0, prompt_tokens - cached_tokens);
  return (static_cast<double>(fresh) * p.input + static_cast<double>(cached_tokens) * p.cached_input +
          static_cast<double>(completion_tokens) * p.output) /
         1e6;
}

} // namespace squad
