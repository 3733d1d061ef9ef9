// HQ's authoritative ledger: terminals, ingest of their transaction batches
// (exactly once, forever), member balances and lots, flags for what needs a
// person (debt from an overdraft, a voucher used twice, a replay mismatch),
// the change feed terminals pull, programs, adjustments, expiry, reports and
// the invariant check. Backend-neutral: runs on SqlConn.
//
// Thread-safety: one HqLedger per connection; calls are serialised inside.
#pragma once

#include <atomic>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/json_reader.h"
#include "core/program.h"
#include "hq/exactly_once.h"
#include "hq/replay.h"
#include "hq/sql.h"
#include "platform/crypto.h"
#include "sync/changes.h"
#include "sync/protocol.h"

namespace loyalty::hq {

using core::Json;

using sync::kClockToleranceSeconds;

// The flags HQ raised on one record or write (docs/hq.md, "Flags").
using Flags = std::vector<sync::RecordFlag>;

// A member's row as an ingest found it, the state apart.
struct MemberRow {
  std::int64_t version = 0;
  std::optional<std::string> card_number, phone;
  std::string name;
  bool blocked = false;
};

class HqLedger {
 public:
  using Clock = std::function<std::int64_t()>;
  HqLedger(SqlConn& db, Clock clock);

  [[nodiscard]] core::Status add_terminal(const std::string& store, const std::string& terminal,
                                          const std::string& cert_fingerprint);
  [[nodiscard]] core::Status revoke_terminal(const std::string& store, const std::string& terminal);
  // kNotFound for an unknown terminal, kFailedPrecondition for a revoked one.
  [[nodiscard]] core::Status check_terminal(const std::string& store, const std::string& terminal,
                                            const std::string& cert_fingerprint);

  // Applies a batch from an authenticated terminal. Refused whole (nothing
  // written) when it names another terminal; otherwise each record is
  // accepted, a duplicate (same answer as before), or past a gap.
  [[nodiscard]] core::Result<sync::BatchAnswer> ingest(const std::string& store,
                                                       const std::string& terminal,
                                                       const sync::Batch& batch);

  // Changes after `cursor` for `store` (what is for every store plus its
  // own), oldest first, at most `limit`. A member change that a later one
  // for the same member supersedes is left out (each carries the whole
  // state), so a terminal catching up after days gets each member once.
  [[nodiscard]] core::Result<Json> changes(std::int64_t cursor, std::int64_t limit,
                                           const std::string& store);
  // Serves changes() from a connection of its own to the same database, so
  // a terminal's feed read neither waits for an ingest nor holds one up
  // (serve does this; each read is one statement, one consistent view).
  void serve_feed_from(std::unique_ptr<SqlConn> reader);
  // Which members each store's feed carries. kAll: every member (a chain
  // whose stores each see a large share of its members). kVisited: only
  // those the store holds, because one of its terminals sold to them or
  // looked them up (lookup_member); changes about a member (its state,
  // blocks, codes, flags, receipts) follow the member.
  enum class MemberFeed { kAll, kVisited };
  void set_member_feed(MemberFeed feed) { member_feed_ = feed; }
  // A store's terminal asks for a member it does not hold (a first visit):
  // found by `by` ("member_id", "card_number" or "phone") = `value`. The
  // store holds the member from now on, and the answer is a feed page of
  // what the store would have had: the member, their blocked codes, open
  // flags and their receipts' newest return bases (up to 200), numbered
  // from cursor 1. kNotFound when HQ has no such member.
  [[nodiscard]] core::Result<Json> lookup_member(const std::string& by, const std::string& value,
                                                 const std::string& store);
  // A terminal's live check of one member before a large redemption: the
  // member's state and blocked flag as HQ has them now, and the last
  // sequence HQ applied from that terminal, read in one statement (one
  // committed state), so the terminal adds exactly what HQ has not applied
  // yet. kNotFound for a member HQ has no row for.
  [[nodiscard]] core::Result<Json> live_member(const std::string& member_id,
                                               const std::string& store,
                                               const std::string& terminal);

  [[nodiscard]] core::Result<Json> publish_program(const std::string& body,
                                                   std::int64_t effective_from,
                                                   const platform::SigningKey& key,
                                                   const std::string& actor);
  // Resets a member (audited; every store gets the state with the feed):
  // the named metrics' counters to zero (their carried-over part too),
  // and/or the tier set, optionally held until a day (a trial upgrade: kept
  // through re-evaluations until then). Pending upgrades and grace end.
  struct MemberReset {
    std::vector<std::string> metrics;
    std::string tier;
    std::optional<core::LocalDays> tier_until;
  };
  [[nodiscard]] core::Result<Json> reset_member(const std::string& member_id,
                                                const MemberReset& reset, const std::string& reason,
                                                const std::string& actor);
  // Sets a verified attribute (a student card checked) until `until`, or
  // removes it (nullopt). Audited; stores get it by feed with the member.
  [[nodiscard]] core::Result<Json> set_attribute(const std::string& member_id,
                                                 const std::string& attribute,
                                                 std::optional<core::LocalDays> until,
                                                 const std::string& reason,
                                                 const std::string& actor);
  // Takes back a voucher HQ or a store gave `member_id` (a campaign sent to
  // the wrong list, a voucher obtained by fraud): gone from the member's
  // state, so every store refuses it once it has the feed. Audited; a use
  // that a store made before it heard is booked and flagged
  // voucher-revoked.
  [[nodiscard]] core::Result<Json> revoke_voucher(const std::string& member_id,
                                                  const std::string& code,
                                                  const std::string& reason,
                                                  const std::string& actor);
  [[nodiscard]] core::Result<Json> adjust(const std::string& member_id, std::int64_t points,
                                          const std::string& reason, const std::string& actor);
  // The scheduled work of one store-local day: tier re-evaluation at the
  // start of each window, period-end rules (monthly vouchers) and birthday
  // rewards on the first of the month. Idempotent per day.
  [[nodiscard]] core::Result<Json> run_jobs(const std::string& day);
  // Sales, members and points per store and day, and the programs' health
  // metrics, over [from, to] (store-local dates).
  [[nodiscard]] core::Result<Json> report(const std::string& from, const std::string& to);
  // Issues one voucher of `template_id` to each listed member (a campaign).
  // Codes are "HQ-V<run>-<n>"; unknown members are listed, not fatal.
  [[nodiscard]] core::Result<Json> issue_vouchers(const std::string& template_id,
                                                  const std::vector<std::string>& members,
                                                  const std::string& today,
                                                  const std::string& actor);
  // Blocks (or unblocks) a member: terminals refuse loyalty for them once
  // the change reaches them. Audited, with a reason.
  [[nodiscard]] core::Result<Json> set_blocked(const std::string& member_id, bool blocked,
                                               const std::string& reason, const std::string& actor);
  // Blocks (or unblocks) one member code: a card number (a lost card) or a
  // static QR ("LM1:" + member id). Terminals refuse that code at the scan
  // once the change reaches them; the member's other codes still work.
  // Audited, with a reason.
  [[nodiscard]] core::Result<Json> set_code_blocked(const std::string& code, bool blocked,
                                                    const std::string& reason,
                                                    const std::string& actor);
  // Sends `quantity` more of a catalog reward to a store's redemption
  // counter (a delivery); the store's terminals add it to their stock.
  // With a `delivery_id` (the delivery note's number) a retry is answered
  // with the first allocation ("duplicate": true) and allocates nothing;
  // the same id with other goods is kConflict.
  [[nodiscard]] core::Result<Json> allocate_stock(const std::string& store,
                                                  const std::string& terminal,
                                                  const std::string& reward_id,
                                                  std::int64_t quantity, const std::string& actor,
                                                  const std::string& delivery_id = "");
  // Expires every lot dead on `today` (store-local date) for every member.
  [[nodiscard]] core::Result<Json> expire(const std::string& today);
  [[nodiscard]] core::Result<Json> member(const std::string& member_id);
  // Members from CSV (docs/hq.md): each bad row rejected with its line and
  // reason, the rest loaded with opening points booked. `progress` is told
  // (rows done, rows in all) after each chunk.
  using Progress = std::function<void(std::int64_t, std::int64_t)>;
  [[nodiscard]] core::Result<Json> import_members(std::istream& csv, const std::string& today,
                                                  const Progress& progress = {});
  // A staff account for store counters (docs/counter.md): added, or
  // changed when `staff_id` exists (an empty `pin` keeps the old one). Each
  // store in `stores` gets it through its feed; a store taken off the list
  // gets it disabled. Audited, without the PIN.
  struct StaffInput {
    std::string staff_id, name, role, pin;
    std::vector<std::string> stores;
  };
  [[nodiscard]] core::Result<Json> put_staff(const StaffInput& in, const std::string& actor);
  // Disables an account at every store it worked at (audited).
  [[nodiscard]] core::Result<Json> disable_staff(const std::string& staff_id,
                                                 const std::string& actor);
  // Every staff account, without PIN hashes.
  [[nodiscard]] core::Result<Json> staff();
  // Every flag, oldest first; `open_only` leaves out resolved ones.
  [[nodiscard]] core::Result<Json> flags(bool open_only = false);
  // Marks a flag looked into, with a reason (audited). Terminals drop it
  // from the member's summary once the change reaches them. `settle`, for
  // a `refused` flag only: in the same transaction, an adjustment gives the
  // member the points the refused record would have moved.
  [[nodiscard]] core::Result<Json> resolve_flag(std::int64_t id, const std::string& reason,
                                                const std::string& actor, bool settle = false);
  // Every terminal: revoked or not, next sequence, when it last uploaded and
  // how far its clock was from HQ's then (`clock_ok` false beyond 2 minutes).
  [[nodiscard]] core::Result<Json> terminals();
  // Outstanding points by expiry month: the finance view of the liability.
  [[nodiscard]] core::Result<Json> liability();
  // Every account of each unit sums to zero; every member's balance equals
  // their lots minus debt; every balance equals the sum of its entries.
  [[nodiscard]] core::Result<Json> verify();

  // An admin write's answer: an HTTP status and body.
  struct Answer {
    int status = 200;
    std::string body;
    bool replayed = false;  // the stored answer of an earlier request
  };
  // Runs `write` once per `key`, forever: its answer, when it succeeded
  // (2xx), is stored in the same transaction as what it wrote, so a retry
  // after a timeout or a crash is answered with it and writes nothing. An
  // answer that is not 2xx rolls back whatever `write` did and is not
  // stored (nothing was done; a retry tries again). The same key with
  // another `fingerprint` (method, path and body) is kConflict.
  [[nodiscard]] core::Result<Answer> once(const std::string& key, const std::string& fingerprint,
                                          const std::function<Answer()>& write);

 private:
  // What an ingest keeps while it runs (defined below). The functions that
  // read or write members, entries and balances take it explicitly: with a
  // batch they work on the batch's copies, written once at its end; with
  // kDirect (admin writes, jobs, reports) they read and write the database.
  struct BatchWork;
  static constexpr BatchWork* kDirect = nullptr;
  // adjust()'s work, with the lock and a transaction held.
  core::Result<Json> book_adjustment(const std::string& member_id, std::int64_t points,
                                     const std::string& reason, const std::string& actor);
  // An enrollment's card number, phone and name onto HQ's member row.
  void record_identity(const sync::TxnRecord& r, BatchWork& batch, Flags& flags_out);
  // What HQ works out from a record alone (hq/replay.h), before it takes
  // the lock, so that batches from several terminals are hashed, replayed
  // and encoded in parallel and only the writes are serial.
  using Prepared = PreparedRecord;
  // What HQ has of the batch's transactions it accepted before, by id (a
  // terminal restored from an older backup reuses ids for new sales).
  std::map<std::string, AcceptedTxn> accepted(const sync::Batch& batch);
  // What HQ refused from `store`/`terminal` before, by id (usually none:
  // only after a restore).
  std::multimap<std::string, RefusedTxn> refusals(const std::string& store,
                                                  const std::string& terminal);
  // Keeps a refused record and flags it for whoever settles it at HQ.
  void refuse(const sync::TxnRecord& r, const Prepared& prep, const std::string& store,
              const std::string& terminal, const std::string& reason, std::int64_t now);
  // The highest receipt number among the transactions HQ has from
  // `store`/`terminal` (the number after the id's last '-'), 0 for none.
  std::int64_t last_receipt(const std::string& store, const std::string& terminal);
  // ingest()'s steps (hq/ingest.cpp). The batch is the sender's own:
  // kFailedPrecondition when it names another terminal or carries ids that
  // are not the sender's.
  static core::Status check_sender(const std::string& store, const std::string& terminal,
                                   const sync::Batch& batch);
  // Every record prepared, outside the lock (only the programs are read
  // under it).
  core::Result<std::vector<Prepared>> prepare_batch(const sync::Batch& batch);
  // One record's verdict, and its writes when it is accepted.
  sync::RecordAnswer judge_and_apply(ExactlyOnce& once, const sync::TxnRecord& r,
                                     const Prepared& prep, const std::string& store,
                                     const std::string& terminal, std::int64_t now,
                                     BatchWork& batch);
  // The members, balances and store visits the batch gathered, written once.
  void write_batch_work(BatchWork& work, const std::string& store, std::int64_t now);
  // After the batch's transaction: the caches take what it wrote when it
  // committed, and forget it when it did not.
  void keep_committed_batch(bool committed);
  // A member HQ has no row for, as the record's terminal saw it, with its
  // opening balance booked.
  core::MemberState first_sight(const sync::TxnRecord& r, BatchWork& batch);
  // How many days to move a record's point dates (`day`, `expires`) and
  // what else it gave with a date, so that HQ can vouch for them, flagging
  // it, when the till's clock put it outside (docs/sync.md); 0 when not.
  date::days defend_dates(const sync::TxnRecord& r, std::int64_t now, core::LocalDays day,
                          std::optional<core::LocalDays> expires, const BatchWork& batch,
                          Flags& flags_out);
  void apply(const sync::TxnRecord& r, const Prepared& prep, const std::string& store,
             const std::string& terminal, std::int64_t now, BatchWork& batch, Flags& flags_out);
  // apply()'s steps. The batch's copy of member `id` (loaded, or, for the
  // record's own member seen for the first time, first_sight(); else an
  // empty state).
  core::MemberState& batch_member(const std::string& id, BatchWork& batch,
                                  const sync::TxnRecord* first_seen_in);
  // A referral's vouchers and counted uses for the referrer HQ has.
  void pay_referrer(const sync::TxnRecord& r, const Prepared& prep, core::LocalDays day,
                    BatchWork& batch, Flags& flags_out);
  // The record's member delta merged, its dated gifts moved by `shift`.
  std::vector<core::Conflict> merge_delta(const sync::TxnRecord& r, core::MemberState& member,
                                          date::days shift);
  using AccountDeltas = std::map<std::pair<std::string, std::string>, std::int64_t>;
  void post(const std::vector<core::Entry>& entries, BatchWork* batch);
  void post_balances(const AccountDeltas& deltas);
  // A return or void updates what every store knows of its receipt; a line
  // taken back twice (at two offline stores) is flagged.
  void track_return(const sync::TxnRecord& r, const core::MemberState& member, Flags& flags_out);
  void flag(const std::string& txn, const std::string& member, core::FlagKind kind,
            const std::string& detail, Flags& flags_out);
  // Appends `c` to the feed under `key`; `store` empty means every store.
  // `member`: the member it is about (the feed sends it where they are held).
  void change(const sync::ChangeData& c, const std::string& key, const std::string& store = "",
              const std::string& member = "");
  // The same with the payload as text already (a member change's empty
  // payload, a receipt as sold): `kind` is the struct's kKind.
  void change_text(std::string_view kind, const std::string& key, const std::string& payload,
                   const std::string& store = "", const std::string& member = "");
  std::optional<core::MemberState> load_member(const std::string& id, BatchWork* batch);
  // The cached state of `id` when the cache holds row version `version`.
  const core::MemberState* cached_member(const std::string& id, std::int64_t version) const;
  void save_member(const core::MemberState& m, BatchWork* batch);
  // A member change's payload: HQ writes it empty and the feed reads the
  // member's row instead (changes()), so a state is stored once, not twice.
  static constexpr std::string_view kMemberFromRow = "";
  // Writes the state and its feed change; the row's new version.
  std::int64_t write_member(const core::MemberState& m, BatchWork* batch);
  std::shared_ptr<const core::Program> program(const std::string& id, std::int64_t version);
  // kInvalidArgument naming `text` when `day` has begun nowhere yet.
  core::Status day_has_come(core::LocalDays day, const std::string& text) const;
  // The version in force now (a later one may be published for a future
  // time); kFailedPrecondition before any is.
  core::Result<std::shared_ptr<const core::Program>> program_in_force();
  // `event`: the event's request, {"event": "period_end"} and the like.
  void job_transaction(const core::Program& p, core::MemberState& m, const Json& event,
                       const std::string& txn_id, const std::string& day, Json& summary);

  SqlConn& db_;
  // What an ingest keeps while it runs, so that each member and account is
  // read and written once per batch, not per record.
  struct BatchWork {
    std::map<std::string, core::MemberState> touched;  // written at the end
    AccountDeltas balances;                            // added at the end
    // Each member row the batch may read: as it was when the batch began
    // (nullopt: none), read 100 at a time up front.
    std::unordered_map<std::string, std::optional<MemberRow>> rows;
    std::set<std::string> visitors;  // members of the batch's transactions
    std::int64_t registered_at = 0;  // the terminal's, HQ's clock
  };
  void prefetch_members(const sync::Batch& batch, BatchWork& work);
  // Logs a terminal's clock going off (and hourly while it stays off) and
  // coming right; `skew` is its clock minus HQ's.
  void note_clock(const std::string& terminal, std::int64_t skew, std::int64_t now);
  std::map<std::string, std::int64_t> clock_warned_;  // terminal -> last warning
  // Members as last committed, by id, with their row's version: an ingest
  // reads a member's state document only when the row's version moved
  // (another process or an admin command wrote it). Filled only from
  // ingests that committed (pending_ holds the current one's); bounded.
  struct CachedMember {
    std::int64_t version = 0;
    core::MemberState state;
  };
  std::unordered_map<std::string, CachedMember> member_cache_;
  std::unordered_map<std::string, CachedMember> pending_;
  static constexpr std::size_t kMemberCacheSize = 50'000;
  std::map<std::pair<std::string, std::int64_t>, std::shared_ptr<const core::Program>> programs_;
  Clock clock_;
  // Recursive: once() holds it around a write that takes it again.
  std::recursive_mutex mutex_;
  std::atomic<MemberFeed> member_feed_{MemberFeed::kAll};
  // "member\nstore" pairs known to be in member_stores (committed), so an
  // ingest writes a visit once, not per batch; bounded.
  std::unordered_set<std::string> visits_;
  std::vector<std::string> pending_visits_;  // the current ingest's, until it commits
  static constexpr std::size_t kVisitsCacheSize = 200'000;
  std::unique_ptr<SqlConn> feed_db_;  // see serve_feed_from()
  std::mutex feed_mutex_;
  // Runs `read` on the feed's connection (or, without one, on the ledger's
  // own under its lock); a database error is kUnavailable.
  core::Result<Json> feed_read(const std::function<Json(SqlConn&)>& read);
};

}  // namespace loyalty::hq
