#include "actors/breaker/breaker_state.hpp"

namespace squad {

const char* to_string(breaker_phase p) {
  switch (p) {
  case breaker_phase::closed:
    return "closed";
  case breaker_phase::open:
    return "open";
  case breaker_phase::half_open:
    return "half_open";
  }
  return "?";
}

health classify_health(outcome o, bool rate_limit_is_failure) {
  switch (o) {
  case outcome::ok:
    return health::success;
  case outcome::rate_limited:
    return rate_limit_is_failure ? health::failure : health::neutral;
  case outcome::bad_request:
  case outcome::context_too_long:
    return health::neutral;
  default:
    return health::failure;
  }
}

breaker_phase breaker_state::phase(steady_time now) {
  if (phase_ == breaker_phase::open && now >= open_until_) {
    phase_ = breaker_phase::half_open;
    ++generation_;
    probes_out_ = 0;
    probes_ok_ = 0;
  }
  return phase_;
}

bool breaker_state::allow(steady_time now) {
  switch (phase(now)) {
  case breaker_phase::closed:
    return true;
  case breaker_phase::open:
    return false;
  case breaker_phase::half_open:
    if (probes_out_ >= s_.probes)
      return false;
    ++probes_out_;
    return true;
  }
  return false;
}

void breaker_state::trip(steady_time now) {
  phase_ = breaker_phase::open;
  ++generation_;
  open_until_ = now + s_.cooldown;
  consecutive_ = 0;
  recent_.clear();
  recent_calls_ = recent_failures_ = 0;
  probes_out_ = 0;
  probes_ok_ = 0;
}

std::optional<std::uint64_t> breaker_state::admit(steady_time now) {
  if (!allow(now))
    return std::nullopt;
  return generation_;
}

std::optional<breaker_phase> breaker_state::record(outcome o, steady_time now, std::uint64_t generation) {
  phase(now);
  if (generation != generation_)
    return std::nullopt; // a call let through before the last phase change: it says nothing about this one
  return record(o, now);
}

std::optional<breaker_phase> breaker_state::record(outcome o, steady_time now) {
  auto h = classify_health(o, s_.rate_limit_is_failure);
  auto before = phase(now);
  if (h == health::neutral) {
    if (before == breaker_phase::half_open && probes_out_ > 0)
      --probes_out_; // the probe told nothing: let another one go
    return std::nullopt;
  }
  bool failed = h == health::failure;
  if (before == breaker_phase::half_open) {
    if (failed) {
      trip(now);
    } else if (++probes_ok_ >= s_.probes) {
      phase_ = breaker_phase::closed;
      ++generation_;
      consecutive_ = 0;
      recent_.clear();
      recent_calls_ = recent_failures_ = 0;
    }
  } else if (before == breaker_phase::closed) {
    consecutive_ = failed ? consecutive_ + 1 : 0;
    if (recent_.empty() || now - recent_.back().at >= s_.window / 1000)
      recent_.push_back({now, 0, 0});
    ++recent_.back().calls;
    recent_.back().failures += failed;
    ++recent_calls_;
    recent_failures_ += failed;
    while (!recent_.empty() && recent_.front().at + s_.window <= now) {
      recent_calls_ -= recent_.front().calls;
      recent_failures_ -= recent_.front().failures;
      recent_.pop_front();
    }
    auto failures = recent_failures_;
    auto calls = recent_calls_;
    bool ratio_hit = calls >= s_.min_calls && static_cast<double>(failures) >= s_.ratio * static_cast<double>(calls);
    if (consecutive_ >= s_.consecutive || (failed && ratio_hit))
      trip(now);
  }
  // OPEN: a late reply from before the trip changes nothing.
  auto after = phase_;
  return after != before ? std::optional<breaker_phase>(after) : std::nullopt;
}

} // namespace squad
