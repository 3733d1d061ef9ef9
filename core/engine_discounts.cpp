// Money off the basket: rule discounts, vouchers, passes, then what the
// member pays with points and stored value. All amounts are minor units;
// per-line discounts round half up, and a rule's cap is spread back over its
// lines so the parts always sum to the total.
#include <algorithm>
#include <numeric>

#include "core/engine_internal.h"

namespace loyalty::core::detail {

std::vector<std::int64_t> spread(std::int64_t total, const std::vector<std::int64_t>& weights) {
  std::vector<std::int64_t> parts(weights.size(), 0);
  const i128 sum = std::accumulate(weights.begin(), weights.end(), i128{0});
  if (sum <= 0 || total == 0) return parts;
  std::vector<std::pair<i128, std::size_t>> remainders;
  std::int64_t given = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const i128 exact = static_cast<i128>(total) * weights[i];
    parts[i] = narrow(exact / sum);
    given += parts[i];
    remainders.emplace_back(exact % sum, i);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t k = 0; given < total && k < remainders.size(); ++k, ++given) {
    parts[remainders[k].second] += 1;
  }
  return parts;
}

namespace {

bool eligible(const Effect& e, const Line& line) {
  return matches(e.on, line) && !(e.exclude.present && matches(e.exclude, line));
}

// Applies `amounts` (per line) as one discount named after `source`.
void book_discount(EvalCtx& ctx, std::string source, std::string name,
                   const std::vector<std::int64_t>& amounts) {
  std::int64_t total = 0;
  for (std::size_t i = 0; i < amounts.size(); ++i) {
    ctx.out.lines[i].discount += amounts[i];
    total += amounts[i];
  }
  if (total == 0) return;
  ctx.out.discount_total += total;
  ctx.out.discounts.push_back({std::move(source), std::move(name), total});
}

std::vector<std::int64_t> cap_parts(std::vector<std::int64_t> parts,
                                    std::optional<std::int64_t> cap) {
  const auto total = std::accumulate(parts.begin(), parts.end(), std::int64_t{0});
  if (!cap || total <= *cap) return parts;
  return spread(*cap, parts);
}

struct Unit {
  std::int64_t price;
  std::size_t line;
};

// Every unit of the lines the effect covers, dearest first; a unit's price
// is the line's current net share per unit.
std::vector<Unit> units_dearest_first(const Effect& e, const EvalCtx& ctx) {
  const auto& lines = ctx.request.basket.lines;
  std::vector<Unit> units;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!eligible(e, lines[i])) continue;
    const auto per_unit =
        spread(ctx.out.lines[i].net(),
               std::vector<std::int64_t>(static_cast<std::size_t>(lines[i].quantity), 1));
    for (auto p : per_unit) units.push_back({p, i});
  }
  std::stable_sort(units.begin(), units.end(),
                   [](const Unit& a, const Unit& b) { return a.price > b.price; });
  return units;
}

std::vector<std::int64_t> nth_item_parts(const Effect& e, EvalCtx& ctx) {
  const auto& lines = ctx.request.basket.lines;
  const auto units = units_dearest_first(e, ctx);
  std::vector<std::int64_t> parts(lines.size(), 0);
  // Every nth unit with `repeat`, every unit from the nth with `onward`.
  const auto step = e.onward ? std::size_t{1} : static_cast<std::size_t>(e.n);
  for (std::size_t k = static_cast<std::size_t>(e.n) - 1; k < units.size(); k += step) {
    parts[units[k].line] +=
        e.amount > 0 ? std::min(e.amount, units[k].price)
                     : narrow(round_div(static_cast<i128>(units[k].price) * e.percent.units,
                                        100 * Decimal4::kScale, Rounding::kHalfUp));
    if (!e.repeat && !e.onward) break;
  }
  return parts;
}

// Sets of n eligible units, dearest first, each selling at the bundle price:
// a set's discount is what its units cost now minus the price (nothing when
// they cost less), spread over the set's units.
std::vector<std::int64_t> bundle_parts(const Effect& e, EvalCtx& ctx) {
  const auto& lines = ctx.request.basket.lines;
  const auto units = units_dearest_first(e, ctx);
  std::vector<std::int64_t> parts(lines.size(), 0);
  const auto n = static_cast<std::size_t>(e.n);
  for (std::size_t start = 0; start + n <= units.size(); start += n) {
    std::int64_t cost = 0;
    std::vector<std::int64_t> weights(lines.size(), 0);
    for (std::size_t k = start; k < start + n; ++k) {
      cost += units[k].price;
      weights[units[k].line] += units[k].price;
    }
    const auto off = spread(std::max<std::int64_t>(0, cost - e.amount), weights);
    for (std::size_t i = 0; i < lines.size(); ++i) parts[i] += off[i];
    if (!e.repeat) break;
  }
  return parts;
}

}  // namespace

Status apply_discount_rules(EvalCtx& ctx, std::set<std::string>& fired) {
  const auto& lines = ctx.request.basket.lines;
  std::set<std::string> groups;
  for (const auto& rule : ctx.program.rules) {
    if (rule.trigger != Trigger::kPurchase) continue;
    const bool has_discount =
        std::any_of(rule.effects.begin(), rule.effects.end(), [](const Effect& e) {
          return e.kind == EffectKind::kDiscountPercent || e.kind == EffectKind::kDiscountAmount ||
                 e.kind == EffectKind::kNthItemDiscount || e.kind == EffectKind::kBundlePrice;
        });
    if (!has_discount) continue;
    if (!rule.group.empty() && groups.contains(rule.group)) continue;
    if (!holds(rule.when, ctx) || !rule_may_fire(rule, ctx)) continue;
    fired.insert(rule.id);
    if (!rule.group.empty()) groups.insert(rule.group);
    record_rule_use(rule, 0, ctx);
    for (const auto& e : rule.effects) {
      std::vector<std::int64_t> parts(lines.size(), 0);
      if (e.kind == EffectKind::kDiscountPercent) {
        for (std::size_t i = 0; i < lines.size(); ++i) {
          if (eligible(e, lines[i]))
            parts[i] = narrow(round_div(static_cast<i128>(ctx.out.lines[i].net()) * e.percent.units,
                                        100 * Decimal4::kScale, Rounding::kHalfUp));
        }
        parts = cap_parts(parts, e.cap);
      } else if (e.kind == EffectKind::kDiscountAmount) {
        std::vector<std::int64_t> weights(lines.size(), 0);
        std::int64_t base = 0;
        for (std::size_t i = 0; i < lines.size(); ++i) {
          if (eligible(e, lines[i])) base += weights[i] = ctx.out.lines[i].net();
        }
        parts = spread(std::min(e.amount, base), weights);
      } else if (e.kind == EffectKind::kNthItemDiscount) {
        parts = cap_parts(nth_item_parts(e, ctx), e.cap);
      } else if (e.kind == EffectKind::kBundlePrice) {
        parts = bundle_parts(e, ctx);
      } else {
        continue;
      }
      book_discount(ctx, rule.id, rule.name, parts);
    }
  }
  return {};
}

Status apply_vouchers(EvalCtx& ctx) {
  const auto& codes = ctx.request.basket.voucher_codes;
  const auto& lines = ctx.request.basket.lines;
  for (std::size_t k = 0; k < codes.size(); ++k) {
    const auto path = "basket.vouchers[" + std::to_string(k) + "]";
    const auto& code = codes[k];
    if (std::count(codes.begin(), codes.end(), code) > 1)
      return invalid(path, "voucher " + code + " is listed twice");
    auto held = std::find_if(ctx.member.vouchers.begin(), ctx.member.vouchers.end(),
                             [&](const HeldVoucher& v) { return v.code == code; });
    if (held == ctx.member.vouchers.end())
      return std::unexpected(
          Error{ErrorCode::kNotFound,
                path + ": voucher " + code +
                    " is not held by this member (already used, revoked or never issued)",
                {{path, "unknown voucher"}}});
    if (held->expires_on && ctx.today >= *held->expires_on)
      return std::unexpected(
          Error{ErrorCode::kFailedPrecondition,
                path + ": voucher " + code + " expired on " + format_local_date(*held->expires_on),
                {{path, "expired"}}});
    const auto* t = ctx.program.find_voucher(held->template_id);
    if (t == nullptr)
      return invalid(path, "voucher " + code + " is of a kind this program version does not know");
    const auto refuse_day = [&](const std::string& days) -> Status {
      return std::unexpected(
          Error{ErrorCode::kFailedPrecondition,
                path + ": voucher " + code + " (" + t->name + ") can be used only " + days,
                {{path, "not valid today"}}});
    };
    if (!t->weekdays.empty() &&
        std::find(t->weekdays.begin(), t->weekdays.end(), ctx.weekday) == t->weekdays.end()) {
      static const char* const kDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday"};
      std::string days;
      for (const int d : t->weekdays) days += std::string(days.empty() ? "" : ", ") + kDays[d];
      return refuse_day("on " + days);
    }
    if (!t->calendar.empty() && !in_calendar(ctx.program, t->calendar, ctx.today))
      return refuse_day("on the designated days (" + t->calendar + ")");
    std::vector<std::int64_t> nets(lines.size(), 0);
    std::int64_t base = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (matches(t->applies_to, lines[i]) &&
          !(t->exclude.present && matches(t->exclude, lines[i])))
        base += nets[i] = ctx.out.lines[i].net();
    }
    if (base < t->min_spend || base == 0)
      return std::unexpected(
          Error{ErrorCode::kFailedPrecondition,
                path + ": voucher " + code + " needs a spend of at least " +
                    format_amount(std::max<std::int64_t>(t->min_spend, 1), ctx.program.currency) +
                    " on the items it covers",
                {{path, "minimum spend not met"}}});
    if (t->kind == VoucherKind::kStamp) {
      // A make-up stamp: beyond the card's daily limit, which it exists to
      // make up for; nothing off the price.
      add_stamps(*ctx.program.find_card(t->card), 1, false, ctx);
      ctx.out.notes.push_back(t->name + ": one stamp added");
      ctx.out.vouchers_used.push_back(code);
      continue;
    }
    std::int64_t amount = 0;
    if (t->kind == VoucherKind::kAmount) amount = t->value;
    if (t->kind == VoucherKind::kPercent)
      amount = narrow(round_div(static_cast<i128>(base) * t->percent.units, 100 * Decimal4::kScale,
                                Rounding::kHalfUp));
    std::vector<std::int64_t> parts(lines.size(), 0);
    if (t->kind == VoucherKind::kFreeItem || t->kind == VoucherKind::kItemPrice) {
      // The cheapest unit it covers: free, or down to the voucher's price.
      std::size_t cheapest = lines.size();
      std::int64_t price = 0;
      for (std::size_t i = 0; i < lines.size(); ++i) {
        if (nets[i] <= 0) continue;
        const auto unit = nets[i] / lines[i].quantity;
        if (cheapest == lines.size() || unit < price) cheapest = i, price = unit;
      }
      if (cheapest < lines.size())
        parts[cheapest] =
            t->kind == VoucherKind::kFreeItem ? price : std::max<std::int64_t>(0, price - t->value);
    } else {
      if (t->max_share_percent)
        amount =
            std::min(amount, narrow(round_div(static_cast<i128>(base) * t->max_share_percent->units,
                                              100 * Decimal4::kScale, Rounding::kFloor)));
      parts = spread(std::min(amount, base), nets);
    }
    book_discount(ctx, "voucher:" + code, t->name, parts);
    ctx.out.vouchers_used.push_back(code);
  }
  return {};
}

Status apply_passes(EvalCtx& ctx) {
  const auto& uses = ctx.request.basket.passes;
  const auto& lines = ctx.request.basket.lines;
  std::map<std::string, int> today_uses;
  for (std::size_t k = 0; k < uses.size(); ++k) {
    const auto path = "basket.passes[" + std::to_string(k) + "]";
    const auto& use = uses[k];
    const auto* pass = ctx.program.find_pass(use.pass_id);
    if (pass == nullptr) return invalid(path + ".pass", "unknown pass '" + use.pass_id + "'");
    if (use.line >= lines.size()) return invalid(path + ".line", "must name a line of the basket");
    auto held =
        std::find_if(ctx.member.passes.begin(), ctx.member.passes.end(), [&](const HeldPass& h) {
          return h.pass_id == use.pass_id && ctx.today >= h.valid_from && ctx.today <= h.valid_to;
        });
    if (held == ctx.member.passes.end())
      return std::unexpected(Error{ErrorCode::kFailedPrecondition,
                                   path + ": the member has no " + pass->name + " valid today",
                                   {{path, "no valid pass"}}});
    if (!matches(pass->covers, lines[use.line]))
      return invalid(path + ".line",
                     "the " + pass->name + " does not cover " + lines[use.line].sku);
    if (!pass->weekdays.empty() && std::find(pass->weekdays.begin(), pass->weekdays.end(),
                                             ctx.weekday) == pass->weekdays.end())
      return std::unexpected(
          Error{ErrorCode::kFailedPrecondition,
                path + ": the " + pass->name + " cannot be used on this day of the week",
                {{path, "not valid today"}}});
    const std::string metric = "pass:" + pass->id;
    const auto used_today =
        ctx.member.counters.get(metric, Period::kDay, ctx.today) + today_uses[pass->id];
    const auto used_month =
        ctx.member.counters.get(metric, Period::kMonth, ctx.today) + today_uses[pass->id];
    if (used_today >= pass->max_per_day)
      return std::unexpected(Error{ErrorCode::kFailedPrecondition,
                                   path + ": the " + pass->name + " was already used today (" +
                                       std::to_string(pass->max_per_day) + " a day)",
                                   {{path, "daily limit reached"}}});
    if (pass->max_per_month > 0 && used_month >= pass->max_per_month)
      return std::unexpected(Error{ErrorCode::kFailedPrecondition,
                                   path + ": the " + pass->name + " has no uses left this month (" +
                                       std::to_string(pass->max_per_month) + " a month)",
                                   {{path, "monthly limit reached"}}});
    today_uses[pass->id] += 1;
    std::vector<std::int64_t> parts(lines.size(), 0);
    const auto& lr = ctx.out.lines[use.line];
    parts[use.line] = std::min(lr.net(), lines[use.line].unit_price);
    book_discount(ctx, "pass:" + pass->id, pass->name, parts);
    ctx.out.passes_used.push_back(pass->id);
    ctx.out.metrics.push_back({metric, 1, Recipient::kMember});
  }
  return {};
}

Status apply_points_tender(EvalCtx& ctx) {
  const auto& basket = ctx.request.basket;
  auto points = basket.redeem_points;
  if (points == 0 && !basket.redeem_max) return {};
  const auto& t = ctx.program.points_tender;
  if (!t) return invalid("basket.redeem_points", "this program does not accept points as payment");
  const auto& lines = basket.lines;
  std::vector<std::int64_t> nets(lines.size(), 0);
  std::int64_t base = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (matches(t->applies_to, lines[i])) base += nets[i] = ctx.out.lines[i].net();
  }
  std::int64_t max_value = base;
  if (t->max_share_percent)
    max_value = narrow(round_div(static_cast<i128>(base) * t->max_share_percent->units,
                                 100 * Decimal4::kScale, Rounding::kFloor));
  const auto max_points =
      narrow(round_div(static_cast<i128>(max_value) * t->points, t->value, Rounding::kFloor)) /
      t->step * t->step;
  const auto available = ctx.member.available(ctx.today);
  if (basket.redeem_max) {
    // "As many as the rules allow": the balance and the basket's limit, in
    // whole steps; nothing when that is below the minimum.
    points = std::min(std::max<std::int64_t>(0, available) / t->step * t->step, max_points);
    if (points < std::max<std::int64_t>(1, t->min_points)) {
      if (available > 0)
        ctx.out.notes.push_back("Points as payment: " + std::to_string(points) +
                                " points usable here, below the minimum of " +
                                std::to_string(t->min_points));
      return {};
    }
  }
  if (points < t->min_points)
    return invalid("basket.redeem_points",
                   "must be at least " + std::to_string(t->min_points) + " points");
  if (points % t->step != 0)
    return invalid("basket.redeem_points",
                   "must be a multiple of " + std::to_string(t->step) + " points");
  if (points > available)
    return std::unexpected(Error{
        ErrorCode::kFailedPrecondition,
        "basket.redeem_points: the member has only " +
            std::to_string(std::max<std::int64_t>(available, 0)) + " points available" +
            (ctx.member.debt > 0
                 ? " (and owes " + std::to_string(ctx.member.debt) + " points, spent twice offline)"
                 : ""),
        {{"basket.redeem_points", "more than the balance"}}});
  const auto value =
      narrow(round_div(static_cast<i128>(points) * t->value, t->points, Rounding::kFloor));
  if (value > max_value)
    return std::unexpected(
        Error{ErrorCode::kFailedPrecondition,
              "basket.redeem_points: at most " + std::to_string(max_points) +
                  " points can pay for this basket (" +
                  (t->max_share_percent ? t->max_share_percent->to_string() + "% of " : "") +
                  format_amount(base, ctx.program.currency) + ")",
              {{"basket.redeem_points", "over the redemption limit"}}});
  const auto parts = spread(value, nets);
  for (std::size_t i = 0; i < lines.size(); ++i) ctx.out.lines[i].points_value = parts[i];
  ctx.out.points_redeemed = points;
  ctx.out.points_value = value;
  return {};
}

Status apply_stored_value(EvalCtx& ctx) {
  const auto want = ctx.request.basket.stored_value;
  if (want == 0) return {};
  const auto& lines = ctx.request.basket.lines;
  std::int64_t restricted_due = 0;
  std::int64_t due = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto line_due = ctx.out.lines[i].net() - ctx.out.lines[i].points_value;
    due += line_due;
    if (ctx.program.stored_value_bonus_restricted_to.present &&
        matches(ctx.program.stored_value_bonus_restricted_to, lines[i]))
      restricted_due += line_due;
  }
  if (!ctx.program.stored_value_bonus_restricted_to.present) restricted_due = due;
  if (want > due)
    return invalid("basket.stored_value",
                   "is more than the " + format_amount(due, ctx.program.currency) + " left to pay");
  // Bonus value pays first, and only for the items it is restricted to, so a
  // member's bonus is never stranded; base value pays for the rest.
  // An overdrawn balance (spent at two offline stores) pays nothing.
  const auto bonus =
      std::max<std::int64_t>(0, std::min({ctx.member.sv_bonus, restricted_due, want}));
  const auto base = want - bonus;
  if (base > ctx.member.sv_base)
    return std::unexpected(
        Error{ErrorCode::kFailedPrecondition,
              "basket.stored_value: the member's stored value covers only " +
                  format_amount(std::max<std::int64_t>(0, ctx.member.sv_base) + bonus,
                                ctx.program.currency) +
                  " of this basket",
              {{"basket.stored_value", "more than the balance"}}});
  ctx.out.sv_bonus_used = bonus;
  ctx.out.sv_base_used = base;
  return {};
}

}  // namespace loyalty::core::detail
