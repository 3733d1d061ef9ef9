#include "hq/exactly_once.h"

#include <algorithm>

namespace loyalty::hq {

std::string entry_line(const std::string& id, const std::string& debit, const std::string& credit,
                       std::int64_t amount, const std::string& unit) {
  return id + " " + debit + " " + credit + " " + std::to_string(amount) + " " + unit;
}

std::string entries_key(std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  std::string key;
  for (const auto& l : lines) key += l + "\n";
  return key;
}

std::string entries_key(const std::vector<core::Entry>& entries) {
  std::vector<std::string> lines;
  for (const auto& e : entries)
    lines.push_back(entry_line(e.id, e.debit, e.credit, e.amount, e.unit));
  return entries_key(std::move(lines));
}

ExactlyOnce::ExactlyOnce(std::int64_t next_seq, std::map<std::string, AcceptedTxn> accepted,
                         std::multimap<std::string, RefusedTxn> refused)
    : next_(next_seq), accepted_(std::move(accepted)), refused_(std::move(refused)) {}

Verdict ExactlyOnce::open_gap() {
  if (!gap_) gap_ = next_;
  return Verdict{sync::BatchStatus::kGap, {}, false, *gap_, false};
}

Verdict ExactlyOnce::conflict(const sync::TxnRecord& r, const std::string& hash,
                              std::string reason) {
  // It takes its place at the expected sequence (nothing applied), so the
  // terminal's later records are not held up behind it.
  if (r.seq == next_) ++next_;
  refused_.emplace(r.txn_id, RefusedTxn{hash, reason});
  return Verdict{sync::BatchStatus::kConflict, std::move(reason), true, 0, false};
}

Verdict ExactlyOnce::judge(const sync::TxnRecord& r, const std::string& hash) {
  // The same refused record again (a resend): the same answer.
  for (auto [it, end] = refused_.equal_range(r.txn_id); it != end; ++it)
    if (it->second.hash == hash)
      return Verdict{sync::BatchStatus::kConflict, it->second.reason, false, 0, false};
  if (const auto have = accepted_.find(r.txn_id); have != accepted_.end()) {
    const auto& a = have->second;
    // The same transaction resent carries the same ledger entries; a new
    // sale numbered from a restored database has its own.
    const bool other = a.committed_at != r.committed_at || a.member_id != r.member_id ||
                       a.kind != sync::to_string(r.kind) || a.entries != entries_key(r.entries);
    // Beyond a gap: it comes again in order, and is judged then.
    if (other && (gap_ || r.seq > next_)) return open_gap();
    if (other)  // another sale under a used id: never taken for a resend
      return conflict(r, hash,
                      r.txn_id + " already names another transaction at HQ (" + a.kind +
                          " of member " + a.member_id + ", committed at " +
                          std::to_string(a.committed_at) +
                          "): this terminal numbered it from a database behind HQ's, as after a "
                          "restore from an older backup; not applied");
    // Accepted before: the same answer, whatever the terminal resends.
    return Verdict{sync::BatchStatus::kDuplicate, {}, false, 0, a.hash != hash};
  }
  if (gap_ || r.seq > next_) return open_gap();
  if (r.seq < next_)
    return Verdict{sync::BatchStatus::kRejected,
                   "sequence " + std::to_string(r.seq) + " already holds another transaction",
                   false, 0, false};
  // This terminal's own sale under that id, which HQ refused: the take-back
  // is of it, not of HQ's transaction of the same id.
  if (r.return_of && refused_.contains(*r.return_of))
    return conflict(r, hash,
                    r.txn_id + " takes back " + *r.return_of +
                        ", a sale of this terminal HQ refused (its id names another transaction "
                        "at HQ); not applied");
  accepted_.emplace(
      r.txn_id, AcceptedTxn{hash, r.committed_at, r.member_id, std::string(sync::to_string(r.kind)),
                            entries_key(r.entries)});
  ++next_;
  return Verdict{};
}

}  // namespace loyalty::hq
