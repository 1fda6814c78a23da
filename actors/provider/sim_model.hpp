#pragma once
// The simulated provider's answers: deterministic text built from the persona and the prompt,
// visibly marked as simulated, with token counts and a latency. Pure logic.
#include "runtime/config/config.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace squad {

struct sim_answer {
  std::string text;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  millis latency{0};
  std::string finish_reason; ///< stop | length
};

/// Rough token count of a text (about four characters a token, at least one for non-empty text).
std::int64_t estimate_tokens(const std::string& text);

/// Builds the answer `provider/model_id` gives to a conversation. `system` and `user` are the system
/// prompt and the last user message. Same inputs, same answer.
sim_answer make_sim_answer(const std::string& provider, const std::string& model_id, const std::string& system,
                           const std::string& user, std::int64_t max_tokens, const sim_config& sim);

} // namespace squad
