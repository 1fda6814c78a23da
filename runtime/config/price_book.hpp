#pragma once
// What calls cost: each model's prices (providers.<p>.models.<m>.input_price, output_price, cached_input_price,
// USD per 1M tokens), found by the config's model name or by the upstream id an answer names. Pure.
#include "runtime/config/config.hpp"

#include <map>
#include <string>

namespace squad {

struct model_price {
  double input = 0, output = 0, cached_input = 0;
};

class price_book {
public:
  explicit price_book(const config& cfg);
  /// The prices of provider/model (the config's name or the upstream id); all 0 when it has none.
  model_price price(const std::string& provider, const std::string& model) const;
  /// USD for these tokens on provider/model.
  double cost(const std::string& provider, const std::string& model, std::int64_t prompt_tokens,
              std::int64_t completion_tokens, std::int64_t cached_tokens = 0) const;

private:
  std::map<std::string, model_price> prices_;         // "provider/model"
  std::map<std::string, std::string> by_upstream_id_; // "provider/<upstream id>" -> "provider/model"
};

} // namespace squad
