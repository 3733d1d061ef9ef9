// HqLedger::run_jobs: the scheduled work of one store-local day. Each job's
// effects are ledger facts like any terminal's: an HQ transaction (store
// "HQ", terminal "JOBS") with entries and a member delta, published to the
// terminals through the change feed. Every job has a deterministic id, so
// running a day twice does nothing the second time.
#include <algorithm>

#include "core/engine.h"
#include "core/io_json.h"
#include "core/ledger.h"
#include "core/member_delta.h"
#include "core/tiers.h"
#include "hq/ledger.h"

namespace loyalty::hq {

namespace {

bool first_of_month(core::LocalDays d) {
  return date::year_month_day{d}.day() == date::day{1};
}

}  // namespace

core::Status HqLedger::day_has_come(core::LocalDays day, const std::string& text) const {
  // A day has come once it has begun in some store: up to a day ahead of
  // UTC (the zones east of it).
  const auto now = std::chrono::sys_seconds(std::chrono::seconds(clock_()));
  const auto today = core::LocalDays(std::chrono::floor<std::chrono::days>(now).time_since_epoch());
  if (day > today + date::days(1))
    return core::invalid("date", text + " has not come yet (today is " +
                                     core::format_local_date(today) +
                                     " UTC); scheduled work runs for days that have begun");
  return {};
}

namespace {}  // namespace

void HqLedger::job_transaction(const core::Program& p, core::MemberState& m, const Json& event,
                               const std::string& txn_id, const std::string& day_text,
                               Json& summary) {
  if (!db_.query("SELECT 1 FROM transactions WHERE txn_id = ?1", {txn_id}).empty()) return;
  core::Request req;
  if (!core::request_from_json(event, req)) return;
  const auto trigger = req.trigger;
  req.at = core::LocalSeconds(*core::parse_local_date(day_text));
  req.zone = "HQ";
  req.txn_id = txn_id;
  auto outcome = core::evaluate(p, m, req);
  if (!outcome || (outcome->points_earned == 0 && outcome->vouchers_issued.empty())) return;
  const auto before = m;
  auto committed = core::commit(p, m, *outcome);
  if (!committed) return;
  const auto seq =
      db_.query("SELECT COUNT(*) FROM transactions WHERE store_id = 'HQ'")[0].integer(0) + 1;
  const auto r = sync::record_of_commit(p, before, m, *outcome, *committed, event, seq, clock_());
  const std::string text = sync::record_to_json(r).dump();
  db_.exec(
      "INSERT INTO transactions(txn_id, store_id, terminal_id, seq, member_id, kind, "
      "committed_at, business_day, program_id, program_version, points_earned, "
      "points_redeemed, record_hash, record, received_at) VALUES (?1, 'HQ', 'JOBS', ?2, ?3, "
      "'event', ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?4)",
      {txn_id, seq, m.id, r.committed_at, day_text, p.id, p.version, outcome->points_earned,
       platform::sha256_hex(text), text});
  post(committed->entries, kDirect);
  summary[core::to_string(trigger)] = summary.value(core::to_string(trigger), 0) + 1;
}

core::Result<Json> HqLedger::run_jobs(const std::string& day_text) {
  const auto day = core::parse_local_date(day_text);
  if (!day) return core::invalid("date", "must be YYYY-MM-DD");
  if (auto ok = day_has_come(*day, day_text); !ok) return std::unexpected(ok.error());
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto in_force = program_in_force();
    if (!in_force) return std::unexpected(in_force.error());
    const auto& p = *in_force;
    Json summary{{"date", day_text}, {"tier_changes", 0}};
    const auto ymd = date::year_month_day{*day};
    const auto month = core::format_local_date(*day).substr(0, 7);
    const bool daily_rules = std::any_of(p->rules.begin(), p->rules.end(), [](const auto& r) {
      return r.trigger == core::Trigger::kDaily;
    });
    for (const auto& row : db_.query("SELECT id FROM members ORDER BY id")) {
      auto m = load_member(row.text(0), kDirect);
      bool changed = false;
      // Re-evaluation at each window's end; a grace period settled the day it
      // runs out.
      if (const auto job = core::tier_job(*p, *m, *day)) {
        const auto& decision = *job;
        if (decision.tier_after != decision.tier_before || decision.grace_until ||
            decision.grace_cleared || !decision.carry.empty()) {
          core::apply_tier_decision(*m, decision, *day);
          changed = true;
          if (decision.tier_after != decision.tier_before)
            summary["tier_changes"] = summary["tier_changes"].get<int>() + 1;
          // An upgrade at re-evaluation brings the tier_up rules' packs, as
          // one at a till does.
          if (p->tiers->rank_of(decision.tier_after) > p->tiers->rank_of(decision.tier_before))
            job_transaction(*p, *m, Json{{"event", "tier_up"}, {"from_tier", decision.tier_before}},
                            "HQ-TIERUP-" + day_text + "-" + m->id, day_text, summary);
        }
      }
      if (first_of_month(*day)) {
        const auto before = core::member_to_json(*m);
        job_transaction(*p, *m, Json{{"event", "period_end"}}, "HQ-MONTH-" + month + "-" + m->id,
                        day_text, summary);
        if (m->birth_month && *m->birth_month == static_cast<unsigned>(ymd.month()))
          job_transaction(*p, *m, Json{{"event", "birthday"}}, "HQ-BDAY-" + month + "-" + m->id,
                          day_text, summary);
        changed = changed || core::member_to_json(*m) != before;
      }
      // Rules of any day (anniversaries, festival grants), once a day each.
      if (daily_rules) {
        const auto before = core::member_to_json(*m);
        job_transaction(*p, *m, Json{{"event", "daily"}}, "HQ-DAY-" + day_text + "-" + m->id,
                        day_text, summary);
        changed = changed || core::member_to_json(*m) != before;
      }
      if (changed) save_member(*m, kDirect);
    }
    return summary;
  });
}

}  // namespace loyalty::hq
