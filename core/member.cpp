#include "core/member.h"

namespace loyalty::core {

namespace {
constexpr Period kStoredPeriods[] = {Period::kDay,     Period::kWeek,     Period::kMonth,
                                     Period::kQuarter, Period::kHalfYear, Period::kYear,
                                     Period::kLifetime};
}

std::int64_t Counters::get(const std::string& metric, Period p, LocalDays d) const {
  if (p == Period::kTransaction) return 0;
  auto it = values_.find(metric + "@" + period_key(p, d));
  return it == values_.end() ? 0 : it->second;
}

std::int64_t Counters::rolling_months(const std::string& metric, int months, LocalDays d) const {
  std::int64_t sum = 0;
  for (int i = 0; i < months; ++i) sum += get(metric, Period::kMonth, add_months(d, -i));
  return sum;
}

void Counters::add(const std::string& metric, LocalDays d, std::int64_t delta) {
  if (delta == 0) return;
  for (Period p : kStoredPeriods) add_key(metric + "@" + period_key(p, d), delta);
}

void Counters::add_key(const std::string& key, std::int64_t delta) {
  auto& v = values_[key];
  v += delta;
  if (v == 0) values_.erase(key);
}

std::int64_t MemberState::available(LocalDays d) const {
  std::int64_t sum = 0;
  for (const auto& lot : lots) {
    if (lot.live_on(d)) sum += lot.points;
  }
  return sum - debt;
}

std::string MemberState::tier_on(LocalDays d) const {
  if (!pending_tier.empty() && pending_tier_from && d >= *pending_tier_from) return pending_tier;
  return tier;
}

}  // namespace loyalty::core
