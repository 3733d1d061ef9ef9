#include "terminal/store.h"

#include "core/io_json.h"
#include "terminal/schema.h"

namespace loyalty::terminal {

using platform::Db;
using platform::Stmt;

core::Error storage_error(const platform::SqliteError& e) {
  const int primary = e.code() & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
    platform::fail_stop(std::string("the terminal's database is corrupt: ") + e.what());
  auto err =
      core::Error::make(core::ErrorCode::kUnavailable,
                        std::string("the terminal's database refused the write: ") + e.what());
  // A full disk refuses before anything reaches the log; any other error
  // at COMMIT may come after the log already holds the transaction.
  err.outcome_unknown = e.at_commit() && primary != SQLITE_FULL;
  return err;
}

core::Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  auto w = Db::open(path);
  if (!w) return std::unexpected(w.error());
  if (auto s = w->migrate(terminal_migrations()); !s) return std::unexpected(s.error());
  auto r = Db::open(path, false);
  if (!r) return std::unexpected(r.error());
  return std::unique_ptr<Store>(new Store(std::move(*w), std::move(*r)));
}

void Store::submit(Job& job) {
  std::unique_lock lock(queue_mutex_);
  queue_.push_back(&job);
  queue_cv_.wait(lock, [&] { return job.done || queue_.front() == &job; });
  if (job.done) return;
  // This caller leads: it commits everything queued so far.
  constexpr std::size_t kMaxBatch = 64;
  std::vector<Job*> batch(queue_.begin(),
                          queue_.begin() + static_cast<long>(std::min(queue_.size(), kMaxBatch)));
  lock.unlock();
  std::optional<core::Error> failed;
  try {
    platform::Tx tx(writer_);
    for (Job* j : batch) {
      platform::Stmt(writer_, "SAVEPOINT job").exec();
      if (!j->run(writer_)) {
        platform::Stmt(writer_, "ROLLBACK TO job").exec();
      }
      platform::Stmt(writer_, "RELEASE job").exec();
    }
    tx.commit();
  } catch (const platform::SqliteError& e) {
    // Nothing of the batch is durable: every writer in it is told so.
    failed = storage_error(e);
  }
  writes_ += batch.size();
  ++batches_;
  lock.lock();
  for (Job* j : batch) {
    if (failed) j->storage = failed;
    j->done = true;
    queue_.pop_front();
  }
  lock.unlock();
  queue_cv_.notify_all();
}

namespace {

MemberRow member_from(Stmt& s) {
  MemberRow m;
  m.state_text = s.text(5);
  m.id = s.text(0);
  m.card_number = s.text(1);
  m.phone = s.text(2);
  m.name = s.text(3);
  m.blocked = s.integer(4) != 0;
  m.known_at_hq = s.integer(6) != 0;
  auto state = core::member_from_json(core::Json::parse(m.state_text));
  // The cache is only written by this code; an unreadable row is a bug or a
  // corrupted file, and carrying on would give wrong balances.
  if (!state)
    throw core::DataLoss("member " + m.id + " has an unreadable state in the terminal's cache: " +
                         state.error().message);
  m.state = std::move(*state);
  return m;
}

std::optional<std::string> opt(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

}  // namespace

void attach_referrer(Db& db, core::MemberState& m, core::LocalDays day, bool standalone) {
  if (m.referred_by.empty() || m.referrer || m.referred_by == m.id) return;
  auto r = find_member(db, MemberKey::kId, m.referred_by);
  // Synced, only a referrer HQ has: points for one it lacks would start a
  // member at HQ without their opening balance.
  if (!r || (!standalone && !r->known_at_hq)) return;
  m.referrer = core::ReferrerView{r->state.id, r->state.tier_on(day), r->state.counters};
}

std::optional<MemberRow> find_member(Db& db, MemberKey key, const std::string& value) {
  static constexpr const char* kSql[] = {
      "SELECT id, card_number, phone, name, blocked, state, hq_state IS NOT NULL FROM members "
      "WHERE id = ?1",
      "SELECT id, card_number, phone, name, blocked, state, hq_state IS NOT NULL FROM members "
      "WHERE card_number = ?1",
      "SELECT id, card_number, phone, name, blocked, state, hq_state IS NOT NULL FROM members "
      "WHERE phone = ?1"};
  Stmt s(db, kSql[static_cast<int>(key)]);
  s.bind(1, value);
  if (!s.step()) return std::nullopt;
  return member_from(s);
}

void insert_member(Db& db, const MemberRow& m, std::int64_t now) {
  Stmt s(db,
         "INSERT INTO members(id, card_number, phone, name, blocked, state, updated_at) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  s.bind(1, m.id)
      .bind(2, opt(m.card_number))
      .bind(3, opt(m.phone))
      .bind(4, m.name)
      .bind(5, std::int64_t{m.blocked})
      .bind(6, core::member_to_json(m.state).dump())
      .bind(7, now);
  s.exec();
}

void save_member_state(Db& db, const std::string& id, const std::string& state_json,
                       std::int64_t now) {
  Stmt s(db, "UPDATE members SET state = ?2, updated_at = ?3 WHERE id = ?1");
  s.bind(1, id).bind(2, state_json).bind(3, now);
  if (s.exec() != 1) throw platform::SqliteError(SQLITE_NOTFOUND, "member " + id + " vanished");
}

bool install_program(Db& db, const std::string& program_id, std::int64_t version,
                     std::int64_t effective_from, const std::string& body, std::int64_t now) {
  Stmt s(db,
         "INSERT OR IGNORE INTO programs(program_id, version, effective_from, body, installed_at) "
         "VALUES (?1, ?2, ?3, ?4, ?5)");
  s.bind(1, program_id).bind(2, version).bind(3, effective_from).bind(4, body).bind(5, now);
  return s.exec() == 1;
}

namespace {

constexpr const char* kTxnColumns =
    "SELECT txn_id, seq, idem_key, body_hash, kind, member_id, business_day, local_time, zone, "
    "committed_at, program_id, program_version, points_earned, points_redeemed, offline, request, "
    "member_before, response, return_basis, return_of, voided_by, delta, points_expire_on, "
    "staff_id FROM transactions ";

std::optional<std::string> opt_col(Stmt& s, int col) {
  return s.is_null(col) ? std::nullopt : std::optional<std::string>(s.text(col));
}

std::optional<TxnRow> txn_where(Db& db, const std::string& where, const std::string& value) {
  Stmt s(db, std::string(kTxnColumns) + where);
  s.bind(1, value);
  if (!s.step()) return std::nullopt;
  TxnRow t;
  t.txn_id = s.text(0);
  t.seq = s.integer(1);
  t.idem_key = s.text(2);
  t.body_hash = s.text(3);
  t.kind = s.text(4);
  t.member_id = s.text(5);
  t.business_day = s.text(6);
  t.local_time = s.text(7);
  t.zone = s.text(8);
  t.committed_at = s.integer(9);
  t.program_id = s.text(10);
  t.program_version = s.integer(11);
  t.points_earned = s.integer(12);
  t.points_redeemed = s.integer(13);
  t.offline = s.integer(14) != 0;
  t.request = s.text(15);
  t.member_before = s.text(16);
  t.response = s.text(17);
  t.return_basis = opt_col(s, 18);
  t.return_of = opt_col(s, 19);
  t.voided_by = opt_col(s, 20);
  t.delta = opt_col(s, 21);
  t.points_expire_on = opt_col(s, 22);
  t.staff_id = opt_col(s, 23).value_or("");
  return t;
}

}  // namespace

std::optional<TxnRow> find_txn(Db& db, const std::string& txn_id) {
  return txn_where(db, "WHERE txn_id = ?1", txn_id);
}

std::optional<TxnRow> find_txn_by_key(Db& db, const std::string& idem_key) {
  return txn_where(db, "WHERE idem_key = ?1", idem_key);
}

void insert_txn(Db& db, const TxnRow& t, const std::vector<core::Entry>& entries) {
  Stmt s(db,
         "INSERT INTO transactions(txn_id, seq, idem_key, body_hash, kind, member_id, "
         "business_day, local_time, zone, committed_at, program_id, program_version, "
         "points_earned, points_redeemed, offline, request, member_before, response, "
         "return_basis, return_of, voided_by, delta, points_expire_on, allowance_day, staff_id) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
         "?18, ?19, ?20, NULL, ?21, ?22, ?23, ?24)");
  s.bind(1, t.txn_id)
      .bind(2, t.seq)
      .bind(3, t.idem_key)
      .bind(4, t.body_hash)
      .bind(5, t.kind)
      .bind(6, t.member_id)
      .bind(7, t.business_day)
      .bind(8, t.local_time)
      .bind(9, t.zone)
      .bind(10, t.committed_at)
      .bind(11, t.program_id)
      .bind(12, t.program_version)
      .bind(13, t.points_earned)
      .bind(14, t.points_redeemed)
      .bind(15, std::int64_t{t.offline})
      .bind(16, t.request)
      .bind(17, t.member_before)
      .bind(18, t.response)
      .bind(19, t.return_basis)
      .bind(20, t.return_of)
      .bind(21, t.delta)
      .bind(22, t.points_expire_on)
      .bind(23, t.allowance_day.empty() ? t.business_day : t.allowance_day);
  if (t.staff_id.empty())
    s.bind_null(24);
  else
    s.bind(24, t.staff_id);
  s.exec();
  Stmt e(db,
         "INSERT INTO entries(id, txn_id, debit, credit, amount, unit, lot, memo) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  for (const auto& en : entries) {
    e.bind(1, en.id)
        .bind(2, t.txn_id)
        .bind(3, en.debit)
        .bind(4, en.credit)
        .bind(5, en.amount)
        .bind(6, en.unit)
        .bind(7, en.lot)
        .bind(8, en.memo);
    e.exec();
  }
  Stmt o(db, "INSERT INTO outbox(seq, txn_id, queued_at) VALUES (?1, ?2, ?3)");
  o.bind(1, t.seq).bind(2, t.txn_id).bind(3, t.committed_at);
  o.exec();
}

void update_return_basis(Db& db, const std::string& txn_id, const std::string& basis) {
  Stmt s(db, "UPDATE transactions SET return_basis = ?2 WHERE txn_id = ?1");
  s.bind(1, txn_id).bind(2, basis);
  s.exec();
}

void mark_voided(Db& db, const std::string& txn_id, const std::string& by) {
  Stmt s(db, "UPDATE transactions SET voided_by = ?2 WHERE txn_id = ?1");
  s.bind(1, txn_id).bind(2, by);
  s.exec();
}

std::int64_t next_seq(Db& db) {
  const auto cur = meta_get(db, "last_seq");
  const std::int64_t next = cur ? std::stoll(*cur) + 1 : 1;
  meta_set(db, "last_seq", std::to_string(next));
  return next;
}

std::int64_t last_receipt(Db& db) {
  const auto v = meta_get(db, "last_receipt");
  return v ? std::stoll(*v) : 0;
}

void note_receipt(Db& db, std::int64_t number) {
  Stmt s(db,
         "INSERT INTO meta(key, value) VALUES ('last_receipt', ?1) ON CONFLICT(key) DO UPDATE "
         "SET value = CAST(MAX(CAST(value AS INTEGER), CAST(?1 AS INTEGER)) AS TEXT)");
  s.bind(1, std::to_string(number));
  s.exec();
}

std::int64_t offline_points_redeemed(Db& db, const std::string& day, const std::string& member_id) {
  Stmt s(db, member_id.empty() ? "SELECT COALESCE(SUM(points_redeemed), 0) FROM transactions "
                                 "WHERE allowance_day = ?1 AND offline = 1 AND points_redeemed > 0"
                               : "SELECT COALESCE(SUM(points_redeemed), 0) FROM transactions "
                                 "WHERE allowance_day = ?1 AND offline = 1 AND points_redeemed > 0 "
                                 "AND member_id = ?2");
  s.bind(1, day);
  if (!member_id.empty()) s.bind(2, member_id);
  s.step();
  return s.integer(0);
}

namespace {

// The member's point entries (credits minus debits) whose outbox rows match
// `outbox_filter` (a condition on `o`, with `param` as ?2 if given).
std::int64_t member_points_where(Db& db, const std::string& member_id,
                                 const std::string& outbox_filter,
                                 std::optional<std::int64_t> param = std::nullopt) {
  // From the member's entries (indexed by account) to the outbox, not the
  // other way round: the outbox can hold days of sales.
  Stmt s(db,
         "SELECT (SELECT COALESCE(SUM(e.amount), 0) FROM entries e JOIN outbox o "
         "ON o.txn_id = e.txn_id WHERE e.credit = ?1 AND e.unit = 'pts' AND " +
             outbox_filter +
             ") - (SELECT COALESCE(SUM(e.amount), 0) FROM entries e JOIN outbox o "
             "ON o.txn_id = e.txn_id WHERE e.debit = ?1 AND e.unit = 'pts' AND " +
             outbox_filter + ")");
  s.bind(1, "member:" + member_id);
  if (param) s.bind(2, *param);
  s.step();
  return s.integer(0);
}

}  // namespace

std::int64_t unsynced_points(Db& db, const std::string& member_id) {
  return member_points_where(db, member_id, "o.acked_at IS NULL AND o.refused IS NULL");
}

std::int64_t points_after_seq(Db& db, const std::string& member_id, std::int64_t seq) {
  return member_points_where(db, member_id, "o.seq > ?2 AND o.refused IS NULL", seq);
}

OutboxStats outbox_stats(Db& db) {
  Stmt s(db,
         "SELECT COUNT(*), MIN(queued_at) FROM outbox WHERE acked_at IS NULL AND refused IS NULL");
  s.step();
  OutboxStats o;
  o.depth = s.integer(0);
  if (!s.is_null(1)) o.oldest_queued_at = s.integer(1);
  return o;
}

namespace {

std::optional<std::string> kv_get(Db& db, const char* sql, const std::string& key) {
  Stmt s(db, sql);
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void kv_set(Db& db, const char* sql, const std::string& key, const std::string& value) {
  Stmt s(db, sql);
  s.bind(1, key).bind(2, value);
  s.exec();
}

}  // namespace

std::optional<std::string> meta_get(Db& db, const std::string& key) {
  return kv_get(db, "SELECT value FROM meta WHERE key = ?1", key);
}
void meta_set(Db& db, const std::string& key, const std::string& value) {
  kv_set(db,
         "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
         key, value);
}
std::optional<std::string> sync_get(Db& db, const std::string& key) {
  return kv_get(db, "SELECT value FROM sync_state WHERE key = ?1", key);
}
void sync_set(Db& db, const std::string& key, const std::string& value) {
  kv_set(db,
         "INSERT INTO sync_state(key, value) VALUES (?1, ?2) "
         "ON CONFLICT(key) DO UPDATE SET value = ?2",
         key, value);
}

std::optional<std::int64_t> reward_stock(Db& db, const std::string& reward_id) {
  Stmt s(db, "SELECT available FROM reward_stock WHERE reward_id = ?1");
  s.bind(1, reward_id);
  if (!s.step()) return std::nullopt;
  return s.integer(0);
}

void set_reward_stock(Db& db, const std::string& reward_id, std::int64_t available) {
  Stmt s(db,
         "INSERT INTO reward_stock(reward_id, available) VALUES (?1, ?2) "
         "ON CONFLICT(reward_id) DO UPDATE SET available = ?2");
  s.bind(1, reward_id).bind(2, available);
  s.exec();
}

void set_hq_state(Db& db, const std::string& member_id, const std::string& state_json) {
  Stmt s(db, "UPDATE members SET hq_state = ?2 WHERE id = ?1");
  s.bind(1, member_id).bind(2, state_json);
  s.exec();
}

void set_member_field(Db& db, const std::string& member_id, MemberField field,
                      const std::string& value) {
  const char* sql = field == MemberField::kCardNumber
                        ? "UPDATE OR IGNORE members SET card_number = ?2 WHERE id = ?1"
                    : field == MemberField::kPhone
                        ? "UPDATE OR IGNORE members SET phone = ?2 WHERE id = ?1"
                        : "UPDATE OR IGNORE members SET name = ?2 WHERE id = ?1";
  Stmt s(db, sql);
  s.bind(1, member_id).bind(2, value);
  s.exec();
}

void set_member_blocked(Db& db, const std::string& member_id, bool blocked) {
  Stmt s(db, "UPDATE members SET blocked = ?2 WHERE id = ?1");
  s.bind(1, member_id).bind(2, std::int64_t{blocked});
  s.exec();
}

void set_code_blocked(Db& db, const std::string& code, const std::string& member_id, bool blocked) {
  if (blocked) {
    Stmt s(db, "INSERT OR REPLACE INTO blocked_codes(code, member_id) VALUES (?1, ?2)");
    s.bind(1, code).bind(2, member_id);
    s.exec();
  } else {
    Stmt s(db, "DELETE FROM blocked_codes WHERE code = ?1");
    s.bind(1, code);
    s.exec();
  }
}

void add_hq_flag(Db& db, const std::string& txn_id, const std::string& member_id,
                 const std::string& kind, const std::string& detail, std::int64_t now) {
  Stmt s(db,
         "INSERT INTO hq_flags(txn_id, member_id, kind, detail, received_at) "
         "VALUES (?1, ?2, ?3, ?4, ?5)");
  s.bind(1, txn_id).bind(2, member_id).bind(3, kind).bind(4, detail).bind(5, now);
  s.exec();
}

void drop_hq_flag(Db& db, const std::string& txn_id, const std::string& kind) {
  Stmt s(db, "DELETE FROM hq_flags WHERE txn_id = ?1 AND kind = ?2");
  s.bind(1, txn_id).bind(2, kind);
  s.exec();
}

bool acked_by_hq(Db& db, const std::string& txn_id) {
  Stmt s(db, "SELECT acked_at IS NOT NULL FROM outbox WHERE txn_id = ?1");
  s.bind(1, txn_id);
  return s.step() && s.integer(0) != 0;
}

std::int64_t pending_returns_of(Db& db, const std::string& txn_id) {
  Stmt s(db,
         "SELECT COUNT(*) FROM transactions t JOIN outbox o ON o.txn_id = t.txn_id "
         "WHERE t.return_of = ?1 AND o.acked_at IS NULL AND o.refused IS NULL");
  s.bind(1, txn_id);
  s.step();
  return s.integer(0);
}

void put_remote_receipt(Db& db, const std::string& txn_id, const std::string& member_id,
                        const std::string& return_basis) {
  Stmt s(db,
         "INSERT OR REPLACE INTO remote_receipts(txn_id, member_id, return_basis) "
         "VALUES (?1, ?2, ?3)");
  s.bind(1, txn_id).bind(2, member_id).bind(3, return_basis);
  s.exec();
}

bool code_blocked(Db& db, const std::string& code) {
  Stmt s(db, "SELECT 1 FROM blocked_codes WHERE code = ?1");
  s.bind(1, code);
  return s.step();
}

bool use_code_nonce(Db& db, const std::string& nonce, std::int64_t expires_at, std::int64_t now) {
  Stmt purge(db, "DELETE FROM used_codes WHERE expires_at < ?1");
  purge.bind(1, now - 3600);
  purge.exec();
  Stmt s(db, "INSERT OR IGNORE INTO used_codes(nonce, expires_at) VALUES (?1, ?2)");
  s.bind(1, nonce).bind(2, expires_at);
  return s.exec() == 1;
}

}  // namespace loyalty::terminal
