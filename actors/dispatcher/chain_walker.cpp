#include "actors/dispatcher/chain_walker.hpp"

#include <algorithm>

namespace squad {

chain_walker::chain_walker(std::size_t targets, steady_time deadline, walker_options opts,
                           std::vector<retry_policy> policies)
    : targets_(targets), deadline_(deadline), opts_(opts), rng_(opts.seed) {
  for (std::size_t i = 0; i < targets_.size(); ++i)
    targets_[i].policy = i < policies.size() ? policies[i] : opts_.retry;
}

chain_walker::decision chain_walker::next(steady_time now) const {
  if (attempts_ >= opts_.max_attempts || now >= deadline_)
    return {};
  std::optional<steady_time> earliest;
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    auto& t = targets_[i];
    if (t.removed)
      continue;
    if (t.ready_at <= now)
      return {action::try_target, i, {}};
    if (!earliest || t.ready_at < *earliest)
      earliest = t.ready_at;
  }
  if (!earliest || *earliest >= deadline_)
    return {};
  return {action::wait, 0, *earliest};
}

void chain_walker::record(std::size_t target, outcome result, steady_time now, std::chrono::milliseconds retry_after) {
  ++attempts_;
  auto& t = targets_.at(target);
  if (result == outcome::ok) {
    t.failures = 0;
    return;
  }
  if (!is_retryable(result)) {
    t.removed = true;
  } else if (result == outcome::rate_limited) {
    t.ready_at = std::max(t.ready_at, now + (retry_after.count() > 0 ? retry_after : opts_.default_retry_after));
  } else {
    ++t.failures;
    auto& p = t.policy;
    if (p.retries >= 0 && t.failures > p.retries) {
      t.removed = t.spent = true;
      return;
    }
    auto shift = std::min<std::int64_t>(t.failures - 1, 20);
    auto backoff = std::min<std::int64_t>(p.cap.count(), p.base.count() << shift);
    if (p.jitter > 0 && backoff > 1) { // uniform in backoff * [1 - jitter, 1 + jitter] (splitmix64 step)
      rng_ += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = rng_;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      double u = static_cast<double>(z >> 11) / static_cast<double>(std::uint64_t{1} << 53); // [0, 1)
      backoff = std::max<std::int64_t>(
          1, static_cast<std::int64_t>(static_cast<double>(backoff) * (1 + p.jitter * (2 * u - 1))));
    }
    t.ready_at = std::max(t.ready_at, now + std::chrono::milliseconds{backoff});
  }
}

void chain_walker::rest(std::size_t target, steady_time until) {
  auto& t = targets_.at(target);
  t.ready_at = std::max(t.ready_at, until);
}

void chain_walker::wake(std::size_t target, steady_time now) {
  auto& t = targets_.at(target);
  if (!t.removed && t.ready_at != steady_time::max() && t.ready_at > now)
    t.ready_at = now;
}

std::int64_t chain_walker::next_ready_ms(steady_time now) const {
  std::int64_t best = -1;
  for (auto& t : targets_) {
    if (t.removed || t.ready_at == steady_time::max())
      continue;
    auto ms = t.ready_at <= now ? 0 : std::chrono::ceil<std::chrono::milliseconds>(t.ready_at - now).count();
    best = best < 0 ? ms : std::min(best, ms);
  }
  return best;
}

bool chain_walker::usable(std::size_t target) const {
  auto& t = targets_.at(target);
  return !t.removed && t.ready_at != steady_time::max();
}

std::vector<std::size_t> chain_walker::ready(steady_time now) const {
  std::vector<std::size_t> out;
  if (attempts_ >= opts_.max_attempts || now >= deadline_)
    return out;
  for (std::size_t i = 0; i < targets_.size(); ++i)
    if (!targets_[i].removed && targets_[i].ready_at <= now)
      out.push_back(i);
  return out;
}

const char* chain_walker::exhausted_reason(steady_time now) const {
  if (attempts_ >= opts_.max_attempts)
    return "attempts";
  if (now >= deadline_)
    return "deadline";
  bool any = std::any_of(targets_.begin(), targets_.end(),
                         [](auto& t) { return !t.removed && t.ready_at != steady_time::max(); });
  return any ? "deadline" : "targets";
}

} // namespace squad
