// The program model: a versioned, validated loyalty program (docs/programs.md
// is the JSON reference). Built only by program_loader; immutable afterwards.
//
// Thread-safety: immutable after load; share freely between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/fixed.h"
#include "core/local_time.h"
#include "core/money.h"

namespace loyalty::core {

// Picks basket lines. An empty selector matches every line.
struct Selector {
  std::vector<std::string> skus;
  std::vector<std::string> categories;
  std::vector<std::string> tags;
  std::optional<std::int64_t> min_unit_price;
  bool present = false;  // false when the key was absent in the program
};

enum class Trigger {
  kPurchase,
  kReturn,
  kEnrollment,
  kReview,
  kReferral,
  kCheckIn,
  kSurvey,
  kActivity,
  kTopUp,
  kBirthday,
  kPeriodEnd,
  kRedeem,      // a catalog reward redeemed at the counter; no rule has it
  kDeferPass,   // a member postpones a pass (passes[].deferrals_per_month)
  kDaily,       // fired by HQ's daily jobs for every member (anniversaries, festival days)
  kTierUp,      // the member reached a higher tier: once per level crossed
  kFreezeTier,  // a member pauses (学习中断保护): the level is held for N months
};
const char* to_string(Trigger t);
std::optional<Trigger> parse_trigger(std::string_view s);

// Thresholds of a counter-like condition.
struct Threshold {
  std::optional<std::int64_t> at_least;
  std::optional<std::int64_t> at_most;
  std::optional<std::int64_t> reaches;
};

enum class ConditionKind {
  kAlways,
  kAll,
  kAny,
  kNot,
  kDayOfWeek,
  kTimeWindow,
  kDateRange,
  kDayOfMonth,
  kCalendar,
  kTier,
  kTierAtLeast,
  kReferrerTier,   // the referrer's tier is one of `names` (false without a referrer)
  kNewSubscriber,  // the member has never held pass `name` (flag false: has held it)
  kAnniversary,    // today is an anniversary of `name` (enrollment, first_purchase)
  kYearsSince,     // whole years since `name` (enrollment, first_purchase) meet threshold
  kPassDaysLeft,   // the member's pass `name` valid today has threshold days left
  kBasketAmount,
  kItemCount,
  kContains,
  kFirstPurchase,
  kDaysSinceLastPurchase,
  kTenureDays,
  kBirthdayMonth,
  kEnrolledWithinDays,
  kReferred,
  kMetric,
  kStreakReaches,
  kActivity,
  kTopUpAmount,
  kPaidWith,   // every payment method the basket names is one of `names`
  kStamps,     // stamps now on card `name` meet threshold
  kAttribute,  // the member holds one of the attributes `names` today (a verified student)
};

struct Condition {
  ConditionKind kind = ConditionKind::kAlways;
  std::vector<Condition> children;  // all / any / not
  std::vector<int> numbers;         // weekdays (0 = Sunday), days of month
  std::vector<std::string> names;   // tiers, activities
  std::string name;                 // calendar, tier, metric
  Threshold threshold;              // amounts, counts, days, metrics
  std::optional<Period> period;     // metric period
  int consecutive = 1;              // metric: met in each of the last N windows
  std::string divide_by;            // metric: the measure is name / divide_by (spend per order)
  std::string less_than;            // metric: below this other metric (reviews < orders)
  Selector selector;                // basket conditions
  bool net = true;                  // basket_amount measure
  bool flag = true;                 // first_purchase / birthday_month / referred
  int from_minutes = 0, to_minutes = 0;
  LocalDays from_day{}, to_day{};
};

enum class EffectKind {
  kEarnPerAmount,
  kMultiplier,
  kFixedPoints,
  kDiscountPercent,
  kDiscountAmount,
  kNthItemDiscount,
  kBundlePrice,  // n units of the matching lines sell together at `amount`
  kIssueVoucher,
  kAddStamp,
  kCounter,
  kStoredValueBonus,
};
const char* to_string(EffectKind k);

enum class Recipient { kMember, kReferrer };

struct Effect {
  EffectKind kind = EffectKind::kFixedPoints;
  std::int64_t points = 0;  // earn_per_amount, fixed_points
  std::int64_t per = 0;     // earn_per_amount: minor units per `points`
  Decimal4 factor;          // multiplier
  Decimal4 percent;         // discounts, 0..100
  std::int64_t amount = 0;  // discount_amount, stored_value_bonus, counter add
  int n = 0;                // nth_item_discount
  bool repeat = false;
  bool onward = false;  // nth_item_discount: every unit from the nth on (第3件起)
  std::optional<std::int64_t> cap;
  Selector on;
  Selector exclude;
  std::string target;  // voucher template, stamp card, counter name
  std::int64_t count = 1;
  std::optional<Selector> add_units_of;  // counter: add matching units
  // counter: add one per `per` minor units paid for the sale lines `on`
  // matches (a lucky draw per 50 yuan)
  std::int64_t add_per_amount = 0;
  Recipient to = Recipient::kMember;
};

struct RuleLimit {
  Period period = Period::kTransaction;
  std::optional<std::int64_t> max_times;
  std::optional<std::int64_t> max_points;
  std::map<std::string, std::int64_t> max_times_by_tier;
  bool on_referrer = false;
};

struct Rule {
  std::string id;
  std::string name;
  Trigger trigger = Trigger::kPurchase;
  Condition when;
  std::vector<Effect> effects;
  std::optional<RuleLimit> limit;
  std::string group;
  std::int64_t priority = 0;
  std::size_t index = 0;  // position in the file, for stable ordering
};

enum class Combine { kMultiply, kAdd, kBest };

struct EarnCap {
  Period period = Period::kTransaction;
  std::int64_t max_points = 0;
  bool bonus_only = false;
  std::vector<std::string> tiers;  // only for members of these tiers; empty: everyone
};

// What counts as a sale for the metrics (spend, items, orders) and for the
// basket_amount and item_count conditions.
struct Counting {
  Selector not_sales;        // gift cards, deposits: in no metric, no basket amount
  bool orders_paid = false;  // an order counts only when money was paid for it
};

struct Earning {
  bool after_discounts = true;
  bool after_redemptions = true;
  Rounding rounding = Rounding::kFloor;
  // Where points are rounded: each rule's award on each line, each rule's
  // award once per transaction, or the transaction's total once (its whole
  // points then shared among the rules by largest remainder).
  enum class RoundingScope { kLine, kRule, kTotal };
  RoundingScope rounding_scope = RoundingScope::kRule;
  Combine combine = Combine::kMultiply;
  Selector exclude;
  std::vector<EarnCap> caps;
};

enum class ExpiryPolicy { kNever, kRollingMonths, kEndOfMonthAfter, kYearEnd };
struct Expiry {
  ExpiryPolicy policy = ExpiryPolicy::kNever;
  int months = 0;
};
// Day a lot earned on `earned` expires (the lot is dead from that day on),
// or nullopt for never.
std::optional<LocalDays> expiry_of(const Expiry& e, LocalDays earned);

struct MetricTerm {
  std::string metric;
  Decimal4 weight = Decimal4::from_int(1);
  std::int64_t per = 1;
};
struct DerivedMetric {
  std::string name;
  std::vector<MetricTerm> terms;
};

struct TierLevel {
  std::string id;
  std::string name;
  std::optional<Condition> qualify;
};

struct Accelerator {
  Condition when;
  std::string to;
  int valid_months = 12;
};

struct TierPolicy {
  std::vector<TierLevel> levels;
  int rolling_months = 0;                  // > 0: rolling window
  Period calendar_window = Period::kYear;  // when rolling_months == 0
  bool upgrade_next_day = false;
  int max_drop_levels = 1;
  int grace_days = 0;
  Decimal4 grace_fraction;
  std::vector<std::string> grace_levels;
  Decimal4 carry_over_percent;
  std::vector<DerivedMetric> derived;
  std::vector<Accelerator> accelerators;
  // Freeze (冻结): a member may hold their level through re-evaluations for
  // 1..freeze_max_months months, freeze_max_times in a membership.
  int freeze_max_times = 0;  // 0: no freezing
  int freeze_max_months = 0;

  int rank_of(std::string_view tier) const;  // -1 when unknown
};

// kItemPrice: one unit of the items it covers sells at `value` (an add-on
// purchase, "designated pastry for 9 yuan"). kStamp takes nothing off: used
// on a purchase it adds one stamp to stamp card `card` (补打卡券).
enum class VoucherKind { kAmount, kPercent, kFreeItem, kItemPrice, kStamp };
struct VoucherTemplate {
  std::string id;
  std::string name;
  VoucherKind kind = VoucherKind::kAmount;
  std::int64_t value = 0;  // kAmount: off; kItemPrice: the unit's price
  Decimal4 percent;
  std::int64_t min_spend = 0;
  Selector applies_to;
  int valid_days = 30;
  std::optional<Decimal4> max_share_percent;
  Selector exclude;           // lines it never covers (items already on special)
  std::vector<int> weekdays;  // usable only on these days (0 = Sunday); empty: any
  std::string calendar;       // usable only on the days of this calendar
  std::string card;           // kStamp: the stamp card it adds a stamp to
};

struct PointsTender {
  std::int64_t points = 100;  // this many points ...
  std::int64_t value = 100;   // ... pay this many minor units
  std::int64_t min_points = 0;
  std::int64_t step = 1;
  std::optional<Decimal4> max_share_percent;
  Selector applies_to;
};

struct Reward {
  std::string id;
  std::string name;
  std::int64_t points = 0;
  std::int64_t cash = 0;
  std::string min_tier;
  std::string voucher;
  std::string calendar;  // redeemable only on this calendar's days (限时兑换); empty: any day
};

struct StampCard {
  std::string id;
  std::string name;
  int stamps_required = 0;
  std::string reward_voucher;
  Period reset = Period::kLifetime;
  int max_per_day = 0;  // 0 = no limit
};

struct Pass {
  std::string id;
  std::string name;
  std::string sku;       // selling this SKU at `price` gives the member the pass
  int valid_months = 1;  // per unit sold
  std::int64_t price = 0;
  Selector covers;
  std::vector<int> weekdays;  // empty = every day
  int max_per_day = 1;
  int max_per_month = 0;  // 0 = no limit
  int deferrals_per_month = 0;
  int max_deferral_days = 0;
};

// Items only members of a tier and above may buy (新品尝鲜资格), or may buy
// before everyone else (提前24小时抢购): within [from, until) store-local
// time when given, always otherwise.
struct Eligibility {
  std::string id;
  std::string name;
  Selector items;
  std::string min_tier;
  std::optional<LocalSeconds> from;
  std::optional<LocalSeconds> until;
};

struct OfflineAllowance {
  std::int64_t max_points_per_member_per_day = 0;
  std::int64_t max_points_per_terminal_per_day = 0;
  std::int64_t max_hours_since_sync = 0;
};

struct Program {
  std::string id;
  std::int64_t version = 0;
  std::string name;
  Currency currency;
  std::vector<std::string> decisions;
  Earning earning;
  Counting counting;
  Expiry expiry;
  std::optional<TierPolicy> tiers;
  std::vector<Rule> rules;  // sorted: priority descending, then file order
  std::map<std::string, std::vector<std::pair<LocalDays, LocalDays>>> calendars;
  std::vector<VoucherTemplate> vouchers;
  std::optional<PointsTender> points_tender;
  std::vector<Reward> rewards;
  std::vector<StampCard> stamp_cards;
  bool streaks = false;
  Selector stored_value_bonus_restricted_to;
  std::vector<Pass> passes;
  std::vector<Eligibility> eligibility;
  int referral_window_days = 0;
  OfflineAllowance offline;

  const VoucherTemplate* find_voucher(std::string_view id) const;
  const StampCard* find_card(std::string_view id) const;
  const Pass* find_pass(std::string_view id) const;
  const Reward* find_reward(std::string_view id) const;
  const DerivedMetric* find_derived(std::string_view name) const;
};

// `day` is one of the days of calendar `name` (false for an unknown name).
bool in_calendar(const Program& p, const std::string& name, LocalDays day);

// The reward may be redeemed on `day` (its `calendar`, when it has one).
bool reward_open_on(const Program& p, const Reward& r, LocalDays day);

}  // namespace loyalty::core
