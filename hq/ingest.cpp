// HqLedger::ingest: a terminal's batch, exactly once (docs/sync.md,
// "Response" and "Idempotency and sequence").
//
// Invariants it keeps:
// - The whole batch is one database transaction: every record's verdict and
//   every write of it commit together, or nothing does.
// - The verdict of each record is hq::ExactlyOnce's (hq/exactly_once.h),
//   from what HQ held before the batch; records are judged in sequence
//   order, whatever order they were sent in.
// - A batch that names another terminal than the one that sent it, or a
//   record whose id or entry ids are not that terminal's, is refused whole.
// - A refused record is kept (refused_txns) and flagged, never applied.
// - The terminal's next_seq, last_seen and clock skew move with the batch.
#include <algorithm>
#include <map>
#include <set>

#include "core/engine.h"
#include "core/io_json.h"
#include "core/local_time.h"
#include "core/member_delta.h"
#include "core/program_loader.h"
#include "core/return_basis.h"
#include "hq/ledger.h"
#include "hq/ledger_internal.h"
#include "platform/log.h"

namespace loyalty::hq {

using namespace detail;

std::map<std::string, AcceptedTxn> HqLedger::accepted(const sync::Batch& batch) {
  std::vector<std::string> ids;
  for (const auto& r : batch.records) ids.push_back(r.txn_id);
  std::map<std::string, AcceptedTxn> seen;
  for (const auto& row : query_ids(db_,
                                   "SELECT txn_id, record_hash, committed_at, member_id, kind "
                                   "FROM transactions WHERE txn_id IN",
                                   ids))
    seen.emplace(row.text(0),
                 AcceptedTxn{row.text(1), row.integer(2), row.text(3), row.text(4), {}});
  if (seen.empty()) return seen;  // the usual batch: all new
  ids.clear();
  for (const auto& [id, a] : seen) ids.push_back(id);
  std::map<std::string, std::vector<std::string>> lines;
  for (const auto& row : query_ids(
           db_, "SELECT txn_id, id, debit, credit, amount, unit FROM entries WHERE txn_id IN", ids))
    lines[row.text(0)].push_back(
        entry_line(row.text(1), row.text(2), row.text(3), row.integer(4), row.text(5)));
  for (auto& [id, l] : lines) seen[id].entries = entries_key(std::move(l));
  return seen;
}

std::multimap<std::string, RefusedTxn> HqLedger::refusals(const std::string& store,
                                                          const std::string& terminal) {
  std::multimap<std::string, RefusedTxn> out;
  for (const auto& row :
       db_.query("SELECT txn_id, record_hash, reason FROM refused_txns WHERE store_id = ?1 AND "
                 "terminal_id = ?2",
                 {store, terminal}))
    out.emplace(row.text(0), RefusedTxn{row.text(1), row.text(2)});
  return out;
}

void HqLedger::refuse(const sync::TxnRecord& r, const Prepared& prep, const std::string& store,
                      const std::string& terminal, const std::string& reason, std::int64_t now) {
  // What it would have moved for the member: what settling it gives.
  const auto net = core::member_points_delta(r.member_id, r.entries);
  db_.defer(
      "INSERT INTO refused_txns(txn_id, record_hash, store_id, terminal_id, seq, kind, "
      "member_id, return_of, member_points, reason, record, received_at) VALUES (?1, ?2, ?3, "
      "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING",
      {r.txn_id, prep.hash, store, terminal, r.seq, std::string(sync::to_string(r.kind)),
       r.member_id, r.return_of ? SqlParam(*r.return_of) : SqlParam(nullptr), net, reason,
       prep.text, now});
  // Nothing of it is booked: someone settles it (an adjustment) and
  // resolves the flag; until then every store shows it on the member.
  Flags unused;
  flag(r.txn_id, r.member_id, core::FlagKind::kRefused,
       std::string(sync::to_string(r.kind)) + " " + r.txn_id + " from " + store + "/" + terminal +
           " was refused and is not booked (it would have moved " + (net > 0 ? "+" : "") +
           std::to_string(net) + " points for " + r.member_id + "): " + reason +
           ". Settle it: resolve this flag with --settle",
       unused);
}

std::int64_t HqLedger::last_receipt(const std::string& store, const std::string& terminal) {
  // Receipt numbers are handed out before the sequence (in commit order),
  // so concurrent lanes can swap neighbours: the newest few cover it.
  std::int64_t last = 0;
  for (const auto& row :
       db_.query("SELECT txn_id FROM transactions WHERE store_id = ?1 AND terminal_id = ?2 "
                 "ORDER BY seq DESC LIMIT 64",
                 {store, terminal}))
    last = std::max(last, sync::receipt_number(row.text(0)));
  return last;
}

namespace {

// The batch's record indexes in sequence order (stable: a sequence sent
// twice keeps its order), the order HQ judges and answers them in.
std::vector<std::size_t> sequence_order(const sync::Batch& batch) {
  std::vector<std::size_t> order(batch.records.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return batch.records[a].seq < batch.records[b].seq;
  });
  return order;
}

}  // namespace

core::Status HqLedger::check_sender(const std::string& store, const std::string& terminal,
                                    const sync::Batch& batch) {
  if (batch.store_id != store || batch.terminal_id != terminal)
    return core::fail(core::ErrorCode::kFailedPrecondition,
                      "the batch names terminal " + batch.store_id + "/" + batch.terminal_id +
                          " but was sent by " + store + "/" + terminal);
  const auto prefix = sync::txn_prefix(store, terminal);
  for (std::size_t i = 0; i < batch.records.size(); ++i) {
    const auto& r = batch.records[i];
    bool own = r.txn_id.starts_with(prefix);
    for (const auto& e : r.entries) own = own && e.id.starts_with(r.txn_id + "/");
    if (!own)
      return core::fail(core::ErrorCode::kFailedPrecondition,
                        "transactions[" + std::to_string(i) + "]: " + r.txn_id +
                            " is not a transaction id of " + store + "/" + terminal);
  }
  return {};
}

core::Result<std::vector<HqLedger::Prepared>> HqLedger::prepare_batch(const sync::Batch& batch) {
  // The programs the records name (cached after the first batch), then,
  // outside the lock, what each record alone decides.
  std::map<std::pair<std::string, std::int64_t>, std::shared_ptr<const core::Program>> programs;
  {
    std::lock_guard lock(mutex_);
    try {
      for (const auto& r : batch.records)
        if (r.kind != sync::TxnKind::kReturn && r.kind != sync::TxnKind::kVoid)
          programs.try_emplace({r.program_id, r.program_version},
                               program(r.program_id, r.program_version));
    } catch (const SqlError& e) {
      return core::fail(core::ErrorCode::kUnavailable, std::string("HQ database: ") + e.what());
    }
  }
  std::vector<Prepared> prepared;
  prepared.reserve(batch.records.size());
  for (const auto& r : batch.records) {
    const auto p = programs.find({r.program_id, r.program_version});
    prepared.push_back(prepare_record(r, p == programs.end() ? nullptr : p->second.get()));
  }
  return prepared;
}

sync::RecordAnswer HqLedger::judge_and_apply(ExactlyOnce& once, const sync::TxnRecord& r,
                                             const Prepared& prep, const std::string& store,
                                             const std::string& terminal, std::int64_t now,
                                             BatchWork& batch) {
  const auto v = once.judge(r, prep.hash);
  if (v.refuse_now) refuse(r, prep, store, terminal, v.reason, now);
  sync::RecordAnswer answer{r.txn_id, r.seq, v.status, v.reason, std::nullopt, {}, {}};
  if (v.status == sync::BatchStatus::kGap) answer.expected_seq = v.expected_seq;
  if (v.changed) answer.note = "resent with different content; the first version stands";
  if (v.status == sync::BatchStatus::kAccepted)
    apply(r, prep, store, terminal, now, batch, answer.flags);
  return answer;
}

void HqLedger::write_batch_work(BatchWork& work, const std::string& store, std::int64_t now) {
  // Each member and account the batch touched is written once.
  post_balances(work.balances);
  for (auto& [id, m] : work.touched) {
    // Once per member, not per record: a key prune drops stays dropped as
    // the newest day only moves on, so the state is the same.
    m.counters.prune();
    pending_[id] = {write_member(m, &work), std::move(m)};
  }
  // The store holds each member it sold to (the member feed follows).
  for (const auto& id : work.visitors) {
    auto visit = id + "\n" + store;
    if (visits_.contains(visit)) continue;
    db_.defer(
        "INSERT INTO member_stores(member_id, store_id, since) VALUES (?1, ?2, ?3) "
        "ON CONFLICT DO NOTHING",
        {id, store, now});
    pending_visits_.push_back(std::move(visit));
  }
}

void HqLedger::keep_committed_batch(bool committed) {
  // Committed: what this batch read and wrote is now the members' state.
  if (committed) {
    if (member_cache_.size() + pending_.size() > kMemberCacheSize) member_cache_.clear();
    for (auto& [id, c] : pending_) member_cache_[id] = std::move(c);
    if (visits_.size() + pending_visits_.size() > kVisitsCacheSize) visits_.clear();
    for (auto& v : pending_visits_) visits_.insert(std::move(v));
  }
  pending_visits_.clear();
  pending_.clear();
}

core::Result<sync::BatchAnswer> HqLedger::ingest(const std::string& store,
                                                 const std::string& terminal,
                                                 const sync::Batch& batch) {
  if (auto ok = check_sender(store, terminal, batch); !ok) return std::unexpected(ok.error());
  auto prepared = prepare_batch(batch);
  if (!prepared) return std::unexpected(prepared.error());
  const auto order = sequence_order(batch);

  std::lock_guard lock(mutex_);
  const auto now = clock_();
  pending_.clear();
  pending_visits_.clear();
  auto out = in_transaction(db_, [&]() -> core::Result<sync::BatchAnswer> {
    auto t = db_.query(
        "SELECT next_seq, revoked, created_at FROM terminals WHERE store_id = ?1 AND "
        "terminal_id = ?2",
        {store, terminal});
    if (t.empty() || t[0].integer(1) != 0)
      return core::fail(core::ErrorCode::kFailedPrecondition,
                        "terminal " + store + "/" + terminal + " may not write");
    ExactlyOnce once(t[0].integer(0), accepted(batch), refusals(store, terminal));
    BatchWork work;
    work.registered_at = t[0].integer(2);
    sync::BatchAnswer answer;
    std::int64_t receipt = last_receipt(store, terminal);
    prefetch_members(batch, work);
    for (const auto i : order) {
      answer.results.push_back(
          judge_and_apply(once, batch.records[i], (*prepared)[i], store, terminal, now, work));
      if (answer.results.back().status == sync::BatchStatus::kAccepted)
        receipt = std::max(receipt, sync::receipt_number(batch.records[i].txn_id));
    }
    write_batch_work(work, store, now);
    answer.next_seq = once.next_seq();
    answer.last_receipt = receipt;
    answer.gap = once.gap();
    answer.clock_skew_seconds = batch.sent_at - now;
    db_.defer(
        "UPDATE terminals SET next_seq = ?3, last_seen = ?4, clock_skew = ?5 "
        "WHERE store_id = ?1 AND terminal_id = ?2",
        {store, terminal, *answer.next_seq, now, answer.clock_skew_seconds});
    note_clock(store + "/" + terminal, answer.clock_skew_seconds, now);
    return answer;
  });
  keep_committed_batch(out.has_value());
  return out;
}

}  // namespace loyalty::hq
