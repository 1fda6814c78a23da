#include "actors/budget/shared_budgets.hpp"

namespace squad {

shared_budgets::verdict shared_budgets::admit(const std::string& id, steady_time now, bool reserve, bool p0) {
  if (ids_.size() >= max_ids_ && !ids_.count(id))
    return verdict::too_many_ids;
  auto& e = ids_[id];
  if (e.sent == 0 && e.reserved == 0)
    e.last_used = now;
  if (!p0 && spent(id, true))
    return verdict::spent;
  if (reserve)
    ++e.reserved;
  return verdict::ok;
}

void shared_budgets::sent(const std::string& id, steady_time now, bool reserved) {
  auto& e = ids_[id];
  ++e.sent;
  e.last_used = now;
  if (reserved && e.reserved > 0)
    --e.reserved;
}

void shared_budgets::unreserve(const std::string& id) {
  if (auto it = ids_.find(id); it != ids_.end() && it->second.reserved > 0)
    --it->second.reserved;
}

bool shared_budgets::spent(const std::string& id, bool reserving) const {
  auto it = ids_.find(id);
  if (it == ids_.end())
    return false;
  return it->second.sent + (reserving ? it->second.reserved : 0) >= calls_;
}

void shared_budgets::prune(steady_time now) {
  if (now - pruned_ < std::chrono::minutes{1})
    return;
  pruned_ = now;
  std::erase_if(ids_, [&](auto& kv) { return kv.second.reserved == 0 && kv.second.last_used + ttl_ <= now; });
}

} // namespace squad
