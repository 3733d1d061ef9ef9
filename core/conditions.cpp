// Evaluating rule conditions against the member, the basket and the store's
// local time.
#include <algorithm>

#include "core/engine_internal.h"

namespace loyalty::core {

bool matches(const Selector& s, const Line& line) {
  if (s.min_unit_price && line.unit_price < *s.min_unit_price) return false;
  if (s.skus.empty() && s.categories.empty() && s.tags.empty()) return true;
  auto in = [](const std::vector<std::string>& list, const std::string& v) {
    return std::find(list.begin(), list.end(), v) != list.end();
  };
  if (in(s.skus, line.sku)) return true;
  for (const auto& c : line.categories) {
    if (in(s.categories, c)) return true;
  }
  for (const auto& t : line.tags) {
    if (in(s.tags, t)) return true;
  }
  return false;
}

bool counts_as_sale(const Program& p, const Line& line) {
  return !(p.counting.not_sales.present && matches(p.counting.not_sales, line));
}

namespace detail {

namespace {

std::int64_t scaled(std::int64_t threshold, const EvalCtx& ctx) {
  return narrow(round_div(static_cast<i128>(threshold) * ctx.threshold_scale.units,
                          Decimal4::kScale, Rounding::kCeil));
}

bool meets(const Threshold& t, std::int64_t value, const EvalCtx& ctx) {
  if (t.at_least && value < scaled(*t.at_least, ctx)) return false;
  if (t.at_most && value > *t.at_most) return false;
  return true;
}

std::int64_t basket_amount(const Condition& c, const EvalCtx& ctx) {
  std::int64_t sum = 0;
  const auto& lines = ctx.request.basket.lines;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!matches(c.selector, lines[i]) || !counts_as_sale(ctx.program, lines[i])) continue;
    sum += c.net && i < ctx.out.lines.size() ? ctx.out.lines[i].net()
                                             : lines[i].quantity * lines[i].unit_price;
  }
  return sum;
}

std::int64_t item_count(const Condition& c, const EvalCtx& ctx) {
  std::int64_t n = 0;
  for (const auto& line : ctx.request.basket.lines) {
    if (matches(c.selector, line) && counts_as_sale(ctx.program, line)) n += line.quantity;
  }
  return n;
}

std::int64_t raw_metric(const std::string& name, std::optional<Period> period, EvalCtx& ctx) {
  const auto& counters = ctx.member.counters;
  if (ctx.tier_window) {
    const auto& t = *ctx.program.tiers;
    if (t.rolling_months > 0)
      return counters.rolling_months(name, t.rolling_months, ctx.window_end);
    return counters.get(name, t.calendar_window, ctx.window_end);
  }
  return counters.get(name, period.value_or(Period::kLifetime), ctx.today);
}

}  // namespace

std::int64_t metric_value(const std::string& name, std::optional<Period> period, EvalCtx& ctx,
                          bool include_pending) {
  if (const auto* derived = ctx.program.find_derived(name)) {
    i128 total = 0;
    for (const auto& term : derived->terms) {
      const auto v = metric_value(term.metric, period, ctx, include_pending);
      total += round_div(static_cast<i128>(v) * term.weight.units, term.per * Decimal4::kScale,
                         Rounding::kFloor);
    }
    return narrow(total) + raw_metric("carry:" + name, period, ctx);
  }
  std::int64_t v = raw_metric(name, period, ctx);
  if (include_pending) {
    if (auto it = ctx.pending.find(name); it != ctx.pending.end()) v += it->second;
  }
  return v;
}

std::int64_t condition_metric(const Condition& c, EvalCtx& ctx, bool include_pending) {
  const auto v = metric_value(c.name, c.period, ctx, include_pending);
  if (c.divide_by.empty()) return v;
  const auto per = metric_value(c.divide_by, c.period, ctx, include_pending);
  return per > 0 ? v / per : 0;
}

namespace {

// `consecutive: N`: the N - 1 windows before the current one (the tier
// window being judged, or the metric's period containing today) each met the
// threshold too. A rolling tier window or a lifetime period has no earlier
// window, so the loader's check leaves only calendar periods here.
bool met_in_earlier_windows(const Condition& c, EvalCtx& ctx) {
  if (c.consecutive <= 1) return true;
  const bool tiers = ctx.tier_window;
  const Period window =
      tiers ? ctx.program.tiers->calendar_window : c.period.value_or(Period::kLifetime);
  if (window == Period::kLifetime || window == Period::kTransaction ||
      (tiers && ctx.program.tiers->rolling_months > 0))
    return false;
  EvalCtx earlier = ctx;
  earlier.pending.clear();
  LocalDays day = tiers ? ctx.window_end : ctx.today;
  for (int k = 1; k < c.consecutive; ++k) {
    day = period_start(window, day) - date::days{1};
    earlier.today = earlier.window_end = day;
    if (!meets(c.threshold, condition_metric(c, earlier, false), earlier)) return false;
  }
  return true;
}

}  // namespace

bool holds(const Condition& c, EvalCtx& ctx) {
  const auto& m = ctx.member;
  switch (c.kind) {
    case ConditionKind::kAlways: return true;
    case ConditionKind::kAll:
      return std::all_of(c.children.begin(), c.children.end(),
                         [&](const Condition& k) { return holds(k, ctx); });
    case ConditionKind::kAny:
      return std::any_of(c.children.begin(), c.children.end(),
                         [&](const Condition& k) { return holds(k, ctx); });
    case ConditionKind::kNot: return !holds(c.children.front(), ctx);
    case ConditionKind::kDayOfWeek:
      return std::find(c.numbers.begin(), c.numbers.end(), ctx.weekday) != c.numbers.end();
    case ConditionKind::kTimeWindow:
      return ctx.minutes >= c.from_minutes && ctx.minutes < c.to_minutes;
    case ConditionKind::kDateRange: return ctx.today >= c.from_day && ctx.today <= c.to_day;
    case ConditionKind::kDayOfMonth: {
      const int dom =
          static_cast<int>(static_cast<unsigned>(date::year_month_day{ctx.today}.day()));
      return std::find(c.numbers.begin(), c.numbers.end(), dom) != c.numbers.end();
    }
    case ConditionKind::kCalendar: return in_calendar(ctx.program, c.name, ctx.today);
    case ConditionKind::kTier:
      return std::find(c.names.begin(), c.names.end(), ctx.tier) != c.names.end();
    case ConditionKind::kReferrerTier:
      return ctx.member.referrer &&
             std::find(c.names.begin(), c.names.end(), ctx.member.referrer->tier) != c.names.end();
    case ConditionKind::kTierAtLeast:
      return ctx.program.tiers &&
             ctx.program.tiers->rank_of(ctx.tier) >= ctx.program.tiers->rank_of(c.name);
    case ConditionKind::kBasketAmount: return meets(c.threshold, basket_amount(c, ctx), ctx);
    case ConditionKind::kItemCount: return meets(c.threshold, item_count(c, ctx), ctx);
    case ConditionKind::kContains:
      return std::any_of(ctx.request.basket.lines.begin(), ctx.request.basket.lines.end(),
                         [&](const Line& l) { return matches(c.selector, l); });
    case ConditionKind::kFirstPurchase: return (!m.first_purchase_on.has_value()) == c.flag;
    case ConditionKind::kAnniversary:
    case ConditionKind::kYearsSince: {
      const auto& since = c.name == "first_purchase" ? m.first_purchase_on : m.enrolled_on;
      if (!since) return false;
      const int year = static_cast<int>(date::year_month_day{ctx.today}.year());
      if (c.kind == ConditionKind::kAnniversary && anniversary_in(*since, year) != ctx.today)
        return false;
      return meets(c.threshold, full_years(*since, ctx.today), ctx);
    }
    case ConditionKind::kNewSubscriber:
      return std::none_of(m.passes.begin(), m.passes.end(),
                          [&](const HeldPass& h) { return h.pass_id == c.name; }) == c.flag;
    case ConditionKind::kPassDaysLeft: {
      const auto end = pass_covered_until(m, c.name, ctx.today);
      return end && meets(c.threshold, (*end - ctx.today).count(), ctx);
    }
    case ConditionKind::kDaysSinceLastPurchase:
      return m.last_purchase_on &&
             meets(c.threshold, (ctx.today - *m.last_purchase_on).count(), ctx);
    case ConditionKind::kTenureDays:
      return m.enrolled_on && meets(c.threshold, (ctx.today - *m.enrolled_on).count(), ctx);
    case ConditionKind::kBirthdayMonth: {
      const unsigned month = static_cast<unsigned>(date::year_month_day{ctx.today}.month());
      return (m.birth_month && *m.birth_month == month) == c.flag;
    }
    case ConditionKind::kEnrolledWithinDays: {
      if (!m.enrolled_on) return false;
      const auto days = (ctx.today - *m.enrolled_on).count();
      return days >= 0 && days <= *c.threshold.at_least;
    }
    case ConditionKind::kReferred: return (!m.referred_by.empty()) == c.flag;
    case ConditionKind::kMetric: {
      const auto after = condition_metric(c, ctx, true);
      if (c.threshold.reaches) {
        const auto before = condition_metric(c, ctx, false);
        const auto target = scaled(*c.threshold.reaches, ctx);
        if (!(before < target && after >= target)) return false;
      }
      if (!c.less_than.empty() && after >= metric_value(c.less_than, c.period, ctx, true))
        return false;
      return meets(c.threshold, after, ctx) && met_in_earlier_windows(c, ctx);
    }
    case ConditionKind::kStreakReaches:
      return ctx.first_visit_today && ctx.new_streak == *c.threshold.at_least;
    case ConditionKind::kActivity:
      return std::find(c.names.begin(), c.names.end(), ctx.request.activity) != c.names.end();
    case ConditionKind::kTopUpAmount: return meets(c.threshold, ctx.request.top_up_amount, ctx);
    case ConditionKind::kAttribute:
      return std::any_of(c.names.begin(), c.names.end(), [&](const std::string& name) {
        const auto it = m.attributes.find(name);
        return it != m.attributes.end() && ctx.today <= it->second;
      });
    case ConditionKind::kStamps: {
      const auto* card = ctx.program.find_card(c.name);
      return card != nullptr && meets(c.threshold, stamp_total(*card, ctx), ctx);
    }
    case ConditionKind::kPaidWith: {
      // A split payment with any other method does not count: the co-brand
      // card's double is for orders the card paid.
      const auto& paid = ctx.request.basket.paid_with;
      return !paid.empty() && std::all_of(paid.begin(), paid.end(), [&](const std::string& method) {
        return std::find(c.names.begin(), c.names.end(), method) != c.names.end();
      });
    }
  }
  return false;
}

std::string rule_counter(const Rule& rule, const char* what) {
  return "rule:" + rule.id + ":" + what;
}

bool rule_may_fire(const Rule& rule, EvalCtx& ctx) {
  if (!rule.limit || !rule.limit->max_times) return true;
  const auto& l = *rule.limit;
  std::int64_t max = *l.max_times;
  std::int64_t used = 0;
  const std::string key = rule_counter(rule, "times");
  if (l.on_referrer) {
    if (!ctx.member.referrer) return false;
    const auto& ref = *ctx.member.referrer;
    if (auto it = l.max_times_by_tier.find(ref.tier); it != l.max_times_by_tier.end())
      max = it->second;
    used = ref.counters.get(key, l.period, ctx.today) + ctx.referrer_pending[key];
  } else {
    if (auto it = l.max_times_by_tier.find(ctx.tier); it != l.max_times_by_tier.end())
      max = it->second;
    used = ctx.member.counters.get(key, l.period, ctx.today) + ctx.pending[key];
  }
  return used < max;
}

std::optional<std::int64_t> rule_points_left(const Rule& rule, EvalCtx& ctx) {
  if (!rule.limit || !rule.limit->max_points) return std::nullopt;
  const std::string key = rule_counter(rule, "points");
  const auto used = ctx.member.counters.get(key, rule.limit->period, ctx.today) + ctx.pending[key];
  return std::max<std::int64_t>(0, *rule.limit->max_points - used);
}

void record_rule_use(const Rule& rule, std::int64_t points, EvalCtx& ctx) {
  if (!rule.limit || rule.limit->period == Period::kTransaction) return;
  const Recipient on = rule.limit->on_referrer ? Recipient::kReferrer : Recipient::kMember;
  auto& pend = on == Recipient::kReferrer ? ctx.referrer_pending : ctx.pending;
  const auto times = rule_counter(rule, "times");
  pend[times] += 1;
  ctx.out.metrics.push_back({times, 1, on});
  if (points != 0 && rule.limit->max_points) {
    const auto pts = rule_counter(rule, "points");
    pend[pts] += points;
    ctx.out.metrics.push_back({pts, points, on});
  }
}

}  // namespace detail
}  // namespace loyalty::core
