// Shared state of one evaluation; private to the engine's .cpp files.
#pragma once

#include <map>
#include <set>

#include "core/engine.h"

namespace loyalty::core::detail {

struct EvalCtx {
  const Program& program;
  const MemberState& member;
  const Request& request;
  LocalDays today{};
  int minutes = 0;
  int weekday = 0;
  std::string tier;
  Outcome& out;
  // Metric changes of this transaction, visible to conditions ("including
  // this transaction").
  std::map<std::string, std::int64_t> pending;
  std::map<std::string, std::int64_t> referrer_pending;
  int new_streak = 0;
  bool first_visit_today = true;
  // Tier qualification overrides the metric window; grace scales thresholds.
  bool tier_window = false;
  LocalDays window_end{};
  Decimal4 threshold_scale = Decimal4::from_int(1);
};

bool holds(const Condition& c, EvalCtx& ctx);
std::int64_t metric_value(const std::string& name, std::optional<Period> period, EvalCtx& ctx,
                          bool include_pending);

// The measure a `metric` condition compares: the metric, or with
// `divide_by` the metric per unit of the other (0 when that is 0).
std::int64_t condition_metric(const Condition& c, EvalCtx& ctx, bool include_pending);

// Limits of a rule in this period: false when it may not fire again.
bool rule_may_fire(const Rule& rule, EvalCtx& ctx);
// Points the rule may still award in its limit period (nullopt: unlimited).
std::optional<std::int64_t> rule_points_left(const Rule& rule, EvalCtx& ctx);
void record_rule_use(const Rule& rule, std::int64_t points, EvalCtx& ctx);

Status apply_discount_rules(EvalCtx& ctx, std::set<std::string>& fired);
Status apply_vouchers(EvalCtx& ctx);
Status apply_passes(EvalCtx& ctx);
Status sell_passes(EvalCtx& ctx);
Status defer_pass(EvalCtx& ctx);
Status apply_points_tender(EvalCtx& ctx);
Status apply_stored_value(EvalCtx& ctx);
void compute_points(EvalCtx& ctx, const std::set<std::string>& fired_discount_rules);
void apply_program_caps(EvalCtx& ctx);
void evaluate_tier_upgrade(EvalCtx& ctx);
// Runs the tier_up rules once for each level above `from` up to `to`, each
// seeing that level as the member's tier (an upgrade pack per level).
void fire_tier_up(EvalCtx& ctx, int from, int to);
void build_receipt(EvalCtx& ctx);
// Stamps on `card` now, this transaction included.
std::int64_t stamp_total(const StampCard& card, EvalCtx& ctx);
// Adds `count` stamps to `card` (at most the card's daily limit when
// `daily_limit`), issuing its reward voucher for each card filled.
void add_stamps(const StampCard& card, std::int64_t count, bool daily_limit, EvalCtx& ctx);

// Spreads `total` over `weights` in proportion (largest remainder); the parts
// sum to total exactly.
std::vector<std::int64_t> spread(std::int64_t total, const std::vector<std::int64_t>& weights);

std::string rule_counter(const Rule& rule, const char* what);

}  // namespace loyalty::core::detail
