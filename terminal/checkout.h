// The checkout service behind loyaltyd's local API: scan, enroll, quote,
// commit, void, return, counter redemptions, status. It reads the member
// cache, runs the core engine, enforces the offline allowances, and writes
// the transaction, its ledger entries, the member's new state and the outbox
// row in one durable SQLite transaction before it answers.
//
// Thread-safety: all methods may be called concurrently; writes serialise in
// the Store, quotes run on the reader connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/json_reader.h"
#include "core/ledger.h"
#include "core/program.h"
#include "platform/crypto.h"
#include "platform/uptime.h"
#include "sync/feed.h"
#include "terminal/store.h"

namespace loyalty::terminal {

using core::Json;

struct TerminalSettings {
  std::string store_id = "S001";
  std::string terminal_id = "T01";
  std::string zone = "Asia/Shanghai";
  // No HQ configured: this terminal's ledger is the only one, so there is
  // nothing to be offline from and the offline allowances do not apply.
  bool standalone = true;
  // Used when the program leaves an allowance at 0 (not set).
  core::OfflineAllowance default_allowance{1000, 20000, 72};
  // A redemption of at least this many points asks HQ first (0: never),
  // waiting about live_check_timeout_ms for the answer; unanswered, the
  // offline allowances decide, as if the terminal were offline.
  std::int64_t live_check_points = 0;
  int live_check_timeout_ms = 1500;
  // HQ counts as reachable for this long after the last sync round that
  // succeeded, measured on the monotonic clock; after it, redemptions count
  // against the offline allowances even before a round has failed (HQ may
  // hang rather than refuse).
  std::int64_t online_freshness_ms = 5000;
};

using sync::LiveMember;

// An answer the API turns into RFC 9457 problem JSON.
struct ApiError {
  int status = 500;
  std::string type;  // stable slug, e.g. "unknown-member"
  std::string title;
  std::string detail;  // a sentence a cashier can act on
  std::string field;   // the offending input, if any
  Json extra = nullptr;
};

struct Reply {
  Json body;
  int status = 200;
  bool replayed = false;  // an idempotent repeat of an earlier commit
  std::string text;       // body already serialised (commits store it), if set
};

using ApiResult = std::expected<Reply, ApiError>;

struct CheckoutCounters {
  std::atomic<std::uint64_t> quotes{0}, commits{0}, replays{0}, conflicts{0}, returns{0}, voids{0},
      enrollments{0}, scans{0}, refused_offline{0}, errors{0}, live_confirmed{0}, live_refused{0},
      live_unanswered{0};
};

class Checkout {
 public:
  using Clock = std::function<std::int64_t()>;  // unix seconds

  Checkout(Store& store, TerminalSettings settings, std::optional<platform::SigningKey> hq_key,
           Clock clock);

  // Loads the installed program versions and the receipt counter; call once
  // at start.
  [[nodiscard]] core::Status load_programs();
  // Validates and installs a program version (a file in standalone mode, the
  // change feed later). Refused with every problem listed.
  [[nodiscard]] core::Result<bool> install_program(const std::string& body,
                                                   std::int64_t effective_from);
  // Adds members from a JSON array (seed data for standalone and demo use);
  // members already present are left alone. Returns how many were added.
  [[nodiscard]] core::Result<int> import_members(const Json& members);

  // Writes record `staff_id`, who made them at the till (the counter
  // page's signed-in staff, the POS's X-Cashier), when it is known.
  ApiResult scan(const Json& body);
  ApiResult enroll(const Json& body, const std::string& idem_key, const std::string& staff_id = {});
  ApiResult quote(const Json& body);
  ApiResult commit(const Json& body, const std::string& idem_key, const std::string& staff_id = {});
  ApiResult void_transaction(const std::string& txn_id, const std::string& idem_key,
                             const std::string& staff_id = {});
  ApiResult return_lines(const Json& body, const std::string& idem_key,
                         const std::string& staff_id = {});
  ApiResult transaction(const std::string& txn_id);
  ApiResult member(const std::string& member_id);
  ApiResult outbox(std::int64_t limit);
  ApiResult rewards();
  // The program in force as a till needs it: id, version, name, currency,
  // the activities its rules name, and the passes it sells.
  ApiResult program_summary();
  ApiResult set_stock(const std::string& reward_id, const Json& body);
  Json status();
  std::string metrics_text();

  const CheckoutCounters& counters() const { return counters_; }
  // Told after each new durable transaction (sync uploads soon after).
  void set_commit_listener(std::function<void()> f) { on_commit_ = std::move(f); }
  // Asks HQ about a member (the sync agent's live_member); used for
  // redemptions of settings().live_check_points or more.
  using LiveCheck = std::function<core::Result<LiveMember>(const std::string& member_id)>;
  void set_live_check(LiveCheck f) { live_check_ = std::move(f); }
  // Fetches a member this terminal does not hold from HQ into the cache (the
  // sync agent's lookup_member); a scan that finds nobody asks it once.
  using MemberLookup = std::function<core::Status(const std::string& by, const std::string& value)>;
  void set_member_lookup(MemberLookup f) { member_lookup_ = std::move(f); }
  // HQ holds receipts of this terminal up to `last` (its database was
  // restored from an older backup): receipts not yet handed out continue
  // after it.
  void raise_receipts_to(std::int64_t last);
  const TerminalSettings& settings() const { return settings_; }
  // The monotonic clock the offline allowances trust (platform::uptime_now
  // unless a test or the simulator sets its own); set before use.
  using UptimeClock = std::function<platform::Uptime()>;
  void set_uptime(UptimeClock f) { uptime_ = std::move(f); }
  // A sync round succeeded at `now` (this terminal's wall clock), with
  // HQ's clock `skew` seconds behind it: recorded with the monotonic clock,
  // inside the caller's write transaction.
  void note_contact(platform::Db& db, std::int64_t now, std::int64_t skew);

 private:
  // The last successful contact with HQ, as note_contact() kept it.
  struct Contact {
    std::int64_t at = 0;     // this terminal's wall clock then
    std::int64_t hq_at = 0;  // HQ's clock then
    std::string boot;
    std::int64_t uptime_ms = 0;
  };
  std::optional<Contact> last_contact(platform::Db& db);
  // The time the offline allowances go by. Since the last contact, in this
  // boot: HQ's time then plus the monotonic time since, whatever the wall
  // clock says (setting it forward opens no new day of allowances, setting
  // it back hides no hours offline). Without such a contact: the wall clock.
  struct AllowanceClock {
    std::int64_t now = 0;
    std::optional<std::int64_t> since;  // the last contact on the same scale
    bool measured = false;              // from the monotonic clock
    std::string day;                    // store-local date of `now`
  };
  AllowanceClock allowance_clock(platform::Db& db, std::int64_t wall_now);
  // A commit being made: parsed inputs and where it will be recorded.
  struct CommitCtx {
    std::string member_id;
    core::Request req;
    std::int64_t now = 0;
    std::shared_ptr<const core::Program> program;
    std::string day;
    const Json* body = nullptr;
    std::string idem_key, kind, hash;
    std::string staff_id;
    // HQ's answer for a large redemption; nullopt when none was asked for.
    std::optional<core::Result<LiveMember>> live;
  };
  std::shared_ptr<const core::Program> program_at(std::int64_t now);
  // The first installed version that takes effect after `now`, with its time.
  std::optional<std::pair<std::int64_t, std::shared_ptr<const core::Program>>> program_after(
      std::int64_t now);
  ApiResult reverse(const std::string& receipt_id, std::vector<core::ReturnLine> lines,
                    bool is_void, const Json& body, const std::string& idem_key,
                    const std::string& staff_id);
  std::optional<ApiError> prepare(const Json& body, CommitCtx& c, bool internal = false);
  // The engine's part of a commit, worked out against one version of the
  // member (`state_text`).
  struct Worked {
    std::string state_text;
    core::Outcome outcome;
    core::Committed committed;
    core::MemberState after;
    std::string before_text, after_text, return_basis;
    Json outcome_json, entries_json;
  };
  core::Result<Worked> work_out(const core::Program& p, const MemberRow& m,
                                const core::Request& req);
  // Works a commit out against the member as the reader sees it, before
  // queueing the write; nullopt when there is nothing to gain.
  std::optional<Worked> work_out_early(const CommitCtx& c);
  // Runs inside a write transaction; `refusal` is set when it says no.
  core::Result<Reply> commit_in(platform::Db& db, CommitCtx& c, std::optional<ApiError>& refusal,
                                std::optional<Worked> early = std::nullopt);
  ApiResult commit_request(const Json& body, const std::string& idem_key, const std::string& kind,
                           const std::string& hash_scope, const std::string& staff_id);
  // `uncounted` are points of a transaction not inserted yet.
  Json member_summary(platform::Db& db, const MemberRow& m, const core::Program& p,
                      std::int64_t now, std::int64_t uncounted = 0);
  // Completes a commit's answer (member summary, receipt), stores it with the
  // transaction, its entries and its outbox row, and returns it.
  Reply record(platform::Db& db, TxnRow& t, Json answer, const MemberRow& m, const core::Program& p,
               const std::vector<core::Entry>& entries);
  // A redemption of `points` while the allowances apply (`applies`: the
  // terminal is offline, or HQ did not answer a live check), read once by
  // the caller so that the check and the recorded `offline` agree.
  std::optional<ApiError> check_offline_allowance(platform::Db& db, const core::Program& p,
                                                  const std::string& member_id, std::int64_t points,
                                                  const AllowanceClock& clock, std::int64_t now,
                                                  const char* redeem_field, bool applies);
  // A redemption of `points` against HQ's answer: refused when HQ blocked
  // the member or has fewer points for them than asked.
  std::optional<ApiError> check_live(platform::Db& db, const LiveMember& live,
                                     const std::string& member_id, std::int64_t points,
                                     core::LocalDays today, const char* redeem_field);
  bool offline(platform::Db& db);
  // The offline allowances of `p` (or this terminal's defaults) on the
  // allowance clock's day: what a member and the terminal may still redeem.
  struct OfflineLeft {
    std::int64_t per_member = 0, per_terminal = 0, member_left = 0, terminal_left = 0;
  };
  OfflineLeft offline_left(platform::Db& db, const core::Program& p, const std::string& member_id,
                           const std::string& day);
  std::string new_txn_id(std::int64_t seq) const;

  Store& store_;
  TerminalSettings settings_;
  std::optional<platform::SigningKey> hq_key_;
  Clock clock_;
  UptimeClock uptime_ = platform::uptime_now;
  std::mutex programs_mutex_;
  std::vector<std::pair<std::int64_t, std::shared_ptr<const core::Program>>> programs_;
  CheckoutCounters counters_;
  std::function<void()> on_commit_;
  LiveCheck live_check_;
  MemberLookup member_lookup_;
  std::atomic<std::int64_t> next_receipt_{0};  // last receipt number handed out
  std::int64_t started_at_ = 0;
};

ApiError storage_problem(const core::Error& e);

}  // namespace loyalty::terminal
