// The terminal's uploads to HQ (docs/sync.md, "A round"): the outbox
// bundled into batches of records, sent, and HQ's verdicts applied.
//
// Invariants it keeps:
// - Only a record HQ answered accepted or duplicate for, in answer to the
//   batch that carried it, is marked acknowledged; nothing else leaves the
//   outbox's pending work.
// - Records go in sequence order, at most kBatchRecords and about
//   kBatchBytes a batch, so a batch always fits HQ's body limit.
// - A database behind HQ's (restored from an older backup) numbers its
//   next sales after what HQ has, before anything else reads an answer.
// - A rejected sequence is renumbered at the end (at most 3 times a round);
//   a conflict is kept and listed as refused, never resent.
#include <set>

#include "core/io_json.h"
#include "core/member_delta.h"
#include "platform/log.h"
#include "sync/feed.h"
#include "sync/protocol.h"
#include "terminal/sync_agent.h"
#include "terminal/sync_records.h"

namespace loyalty::terminal {

using platform::Db;

namespace {

// An upload batch's records, estimated from what is stored: a quarter of
// HQ's body limit (16 MiB), so an estimate off by far still fits.
constexpr std::size_t kBatchBytes = 4u << 20;
constexpr std::size_t kBatchRecords = 500;

// The engine input of a stored POS request: the basket, or the event
// without the member id.
Json engine_request(const Json& body) {
  if (body.contains("basket")) return body["basket"];
  Json j = body;
  j.erase("member_id");
  return j;
}

}  // namespace

namespace detail {

std::optional<sync::TxnRecord> record_of(Db& db, const TxnRow& t) {
  const auto kind = sync::txn_kind_from(t.kind);
  if (!kind) return std::nullopt;  // the terminal writes only the kinds there are
  sync::TxnRecord r;
  r.txn_id = t.txn_id;
  r.seq = t.seq;
  r.kind = *kind;
  r.member_id = t.member_id;
  r.committed_at = t.committed_at;
  r.business_day = t.business_day;
  r.local_time = t.local_time;
  r.zone = t.zone;
  r.program_id = t.program_id;
  r.program_version = t.program_version;
  r.request = engine_request(Json::parse(t.request));
  r.member_before = Json::parse(t.member_before);
  const Json response = Json::parse(t.response);
  r.totals = response.at("outcome").at("totals");
  r.staff_id = t.staff_id;
  platform::Stmt s(
      db,
      "SELECT id, debit, credit, amount, unit, lot, memo FROM entries WHERE txn_id = ?1 "
      "ORDER BY rowid");
  s.bind(1, t.txn_id);
  while (s.step())
    r.entries.push_back(
        {s.text(0), t.txn_id, s.text(1), s.text(2), s.integer(3), s.text(4), s.text(5), s.text(6)});
  if (t.delta) {
    auto d = core::delta_from_json(Json::parse(*t.delta));
    if (!d) return std::nullopt;
    r.delta = std::move(*d);
  }
  r.points_expire_on = t.points_expire_on;
  r.return_of = t.return_of;
  if (t.return_basis && t.kind == "purchase") r.return_basis = Json::parse(*t.return_basis);
  if (t.kind == "enrollment") {
    if (auto m = find_member(db, MemberKey::kId, t.member_id)) {
      r.identity = Json::object();
      if (!m->card_number.empty()) r.identity["card_number"] = m->card_number;
      if (!m->phone.empty()) r.identity["phone"] = m->phone;
      if (!m->name.empty()) r.identity["name"] = m->name;
    }
  }
  return r;
}

core::MemberState local_view(Db& db, const core::MemberState& hq) {
  core::MemberState view = hq;
  platform::Stmt s(db,
                   "SELECT t.txn_id FROM transactions t JOIN outbox o ON o.txn_id = "
                   "t.txn_id WHERE o.acked_at IS NULL AND o.refused IS NULL AND t.member_id = ?1 "
                   "ORDER BY o.seq");
  s.bind(1, hq.id);
  std::vector<std::string> pending;
  while (s.step()) pending.push_back(s.text(0));
  for (const auto& id : pending) {
    auto t = find_txn(db, id);
    auto rec = t ? record_of(db, *t) : std::nullopt;
    if (!rec) continue;
    const auto day = core::parse_local_date(rec->business_day).value();
    std::optional<core::LocalDays> exp;
    if (rec->points_expire_on) exp = core::parse_local_date(*rec->points_expire_on);
    (void)core::apply_point_entries(view, rec->entries, day, exp);
    (void)core::apply_delta(view, rec->delta);
  }
  return view;
}

}  // namespace detail

using detail::record_of;

core::Result<sync::BatchAnswer> SyncAgent::send_batch(HqLink& link, const sync::Batch& batch) {
  auto res = link.request(platform::http::verb::post, "/v1/sync/batches",
                          sync::batch_to_json(batch).dump());
  if (!res || res->status != 200) batch_limit_ = kProbeRecords;
  if (!res) return std::unexpected(res.error());
  note_access(*res);
  if (res->status != 200)
    return core::fail(
        core::ErrorCode::kUnavailable,
        "HQ refused the batch (" + std::to_string(res->status) + "): " + res->body.substr(0, 300));
  auto answer = sync::parse_batch_answer(res->body);
  if (!answer) return std::unexpected(answer.error());
  if (auto ok = catch_up_numbering(*answer); !ok) return std::unexpected(ok.error());
  return answer;
}

core::Status SyncAgent::catch_up_numbering(const sync::BatchAnswer& answer) {
  if (!answer.next_seq && !answer.last_receipt) return {};  // an HQ older than this
  if (answer.last_receipt) checkout_.raise_receipts_to(*answer.last_receipt);
  // Almost always this database is ahead of HQ: a read, not a write per batch.
  const auto behind = store_.read<bool>([&](Db& db) -> core::Result<bool> {
    return (answer.next_seq &&
            *answer.next_seq - 1 > std::stoll(meta_get(db, "last_seq").value_or("0"))) ||
           (answer.last_receipt && *answer.last_receipt > last_receipt(db));
  });
  if (!behind) return std::unexpected(behind.error());
  if (!*behind) return {};
  const auto now = clock_();
  auto note = store_.write<std::string>([&](Db& db) -> core::Result<std::string> {
    const auto seq = std::stoll(meta_get(db, "last_seq").value_or("0"));
    const auto receipt = last_receipt(db);
    std::string what;
    if (answer.next_seq && *answer.next_seq - 1 > seq) {
      meta_set(db, "last_seq", std::to_string(*answer.next_seq - 1));
      what += "sequence " + std::to_string(seq) + " -> " + std::to_string(*answer.next_seq - 1);
    }
    if (answer.last_receipt && *answer.last_receipt > receipt) {
      note_receipt(db, *answer.last_receipt);
      what += std::string(what.empty() ? "" : ", ") + "receipt " + std::to_string(receipt) +
              " -> " + std::to_string(*answer.last_receipt);
    }
    if (!what.empty())
      sync_set(db, "numbering_caught_up", Json{{"at", now}, {"detail", what}}.dump());
    return what;
  });
  if (!note) return std::unexpected(note.error());
  if (!note->empty())
    platform::log_error(
        "this terminal's database is behind HQ, which already has later transactions from it "
        "(restored from an older backup?): numbering continues after HQ's (" +
        *note + ")");
  return {};
}

core::Status SyncAgent::resequence(const std::vector<std::string>& txn_ids) {
  auto ok = store_.write<bool>([&](Db& db) -> core::Result<bool> {
    platform::Stmt o(db, "UPDATE outbox SET seq = ?2 WHERE txn_id = ?1 AND acked_at IS NULL");
    platform::Stmt t(db, "UPDATE transactions SET seq = ?2 WHERE txn_id = ?1");
    for (const auto& id : txn_ids) {
      const auto seq = next_seq(db);
      o.bind(1, id).bind(2, seq);
      o.exec();
      t.bind(1, id).bind(2, seq);
      t.exec();
    }
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  platform::log_warn("HQ holds other transactions under the sequence numbers of " +
                     std::to_string(txn_ids.size()) +
                     " sale(s) made here; they upload again under new ones");
  return {};
}

core::Status SyncAgent::note_refused(const std::map<std::string, std::string>& refused) {
  if (refused.empty()) return {};
  const auto now = clock_();
  auto ok = store_.write<bool>([&](Db& db) -> core::Result<bool> {
    platform::Stmt u(db, "UPDATE outbox SET refused = ?2 WHERE txn_id = ?1 AND acked_at IS NULL");
    std::set<std::string> members;
    for (const auto& [id, reason] : refused) {
      u.bind(1, id).bind(2, reason);
      u.exec();
      if (auto t = find_txn(db, id)) members.insert(t->member_id);
    }
    // What HQ refused leaves the member's view here: HQ's balance stands
    // until a person settles the sale at HQ (an adjustment reaches this
    // till through the feed like any other change).
    for (const auto& id : members) {
      platform::Stmt h(db, "SELECT hq_state FROM members WHERE id = ?1 AND hq_state IS NOT NULL");
      h.bind(1, id);
      if (!h.step()) continue;
      auto hq = core::member_from_json(Json::parse(h.text(0), nullptr, false));
      if (!hq) continue;
      save_member_state(db, id, core::member_to_json(detail::local_view(db, *hq)).dump(), now);
    }
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  for (const auto& [id, reason] : refused)
    platform::log_error("HQ refused " + id + ": " + reason +
                        ". Kept here, no longer uploaded; settle it at HQ (docs/operations.md, "
                        "\"Back up and restore\")");
  return {};
}

core::Status SyncAgent::note_skew(std::int64_t skew) {
  // Every round answers with it: written and warned about when it changes,
  // not at each idle round.
  if (skew == noted_skew_) return {};
  // HQ's measure of this terminal's clock: shown in status, warned about.
  if (skew > sync::kClockToleranceSeconds || skew < -sync::kClockToleranceSeconds)
    platform::log_warn("this terminal's clock is " + std::to_string(skew) +
                       " s off HQ's; check its time synchronisation (NTP)");
  auto ok = store_.write<bool>([&](Db& db) -> core::Result<bool> {
    sync_set(db, "hq_clock_skew", std::to_string(skew));
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  noted_skew_ = skew;
  return {};
}

core::Result<sync::Batch> SyncAgent::bundle_pending() {
  return store_.read<sync::Batch>([&](Db& db) -> core::Result<sync::Batch> {
    sync::Batch b{bundle_.store_id, bundle_.terminal_id, clock_(), {}};
    platform::Stmt s(db,
                     "SELECT txn_id FROM outbox WHERE acked_at IS NULL AND refused IS NULL "
                     "ORDER BY seq LIMIT ?1");
    s.bind(1, static_cast<std::int64_t>(batch_limit_));
    std::vector<std::string> ids;
    while (s.step()) ids.push_back(s.text(0));
    std::size_t bytes = 0;
    for (const auto& id : ids) {
      auto t = find_txn(db, id);
      auto r = t ? record_of(db, *t) : std::nullopt;
      if (!r) return core::fail(core::ErrorCode::kInternal, "cannot build the record of " + id);
      // Batches are bounded by size too: a member with many lots makes big
      // records, and a batch over HQ's body limit would be refused on every
      // retry (the outbox would never drain).
      bytes += t->member_before.size() + t->request.size() + (t->delta ? t->delta->size() : 0) +
               (t->return_basis ? t->return_basis->size() : 0) + 2048;
      if (!b.records.empty() && bytes > kBatchBytes) break;
      b.records.push_back(std::move(*r));
    }
    return b;
  });
}

SyncAgent::Verdicts SyncAgent::sort_answer(const sync::Batch& batch,
                                           const sync::BatchAnswer& answer) {
  // Only what this batch sent can be acknowledged by its answer.
  std::set<std::string> sent;
  for (const auto& r : batch.records) sent.insert(r.txn_id);
  Verdicts v;
  for (const auto& r : answer.results) {
    if (!sent.contains(r.txn_id)) {
      platform::log_error("HQ answered for " + r.txn_id + ", which the batch did not carry");
    } else if (r.status == sync::BatchStatus::kAccepted ||
               r.status == sync::BatchStatus::kDuplicate) {
      v.done.push_back(r.txn_id);
      v.duplicates += r.status == sync::BatchStatus::kDuplicate ? 1 : 0;
    } else if (r.status == sync::BatchStatus::kRejected) {
      v.moved.push_back(r.txn_id);  // in sequence order, as HQ answers
    } else if (r.status == sync::BatchStatus::kConflict) {
      v.refused[r.txn_id] = r.reason.empty() ? "its id names another transaction at HQ" : r.reason;
    } else {
      platform::log_error("HQ did not take " + r.txn_id + ": " + sync::to_json(r).dump());
    }
  }
  if (v.duplicates > 0)
    platform::log_info("HQ already had " + std::to_string(v.duplicates) +
                       " transaction(s) of the batch (an earlier answer was lost); counted once");
  return v;
}

core::Status SyncAgent::mark_acked(const std::vector<std::string>& txn_ids) {
  const auto now = clock_();
  auto ok = store_.write<bool>([&](Db& db) -> core::Result<bool> {
    platform::Stmt u(db, "UPDATE outbox SET acked_at = ?2 WHERE txn_id = ?1 AND acked_at IS NULL");
    for (const auto& id : txn_ids) {
      u.bind(1, id).bind(2, now);
      u.exec();
    }
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  return {};
}

core::Result<int> SyncAgent::upload(HqLink& link) {
  int acked = 0, moves = 0;
  // An empty batch: where HQ's numbering of this terminal stands, and HQ's
  // measure of its clock. Sent before the first upload since start (so a
  // database restored from an older backup does not hand out receipt
  // numbers HQ already has), and in a round with nothing to upload (so HQ's
  // last_seen and both sides' clock skew stay current while idle).
  bool spoke = false;
  const auto hello = [&]() -> core::Status {
    auto answer = send_batch(link, {bundle_.store_id, bundle_.terminal_id, clock_(), {}});
    if (!answer) return std::unexpected(answer.error());
    numbering_known_ = spoke = true;
    return note_skew(answer->clock_skew_seconds);
  };
  if (!numbering_known_)
    if (auto ok = hello(); !ok) return std::unexpected(ok.error());
  for (;;) {
    {
      // A long drain must not hold up a shutdown: stop between batches.
      std::lock_guard lock(mutex_);
      if (stopping_) return acked;
    }
    auto batch = bundle_pending();
    if (!batch) return std::unexpected(batch.error());
    if (batch->records.empty()) {
      if (!spoke)
        if (auto ok = hello(); !ok) return std::unexpected(ok.error());
      return acked;
    }
    spoke = true;
    auto answer = send_batch(link, *batch);
    if (!answer) return std::unexpected(answer.error());
    batch_limit_ = kBatchRecords;
    const auto v = sort_answer(*batch, *answer);
    if (!v.moved.empty()) {
      // Once after a restore; again and again would be a fault at HQ.
      if (++moves > 3)
        return core::fail(core::ErrorCode::kUnavailable,
                          "HQ keeps rejecting the sequence numbers of " + v.moved.front());
      if (auto ok = resequence(v.moved); !ok) return std::unexpected(ok.error());
    }
    if (auto ok = note_refused(v.refused); !ok) return std::unexpected(ok.error());
    if (v.done.empty() && v.moved.empty() && v.refused.empty())
      return core::fail(core::ErrorCode::kUnavailable, "HQ took nothing from the batch");
    if (auto s = note_skew(answer->clock_skew_seconds); !s) return std::unexpected(s.error());
    if (auto ok = mark_acked(v.done); !ok) return std::unexpected(ok.error());
    acked += static_cast<int>(v.done.size());
  }
}

}  // namespace loyalty::terminal
