// The points ledger: turning an evaluated Outcome into append-only,
// double-entry entries and the member's lots (DESIGN.md, truths 2-4).
//
// Accounts: "member:<id>" (points the member holds), "program:<id>:issued"
// (the liability's source, debited when points are granted),
// ":redeemed", ":expired", ":adjustment"; stored value uses "sv:<member>",
// "sv-bonus:<member>", "store:sv-cash", "program:<id>:sv-bonus",
// "store:sv-spent". Every entry debits one account and credits another with
// the same positive amount, so all balances of a unit sum to zero.
//
// Thread-safety: functions mutate only the MemberState passed in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/result.h"

namespace loyalty::core {

struct Entry {
  std::string id;  // "<txn id>/<n>": unique forever
  std::string txn_id;
  std::string debit;
  std::string credit;
  std::int64_t amount = 0;  // > 0
  std::string unit;         // "pts" or an ISO currency
  std::string lot;          // lot touched, if any
  std::string memo;
};

struct LotDraw {
  std::string lot;
  std::int64_t points = 0;
};

// A committed transaction as the terminal stores it: enough to return it
// line by line later, at this store or another.
struct Committed {
  Outcome outcome;
  std::vector<Entry> entries;
  std::vector<LotDraw> draws;              // points spent, lot by lot
  std::string earned_lot;                  // lot created by this transaction, if any
  std::vector<std::int64_t> returned_qty;  // per line, all returns so far
  std::int64_t points_reversed = 0;        // all returns so far
  std::int64_t points_restored = 0;
  std::int64_t sv_restored = 0;        // stored value given back by all returns so far
  std::int64_t sv_bonus_restored = 0;  // of which bonus stored value
};

struct ReturnLine {
  std::size_t line = 0;
  std::int64_t quantity = 0;
};

std::string member_account(const std::string& member_id);
std::string program_account(const std::string& program_id, const char* what);

// Applies an evaluated purchase or event to the member and returns its
// entries. Fails (writing nothing) when the member can no longer cover a
// redemption or a voucher is gone.
[[nodiscard]] Result<Committed> commit(const Program& program, MemberState& member,
                                       const Outcome& outcome);

// Evaluates a line-level return of `original`. `request` carries the time,
// zone and the return's own transaction id.
[[nodiscard]] Result<Outcome> evaluate_return(const Program& program, const MemberState& member,
                                              const Committed& original,
                                              const std::vector<ReturnLine>& lines,
                                              const Request& request);

// Applies an evaluated return: reverses earned points from the original lot
// (shortfall becomes debt, never a negative lot), restores spent points to the
// lots they came from, and records the returned quantities on `original`.
[[nodiscard]] Result<Committed> commit_return(const Program& program, MemberState& member,
                                              Committed& original, const Outcome& ret);

// Expires every lot dead on `today`; entries carry `txn_id`.
std::vector<Entry> expire_lots(const Program& program, MemberState& member, LocalDays today,
                               const std::string& txn_id);

}  // namespace loyalty::core
