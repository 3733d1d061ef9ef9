// The exactly-once rule of ingest (docs/sync.md, "Response"): what HQ does
// with each record of a terminal's batch, decided from what HQ already holds
// of that terminal, with no database. HqLedger::ingest reads that state,
// asks judge() record by record in sequence order and writes what it says.
//
// Invariants it keeps, for one terminal:
// - A transaction id is applied at most once, forever: a resend of an
//   accepted record is a duplicate with the first answer, whatever it
//   carries now.
// - Records apply in sequence order with no hole: the first one past a
//   missing sequence opens a gap, and it and every later one of the batch
//   wait (answered gap, nothing applied) until the missing one arrives.
// - A sequence number already used by another transaction is rejected (the
//   terminal renumbers it after a restore).
// - An id HQ has for another sale (a till restored from an older backup
//   numbers new sales with used ids) is a conflict: kept aside, never taken
//   for a resend; the same refused record again gets the same reason.
//
// Thread-safety: a plain value; one per batch.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "sync/protocol.h"

namespace loyalty::hq {

// What HQ has of a transaction it accepted before: the record's hash, and
// what makes it that transaction and no other.
struct AcceptedTxn {
  std::string hash;
  std::int64_t committed_at = 0;
  std::string member_id, kind;
  std::string entries;  // entries_key() of its ledger entries
};

// A record HQ refused before: its hash and the reason it was given.
struct RefusedTxn {
  std::string hash, reason;
};

// The ledger entries of a transaction as one comparable text: each entry's
// id, accounts, amount and unit, sorted.
std::string entries_key(const std::vector<core::Entry>& entries);
// The same from entry lines already written as entry_line() does.
std::string entries_key(std::vector<std::string> lines);
std::string entry_line(const std::string& id, const std::string& debit, const std::string& credit,
                       std::int64_t amount, const std::string& unit);

struct Verdict {
  sync::BatchStatus status = sync::BatchStatus::kAccepted;
  // kConflict and kRejected: why, for the terminal and the flag.
  std::string reason;
  // kConflict decided now (not a resend of one refused before): the caller
  // keeps the record aside and flags it.
  bool refuse_now = false;
  std::int64_t expected_seq = 0;  // kGap: the sequence HQ waits for
  bool changed = false;           // kDuplicate resent with other content
};

class ExactlyOnce {
 public:
  // `next_seq`: the sequence HQ expects next from the terminal; `accepted`:
  // what it accepted before of the batch's ids; `refused`: what it refused
  // before from the terminal, by id.
  ExactlyOnce(std::int64_t next_seq, std::map<std::string, AcceptedTxn> accepted,
              std::multimap<std::string, RefusedTxn> refused);

  // The verdict on `r` (hashed `hash`), the batch's records taken in
  // sequence order. A kAccepted record counts as applied from here on: the
  // caller applies it, or fails the whole batch's transaction.
  [[nodiscard]] Verdict judge(const sync::TxnRecord& r, const std::string& hash);

  std::int64_t next_seq() const { return next_; }
  // The sequence the batch's gap waits for, when it has one.
  std::optional<std::int64_t> gap() const { return gap_; }

 private:
  Verdict conflict(const sync::TxnRecord& r, const std::string& hash, std::string reason);
  Verdict open_gap();

  std::int64_t next_;
  std::optional<std::int64_t> gap_;
  std::map<std::string, AcceptedTxn> accepted_;
  std::multimap<std::string, RefusedTxn> refused_;
};

}  // namespace loyalty::hq
