// HqLedger::verify and the liability report: the whole ledger read back and
// checked, for operators and for every fault test.
//
// Invariants it checks (docs/hq.md, "The invariant check"):
// - The accounts of each unit sum to zero (double entry).
// - Each account's balance is the sum of its entries (nothing posted
//   outside an entry).
// - Each member's lots minus debt equal their points account, and their
//   stored value and bonus their sv and sv-bonus accounts.
#include <map>

#include "core/local_time.h"
#include "hq/ledger.h"
#include "hq/ledger_internal.h"

namespace loyalty::hq {

using detail::db_failure;

core::Result<Json> HqLedger::liability() {
  std::lock_guard lock(mutex_);
  try {
    std::map<std::string, std::int64_t> by_month;
    std::int64_t debt = 0;
    for (const auto& row : db_.query("SELECT id FROM members")) {
      auto m = load_member(row.text(0), kDirect);
      debt += m->debt;
      for (const auto& l : m->lots)
        by_month[l.expires_on ? core::format_local_date(*l.expires_on).substr(0, 7) : "never"] +=
            l.points;
    }
    Json rows = Json::array();
    std::int64_t total = 0;
    for (const auto& [month, pts] : by_month) {
      rows.push_back({{"expires", month}, {"points", pts}});
      total += pts;
    }
    return Json{{"outstanding_points", total}, {"member_debt", debt}, {"by_expiry_month", rows}};
  } catch (const SqlError& e) {
    return db_failure(e);
  }
}

core::Result<Json> HqLedger::verify() {
  std::lock_guard lock(mutex_);
  try {
    Json problems = Json::array();
    for (const auto& row : db_.query("SELECT unit, SUM(balance) FROM accounts GROUP BY unit"))
      if (row.integer(1) != 0)
        problems.push_back("accounts in " + row.text(0) + " sum to " + row.text(1) + ", not 0");
    // Each balance equals the sum of its entries.
    std::map<std::pair<std::string, std::string>, std::int64_t> from_entries;
    for (const auto& e : db_.query("SELECT debit, credit, amount, unit FROM entries")) {
      from_entries[{e.text(0), e.text(3)}] -= e.integer(2);
      from_entries[{e.text(1), e.text(3)}] += e.integer(2);
    }
    std::int64_t accounts = 0;
    std::map<std::string, std::int64_t> member_pts;
    std::map<std::string, std::int64_t> member_sv;  // by account: sv:<id>, sv-bonus:<id>
    for (const auto& a : db_.query("SELECT account, unit, balance FROM accounts")) {
      ++accounts;
      if (from_entries[{a.text(0), a.text(1)}] != a.integer(2))
        problems.push_back("account " + a.text(0) + " (" + a.text(1) + ") holds " + a.text(2) +
                           " but its entries sum to " +
                           std::to_string(from_entries[{a.text(0), a.text(1)}]));
      if (a.text(1) == "pts" && a.text(0).starts_with("member:"))
        member_pts[a.text(0).substr(7)] = a.integer(2);
      if (a.text(0).starts_with("sv:") || a.text(0).starts_with("sv-bonus:"))
        member_sv[a.text(0)] = a.integer(2);
    }
    std::int64_t members = 0;
    for (const auto& row : db_.query("SELECT id FROM members")) {
      ++members;
      auto m = load_member(row.text(0), kDirect);
      std::int64_t lots = 0;
      for (const auto& l : m->lots) lots += l.points;
      if (lots - m->debt != member_pts[m->id])
        problems.push_back("member " + m->id + ": lots " + std::to_string(lots) + " minus debt " +
                           std::to_string(m->debt) + " but the ledger says " +
                           std::to_string(member_pts[m->id]));
      // Stored value: the member's base and bonus equal their accounts.
      if (m->sv_base != member_sv["sv:" + m->id] || m->sv_bonus != member_sv["sv-bonus:" + m->id])
        problems.push_back("member " + m->id + ": stored value " + std::to_string(m->sv_base) +
                           " + bonus " + std::to_string(m->sv_bonus) + " but the ledger says " +
                           std::to_string(member_sv["sv:" + m->id]) + " + " +
                           std::to_string(member_sv["sv-bonus:" + m->id]));
    }
    return Json{{"ok", problems.empty()},
                {"accounts", accounts},
                {"members", members},
                {"problems", problems}};
  } catch (const SqlError& e) {
    return db_failure(e);
  }
}

}  // namespace loyalty::hq
