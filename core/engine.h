// The rules engine: a pure function from (program, member, request) to an
// Outcome: discounts, points by rule with reasons, stamps, vouchers, counter
// changes, tier change and receipt lines. No I/O, no clock: the request
// carries the store-local time, so HQ can replay any transaction exactly
// (DESIGN.md, truth 5).
//
// Thread-safety: pure; concurrent calls on shared const inputs are safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/member.h"
#include "core/program.h"
#include "core/result.h"

namespace loyalty::core {

struct Line {
  std::string sku;
  std::string name;
  std::vector<std::string> categories;
  std::vector<std::string> tags;
  std::int64_t quantity = 0;
  std::int64_t unit_price = 0;  // minor units
};

struct PassUse {
  std::string pass_id;
  std::size_t line = 0;
};

struct Basket {
  std::string currency;
  std::vector<Line> lines;
  std::int64_t redeem_points = 0;
  bool redeem_max = false;  // "redeem_points": "max": as many as the rules allow
  std::vector<std::string> voucher_codes;
  std::int64_t stored_value = 0;
  std::vector<PassUse> passes;
  // How the money part is paid ("cobrand-card", "wechat"): the POS's own
  // names, read by the `paid_with` condition.
  std::vector<std::string> paid_with;
};

struct Request {
  Trigger trigger = Trigger::kPurchase;
  std::string activity;            // trigger activity
  std::int64_t top_up_amount = 0;  // trigger top_up
  // trigger activity, optional: the money the activity is about (the
  // tuition a milestone refunds a share of); earn_per_amount earns on it
  std::int64_t activity_amount = 0;
  std::string reward_id;    // trigger redeem
  std::string pass_id;      // trigger defer_pass
  std::string tier_before;  // trigger tier_up: the tier left (HQ's re-evaluation)
  int defer_days = 0;       // trigger defer_pass
  int freeze_months = 0;    // trigger freeze_tier
  Basket basket;
  LocalSeconds at{};  // store-local wall clock
  std::string zone;   // IANA zone the local time is in (recorded for replay)
  std::string txn_id;
};

bool matches(const Selector& s, const Line& line);
// False for the program's not_sales lines (gift cards, deposits): they count
// in no metric and no basket_amount or item_count condition.
bool counts_as_sale(const Program& p, const Line& line);

struct LineResult {
  std::int64_t list = 0;          // quantity * unit price
  std::int64_t discount = 0;      // rule discounts, vouchers, passes
  std::int64_t points_value = 0;  // paid with points
  std::int64_t earn_basis = 0;
  std::int64_t points = 0;  // line-attributed points after caps (for returns)
  std::int64_t net() const { return list - discount; }
};

struct Award {
  std::string rule_id;
  std::string rule_name;
  std::int64_t points = 0;
  bool bonus = false;  // above base earning
  Recipient to = Recipient::kMember;
  std::string reason;  // "Wednesday double points: +88"
};

struct AppliedDiscount {
  std::string source;  // rule id, "voucher:CODE" or "pass:ID"
  std::string name;
  std::int64_t amount = 0;
};

struct IssuedVoucher {
  std::string template_id;
  Recipient to = Recipient::kMember;
  std::string reason;
};

struct StampChange {
  std::string card;
  std::int64_t added = 0;
  std::int64_t after = 0;  // stamps on the card after rewards were taken off
  std::int64_t rewards = 0;
};

struct MetricDelta {
  std::string metric;  // added at every period of the transaction's day
  std::int64_t delta = 0;
  Recipient on = Recipient::kMember;
};

// A pass sold by a basket line: the member holds it from valid_from to
// valid_to (code "<txn>/p<line + 1>").
struct PassSale {
  std::string pass_id;
  std::size_t line = 0;
  LocalDays valid_from{};
  LocalDays valid_to{};
};

// A pass postponed (defer_pass, 顺延): at most deferrals_per_month times a
// month, by at most max_deferral_days.
// A started pass is paused for `days` from today: it becomes the part
// before today and the rest, moved `days` later; a pass not started yet
// just moves.
struct PassDeferral {
  HeldPass before;
  std::vector<HeldPass> after;
  int days = 0;
};

struct Outcome {
  std::string program_id;
  std::int64_t program_version = 0;
  Request request;   // every input, for replay
  std::string tier;  // tier the rules saw
  std::vector<LineResult> lines;
  std::vector<AppliedDiscount> discounts;
  std::vector<Award> awards;
  std::vector<std::string> vouchers_used;
  std::vector<IssuedVoucher> vouchers_issued;
  std::vector<StampChange> stamps;
  std::vector<MetricDelta> metrics;
  std::vector<std::string> passes_used;
  std::vector<PassSale> passes_sold;
  std::optional<PassDeferral> pass_deferral;
  std::vector<std::string> notes;  // limits reached, caps applied

  std::int64_t list_total = 0;
  std::int64_t discount_total = 0;
  std::int64_t points_earned = 0;  // member points credited
  std::int64_t bonus_points = 0;
  std::int64_t referrer_points = 0;
  std::int64_t points_redeemed = 0;
  std::int64_t points_value = 0;
  std::int64_t sv_base_used = 0;
  std::int64_t sv_bonus_used = 0;
  std::int64_t sv_base_added = 0;
  std::int64_t sv_bonus_added = 0;
  std::int64_t amount_due = 0;
  int streak_after = 0;
  std::optional<LocalDays> earn_expires_on;

  std::string tier_after;  // empty: unchanged
  std::optional<LocalDays> tier_from;
  std::optional<LocalDays> tier_valid_until;

  // Returns only.
  std::string return_of;                   // original transaction id
  std::vector<std::int64_t> returned_qty;  // per original line, this return
  std::int64_t points_reversed = 0;
  std::int64_t points_restored = 0;
  // What the sale paid with stored value goes back there, not in cash;
  // amount_due is the cash refund only.
  std::int64_t sv_returned = 0;
  std::int64_t sv_bonus_returned = 0;  // of sv_returned, bonus stored value
  bool full_return = false;
  std::vector<std::string> passes_returned;  // codes of the passes this return takes back

  std::vector<std::string> receipt;
};

// The last day of a pass that starts on `start` and runs `months` months:
// the day before the same day of the month, or that month's last day when
// it is shorter (31 January + 1 month: through 28 or 29 February).
LocalDays pass_valid_to(LocalDays start, int months);
// The last day of the member's pass `pass_id` running on `day`, passes
// bought ahead included; nullopt when none runs that day.
std::optional<LocalDays> pass_covered_until(const MemberState& m, std::string_view pass_id,
                                            LocalDays day);

// Evaluates a purchase or a store event. Bad input (negative quantity, wrong
// currency, unknown voucher, too many points) is an error naming the field.
[[nodiscard]] Result<Outcome> evaluate(const Program& program, const MemberState& member,
                                       const Request& request);

}  // namespace loyalty::core
