#include "actors/provider/sim_model.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using squad::estimate_tokens;
using squad::make_sim_answer;
using squad::sim_answer;
using squad::sim_config;

namespace {

const std::string persona = "You are the product manager.\nYou write crisp requirements.";
const std::string prompt = "Plan a todo app for teams.\nKeep it small.";

const std::string marker = "> [simulated answer: sim/model-a; no real model was called]\n\n";

// The answer with its simulation marker taken off: the marker is not model output and is not truncated
// or counted (tested on its own below), so the length tests look at the rest.
sim_answer answer(const std::string& system = persona, const std::string& user = prompt, std::int64_t max_tokens = 1024,
                  const sim_config& sim = {}) {
  auto a = make_sim_answer("sim", "model-a", system, user, max_tokens, sim);
  REQUIRE(a.text.rfind(marker, 0) == 0);
  a.text.erase(0, marker.size());
  return a;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    out.push_back(line);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (auto& l : lines_of(text))
    if (l == line)
      return true;
  return false;
}

// Lines of the "## Points" section (numbered "1. ...").
std::vector<std::string> points_of(const std::string& text) {
  std::vector<std::string> out;
  bool in_points = false;
  for (auto& l : lines_of(text)) {
    if (l == "## Points") {
      in_points = true;
      continue;
    }
    if (in_points && !l.empty())
      out.push_back(l);
  }
  return out;
}

// Whether `s` is well-formed UTF-8 (no truncated or stray continuation bytes).
bool valid_utf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t follow = 0;
    if (c < 0x80)
      follow = 0;
    else if ((c & 0xE0) == 0xC0)
      follow = 1;
    else if ((c & 0xF0) == 0xE0)
      follow = 2;
    else if ((c & 0xF8) == 0xF0)
      follow = 3;
    else
      return false;
    for (std::size_t k = 1; k <= follow; ++k)
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80)
        return false;
    i += follow + 1;
  }
  return true;
}

} // namespace

// -- estimate_tokens

TEST_CASE("estimate_tokens: empty text has no tokens", "[provider][sim_model]") {
  // Nothing in, nothing counted.
  CHECK(estimate_tokens("") == 0);
}

TEST_CASE("estimate_tokens: about four characters a token, rounded up", "[provider][sim_model]") {
  // ceil(size / 4), and at least one token for any non-empty text.
  CHECK(estimate_tokens("a") == 1);
  CHECK(estimate_tokens("abc") == 1);
  CHECK(estimate_tokens("abcd") == 1);
  CHECK(estimate_tokens("abcde") == 2);
  CHECK(estimate_tokens("abcdefgh") == 2);
  CHECK(estimate_tokens("abcdefghi") == 3);
  CHECK(estimate_tokens(std::string(400, 'x')) == 100);
  CHECK(estimate_tokens(std::string(401, 'x')) == 101);
}

TEST_CASE("estimate_tokens: counts bytes, not characters", "[provider][sim_model]") {
  // Multibyte UTF-8 text counts by its byte length (a rough but stable estimate).
  CHECK(estimate_tokens("\xC3\xA9\xC3\xA9") == 1);         // "éé", 4 bytes
  CHECK(estimate_tokens("\xC3\xA9\xC3\xA9\xC3\xA9") == 2); // 6 bytes
}

// -- determinism and variation

TEST_CASE("sim_model: same inputs give the same answer", "[provider][sim_model]") {
  // The simulator is a pure function of its inputs: every field repeats exactly.
  auto a = answer();
  auto b = answer();
  CHECK(a.text == b.text);
  CHECK(a.finish_reason == b.finish_reason);
  CHECK(a.prompt_tokens == b.prompt_tokens);
  CHECK(a.completion_tokens == b.completion_tokens);
  CHECK(a.latency == b.latency);
}

TEST_CASE("sim_model: a different persona gives a different text", "[provider][sim_model]") {
  // Two personas answering the same prompt do not say the same thing.
  auto a = answer("You are the product manager.");
  auto b = answer("You are the software architect.");
  CHECK(a.text != b.text);
  CHECK(has_line(a.text, "Acting as: You are the product manager."));
  CHECK(has_line(b.text, "Acting as: You are the software architect."));
}

TEST_CASE("sim_model: personas differing past the first line still differ", "[provider][sim_model]") {
  // The whole system prompt seeds the answer, not only the line that is quoted back.
  auto a = answer("You are an expert.\nFocus on security.");
  auto b = answer("You are an expert.\nFocus on usability.");
  CHECK(a.text != b.text);
}

TEST_CASE("sim_model: a different prompt gives a different text", "[provider][sim_model]") {
  // The same persona answers two prompts differently.
  auto a = answer(persona, "Plan a todo app.");
  auto b = answer(persona, "Plan a chess engine.");
  CHECK(a.text != b.text);
  CHECK(has_line(a.text, "Response to: Plan a todo app."));
  CHECK(has_line(b.text, "Response to: Plan a chess engine."));
}

TEST_CASE("sim_model: the points vary with the prompt", "[provider][sim_model]") {
  // Over many prompts the numbered points are not all the same list.
  std::set<std::vector<std::string>> seen;
  for (int i = 0; i < 20; ++i)
    seen.insert(points_of(answer(persona, "Task number " + std::to_string(i)).text));
  CHECK(seen.size() > 10);
}

TEST_CASE("sim_model: a different model gives a different text", "[provider][sim_model]") {
  // Two models of the same provider answer differently and say which model answered.
  auto a = make_sim_answer("sim", "model-a", persona, prompt, 1024, {});
  auto b = make_sim_answer("sim", "model-b", persona, prompt, 1024, {});
  CHECK(a.text != b.text);
}

// -- shape of the text

TEST_CASE("sim_model: the marker survives the tightest max_tokens", "[provider][sim_model]") {
  // Even a one-token answer says it is simulated; the marker costs no completion tokens.
  auto a = make_sim_answer("sim", "model-a", persona, prompt, 1, {});
  CHECK(a.text.rfind(marker, 0) == 0);
  CHECK(a.text.size() == marker.size() + 4);
  CHECK(a.completion_tokens == 1);
}

TEST_CASE("sim_model: the answer is marked as simulated", "[provider][sim_model]") {
  // The first line says plainly that no real model was called, and names provider and model.
  auto a = make_sim_answer("groq-sim", "llama-x", persona, prompt, 1024, {});
  auto first = lines_of(a.text).at(0);
  CHECK(first == "> [simulated answer: groq-sim/llama-x; no real model was called]");
}

TEST_CASE("sim_model: the answer has a summary and three to six numbered points", "[provider][sim_model]") {
  // The body is Markdown: a summary quoting prompt and persona, then 3..6 points numbered from 1.
  for (int i = 0; i < 30; ++i) {
    auto a = answer(persona, "Prompt variant " + std::to_string(i));
    INFO(a.text);
    CHECK(has_line(a.text, "## Summary"));
    CHECK(has_line(a.text, "## Points"));
    auto points = points_of(a.text);
    CHECK(points.size() >= 3);
    CHECK(points.size() <= 6);
    for (std::size_t k = 0; k < points.size(); ++k) {
      CHECK(points[k].rfind(std::to_string(k + 1) + ". ", 0) == 0);
      CHECK(points[k].back() == '.');
    }
  }
}

TEST_CASE("sim_model: Markdown markers and blank lines are skipped when quoting", "[provider][sim_model]") {
  // The quoted line is the first non-blank one, without leading #, >, -, * or spaces.
  auto a = answer("\n\n   \n## Role: reviewer\nmore", "\n> - * Build the thing\nrest");
  CHECK(has_line(a.text, "Acting as: Role: reviewer"));
  CHECK(has_line(a.text, "Response to: Build the thing"));
}

TEST_CASE("sim_model: an empty prompt is named as such", "[provider][sim_model]") {
  // Empty or blank inputs quote as "(empty prompt)".
  auto a = answer("", "  \n\t\n");
  CHECK(has_line(a.text, "Acting as: (empty prompt)"));
  CHECK(has_line(a.text, "Response to: (empty prompt)"));
  CHECK(a.prompt_tokens == estimate_tokens("  \n\t\n"));
}

TEST_CASE("sim_model: long first lines are shortened", "[provider][sim_model]") {
  // The prompt is quoted up to 120 characters and the persona up to 100, each followed by "...".
  std::string long_user(300, 'u');
  std::string long_system(300, 's');
  auto a = answer(long_system, long_user);
  CHECK(has_line(a.text, "Response to: " + std::string(120, 'u') + "..."));
  CHECK(has_line(a.text, "Acting as: " + std::string(100, 's') + "..."));
  // Exactly at the limit nothing is cut.
  auto b = answer(std::string(100, 's'), std::string(120, 'u'));
  CHECK(has_line(b.text, "Response to: " + std::string(120, 'u')));
  CHECK(has_line(b.text, "Acting as: " + std::string(100, 's')));
}

TEST_CASE("sim_model: input headings are listed", "[provider][sim_model]") {
  // Each "### Input from X" line in the prompt is listed, in order, under "## Inputs considered".
  std::string user =
      "Write the design.\n\n### Input from analyst\nneeds...\n\n### Input from architect (v2)\nplan...\n";
  auto a = answer(persona, user);
  auto lines = lines_of(a.text);
  auto it = std::find(lines.begin(), lines.end(), "## Inputs considered");
  REQUIRE(it != lines.end());
  REQUIRE(std::distance(it, lines.end()) >= 4);
  CHECK(*(it + 1) == "- analyst");
  CHECK(*(it + 2) == "- architect (v2)");
  CHECK(*(it + 3) == "");
}

TEST_CASE("sim_model: no inputs section without input headings", "[provider][sim_model]") {
  // A prompt without "### Input from" lines gets no inputs section.
  auto a = answer(persona, "Just do it.\n### Notes\n## Input from nobody\n  ### Input from indented\n");
  CHECK_FALSE(has_line(a.text, "## Inputs considered"));
  CHECK(a.text.find("- nobody") == std::string::npos);
  CHECK(a.text.find("- indented") == std::string::npos);
}

TEST_CASE("sim_model: input headings in the persona are not listed", "[provider][sim_model]") {
  // Only the user message is searched for inputs.
  auto a = answer("Persona\n### Input from persona-side\n", "Plain task");
  CHECK_FALSE(has_line(a.text, "## Inputs considered"));
}

// -- tokens and truncation

TEST_CASE("sim_model: token counts follow estimate_tokens", "[provider][sim_model]") {
  // prompt_tokens covers system and user; completion_tokens covers the returned text.
  auto a = answer();
  CHECK(a.prompt_tokens == estimate_tokens(persona) + estimate_tokens(prompt));
  CHECK(a.completion_tokens == estimate_tokens(a.text));
  CHECK(a.completion_tokens > 0);
}

TEST_CASE("sim_model: an answer within max_tokens finishes with stop", "[provider][sim_model]") {
  // Enough room: the whole answer, finish_reason "stop", ending after the last point.
  auto a = answer();
  CHECK(a.finish_reason == "stop");
  CHECK(a.text.back() == '\n');
  CHECK(points_of(a.text).size() >= 3);
}

TEST_CASE("sim_model: max_tokens truncates with finish_reason length", "[provider][sim_model]") {
  // A request for fewer tokens than the answer needs gets a text cut to 4 * max_tokens characters.
  auto full = answer();
  REQUIRE(full.completion_tokens > 10);
  auto a = answer(persona, prompt, 10);
  CHECK(a.finish_reason == "length");
  CHECK(a.text.size() == 40);
  CHECK(a.text == full.text.substr(0, 40));
  CHECK(a.completion_tokens == 10);
  CHECK(a.prompt_tokens == full.prompt_tokens);
}

TEST_CASE("sim_model: the truncation boundary is exact", "[provider][sim_model]") {
  // max_tokens equal to the answer's size keeps it whole; one less cuts it.
  auto full = answer();
  auto n = full.completion_tokens;
  auto same = answer(persona, prompt, n);
  CHECK(same.finish_reason == "stop");
  CHECK(same.text == full.text);
  auto cut = answer(persona, prompt, n - 1);
  CHECK(cut.finish_reason == "length");
  CHECK(cut.text.size() == static_cast<std::size_t>(n - 1) * 4);
  CHECK(cut.completion_tokens == n - 1);
}

TEST_CASE("sim_model: the provider's own max_tokens caps the answer", "[provider][sim_model]") {
  // sim.max_tokens applies when it is lower than the request's max_tokens.
  sim_config sim;
  sim.max_tokens = 5;
  auto a = answer(persona, prompt, 1024, sim);
  CHECK(a.finish_reason == "length");
  CHECK(a.text.size() == 20);
  CHECK(a.completion_tokens == 5);
  // And the request's limit wins when it is the lower one.
  sim.max_tokens = 50;
  auto b = answer(persona, prompt, 3, sim);
  CHECK(b.text.size() == 12);
  CHECK(b.completion_tokens == 3);
}

TEST_CASE("sim_model: quoting a long multibyte line keeps valid UTF-8", "[provider][sim_model]") {
  // The 120/100-byte quote limits back off to a character boundary instead of splitting "é" or "—".
  std::string user = "a";
  std::string system = "b";
  for (int i = 0; i < 100; ++i) {
    user += "\xC3\xA9";       // "é", 2 bytes: 1 + 2k bytes never lands on 120
    system += "\xE2\x80\x94"; // "—", 3 bytes: 1 + 3k bytes never lands on 100
  }
  auto a = answer(system, user);
  CHECK(valid_utf8(a.text));
  // The quote is the longest whole-character prefix: "a" + 59 "é" (119 bytes), "b" + 33 "—" (100 bytes).
  std::string quoted_user = "a";
  for (int i = 0; i < 59; ++i)
    quoted_user += "\xC3\xA9";
  std::string quoted_system = "b";
  for (int i = 0; i < 33; ++i)
    quoted_system += "\xE2\x80\x94";
  CHECK(has_line(a.text, "Response to: " + quoted_user + "..."));
  CHECK(has_line(a.text, "Acting as: " + quoted_system + "..."));
}

TEST_CASE("sim_model: a truncated answer keeps valid UTF-8", "[provider][sim_model]") {
  // Cutting at every possible max_tokens never splits a multibyte character, and the cut stays within
  // one character (at most 3 bytes) of 4 * max_tokens.
  std::string user;
  for (int i = 0; i < 40; ++i)
    user += "\xE2\x80\x94\xC3\xA9"; // "—é"
  auto whole = answer(persona, user);
  REQUIRE(valid_utf8(whole.text));
  for (std::int64_t limit = 1; limit < whole.completion_tokens; ++limit) {
    auto a = answer(persona, user, limit);
    INFO("max_tokens " << limit);
    CHECK(valid_utf8(a.text));
    CHECK(a.finish_reason == "length");
    CHECK(a.text == whole.text.substr(0, a.text.size()));
    CHECK(a.text.size() <= static_cast<std::size_t>(limit) * 4);
    CHECK(a.text.size() + 3 >= static_cast<std::size_t>(limit) * 4);
    CHECK(a.completion_tokens <= limit);
    CHECK(a.completion_tokens == estimate_tokens(a.text));
  }
}

// -- latency

TEST_CASE("sim_model: latency without jitter is fixed plus per-token", "[provider][sim_model]") {
  // With jitter 0, latency = latency + per_token * completion_tokens exactly.
  sim_config sim;
  sim.latency = 100ms;
  sim.jitter = 0ms;
  sim.per_token = 3ms;
  auto a = answer(persona, prompt, 1024, sim);
  CHECK(a.latency == 100ms + 3ms * a.completion_tokens);
  sim.per_token = 0ms;
  CHECK(answer(persona, prompt, 1024, sim).latency == 100ms);
}

TEST_CASE("sim_model: latency stays within [latency, latency + jitter] plus per-token", "[provider][sim_model]") {
  // Over many prompts the jitter lies in [0, jitter], and it does vary.
  sim_config sim;
  sim.latency = 150ms;
  sim.jitter = 50ms;
  sim.per_token = 2ms;
  std::set<std::int64_t> jitters;
  for (int i = 0; i < 200; ++i) {
    auto a = answer(persona, "Prompt " + std::to_string(i), 1024, sim);
    auto jitter = a.latency - sim.latency - sim.per_token * a.completion_tokens;
    INFO("prompt " << i);
    CHECK(jitter >= 0ms);
    CHECK(jitter <= 50ms);
    jitters.insert(jitter.count());
  }
  CHECK(jitters.size() > 10);
}

TEST_CASE("sim_model: per-token latency counts the truncated answer", "[provider][sim_model]") {
  // A cut answer costs latency for the tokens actually returned.
  sim_config sim;
  sim.latency = 0ms;
  sim.jitter = 0ms;
  sim.per_token = 10ms;
  auto a = answer(persona, prompt, 7, sim);
  CHECK(a.completion_tokens == 7);
  CHECK(a.latency == 70ms);
}

TEST_CASE("sim_model: default sim config", "[provider][sim_model]") {
  // The defaults documented in config.hpp, and a default-configured answer's latency in [150, 200]ms.
  sim_config sim;
  CHECK(sim.latency == 150ms);
  CHECK(sim.jitter == 50ms);
  CHECK(sim.per_token == 0ms);
  CHECK(sim.max_tokens == 400);
  auto a = answer();
  CHECK(a.latency >= 150ms);
  CHECK(a.latency <= 200ms);
}
