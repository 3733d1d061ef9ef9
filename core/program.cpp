#include "core/program.h"

#include <array>

namespace loyalty::core {

namespace {
constexpr std::array<const char*, 16> kTriggers{
    "purchase",   "return",   "enrollment", "review",     "referral",   "check_in",
    "survey",     "activity", "top_up",     "birthday",   "period_end", "redeem",
    "defer_pass", "daily",    "tier_up",    "freeze_tier"};

template <typename T>
const T* find_by_id(const std::vector<T>& items, std::string_view id) {
  for (const auto& item : items) {
    if (item.id == id) return &item;
  }
  return nullptr;
}
}  // namespace

const char* to_string(Trigger t) {
  return kTriggers[static_cast<std::size_t>(t)];
}

std::optional<Trigger> parse_trigger(std::string_view s) {
  for (std::size_t i = 0; i < kTriggers.size(); ++i) {
    if (s == kTriggers[i]) return static_cast<Trigger>(i);
  }
  return std::nullopt;
}

const char* to_string(EffectKind k) {
  switch (k) {
    case EffectKind::kEarnPerAmount: return "earn_per_amount";
    case EffectKind::kMultiplier: return "multiplier";
    case EffectKind::kFixedPoints: return "fixed_points";
    case EffectKind::kDiscountPercent: return "discount_percent";
    case EffectKind::kDiscountAmount: return "discount_amount";
    case EffectKind::kNthItemDiscount: return "nth_item_discount";
    case EffectKind::kBundlePrice: return "bundle_price";
    case EffectKind::kIssueVoucher: return "issue_voucher";
    case EffectKind::kAddStamp: return "add_stamp";
    case EffectKind::kCounter: return "counter";
    case EffectKind::kStoredValueBonus: return "stored_value_bonus";
  }
  return "unknown";
}

std::optional<LocalDays> expiry_of(const Expiry& e, LocalDays earned) {
  switch (e.policy) {
    case ExpiryPolicy::kNever: return std::nullopt;
    case ExpiryPolicy::kRollingMonths: {
      // Same day of month N months later, clamped to that month's end; the
      // lot is usable through the day before.
      date::year_month_day ymd{earned};
      auto first = add_months(earned, e.months);
      auto last = end_of_month(first);
      auto day = first + date::days{static_cast<int>(static_cast<unsigned>(ymd.day())) - 1};
      return day > last ? last : day;
    }
    case ExpiryPolicy::kEndOfMonthAfter:
      // Usable through the last day of the month N months on.
      return end_of_month(add_months(earned, e.months)) + date::days{1};
    case ExpiryPolicy::kYearEnd: return period_end(Period::kYear, earned) + date::days{1};
  }
  return std::nullopt;
}

int TierPolicy::rank_of(std::string_view tier) const {
  for (std::size_t i = 0; i < levels.size(); ++i) {
    if (levels[i].id == tier) return static_cast<int>(i);
  }
  return -1;
}

const VoucherTemplate* Program::find_voucher(std::string_view key) const {
  return find_by_id(vouchers, key);
}
const StampCard* Program::find_card(std::string_view key) const {
  return find_by_id(stamp_cards, key);
}
const Pass* Program::find_pass(std::string_view key) const {
  return find_by_id(passes, key);
}
const Reward* Program::find_reward(std::string_view key) const {
  return find_by_id(rewards, key);
}
const DerivedMetric* Program::find_derived(std::string_view key) const {
  if (!tiers) return nullptr;
  for (const auto& d : tiers->derived) {
    if (d.name == key) return &d;
  }
  return nullptr;
}

bool in_calendar(const Program& p, const std::string& name, LocalDays day) {
  auto it = p.calendars.find(name);
  if (it == p.calendars.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(),
                     [&](const auto& r) { return day >= r.first && day <= r.second; });
}

bool reward_open_on(const Program& p, const Reward& r, LocalDays day) {
  return r.calendar.empty() || in_calendar(p, r.calendar, day);
}

}  // namespace loyalty::core
