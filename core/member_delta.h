// What a committed transaction changed in a member, in a form HQ can merge
// with the same member's transactions from other stores. Points travel as
// ledger entries and are applied lot by lot (apply_point_entries); the rest
// travels as a MemberDelta: counter and stored-value deltas (which add up,
// so two offline stores' visits both count), vouchers and passes added or
// used, and the profile fields that changed (tier, dates, streak).
//
// Thread-safety: pure functions on values.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/json_reader.h"
#include "core/ledger.h"
#include "core/member.h"

namespace loyalty::core {

struct MemberDelta {
  std::map<std::string, std::int64_t> counters;
  std::vector<HeldVoucher> vouchers_added;
  std::vector<std::string> vouchers_used;
  std::vector<HeldPass> passes_added;
  std::vector<HeldPass> passes_removed;  // returned, or replaced by a deferral
  std::int64_t sv_base = 0;
  std::int64_t sv_bonus = 0;
  Json profile = Json::object();  // changed scalar fields; null = cleared
  bool empty() const;
};

MemberDelta diff_member(const MemberState& before, const MemberState& after);
Json delta_to_json(const MemberDelta& d);
[[nodiscard]] Result<MemberDelta> delta_from_json(const Json& j);

// What HQ flags for a person (docs/hq.md, "Flags: what needs a person").
// On the wire and in HQ's flags table as to_string()'s word; a terminal
// keeps a word it does not know as text, so a newer HQ can add kinds.
enum class FlagKind {
  kPointsOverdrawn,       // points spent twice while offline: debt
  kStoredValueOverdrawn,  // stored value spent twice while offline
  kVoucherReused,         // one voucher used at two stores
  kVoucherRevoked,        // a voucher used after HQ revoked it
  kReplayMismatch,        // the till's numbers differ from HQ's replay
  kProgramUnknown,        // a program version HQ never published
  kClockAhead,            // dated after HQ received it
  kClockBehind,           // dated before its terminal was registered
  kRefused,               // a sale HQ refused (its id names another): to settle
  kReturnedTwice,         // a line taken back at two stores
  kDuplicateCard,         // an enrollment's card number belongs to another member
  kDuplicatePhone,        // an enrollment's phone belongs to another member
  kReferralUnpaid,        // the referrer is not at HQ yet
};
const char* to_string(FlagKind k);

// Something HQ must record and flag rather than refuse: a valid fact that
// collides with another store's (a voucher used twice, stored value or
// points spent twice while offline).
struct Conflict {
  FlagKind kind = FlagKind::kPointsOverdrawn;
  std::string detail;
  std::string subject;  // what it is about, when a caller may look it up: a voucher's code
};

// Applies a delta to HQ's view of the member. Never refuses.
std::vector<Conflict> apply_delta(MemberState& m, const MemberDelta& d);

// Applies the member's point entries of one transaction: credits add to the
// named lot (created with `expires_on` when new) or repay debt; debits take
// from the named lot, then from other live lots earliest-expiring first, and
// what is missing becomes debt. Keeps balance == sum(lots) - debt.
std::vector<Conflict> apply_point_entries(MemberState& m, const std::vector<Entry>& entries,
                                          LocalDays day, std::optional<LocalDays> expires_on);

// The member account's balance the entries imply (credits minus debits).
std::int64_t member_points_delta(const std::string& member_id, const std::vector<Entry>& entries);

}  // namespace loyalty::core
