#include "actors/provider/sim_model.hpp"

#include <algorithm>
#include <array>
#include <sstream>

namespace squad {

namespace {

std::uint64_t fnv1a(const std::string& s, std::uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// The longest prefix length of `s` of at most `n` bytes that does not split a UTF-8 character
// (a split one would make the text invalid UTF-8, which nlohmann::json::dump rejects with an exception).
std::size_t utf8_cut(const std::string& s, std::size_t n) {
  if (n >= s.size())
    return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    --n;
  return n;
}

// The first line of `text` that is not blank, without Markdown markers, at most `max` characters.
std::string first_line(const std::string& text, std::size_t max) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto b = line.find_first_not_of(" \t#>-*");
    if (b == std::string::npos)
      continue;
    line = line.substr(b);
    if (line.size() > max)
      line = line.substr(0, utf8_cut(line, max)) + "...";
    return line;
  }
  return "(empty prompt)";
}

// Headings "### Input from X" that the runtime puts into prompts, so the answer can cite its inputs.
std::vector<std::string> input_headings(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("### Input from ", 0) == 0)
      out.push_back(line.substr(15));
  return out;
}

constexpr std::array<const char*, 12> verbs = {"Clarify",  "Prioritise", "Validate",  "Split",
                                               "Measure",  "Document",   "Prototype", "Review",
                                               "Automate", "Simplify",   "Secure",    "Schedule"};
constexpr std::array<const char*, 12> objects = {
    "the core user journey",     "the riskiest assumption", "the data model",     "the acceptance criteria",
    "the rate-limit budget",     "the onboarding flow",     "the failure modes",  "the release plan",
    "the smallest useful slice", "the integration points",  "the open questions", "the success measures"};

} // namespace

std::int64_t estimate_tokens(const std::string& text) {
  if (text.empty())
    return 0;
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(text.size() + 3) / 4);
}

sim_answer make_sim_answer(const std::string& provider, const std::string& model_id, const std::string& system,
                           const std::string& user, std::int64_t max_tokens, const sim_config& sim) {
  auto seed = fnv1a(user, fnv1a(system, fnv1a(model_id)));
  // The marker is Squad's annotation, not model output: it survives any truncation (a simulated answer
  // always says so) and is not counted as completion tokens.
  auto marker = "> [simulated answer: " + provider + "/" + model_id + "; no real model was called]\n\n";
  std::ostringstream out;
  out << "## Summary\n"
      << "Response to: " << first_line(user, 120) << "\n";
  out << "Acting as: " << first_line(system, 100) << "\n\n";
  auto inputs = input_headings(user);
  if (!inputs.empty()) {
    out << "## Inputs considered\n";
    for (auto& i : inputs)
      out << "- " << i << "\n";
    out << "\n";
  }
  out << "## Points\n";
  auto points = 3 + seed % 4;
  for (std::uint64_t i = 0; i < points; ++i) {
    auto h = fnv1a(std::to_string(i), seed);
    out << i + 1 << ". " << verbs[h % verbs.size()] << " " << objects[(h >> 8) % objects.size()] << ".\n";
  }
  sim_answer a;
  auto body = out.str();
  a.finish_reason = "stop";
  auto limit = max_tokens > 0 ? std::min(max_tokens, sim.max_tokens) : sim.max_tokens; // 0: the caller set none
  if (limit > 0 && estimate_tokens(body) > limit) {
    body.resize(utf8_cut(body, static_cast<std::size_t>(limit) * 4));
    a.finish_reason = "length";
  }
  a.completion_tokens = estimate_tokens(body);
  a.text = marker + body;
  a.prompt_tokens = estimate_tokens(system) + estimate_tokens(user);
  auto jitter = sim.jitter.count() > 0 ? static_cast<std::int64_t>((seed >> 16) % (sim.jitter.count() + 1)) : 0;
  a.latency = sim.latency + millis{jitter} + sim.per_token * a.completion_tokens;
  return a;
}

} // namespace squad
