// HqLedger's flags and member view for support: what needs a person (a
// points overdraft, a voucher used twice, a refused sale, a replay that
// disagrees), listed, shown on the member, and resolved with a reason.
//
// Invariants it keeps:
// - A flag is never deleted: resolving it records when, by whom and why,
//   and tells every store (flag-resolved) so tills drop it from the member.
// - Settling a refused sale books the points it would have moved as an
//   audited adjustment in the same transaction as the resolution.
#include <algorithm>
#include <cctype>

#include "core/io_json.h"
#include "core/local_time.h"
#include "hq/ledger.h"
#include "hq/ledger_internal.h"

namespace loyalty::hq {

using detail::auditable;
using detail::db_failure;

namespace {

Json flag_json(const SqlRow& f) {
  Json j{{"id", f.integer(0)},       {"txn_id", f.text(1)}, {"member_id", f.text(2)},
         {"kind", f.text(3)},        {"detail", f.text(4)}, {"created_at", f.integer(5)},
         {"resolved", !f.is_null(6)}};
  if (!f.is_null(6)) {
    j["resolved_at"] = f.integer(6);
    j["resolved_by"] = f.text(7);
    j["resolution"] = f.text(8);
  }
  return j;
}

constexpr const char* kFlagColumns =
    "SELECT id, txn_id, member_id, kind, detail, created_at, resolved_at, resolved_by, "
    "resolution FROM flags";

}  // namespace

core::Result<Json> HqLedger::member(const std::string& member_id) {
  std::lock_guard lock(mutex_);
  try {
    auto m = load_member(member_id, kDirect);
    if (!m) return core::fail(core::ErrorCode::kNotFound, "no member " + member_id + " at HQ");
    // As `flags` lists them: with the id resolve-flag takes.
    Json flags = Json::array();
    for (const auto& f :
         db_.query(std::string(kFlagColumns) + " WHERE member_id = ?1 ORDER BY id", {member_id}))
      flags.push_back(flag_json(f));
    std::int64_t lots = 0;
    for (const auto& l : m->lots) lots += l.points;
    // The newest transactions, with where and by whom (support's first
    // question).
    Json recent = Json::array();
    for (const auto& t : db_.query(
             "SELECT txn_id, kind, store_id, terminal_id, staff_id, committed_at, business_day, "
             "points_earned, points_redeemed FROM transactions WHERE member_id = ?1 "
             "ORDER BY committed_at DESC, txn_id DESC LIMIT 20",
             {member_id}))
      recent.push_back({{"txn_id", t.text(0)},
                        {"kind", t.text(1)},
                        {"store_id", t.text(2)},
                        {"terminal_id", t.text(3)},
                        {"staff_id", t.is_null(4) ? Json(nullptr) : Json(t.text(4))},
                        {"committed_at", t.integer(5)},
                        {"business_day", t.text(6)},
                        {"points_earned", t.integer(7)},
                        {"points_redeemed", t.integer(8)}});
    return Json{{"member", core::member_to_json(*m)},
                {"balance", lots - m->debt},
                {"debt", m->debt},
                {"flags", flags},
                {"transactions", recent}};
  } catch (const SqlError& e) {
    return db_failure(e);
  }
}

core::Result<Json> HqLedger::flags(bool open_only) {
  std::lock_guard lock(mutex_);
  try {
    Json out = Json::array();
    for (const auto& f :
         db_.query(std::string(kFlagColumns) + (open_only ? " WHERE resolved_at IS NULL" : "") +
                   " ORDER BY id"))
      out.push_back(flag_json(f));
    return Json{{"flags", out}};
  } catch (const SqlError& e) {
    return db_failure(e);
  }
}

core::Result<Json> HqLedger::resolve_flag(std::int64_t id, const std::string& reason,
                                          const std::string& actor, bool settle) {
  if (!auditable(reason))
    return core::invalid("reason", "resolving a flag needs a reason that can be audited");
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto rows = db_.query(std::string(kFlagColumns) + " WHERE id = ?1", {id});
    if (rows.empty())
      return core::fail(core::ErrorCode::kNotFound,
                        "no flag " + std::to_string(id) + "; `loyalty-hq flags` lists them");
    if (!rows[0].is_null(6))
      return core::fail(core::ErrorCode::kConflict, "flag " + std::to_string(id) +
                                                        " was resolved by " + rows[0].text(7) +
                                                        ": " + rows[0].text(8));
    Json flag = flag_json(rows[0]);
    const auto txn = flag["txn_id"].get<std::string>();
    const auto member = flag["member_id"].get<std::string>();
    Json settled;
    if (settle) {
      if (flag["kind"] != "refused")
        return core::invalid("settle", "only a refused flag is settled; flag " +
                                           std::to_string(id) + " is " +
                                           flag["kind"].get<std::string>() +
                                           " (resolve it, with an adjust first where needed)");
      const auto refused = db_.query(
          "SELECT kind, store_id, terminal_id, member_points FROM refused_txns WHERE txn_id = ?1 "
          "AND member_id = ?2",
          {txn, member});
      if (refused.size() != 1)
        return core::fail(core::ErrorCode::kConflict,
                          std::to_string(refused.size()) + " refused records of " + member +
                              " under " + txn + "; settle them with adjust, then resolve the flag");
      const auto& r = refused[0];
      const auto points = r.integer(3);
      if (points != 0) {
        auto adjusted =
            book_adjustment(member, points,
                            "settles refused " + r.text(0) + " " + txn + " from " + r.text(1) +
                                "/" + r.text(2) + " (flag " + std::to_string(id) + "): " + reason,
                            actor);
        if (!adjusted) return adjusted;
        settled = std::move(*adjusted);
      }
    }
    const auto now = clock_();
    db_.exec("UPDATE flags SET resolved_at = ?2, resolved_by = ?3, resolution = ?4 WHERE id = ?1",
             {id, now, actor, reason});
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, "resolve-flag",
              "flag " + std::to_string(id) + " (" + flag["kind"].get<std::string>() + " on " +
                  flag["txn_id"].get<std::string>() + "): " + reason,
              now});
    // Every store drops it from the member's summary.
    change(sync::FlagResolvedChange{flag["txn_id"].get<std::string>(),
                                    flag["member_id"].get<std::string>(),
                                    flag["kind"].get<std::string>()},
           flag["txn_id"].get<std::string>(), "", flag["member_id"].get<std::string>());
    flag["resolved"] = true;
    flag["resolved_at"] = now;
    flag["resolved_by"] = actor;
    flag["resolution"] = reason;
    if (!settled.is_null()) flag["settled_by"] = settled;
    return flag;
  });
}

}  // namespace loyalty::hq
