// Tier re-evaluation at period ends: qualification over the program's window,
// at most max_drop_levels down, grace for the listed levels, carry-over of
// derived metrics (growth value). Upgrades during a purchase happen inside
// evaluate(); this is the scheduled side.
//
// Thread-safety: pure.
#pragma once

#include <string>

#include "core/member.h"
#include "core/program.h"

namespace loyalty::core {

struct TierDecision {
  std::string tier_before;
  std::string tier_after;
  std::optional<LocalDays> grace_until;  // set when a grace period starts or continues
  bool grace_cleared = false;
  std::vector<std::pair<std::string, std::int64_t>> carry;  // derived metric -> carried value
  std::string reason;
};

// Re-evaluates on `as_of` (the first day after the period just ended).
// Carry-over goes only to members who met the standard of the level they
// hold after it (达标后结转).
TierDecision evaluate_tiers(const Program& program, const MemberState& member, LocalDays as_of);

// Whether `day` is the first day after a qualification window: the first of
// the month for rolling windows, the first day of the calendar period
// otherwise.
bool is_tier_day(const Program& program, LocalDays day);

// What the scheduled jobs of `day` do to the member's tier: the
// re-evaluation on a tier day, and on any other day the settling of a grace
// period that has run out (so a 30-day grace under a yearly window ends
// after 30 days, not at the next window). nullopt: nothing to do today.
std::optional<TierDecision> tier_job(const Program& program, const MemberState& member,
                                     LocalDays day);

// Applies a decision to the member (tier, grace, carry-over counters).
void apply_tier_decision(MemberState& member, const TierDecision& d, LocalDays as_of);

// Highest level whose qualification holds for the window ending `window_end`
// (thresholds scaled by `scale`), or -1 when the program has no tiers.
int qualified_rank(const Program& program, const MemberState& member, LocalDays window_end,
                   Decimal4 scale = Decimal4::from_int(1));

// How far the member is from the next level: each metric threshold of that
// level's qualification with the member's current value. `any` when meeting
// one goal is enough (an OR), otherwise all are needed.
struct TierGoal {
  std::string metric;
  std::int64_t current = 0;
  std::int64_t target = 0;
};
struct TierProgress {
  std::string next_tier;
  std::string next_name;
  bool any = false;
  std::vector<TierGoal> goals;
};
std::optional<TierProgress> tier_progress(const Program& program, const MemberState& member,
                                          LocalDays today);

}  // namespace loyalty::core
