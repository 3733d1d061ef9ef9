// The terminal's SQLite file: programs, the member cache, committed
// transactions with their ledger entries, the outbox, reward stock and the
// sync state. One writer connection (writes group-committed in IMMEDIATE
// transactions with synchronous=FULL before anyone is told) and one reader
// connection, so quotes read while a commit is being made durable (WAL).
//
// Thread-safety: read() and write() serialise on their own mutexes; the
// functions below take the Db they are handed and must run inside one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/ledger.h"
#include "core/member.h"
#include "core/result.h"
#include "platform/log.h"
#include "platform/sqlite.h"

namespace loyalty::terminal {

class Store {
 public:
  // Opens or creates `path`, applying migrations; a newer schema is refused.
  [[nodiscard]] static core::Result<std::unique_ptr<Store>> open(const std::string& path);

  // Runs `f` under the reader lock. SQLite failures become kUnavailable.
  template <typename T>
  core::Result<T> read(const std::function<core::Result<T>(platform::Db&)>& f);
  // Runs `f` inside a write transaction; its changes are kept only when it
  // succeeds, and write() returns only after they are durable. Concurrent
  // writers are committed together (group commit, as leveldb's writer queue):
  // the first waiting caller runs a batch, each write in its own SAVEPOINT so
  // a refusal undoes only its own changes, then one COMMIT (one fsync)
  // makes the whole batch durable before anyone is answered.
  template <typename T>
  core::Result<T> write(const std::function<core::Result<T>(platform::Db&)>& f);

  // Transactions per COMMIT so far (for the metrics): commits / batches.
  std::uint64_t writes() const { return writes_; }
  std::uint64_t batches() const { return batches_; }

 private:
  struct Job {
    std::function<bool(platform::Db&)> run;  // false: refused, rolled back
    std::optional<core::Error> storage;      // set when the batch's COMMIT failed
    bool done = false;
  };
  Store(platform::Db w, platform::Db r) : writer_(std::move(w)), reader_(std::move(r)) {}
  // Queues `job` and returns once it is committed or refused.
  void submit(Job& job);

  std::mutex read_mutex_;
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<Job*> queue_;
  std::atomic<std::uint64_t> writes_{0}, batches_{0};
  platform::Db writer_;
  platform::Db reader_;
};

core::Error storage_error(const platform::SqliteError& e);

template <typename T>
core::Result<T> Store::read(const std::function<core::Result<T>(platform::Db&)>& f) {
  std::lock_guard lock(read_mutex_);
  try {
    platform::Stmt(reader_, "BEGIN").exec();
    auto r = f(reader_);
    platform::Stmt(reader_, "COMMIT").exec();
    return r;
  } catch (const platform::SqliteError& e) {
    sqlite3_exec(reader_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    return std::unexpected(storage_error(e));
  } catch (const core::DataLoss& e) {
    platform::fail_stop(e.what());
  } catch (const std::exception& e) {
    // A bug or unreadable data: end the read, report, keep serving.
    sqlite3_exec(reader_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    return core::fail(core::ErrorCode::kInternal, e.what());
  }
}

template <typename T>
core::Result<T> Store::write(const std::function<core::Result<T>(platform::Db&)>& f) {
  std::optional<core::Result<T>> result;
  Job job;
  job.run = [&](platform::Db& db) {
    try {
      result = f(db);
    } catch (const platform::SqliteError& e) {
      result = std::unexpected(storage_error(e));
    } catch (const core::DataLoss& e) {
      platform::fail_stop(e.what());
    } catch (const std::exception& e) {
      // Never let one job's failure escape into the batch leader's thread:
      // its SAVEPOINT is rolled back and the others still commit.
      result = core::fail(core::ErrorCode::kInternal, e.what());
    }
    return result->has_value();
  };
  submit(job);
  if (job.storage) return std::unexpected(*job.storage);
  return std::move(*result);
}

// --- rows -----------------------------------------------------------------

struct MemberRow {
  std::string state_text;  // `state` as stored, to detect a change
  std::string id;
  std::string card_number;
  std::string phone;
  std::string name;
  bool blocked = false;
  // HQ's feed has sent this member (hq_state is set): HQ has its state, so
  // an upload need not carry the whole of it.
  bool known_at_hq = false;
  core::MemberState state;
};

enum class MemberKey { kId, kCard, kPhone };
std::optional<MemberRow> find_member(platform::Db& db, MemberKey key, const std::string& value);
void insert_member(platform::Db& db, const MemberRow& m, std::int64_t now);
// Gives a referred member's state the view of their referrer this till
// holds (id, tier on `day`, counters), which referral rules read. Without
// the referrer here, rules that need them do not fire.
void attach_referrer(platform::Db& db, core::MemberState& m, core::LocalDays day, bool standalone);
void save_member_state(platform::Db& db, const std::string& id, const std::string& state_json,
                       std::int64_t now);

struct ProgramRow {
  std::string body;
  std::int64_t version = 0;
  std::int64_t effective_from = 0;
};
// Installs a version if it is not there yet; returns whether it was new.
bool install_program(platform::Db& db, const std::string& program_id, std::int64_t version,
                     std::int64_t effective_from, const std::string& body, std::int64_t now);

struct TxnRow {
  std::string txn_id;
  std::int64_t seq = 0;
  std::string idem_key;
  std::string body_hash;
  std::string kind;
  std::string member_id;
  std::string business_day;
  // The day whose offline allowances a redemption counts against, by the
  // time the allowances trust (Checkout::allowance_clock); business_day
  // when empty.
  std::string allowance_day;
  std::string local_time;
  std::string zone;
  std::int64_t committed_at = 0;
  std::string program_id;
  std::int64_t program_version = 0;
  std::int64_t points_earned = 0;
  std::int64_t points_redeemed = 0;
  bool offline = false;
  std::string request;
  std::string member_before;
  std::string response;
  std::optional<std::string> return_basis;
  std::optional<std::string> return_of;
  std::optional<std::string> voided_by;
  std::optional<std::string> delta;  // core::MemberDelta as JSON
  std::optional<std::string> points_expire_on;
  std::string staff_id;  // who made it; empty when not known
};

std::optional<TxnRow> find_txn(platform::Db& db, const std::string& txn_id);
std::optional<TxnRow> find_txn_by_key(platform::Db& db, const std::string& idem_key);
// Inserts the transaction, its entries and its outbox row.
void insert_txn(platform::Db& db, const TxnRow& t, const std::vector<core::Entry>& entries);
void update_return_basis(platform::Db& db, const std::string& txn_id, const std::string& basis);
void mark_voided(platform::Db& db, const std::string& txn_id, const std::string& by);
// The next upload sequence number: contiguous, one per committed transaction
// (stored in meta; call inside write()).
std::int64_t next_seq(platform::Db& db);
// Receipt numbers are handed out before the write (so the engine's work can
// happen outside it); the highest one used is kept so a restart continues
// after it. A refused commit leaves a gap in receipt numbers, never in seq.
std::int64_t last_receipt(platform::Db& db);
void note_receipt(platform::Db& db, std::int64_t number);

// Offline redemptions already made on `day` (member empty: whole terminal).
std::int64_t offline_points_redeemed(platform::Db& db, const std::string& day,
                                     const std::string& member_id);
// Member points committed here that HQ has not acknowledged yet.
std::int64_t unsynced_points(platform::Db& db, const std::string& member_id);

// Member points of this terminal's transactions after sequence `seq`
// (those HQ had not applied when it answered a live check).
std::int64_t points_after_seq(platform::Db& db, const std::string& member_id, std::int64_t seq);

struct OutboxStats {
  std::int64_t depth = 0;
  std::optional<std::int64_t> oldest_queued_at;
};
OutboxStats outbox_stats(platform::Db& db);

std::optional<std::string> meta_get(platform::Db& db, const std::string& key);
void meta_set(platform::Db& db, const std::string& key, const std::string& value);
std::optional<std::string> sync_get(platform::Db& db, const std::string& key);
void sync_set(platform::Db& db, const std::string& key, const std::string& value);

// Per-store stock of a catalog reward; nullopt when the store tracks none.
std::optional<std::int64_t> reward_stock(platform::Db& db, const std::string& reward_id);
void set_reward_stock(platform::Db& db, const std::string& reward_id, std::int64_t available);

// Whether HQ blocked this card number or static QR ("LM1:" + member id).
bool code_blocked(platform::Db& db, const std::string& code);

// --- what HQ's feed writes (terminal/sync_feed.cpp) ---------------------
// HQ's own state of the member (the base of the till's view).
void set_hq_state(platform::Db& db, const std::string& member_id, const std::string& state_json);
// How the member is found here; a card number or phone another member
// already has here is left as it was (the feed must not stop on it).
enum class MemberField { kCardNumber, kPhone, kName };
void set_member_field(platform::Db& db, const std::string& member_id, MemberField field,
                      const std::string& value);
void set_member_blocked(platform::Db& db, const std::string& member_id, bool blocked);
void set_code_blocked(platform::Db& db, const std::string& code, const std::string& member_id,
                      bool blocked);
void add_hq_flag(platform::Db& db, const std::string& txn_id, const std::string& member_id,
                 const std::string& kind, const std::string& detail, std::int64_t now);
void drop_hq_flag(platform::Db& db, const std::string& txn_id, const std::string& kind);
// Whether HQ acknowledged this till's transaction `txn_id`.
bool acked_by_hq(platform::Db& db, const std::string& txn_id);
// Returns made here of `txn_id` that have not reached HQ yet.
std::int64_t pending_returns_of(platform::Db& db, const std::string& txn_id);
// Another store's receipt, so a return of it can be taken here.
void put_remote_receipt(platform::Db& db, const std::string& txn_id, const std::string& member_id,
                        const std::string& return_basis);

// Records a dynamic code's nonce; false when it was seen before.
bool use_code_nonce(platform::Db& db, const std::string& nonce, std::int64_t expires_at,
                    std::int64_t now);

}  // namespace loyalty::terminal
