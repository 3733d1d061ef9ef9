#include "core/tiers.h"

#include <algorithm>

#include "core/engine_internal.h"

namespace loyalty::core {

namespace {

detail::EvalCtx tier_ctx(const Program& program, const MemberState& member, LocalDays window_end,
                         Outcome& scratch, const Request& none) {
  detail::EvalCtx ctx{program, member,      none,    window_end, 0,
                      0,       member.tier, scratch, {},         {},
                      0,       true,        true,    window_end, Decimal4::from_int(1)};
  return ctx;
}

int qualified_with(detail::EvalCtx& ctx) {
  const auto& levels = ctx.program.tiers->levels;
  int best = 0;
  for (std::size_t i = 1; i < levels.size(); ++i) {
    if (levels[i].qualify && detail::holds(*levels[i].qualify, ctx)) best = static_cast<int>(i);
  }
  return best;
}

}  // namespace

int qualified_rank(const Program& program, const MemberState& member, LocalDays window_end,
                   Decimal4 scale) {
  if (!program.tiers) return -1;
  Outcome scratch;
  Request none;
  auto ctx = tier_ctx(program, member, window_end, scratch, none);
  ctx.threshold_scale = scale;
  return qualified_with(ctx);
}

namespace {

void collect_goals(const Condition& c, detail::EvalCtx& ctx, std::vector<TierGoal>& out) {
  if (c.kind == ConditionKind::kMetric && c.threshold.at_least) {
    out.push_back({c.divide_by.empty() ? c.name : c.name + "/" + c.divide_by,
                   detail::condition_metric(c, ctx, true), *c.threshold.at_least});
    return;
  }
  if (c.kind == ConditionKind::kAll || c.kind == ConditionKind::kAny)
    for (const auto& child : c.children) collect_goals(child, ctx, out);
}

}  // namespace

std::optional<TierProgress> tier_progress(const Program& program, const MemberState& member,
                                          LocalDays today) {
  if (!program.tiers) return std::nullopt;
  const auto& levels = program.tiers->levels;
  const int rank = std::max(0, program.tiers->rank_of(member.tier_on(today)));
  const auto next = static_cast<std::size_t>(rank + 1);
  if (next >= levels.size() || !levels[next].qualify) return std::nullopt;
  Outcome scratch;
  Request none;
  auto ctx = tier_ctx(program, member, today, scratch, none);
  TierProgress p{
      levels[next].id, levels[next].name, levels[next].qualify->kind == ConditionKind::kAny, {}};
  collect_goals(*levels[next].qualify, ctx, p.goals);
  return p;
}

namespace {

// `window_ended`: as_of is the first day after a qualification window (the
// re-evaluation); otherwise only a grace period that has run out is settled.
TierDecision decide(const Program& program, const MemberState& member, LocalDays as_of,
                    bool window_ended) {
  TierDecision d;
  if (!program.tiers) return d;
  const auto& t = *program.tiers;
  const std::string current_id =
      member.tier_on(as_of).empty() ? t.levels.front().id : member.tier_on(as_of);
  d.tier_before = d.tier_after = current_id;
  const int current = std::max(0, t.rank_of(current_id));
  const LocalDays window_end = as_of - date::days{1};
  const int qualified = qualified_rank(program, member, window_end);
  const bool protected_by_accelerator = member.tier_valid_until && as_of < *member.tier_valid_until;

  if (qualified >= current || protected_by_accelerator) {
    const int next = std::max(qualified, current);
    d.tier_after = t.levels[static_cast<std::size_t>(next)].id;
    d.grace_cleared = member.grace_until.has_value();
    d.reason = next > current ? "qualified for a higher level" : "requalified";
  } else if (member.grace_until) {
    const int scaled = qualified_rank(program, member, window_end, t.grace_fraction);
    if (scaled >= current) {
      d.grace_cleared = true;
      d.reason =
          "reached " + t.grace_fraction.to_string() + " of the thresholds in the grace period";
    } else if (as_of >= *member.grace_until) {
      d.tier_after =
          t.levels[static_cast<std::size_t>(std::max(qualified, current - t.max_drop_levels))].id;
      d.grace_cleared = true;
      d.reason = "grace period ended without requalifying";
    } else {
      d.grace_until = member.grace_until;
      d.reason = "in grace period";
    }
  } else if (std::find(t.grace_levels.begin(), t.grace_levels.end(), current_id) !=
             t.grace_levels.end()) {
    const int scaled = qualified_rank(program, member, window_end, t.grace_fraction);
    if (scaled >= current) {
      d.reason = "kept: reached " + t.grace_fraction.to_string() + " of the thresholds";
    } else {
      d.grace_until = as_of + date::days{t.grace_days};
      d.reason = "did not requalify; grace period started";
    }
  } else {
    d.tier_after =
        t.levels[static_cast<std::size_t>(std::max(qualified, current - t.max_drop_levels))].id;
    d.reason = "did not requalify";
  }
  // Carry-over (达标后结转) is for members who met a level's standard in the
  // window that ended and hold that level now: not for those kept by a
  // grace period or an accelerated upgrade, nor at the entry level.
  const bool met = qualified >= 1 && qualified >= t.rank_of(d.tier_after);
  if (window_ended && met && t.carry_over_percent.units > 0) {
    Outcome scratch;
    Request none;
    auto ctx = tier_ctx(program, member, window_end, scratch, none);
    for (const auto& m : t.derived) {
      const auto v = detail::metric_value(m.name, std::nullopt, ctx, false);
      const auto carried = narrow(round_div(static_cast<i128>(v) * t.carry_over_percent.units,
                                            100 * Decimal4::kScale, Rounding::kFloor));
      if (carried > 0) d.carry.emplace_back(m.name, carried);
    }
  }
  return d;
}

}  // namespace

TierDecision evaluate_tiers(const Program& program, const MemberState& member, LocalDays as_of) {
  return decide(program, member, as_of, true);
}

bool is_tier_day(const Program& program, LocalDays day) {
  if (!program.tiers) return false;
  if (program.tiers->rolling_months > 0) return date::year_month_day{day}.day() == date::day{1};
  return period_start(program.tiers->calendar_window, day) == day;
}

std::optional<TierDecision> tier_job(const Program& program, const MemberState& member,
                                     LocalDays day) {
  if (!program.tiers) return std::nullopt;
  if (is_tier_day(program, day)) return decide(program, member, day, true);
  if (member.grace_until && day >= *member.grace_until) return decide(program, member, day, false);
  return std::nullopt;
}

void apply_tier_decision(MemberState& member, const TierDecision& d, LocalDays as_of) {
  if (!d.tier_after.empty()) member.tier = d.tier_after;
  member.pending_tier.clear();
  member.pending_tier_from.reset();
  if (d.grace_until) member.grace_until = d.grace_until;
  if (d.grace_cleared) member.grace_until.reset();
  for (const auto& [name, value] : d.carry) member.counters.add("carry:" + name, as_of, value);
}

namespace detail {

void evaluate_tier_upgrade(EvalCtx& ctx) {
  const auto& p = ctx.program;
  if (!p.tiers) return;
  const auto& t = *p.tiers;
  const int current = std::max(0, t.rank_of(ctx.tier));
  int target = current;
  std::optional<LocalDays> valid_until;
  for (const auto& acc : t.accelerators) {
    const int rank = t.rank_of(acc.to);
    if (rank > target && holds(acc.when, ctx)) {
      target = rank;
      // Same day N months on, clamped to the month's end: the rolling-expiry rule.
      valid_until = expiry_of(Expiry{ExpiryPolicy::kRollingMonths, acc.valid_months}, ctx.today);
    }
  }
  // Qualification including this purchase's metrics.
  EvalCtx q = ctx;
  q.tier_window = true;
  q.window_end = ctx.today;
  const int qualified = [&] {
    int best = 0;
    for (std::size_t i = 1; i < t.levels.size(); ++i) {
      if (t.levels[i].qualify && holds(*t.levels[i].qualify, q)) best = static_cast<int>(i);
    }
    return best;
  }();
  if (qualified > target) {
    target = qualified;
    valid_until.reset();
  }
  if (target <= current) return;
  fire_tier_up(ctx, current, target);
  ctx.out.tier_after = t.levels[static_cast<std::size_t>(target)].id;
  ctx.out.tier_from = t.upgrade_next_day ? ctx.today + date::days{1} : ctx.today;
  ctx.out.tier_valid_until = valid_until;
}

}  // namespace detail
}  // namespace loyalty::core
