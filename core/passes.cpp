// Pass lifecycle: selling a pass through its SKU (price, start, validity,
// renewal that continues the current pass), deferral, and the conditions on
// a member's passes. Using a pass is in engine_discounts.cpp.
#include <algorithm>

#include "core/engine_internal.h"

namespace loyalty::core {

LocalDays pass_valid_to(LocalDays start, int months) {
  const date::year_month_day ymd{start};
  const auto target = date::year_month{ymd.year(), ymd.month()} + date::months{months};
  const date::year_month_day same{target.year(), target.month(), ymd.day()};
  // Through the day before the same day of the month `months` later; when
  // that month is shorter (31 January + 1), through its last day.
  if (!same.ok())
    return LocalDays{date::sys_days{
        date::year_month_day_last{target.year(), date::month_day_last{target.month()}}}
                         .time_since_epoch()};
  return LocalDays{date::sys_days{same}.time_since_epoch()} - date::days{1};
}

std::optional<LocalDays> pass_covered_until(const MemberState& m, std::string_view pass_id,
                                            LocalDays day) {
  std::optional<LocalDays> end;
  for (const auto& h : m.passes)
    if (h.pass_id == pass_id && h.valid_from <= day && day <= h.valid_to)
      end = std::max(end.value_or(h.valid_to), h.valid_to);
  // Passes bought ahead continue it.
  for (bool more = end.has_value(); more;) {
    more = false;
    for (const auto& h : m.passes)
      if (h.pass_id == pass_id && h.valid_from <= *end + date::days{1} && h.valid_to > *end) {
        end = h.valid_to;
        more = true;
      }
  }
  return end;
}

namespace detail {

Status sell_passes(EvalCtx& ctx) {
  const auto& lines = ctx.request.basket.lines;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& pass_list = ctx.program.passes;
    const auto pass = std::find_if(pass_list.begin(), pass_list.end(), [&](const Pass& p) {
      return !p.sku.empty() && p.sku == lines[i].sku;
    });
    if (pass == pass_list.end()) continue;
    const auto path = "basket.lines[" + std::to_string(i) + "]";
    if (lines[i].unit_price != pass->price)
      return invalid(path + ".unit_price",
                     "the " + pass->name + " sells at " +
                         format_amount(pass->price, ctx.program.currency) +
                         " (the program's price; a discount rule can lower what is paid)");
    // A renewal continues the pass the member holds (or one sold earlier
    // in this basket) instead of overlapping it.
    LocalDays start = ctx.today;
    for (const auto& h : ctx.member.passes)
      if (h.pass_id == pass->id && h.valid_to >= start) start = h.valid_to + date::days{1};
    for (const auto& s : ctx.out.passes_sold)
      if (s.pass_id == pass->id && s.valid_to >= start) start = s.valid_to + date::days{1};
    const auto months = static_cast<int>(pass->valid_months * lines[i].quantity);
    ctx.out.passes_sold.push_back({pass->id, i, start, pass_valid_to(start, months)});
  }
  return {};
}

Status defer_pass(EvalCtx& ctx) {
  const auto& req = ctx.request;
  const auto* pass = ctx.program.find_pass(req.pass_id);
  if (pass == nullptr)
    return invalid("pass", "unknown pass '" + req.pass_id + "' in program " + ctx.program.id);
  const auto refuse = [&](const std::string& why, const char* field = "pass") -> Status {
    return std::unexpected(
        Error{ErrorCode::kFailedPrecondition, std::string(field) + ": " + why, {{field, why}}});
  };
  if (pass->deferrals_per_month == 0) return refuse("the " + pass->name + " cannot be deferred");
  if (req.defer_days > pass->max_deferral_days)
    return invalid("days", "the " + pass->name + " can be deferred by at most " +
                               std::to_string(pass->max_deferral_days) + " days");
  // The pass running today, else the next one to start.
  const HeldPass* held = nullptr;
  for (const auto& h : ctx.member.passes)
    if (h.pass_id == pass->id && h.valid_to >= ctx.today && (!held || h.valid_to < held->valid_to))
      held = &h;
  if (held == nullptr) return refuse("the member has no " + pass->name + " valid today or later");
  const std::string metric = "pass_deferrals:" + pass->id;
  const auto used = ctx.member.counters.get(metric, Period::kMonth, ctx.today);
  if (used >= pass->deferrals_per_month)
    return refuse("the " + pass->name + " was already deferred this month (" +
                  std::to_string(pass->deferrals_per_month) + " a month)");
  PassDeferral d{*held, {}, req.defer_days};
  const date::days days{req.defer_days};
  if (held->valid_from < ctx.today) {
    auto first = *held;
    first.valid_to = ctx.today - date::days{1};
    d.after.push_back(first);
  }
  auto rest = *held;
  rest.valid_from = std::max(held->valid_from, ctx.today) + days;
  rest.valid_to = held->valid_to + days;
  d.after.push_back(rest);
  ctx.out.notes.push_back(pass->name + " deferred " + std::to_string(req.defer_days) +
                          " day(s): usable again from " + format_local_date(rest.valid_from) +
                          ", valid to " + format_local_date(rest.valid_to));
  ctx.out.pass_deferral = std::move(d);
  ctx.pending[metric] += 1;
  ctx.out.metrics.push_back({metric, 1, Recipient::kMember});
  return {};
}

}  // namespace detail
}  // namespace loyalty::core
