// evaluate(): validates the request, then runs the phases in the order
// docs/programs.md gives ("Order of evaluation for a purchase").
#include "core/engine.h"

#include <algorithm>

#include "core/engine_internal.h"

namespace loyalty::core {

namespace {

constexpr std::size_t kMaxLines = 500;
constexpr std::int64_t kMaxQuantity = 100'000;
constexpr std::int64_t kMaxUnitPrice = 100'000'000'000;  // 1e9 major units
// A basket, and a top-up, come to at most this much: every amount and
// point derived from it then stays far inside what a member's state holds.
constexpr std::int64_t kMaxBasketTotal = kMaxUnitPrice;
constexpr std::int64_t kMaxStoredValue = 1'000'000'000'000'000;  // what a state holds

// Every problem of the basket, each with its path; the message is the first.
Status validate_basket(const Program& program, const Request& r) {
  const auto& b = r.basket;
  std::vector<Problem> problems;
  const auto bad = [&](std::string path, std::string message) {
    problems.push_back({std::move(path), std::move(message)});
  };
  if (b.currency != program.currency.code)
    problems.push_back(
        {"basket.currency",
         "is '" + b.currency + "' but program " + program.id + " runs in " + program.currency.code,
         ProblemKind::kWrongCurrency});
  if (b.lines.empty()) bad("basket.lines", "must have at least one line");
  if (b.lines.size() > kMaxLines) bad("basket.lines", "must have at most 500 lines");
  std::int64_t total = 0;
  bool over = false;
  for (std::size_t i = 0; i < b.lines.size() && i < kMaxLines; ++i) {
    const auto& l = b.lines[i];
    const auto path = "basket.lines[" + std::to_string(i) + "]";
    if (l.sku.empty()) bad(path + ".sku", "is required");
    const bool qty_ok = l.quantity >= 1 && l.quantity <= kMaxQuantity;
    const bool price_ok = l.unit_price >= 0 && l.unit_price <= kMaxUnitPrice;
    if (!qty_ok)
      bad(path + ".quantity",
          "must be a whole number from 1 to 100000 (returns use the return request)");
    if (!price_ok)
      bad(path + ".unit_price", "must be an amount in minor units from 0 to 100000000000");
    if (!qty_ok || !price_ok || over) continue;
    total += l.quantity * l.unit_price;  // both bounded above: no overflow
    if (total > kMaxBasketTotal) {
      over = true;
      bad(path + ".quantity", "the basket comes to more than " +
                                  format_amount(kMaxBasketTotal, program.currency) +
                                  " by this line; split it into several sales");
    }
  }
  if (b.redeem_points < 0) bad("basket.redeem_points", "must not be negative");
  if (b.stored_value < 0) bad("basket.stored_value", "must not be negative");
  if (problems.empty()) return {};
  Error e{ErrorCode::kInvalidArgument, problems.front().to_string(), problems};
  return std::unexpected(std::move(e));
}

void compute_streak(detail::EvalCtx& ctx) {
  const auto& m = ctx.member;
  ctx.first_visit_today = !m.last_purchase_on || *m.last_purchase_on != ctx.today;
  if (!m.last_purchase_on)
    ctx.new_streak = 1;
  else if (*m.last_purchase_on == ctx.today)
    ctx.new_streak = std::max(1, m.streak_days);
  else if (*m.last_purchase_on + date::days{1} == ctx.today)
    ctx.new_streak = m.streak_days + 1;
  else
    ctx.new_streak = 1;
  ctx.out.streak_after = ctx.new_streak;
}

void compute_bases(detail::EvalCtx& ctx) {
  const auto& e = ctx.program.earning;
  for (auto& l : ctx.out.lines) {
    l.earn_basis = e.after_discounts ? l.net() : l.list;
    if (e.after_redemptions) l.earn_basis -= l.points_value;
    l.earn_basis = std::max<std::int64_t>(0, l.earn_basis);
  }
}

// Spend is what the member paid for the lines that are sales (after
// discounts and points; stored value is money); an order counts when it has
// a sale line and, under `orders: paid`, when money was paid for it.
void record_purchase_metrics(detail::EvalCtx& ctx) {
  std::int64_t items = 0, paid = 0;
  bool any_sale = false;
  const auto& lines = ctx.request.basket.lines;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!counts_as_sale(ctx.program, lines[i])) continue;
    any_sale = true;
    items += lines[i].quantity;
    paid += ctx.out.lines[i].net() - ctx.out.lines[i].points_value;
  }
  const bool order = any_sale && (!ctx.program.counting.orders_paid || paid > 0);
  for (auto [metric, delta] : {std::pair<const char*, std::int64_t>{"orders", order ? 1 : 0},
                               {"spend", paid},
                               {"items", items}}) {
    ctx.pending[metric] += delta;
    if (delta != 0) ctx.out.metrics.push_back({metric, delta, Recipient::kMember});
  }
}

// Items the member's tier may not buy yet (eligibility): refused, naming the
// line, so the cashier can take it off the basket.
Status check_eligibility(const detail::EvalCtx& ctx) {
  const auto& p = ctx.program;
  if (p.eligibility.empty() || !p.tiers) return {};
  const auto& lines = ctx.request.basket.lines;
  for (const auto& e : p.eligibility) {
    if ((e.from && ctx.request.at < *e.from) || (e.until && ctx.request.at >= *e.until)) continue;
    if (p.tiers->rank_of(ctx.tier) >= p.tiers->rank_of(e.min_tier)) continue;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (!matches(e.items, lines[i])) continue;
      const auto path = "basket.lines[" + std::to_string(i) + "]";
      const auto& tier = p.tiers->levels[static_cast<std::size_t>(p.tiers->rank_of(e.min_tier))];
      const auto why =
          (lines[i].name.empty() ? lines[i].sku : lines[i].name) + " is for " + tier.name +
          " members and above (" + e.name + ")" +
          (e.until ? "; open to every member from " + format_local_datetime(*e.until) : "");
      return std::unexpected(
          Error{ErrorCode::kFailedPrecondition, path + ": " + why, {{path, why}}});
    }
  }
  return {};
}

// A catalog reward at the redemption counter: points (plus cash for points +
// cash rewards), tier restriction; stock is the terminal's per-store count.
Status redeem_reward(detail::EvalCtx& ctx) {
  const auto* reward = ctx.program.find_reward(ctx.request.reward_id);
  if (reward == nullptr)
    return invalid("reward",
                   "unknown reward '" + ctx.request.reward_id + "' in program " + ctx.program.id);
  if (!reward->min_tier.empty() && ctx.program.tiers &&
      ctx.program.tiers->rank_of(ctx.tier) < ctx.program.tiers->rank_of(reward->min_tier))
    return std::unexpected(Error{
        ErrorCode::kFailedPrecondition,
        "reward: " + reward->name + " is for members of tier " + reward->min_tier + " and above",
        {{"reward", "tier too low"}}});
  if (!reward_open_on(ctx.program, *reward, ctx.today))
    return std::unexpected(Error{ErrorCode::kFailedPrecondition,
                                 "reward: " + reward->name +
                                     " is redeemable only on the days of its calendar '" +
                                     reward->calendar + "', and today is not one",
                                 {{"reward", "not available today"}}});
  const auto available = ctx.member.available(ctx.today);
  if (reward->points > available)
    return std::unexpected(Error{
        ErrorCode::kFailedPrecondition,
        "reward: " + reward->name + " needs " + std::to_string(reward->points) +
            " points; the member has " + std::to_string(std::max<std::int64_t>(available, 0)) +
            (ctx.member.debt > 0
                 ? " (and owes " + std::to_string(ctx.member.debt) + " points, spent twice offline)"
                 : ""),
        {{"reward", "not enough points"}}});
  auto& out = ctx.out;
  out.points_redeemed = reward->points;
  out.amount_due = reward->cash;
  if (!reward->voucher.empty())
    out.vouchers_issued.push_back({reward->voucher, Recipient::kMember, reward->name});
  out.notes.push_back(
      "Reward: " + reward->name + " for " + std::to_string(reward->points) + " points" +
      (reward->cash > 0 ? " + " + format_amount(reward->cash, ctx.program.currency) : ""));
  return {};
}

// A freeze (学习中断保护): the member's level is held through re-evaluations
// for the months asked, as an accelerated upgrade's protection holds it
// (tier_valid_until, extended, never shortened); counted under
// "tier_freezes" against the program's allowance per membership.
Status freeze_tier(detail::EvalCtx& ctx) {
  const auto& p = ctx.program;
  if (!p.tiers || p.tiers->freeze_max_times == 0)
    return invalid("event", "program " + p.id + " does not let members freeze their level");
  const auto& t = *p.tiers;
  if (ctx.request.freeze_months > t.freeze_max_months)
    return invalid("months", "a level can be frozen for at most " +
                                 std::to_string(t.freeze_max_months) + " month(s)");
  const std::string metric = "tier_freezes";
  const auto used = ctx.member.counters.get(metric, Period::kLifetime, ctx.today);
  if (used >= t.freeze_max_times)
    return std::unexpected(Error{ErrorCode::kFailedPrecondition,
                                 "event: the member has already used the " +
                                     std::to_string(t.freeze_max_times) +
                                     " freeze(s) a membership allows",
                                 {{"event", "no freeze left"}}});
  // The same day N months on (the month's last day when it is shorter).
  const date::year_month_day today{ctx.today};
  auto until = today + date::months{ctx.request.freeze_months};
  if (!until.ok()) until = until.year() / until.month() / date::last;
  LocalDays held_to{date::sys_days{until}.time_since_epoch()};
  if (ctx.member.tier_valid_until && *ctx.member.tier_valid_until > ctx.today)
    held_to = std::max(held_to, *ctx.member.tier_valid_until);
  ctx.out.tier_after = ctx.tier;
  ctx.out.tier_from = ctx.today;
  ctx.out.tier_valid_until = held_to;
  const auto rank = t.rank_of(ctx.tier);
  const auto& level = rank >= 0 ? t.levels[static_cast<std::size_t>(rank)].name : ctx.tier;
  ctx.out.notes.push_back(
      "Level " + level + " frozen for " + std::to_string(ctx.request.freeze_months) +
      " month(s): held through re-evaluations until " + format_local_date(held_to));
  ctx.pending[metric] += 1;
  ctx.out.metrics.push_back({metric, 1, Recipient::kMember});
  return {};
}

}  // namespace

Result<Outcome> evaluate(const Program& program, const MemberState& member,
                         const Request& request) {
  if (request.trigger == Trigger::kReturn)
    return invalid("event",
                   "returns are evaluated with evaluate_return and the original transaction");
  if (request.trigger == Trigger::kPurchase) {
    if (auto ok = validate_basket(program, request); !ok) return std::unexpected(ok.error());
  } else if (!request.basket.lines.empty()) {
    return invalid("basket", "only a purchase carries a basket");
  }
  if (request.trigger == Trigger::kTopUp && request.top_up_amount <= 0)
    return invalid("amount", "a top-up needs a positive amount in minor units");
  if (request.trigger == Trigger::kTopUp && request.top_up_amount > kMaxBasketTotal)
    return invalid("amount",
                   "a top-up is at most " + format_amount(kMaxBasketTotal, program.currency));

  Outcome out;
  out.program_id = program.id;
  out.program_version = program.version;
  out.request = request;
  detail::EvalCtx ctx{program,
                      member,
                      out.request,
                      day_of(request.at),
                      minutes_of_day(request.at),
                      0,
                      member.tier_on(day_of(request.at)),
                      out,
                      {},
                      {},
                      0,
                      true,
                      false,
                      {},
                      Decimal4::from_int(1)};
  ctx.weekday = weekday_index(ctx.today);
  if (ctx.tier.empty() && program.tiers) ctx.tier = program.tiers->levels.front().id;
  out.tier = ctx.tier;

  for (const auto& l : request.basket.lines) {
    LineResult lr;
    lr.list = l.quantity * l.unit_price;
    out.list_total += lr.list;
    out.lines.push_back(lr);
  }
  std::set<std::string> fired;
  if (request.trigger == Trigger::kPurchase) {
    compute_streak(ctx);
    if (auto s = check_eligibility(ctx); !s) return std::unexpected(s.error());
    if (auto s = detail::sell_passes(ctx); !s) return std::unexpected(s.error());
    if (auto s = detail::apply_discount_rules(ctx, fired); !s) return std::unexpected(s.error());
    if (auto s = detail::apply_vouchers(ctx); !s) return std::unexpected(s.error());
    if (auto s = detail::apply_passes(ctx); !s) return std::unexpected(s.error());
    if (auto s = detail::apply_points_tender(ctx); !s) return std::unexpected(s.error());
    if (auto s = detail::apply_stored_value(ctx); !s) return std::unexpected(s.error());
    compute_bases(ctx);
    record_purchase_metrics(ctx);
  }
  if (request.trigger == Trigger::kTopUp) out.sv_base_added = request.top_up_amount;
  if (request.trigger == Trigger::kTierUp) {
    // HQ's re-evaluation lifted the member (already at the new tier).
    if (!program.tiers) return invalid("event", "this program has no tiers");
    const int from = program.tiers->rank_of(request.tier_before);
    const int to = program.tiers->rank_of(ctx.tier);
    if (from < 0) return invalid("from_tier", request.tier_before + " is not a tier");
    detail::fire_tier_up(ctx, from, to);
    detail::build_receipt(ctx);
    return out;
  }
  if (request.trigger == Trigger::kRedeem || request.trigger == Trigger::kDeferPass ||
      request.trigger == Trigger::kFreezeTier) {
    if (auto s = request.trigger == Trigger::kRedeem       ? redeem_reward(ctx)
                 : request.trigger == Trigger::kFreezeTier ? freeze_tier(ctx)
                                                           : detail::defer_pass(ctx);
        !s)
      return std::unexpected(s.error());
    detail::build_receipt(ctx);
    return out;
  }
  detail::compute_points(ctx, fired);
  out.amount_due =
      out.list_total - out.discount_total - out.points_value - out.sv_base_used - out.sv_bonus_used;
  if (member.sv_base > kMaxStoredValue - out.sv_base_added ||
      member.sv_bonus > kMaxStoredValue - out.sv_bonus_added)
    return invalid("amount", "the member's stored value would pass the most a member can hold (" +
                                 format_amount(kMaxStoredValue, program.currency) + ")");
  // A tier is reached by whatever counts towards it: a purchase, or an event
  // (a check-in, a review, points from an activity) that completes it.
  detail::evaluate_tier_upgrade(ctx);
  detail::build_receipt(ctx);
  return out;
}

}  // namespace loyalty::core
