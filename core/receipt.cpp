// Receipt lines a cashier can read out: what was bought, what came off, the
// points by rule with reasons, stamps, vouchers, balance and tier.
#include <algorithm>

#include "core/engine_internal.h"
#include "core/text_width.h"

namespace loyalty::core::detail {

namespace {

// A receipt line 40 columns wide, CJK characters counted as two.
std::string pad(std::string left, const std::string& right) {
  return pad_columns(std::move(left), right, 40);
}

const std::string& tier_name(const Program& p, const std::string& id) {
  if (p.tiers) {
    for (const auto& l : p.tiers->levels) {
      if (l.id == id) return l.name;
    }
  }
  return id;
}

}  // namespace

void build_receipt(EvalCtx& ctx) {
  const auto& p = ctx.program;
  auto& out = ctx.out;
  auto& r = out.receipt;
  const auto money = [&](std::int64_t v) { return format_amount(v, p.currency); };
  r.push_back(p.name + " (" + p.id + " v" + std::to_string(p.version) + ")");
  r.push_back("Member " + ctx.member.id + (ctx.tier.empty() ? "" : ", " + tier_name(p, ctx.tier)) +
              ", " + format_local_datetime(ctx.request.at) + " " + ctx.request.zone);
  const auto& lines = ctx.request.basket.lines;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    r.push_back(pad((l.name.empty() ? l.sku : l.name) + " x" + std::to_string(l.quantity),
                    money(out.lines[i].list)));
  }
  for (const auto& d : out.discounts) r.push_back(pad("  " + d.name, "-" + money(d.amount)));
  if (out.points_redeemed > 0)
    r.push_back(pad("  Paid with " + std::to_string(out.points_redeemed) + " points",
                    "-" + money(out.points_value)));
  if (out.sv_base_used + out.sv_bonus_used > 0)
    r.push_back(pad("  Paid with stored value", "-" + money(out.sv_base_used + out.sv_bonus_used)));
  if (ctx.request.trigger == Trigger::kPurchase)
    r.push_back(pad("Amount due", money(out.amount_due)));
  if (ctx.request.trigger == Trigger::kTopUp) {
    r.push_back(pad("Top-up", money(out.sv_base_added)));
    if (out.sv_bonus_added > 0) r.push_back(pad("Bonus stored value", money(out.sv_bonus_added)));
  }
  // Base earning first, then each bonus in the order it was attributed.
  for (bool bonus : {false, true}) {
    for (const auto& a : out.awards) {
      if (a.points != 0 && a.bonus == bonus) r.push_back("  " + a.reason);
    }
  }
  std::string earned = "Points earned: " + std::to_string(out.points_earned);
  if (out.earn_expires_on) earned += " (expire " + format_local_date(*out.earn_expires_on) + ")";
  r.push_back(earned);
  const auto balance = ctx.member.available(ctx.today) + out.points_earned - out.points_redeemed;
  r.push_back("Points balance after: " + std::to_string(balance));
  for (const auto& s : out.stamps) {
    const auto* card = p.find_card(s.card);
    r.push_back(card->name + ": " + std::to_string(s.after) + "/" +
                std::to_string(card->stamps_required) +
                (s.rewards > 0 ? " (card full: reward issued)" : ""));
  }
  for (const auto& v : out.vouchers_issued) {
    const auto* t = p.find_voucher(v.template_id);
    r.push_back(std::string(v.to == Recipient::kReferrer ? "Voucher for the referrer: "
                                                         : "Voucher issued: ") +
                (t ? t->name : v.template_id));
  }
  for (const auto& s : out.passes_sold)
    r.push_back("Pass: " + p.find_pass(s.pass_id)->name + " valid " +
                format_local_date(s.valid_from) + " to " + format_local_date(s.valid_to));
  // Each pass used: its uses this month with this one (and the month's
  // allowance), so the member sees what is left.
  for (std::size_t k = 0; k < out.passes_used.size(); ++k) {
    const auto& id = out.passes_used[k];
    if (std::find(out.passes_used.begin(), out.passes_used.begin() + static_cast<long>(k), id) !=
        out.passes_used.begin() + static_cast<long>(k))
      continue;
    const auto* pass = p.find_pass(id);
    const auto month = ctx.member.counters.get("pass:" + id, Period::kMonth, ctx.today) +
                       std::count(out.passes_used.begin(), out.passes_used.end(), id);
    r.push_back(pass->name + ": " + std::to_string(month) +
                (pass->max_per_month > 0 ? " of " + std::to_string(pass->max_per_month) : "") +
                " used this month");
  }
  if (p.streaks && ctx.request.trigger == Trigger::kPurchase)
    r.push_back("Visit streak: " + std::to_string(out.streak_after) + " day(s)");
  if (!out.tier_after.empty())
    r.push_back("Tier: " + tier_name(p, out.tier_after) + " from " +
                format_local_date(*out.tier_from));
  for (const auto& n : out.notes) r.push_back("Note: " + n);
}

}  // namespace loyalty::core::detail
