// Points: base earning per currency unit, multipliers combined as the program
// says, fixed awards, rule limits and program caps. Exact values are kept in
// units of 1/kPointScale of a point and rounded once, where the program says.
#include <algorithm>
#include <numeric>

#include "core/engine_internal.h"

namespace loyalty::core::detail {

namespace {

struct RuleAward {
  const Rule* rule = nullptr;
  bool base = false;
  bool line_attributed = false;
  Recipient to = Recipient::kMember;
  std::vector<i128> exact;  // per line (line-attributed) or one value
  std::int64_t points = 0;
};

i128 exact_sum(const RuleAward& a) {
  return std::accumulate(a.exact.begin(), a.exact.end(), i128{0});
}

// Rounds each award as the program's rounding scope says.
void round_awards(std::vector<RuleAward>& awards, const Earning& e) {
  using Scope = Earning::RoundingScope;
  if (e.rounding_scope == Scope::kLine) {
    for (auto& a : awards) {
      i128 total = 0;
      for (auto x : a.exact) total += round_div(x, kPointScale, e.rounding);
      a.points = narrow(total);
    }
    return;
  }
  if (e.rounding_scope == Scope::kRule) {
    for (auto& a : awards) a.points = narrow(round_div(exact_sum(a), kPointScale, e.rounding));
    return;
  }
  // Total: per recipient, the exact sum is rounded once; each award gets its
  // whole points and the points left go to the largest remainders (earlier
  // awards first on a tie), so the awards add up to the rounded total.
  for (const auto to : {Recipient::kMember, Recipient::kReferrer}) {
    i128 sum = 0;
    std::int64_t floors = 0;
    std::vector<std::pair<i128, std::size_t>> remainders;
    for (std::size_t k = 0; k < awards.size(); ++k) {
      if (awards[k].to != to) continue;
      const i128 x = exact_sum(awards[k]);
      sum += x;
      awards[k].points = narrow(round_div(x, kPointScale, Rounding::kFloor));
      floors += awards[k].points;
      remainders.emplace_back(x - static_cast<i128>(awards[k].points) * kPointScale, k);
    }
    std::stable_sort(remainders.begin(), remainders.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    auto left = narrow(round_div(sum, kPointScale, e.rounding)) - floors;
    for (std::size_t i = 0; left > 0 && i < remainders.size(); ++i, --left)
      awards[remainders[i].second].points += 1;
  }
}

bool is_points_effect(EffectKind k) {
  return k == EffectKind::kEarnPerAmount || k == EffectKind::kMultiplier ||
         k == EffectKind::kFixedPoints;
}

bool is_discount_effect(EffectKind k) {
  return k == EffectKind::kDiscountPercent || k == EffectKind::kDiscountAmount ||
         k == EffectKind::kNthItemDiscount || k == EffectKind::kBundlePrice;
}

void add_metric(EvalCtx& ctx, const std::string& metric, std::int64_t delta, Recipient on) {
  if (delta == 0) return;
  (on == Recipient::kReferrer ? ctx.referrer_pending : ctx.pending)[metric] += delta;
  ctx.out.metrics.push_back({metric, delta, on});
}

}  // namespace

std::int64_t stamp_total(const StampCard& card, EvalCtx& ctx) {
  return ctx.member.counters.get("stamps:" + card.id, card.reset, ctx.today) +
         ctx.pending["stamps:" + card.id];
}

void add_stamps(const StampCard& card, std::int64_t count, bool daily_limit, EvalCtx& ctx) {
  const std::string day_metric = "stamps_day:" + card.id;
  std::int64_t add = count;
  if (daily_limit && card.max_per_day > 0) {
    const auto today =
        ctx.member.counters.get(day_metric, Period::kDay, ctx.today) + ctx.pending[day_metric];
    add = std::clamp<std::int64_t>(card.max_per_day - today, 0, add);
    if (add < count)
      ctx.out.notes.push_back(card.name + ": " + std::to_string(card.max_per_day) +
                              " stamp(s) a day already given");
  }
  if (add == 0) return;
  if (daily_limit) add_metric(ctx, day_metric, add, Recipient::kMember);
  const auto before = stamp_total(card, ctx);
  const auto rewards = (before + add) / card.stamps_required;
  add_metric(ctx, "stamps:" + card.id, add - rewards * card.stamps_required, Recipient::kMember);
  for (std::int64_t i = 0; i < rewards; ++i)
    ctx.out.vouchers_issued.push_back(
        {card.reward_voucher, Recipient::kMember, card.name + " full"});
  // One receipt line per card, however many sources stamped it.
  auto same = std::find_if(ctx.out.stamps.begin(), ctx.out.stamps.end(),
                           [&](const StampChange& s) { return s.card == card.id; });
  if (same == ctx.out.stamps.end()) {
    ctx.out.stamps.push_back({card.id, add, stamp_total(card, ctx), rewards});
  } else {
    same->added += add;
    same->after = stamp_total(card, ctx);
    same->rewards += rewards;
  }
}

namespace {

void apply_other_effect(const Rule& rule, const Effect& e, EvalCtx& ctx) {
  const auto& lines = ctx.request.basket.lines;
  switch (e.kind) {
    case EffectKind::kIssueVoucher:
      if (e.to == Recipient::kReferrer && !ctx.member.referrer) return;
      for (std::int64_t i = 0; i < e.count; ++i)
        ctx.out.vouchers_issued.push_back({e.target, e.to, rule.name});
      return;
    case EffectKind::kAddStamp:
      add_stamps(*ctx.program.find_card(e.target), e.count, true, ctx);
      return;
    case EffectKind::kCounter: {
      if (e.to == Recipient::kReferrer && !ctx.member.referrer) return;
      std::int64_t add = e.amount;
      if (e.add_per_amount > 0) {
        // Money paid for the matching sale lines, after discounts and points.
        std::int64_t paid = 0;
        for (std::size_t i = 0; i < lines.size(); ++i)
          if (matches(e.on, lines[i]) && counts_as_sale(ctx.program, lines[i]))
            paid += ctx.out.lines[i].net() - ctx.out.lines[i].points_value;
        add = std::max<std::int64_t>(0, paid) / e.add_per_amount;
      }
      if (e.add_units_of) {
        add = 0;
        for (const auto& l : lines) {
          if (matches(*e.add_units_of, l)) add += l.quantity;
        }
      }
      add_metric(ctx, e.target, add, e.to);
      return;
    }
    case EffectKind::kStoredValueBonus: ctx.out.sv_bonus_added += e.amount; return;
    default: return;
  }
}

}  // namespace

void compute_points(EvalCtx& ctx, const std::set<std::string>& fired_discount_rules) {
  const auto& p = ctx.program;
  const auto& lines = ctx.request.basket.lines;
  const auto& earning = p.earning;
  std::set<std::string> groups;
  for (const auto& rule : p.rules) {
    if (fired_discount_rules.contains(rule.id) && !rule.group.empty()) groups.insert(rule.group);
  }
  std::vector<RuleAward> awards;
  for (const auto& rule : p.rules) {
    if (rule.trigger != ctx.request.trigger) continue;
    const bool has_discount =
        std::any_of(rule.effects.begin(), rule.effects.end(),
                    [](const Effect& e) { return is_discount_effect(e.kind); });
    if (has_discount) {
      if (!fired_discount_rules.contains(rule.id)) continue;
    } else {
      if (!rule.group.empty() && groups.contains(rule.group)) continue;
      if (!holds(rule.when, ctx) || !rule_may_fire(rule, ctx)) continue;
      if (!rule.group.empty()) groups.insert(rule.group);
    }
    for (const auto& e : rule.effects) {
      if (is_discount_effect(e.kind)) continue;
      if (!is_points_effect(e.kind)) {
        apply_other_effect(rule, e, ctx);
        continue;
      }
      RuleAward a;
      a.rule = &rule;
      a.to = e.to;
      if (e.kind == EffectKind::kFixedPoints) {
        if (e.to == Recipient::kReferrer && !ctx.member.referrer) continue;
        a.exact = {static_cast<i128>(e.points) * kPointScale};
      } else if (e.kind == EffectKind::kEarnPerAmount &&
                 ctx.request.trigger == Trigger::kActivity) {
        // An activity has no lines: it earns on the amount it carries.
        a.exact = {static_cast<i128>(ctx.request.activity_amount) * e.points * kPointScale / e.per};
      } else {
        a.base = e.kind == EffectKind::kEarnPerAmount;
        a.line_attributed = true;
        a.exact.assign(lines.size(), 0);
        for (std::size_t i = 0; i < lines.size(); ++i) {
          if (!matches(e.on, lines[i]) ||
              (earning.exclude.present && matches(earning.exclude, lines[i])))
            continue;
          if (a.base) {
            a.exact[i] =
                static_cast<i128>(ctx.out.lines[i].earn_basis) * e.points * kPointScale / e.per;
          }
        }
        if (!a.base) {
          // Multiplier: remember the factor in exact[]'s place; resolved below
          // once every base award is known.
          for (std::size_t i = 0; i < lines.size(); ++i)
            a.exact[i] = matches(e.on, lines[i]) &&
                                 !(earning.exclude.present && matches(earning.exclude, lines[i]))
                             ? e.factor.units
                             : 0;
        }
      }
      awards.push_back(std::move(a));
    }
    // Limits count once per rule firing; points are added below.
    if (!std::any_of(rule.effects.begin(), rule.effects.end(),
                     [](const Effect& e) { return is_points_effect(e.kind); }) &&
        !has_discount)
      record_rule_use(rule, 0, ctx);
  }

  // Resolve multipliers against the base of each line.
  std::vector<i128> line_base(lines.size(), 0);
  for (const auto& a : awards) {
    if (a.base)
      for (std::size_t i = 0; i < lines.size(); ++i) line_base[i] += a.exact[i];
  }
  std::vector<i128> running = line_base;
  std::vector<std::size_t> best_of(lines.size(), awards.size());
  if (earning.combine == Combine::kBest) {
    for (std::size_t k = 0; k < awards.size(); ++k) {
      if (!awards[k].line_attributed || awards[k].base) continue;
      for (std::size_t i = 0; i < lines.size(); ++i) {
        if (awards[k].exact[i] != 0 &&
            (best_of[i] == awards.size() || awards[k].exact[i] > awards[best_of[i]].exact[i]))
          best_of[i] = k;
      }
    }
  }
  for (std::size_t k = 0; k < awards.size(); ++k) {
    auto& a = awards[k];
    if (!a.line_attributed || a.base) continue;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const i128 factor = a.exact[i];
      if (factor == 0 || (earning.combine == Combine::kBest && best_of[i] != k)) {
        a.exact[i] = 0;
        continue;
      }
      const i128 over = factor - Decimal4::kScale;
      if (earning.combine == Combine::kMultiply) {
        a.exact[i] = running[i] * over / Decimal4::kScale;
        running[i] += a.exact[i];
      } else {
        a.exact[i] = line_base[i] * over / Decimal4::kScale;
      }
    }
  }

  round_awards(awards, earning);
  // Apply rule limits, and book.
  std::vector<i128> line_weight(lines.size(), 0);
  for (auto& a : awards) {
    if (auto left = rule_points_left(*a.rule, ctx); left && a.points > *left) {
      ctx.out.notes.push_back(a.rule->name + ": limited to " + std::to_string(*left) + " points");
      a.points = *left;
    }
    record_rule_use(*a.rule, a.points, ctx);
    if (a.line_attributed)
      for (std::size_t i = 0; i < lines.size(); ++i) line_weight[i] += a.exact[i];
    Award award{a.rule->id, a.rule->name, a.points, !a.base, a.to, ""};
    ctx.out.awards.push_back(std::move(award));
  }
  apply_program_caps(ctx);

  std::int64_t line_total = 0;
  for (std::size_t k = 0; k < awards.size(); ++k) {
    const auto& award = ctx.out.awards[ctx.out.awards.size() - awards.size() + k];
    if (awards[k].line_attributed) line_total += award.points;
  }
  std::vector<std::int64_t> weights(lines.size(), 0);
  for (std::size_t i = 0; i < lines.size(); ++i) weights[i] = narrow(line_weight[i] / 1'000'000);
  const auto parts = spread(line_total, weights);
  for (std::size_t i = 0; i < lines.size(); ++i) ctx.out.lines[i].points = parts[i];

  for (auto& award : ctx.out.awards) {
    const std::string sign = award.points >= 0 ? "+" : "";
    award.reason = award.rule_name + ": " + sign + std::to_string(award.points) +
                   (award.to == Recipient::kReferrer ? " (to the referrer)" : "");
    if (award.to == Recipient::kReferrer) {
      ctx.out.referrer_points += award.points;
    } else {
      ctx.out.points_earned += award.points;
      if (award.bonus) ctx.out.bonus_points += award.points;
    }
  }
  add_metric(ctx, "points", ctx.out.points_earned, Recipient::kMember);
  add_metric(ctx, "bonus_points", ctx.out.bonus_points, Recipient::kMember);
  if (ctx.out.referrer_points != 0)
    add_metric(ctx, "points", ctx.out.referrer_points, Recipient::kReferrer);
  if (ctx.out.points_earned > 0) ctx.out.earn_expires_on = expiry_of(p.expiry, ctx.today);
}

void fire_tier_up(EvalCtx& ctx, int from, int to) {
  const auto& levels = ctx.program.tiers->levels;
  const auto tier = ctx.tier;
  for (int level = from + 1; level <= to; ++level) {
    ctx.tier = levels[static_cast<std::size_t>(level)].id;
    for (const auto& rule : ctx.program.rules) {
      if (rule.trigger != Trigger::kTierUp || !holds(rule.when, ctx) || !rule_may_fire(rule, ctx))
        continue;
      for (const auto& e : rule.effects) apply_other_effect(rule, e, ctx);
      record_rule_use(rule, 0, ctx);
    }
  }
  ctx.tier = tier;
}

void apply_program_caps(EvalCtx& ctx) {
  auto& awards = ctx.out.awards;
  for (const auto& cap : ctx.program.earning.caps) {
    if (!cap.tiers.empty() &&
        std::find(cap.tiers.begin(), cap.tiers.end(), ctx.tier) == cap.tiers.end())
      continue;
    const std::string metric = cap.bonus_only ? "bonus_points" : "points";
    const auto used = cap.period == Period::kTransaction
                          ? 0
                          : ctx.member.counters.get(metric, cap.period, ctx.today);
    std::int64_t total = 0;
    for (const auto& a : awards) {
      if (a.to == Recipient::kMember && (a.bonus || !cap.bonus_only)) total += a.points;
    }
    auto excess = total - std::max<std::int64_t>(0, cap.max_points - used);
    if (excess <= 0) continue;
    ctx.out.notes.push_back(std::string(cap.bonus_only ? "bonus" : "points") + " cap of " +
                            std::to_string(cap.max_points) + " a " + to_string(cap.period) +
                            " reached: " + std::to_string(excess) + " points not awarded");
    // Take from the bonus awards last in order first, then from base.
    for (int pass = 0; pass < 2 && excess > 0; ++pass) {
      for (auto it = awards.rbegin(); it != awards.rend() && excess > 0; ++it) {
        if (it->to != Recipient::kMember || it->points <= 0) continue;
        if ((pass == 0) != it->bonus) continue;
        const auto cut = std::min(it->points, excess);
        it->points -= cut;
        excess -= cut;
      }
      if (cap.bonus_only) break;
    }
  }
}

}  // namespace loyalty::core::detail
