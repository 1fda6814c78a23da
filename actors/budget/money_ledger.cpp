#include "actors/budget/money_ledger.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace squad {

std::string usd_text(double usd) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "$%.4f", usd);
  return buf;
}

double money_ledger::left() const {
  if (!limited())
    return std::numeric_limits<double>::infinity();
  return std::max(0.0, limit_ - spent_ - reserved_);
}

bool money_ledger::reserve(std::uint64_t id, double worst, std::string& why) {
  worst = std::max(0.0, worst);
  if (open_.count(id))
    return false;
  // A tiny tolerance: ten reservations of $0.001 fit in $0.01 despite binary rounding.
  if (limited() && spent_ + reserved_ + worst > limit_ * (1 + 1e-9)) {
    why = "usd budget: " + usd_text(spent_ + reserved_) + " of " + usd_text(limit_) +
          " used or reserved, this call needs up to " + usd_text(worst);
    return false;
  }
  open_.emplace(id, worst);
  reserved_ += worst;
  return true;
}

bool money_ledger::settle(std::uint64_t id, double actual_usd) {
  auto it = open_.find(id);
  if (it == open_.end())
    return false;
  reserved_ = std::max(0.0, reserved_ - it->second);
  spent_ += actual_usd < 0 ? it->second : actual_usd; // unknown counts as the worst case
  open_.erase(it);
  return true;
}

bool money_ledger::cancel(std::uint64_t id) {
  auto it = open_.find(id);
  if (it == open_.end())
    return false;
  reserved_ = std::max(0.0, reserved_ - it->second);
  open_.erase(it);
  return true;
}

void money_ledger::spent_before(double usd) {
  spent_ += std::max(0.0, usd);
}

} // namespace squad
