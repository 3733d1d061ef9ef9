#include "hq/schema.h"

namespace loyalty::hq {

namespace {

std::vector<std::string> v1(const SqlConn& db) {
  const auto serial = db.autoincrement_key();
  return {
      "CREATE TABLE terminals(store_id TEXT NOT NULL, terminal_id TEXT NOT NULL, "
      "cert_fingerprint TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, "
      "next_seq BIGINT NOT NULL DEFAULT 1, last_seen BIGINT, clock_skew BIGINT, "
      "created_at BIGINT NOT NULL, PRIMARY KEY(store_id, terminal_id))",
      // Each terminal-generated transaction id, once and forever.
      "CREATE TABLE transactions(txn_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, "
      "terminal_id TEXT NOT NULL, seq BIGINT NOT NULL, member_id TEXT NOT NULL, "
      "kind TEXT NOT NULL, committed_at BIGINT NOT NULL, business_day TEXT NOT NULL, "
      "program_id TEXT NOT NULL, program_version BIGINT NOT NULL, points_earned BIGINT NOT NULL, "
      "points_redeemed BIGINT NOT NULL, record_hash TEXT NOT NULL, record TEXT NOT NULL, "
      "received_at BIGINT NOT NULL, UNIQUE(store_id, terminal_id, seq))",
      "CREATE TABLE entries(id TEXT PRIMARY KEY, txn_id TEXT NOT NULL, debit TEXT NOT NULL, "
      "credit TEXT NOT NULL, amount BIGINT NOT NULL CHECK(amount > 0), unit TEXT NOT NULL, "
      "lot TEXT NOT NULL, memo TEXT NOT NULL)",
      "CREATE INDEX entries_txn ON entries(txn_id)",
      "CREATE TABLE accounts(account TEXT NOT NULL, unit TEXT NOT NULL, balance BIGINT NOT NULL, "
      "PRIMARY KEY(account, unit))",
      "CREATE TABLE members(id TEXT PRIMARY KEY, card_number TEXT, phone TEXT, "
      "name TEXT NOT NULL DEFAULT '', blocked INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, "
      "version BIGINT NOT NULL)",
      "CREATE TABLE changes(cursor " + serial +
          ", kind TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL, "
          "created_at BIGINT NOT NULL)",
      "CREATE TABLE programs(program_id TEXT NOT NULL, version BIGINT NOT NULL, "
      "effective_from BIGINT NOT NULL, body TEXT NOT NULL, signature TEXT NOT NULL, "
      "published_at BIGINT NOT NULL, PRIMARY KEY(program_id, version))",
      "CREATE TABLE flags(id " + serial +
          ", txn_id TEXT NOT NULL, member_id TEXT NOT NULL, kind TEXT NOT NULL, "
          "detail TEXT NOT NULL, created_at BIGINT NOT NULL)",
      "CREATE INDEX flags_member ON flags(member_id)",
      "CREATE TABLE audit(id " + serial +
          ", actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL, "
          "created_at BIGINT NOT NULL)",
  };
}

// Migration `version`'s statements (v1 creates the tables).
std::vector<std::string> step(const SqlConn& db, int version) {
  switch (version) {
    case 1: return v1(db);
    case 2:
      // v2: a change may be for one store only (its stock allocation); the
      // feed gives each store what is for everyone plus what is its own.
      return {"ALTER TABLE changes ADD COLUMN store_id TEXT",
              // The feed serves only the newest change of each member.
              "CREATE INDEX changes_kind_key ON changes(kind, key, cursor)"};
    case 3:
      // v3: a single code (a lost card, a leaked static QR) can be blocked
      // while the member goes on with another.
      return {
          "CREATE TABLE blocked_codes(code TEXT PRIMARY KEY, member_id TEXT NOT NULL, "
          "reason TEXT NOT NULL, blocked_at BIGINT NOT NULL)"};
    case 4:
      // v4: a stock delivery may carry its delivery note's number, so a
      // retried allocation is recorded once.
      return {
          "CREATE TABLE deliveries(delivery_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, "
          "terminal_id TEXT NOT NULL, reward_id TEXT NOT NULL, quantity BIGINT NOT NULL, "
          "created_at BIGINT NOT NULL)"};
    case 5:
      // v5: a flag someone has looked into is resolved, with who and why.
      return {"ALTER TABLE flags ADD COLUMN resolved_at BIGINT",
              "ALTER TABLE flags ADD COLUMN resolved_by TEXT",
              "ALTER TABLE flags ADD COLUMN resolution TEXT"};
    case 6:
      // v6: a voucher HQ revoked, so that a use of it at a store that had
      // not heard yet is flagged as such.
      return {
          "CREATE TABLE revoked_vouchers(code TEXT PRIMARY KEY, member_id TEXT NOT NULL, "
          "template_id TEXT NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL, "
          "revoked_at BIGINT NOT NULL)"};
    case 7:
      // v7: which stores hold each member (they sold to them or looked them
      // up), and the member each feed change is about, so that a store can
      // be sent only the members it holds (serve --member-feed visited).
      // Existing sales count as visits; existing member and block changes
      // get their member; older receipts and flags stay for every store.
      return {
          "CREATE TABLE member_stores(member_id TEXT NOT NULL, store_id TEXT NOT NULL, "
          "since BIGINT NOT NULL, PRIMARY KEY(member_id, store_id))",
          "INSERT INTO member_stores(member_id, store_id, since) SELECT member_id, store_id, "
          "MIN(received_at) FROM transactions GROUP BY member_id, store_id",
          "ALTER TABLE changes ADD COLUMN member_id TEXT",
          "UPDATE changes SET member_id = key WHERE kind IN ('member', 'block')",
          "CREATE INDEX changes_member ON changes(member_id, kind, cursor)"};
    case 8:
      // v8: what HQ refused as a conflict (a sale numbered by a terminal
      // restored from an older backup under an id HQ has, or a return of
      // such a sale): kept with its record for whoever settles it, and so
      // that a resend gets the same answer and a later return of it is
      // refused too.
      return {
          "CREATE TABLE refused_txns(txn_id TEXT NOT NULL, record_hash TEXT NOT NULL, "
          "store_id TEXT NOT NULL, terminal_id TEXT NOT NULL, seq BIGINT NOT NULL, "
          "kind TEXT NOT NULL, member_id TEXT NOT NULL, return_of TEXT, "
          "member_points BIGINT NOT NULL, reason TEXT NOT NULL, record TEXT NOT NULL, received_at "
          "BIGINT NOT NULL, "
          "PRIMARY KEY(txn_id, record_hash))",
          "CREATE INDEX refused_terminal ON refused_txns(store_id, terminal_id)"};
    case 9:
      // v9: a member found by card or phone number (a lookup from a store,
      // a blocked code, an import checking the number is nobody else's)
      // without reading every member.
      return {"CREATE INDEX members_card ON members(card_number)",
              "CREATE INDEX members_phone ON members(phone)"};
    case 10:
      // v10: each admin write sent with an Idempotency-Key, stored with what
      // it wrote, so a retried request is answered, not done twice.
      return {
          "CREATE TABLE admin_requests(idem_key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
          "status BIGINT NOT NULL, answer TEXT NOT NULL, created_at BIGINT NOT NULL)"};
    case 11:
      // v11: staff who sign in at store counters, with the stores they work
      // at (comma-separated) and their PIN's slow salted hash only.
      return {
          "CREATE TABLE staff(staff_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, "
          "pin_hash TEXT NOT NULL, stores TEXT NOT NULL, active INTEGER NOT NULL, "
          "updated_at BIGINT NOT NULL)"};
    case 12:
      // v12: who made each transaction at the till (a record's staff_id),
      // for support and finance to see.
      return {"ALTER TABLE transactions ADD COLUMN staff_id TEXT",
              "CREATE INDEX transactions_member ON transactions(member_id, committed_at)"};
    default: return {};
  }
}

std::int64_t schema_version(SqlConn& db) {
  auto rows = db.query("SELECT MAX(version) FROM schema_version");
  return rows.empty() || rows[0].is_null(0) ? 0 : rows[0].integer(0);
}

}  // namespace

core::Status migrate_hq(SqlConn& db) {
  try {
    // Up to date, as at every start but the first: no write lock to wait for.
    if (schema_version(db) == kHqSchemaVersion) return {};
  } catch (const SqlError&) {  // a new database: no schema_version yet
  }
  try {
    // Each step reads the version inside its own write transaction (SQLite's
    // write lock, PostgreSQL's advisory lock), so two processes starting at
    // once (serve and a CLI command) apply each migration once: the second
    // finds it done.
    for (int version = 0; version <= kHqSchemaVersion; ++version) {
      db.begin();
      if (version == 0) {
        db.exec("CREATE TABLE IF NOT EXISTS schema_version(version BIGINT NOT NULL)");
        const auto have = schema_version(db);
        if (have > kHqSchemaVersion) {
          db.rollback();
          return core::fail(core::ErrorCode::kFailedPrecondition,
                            "the HQ database has schema version " + std::to_string(have) +
                                " but this build knows only up to " +
                                std::to_string(kHqSchemaVersion) +
                                "; it was written by a newer release, install that release");
        }
      } else if (schema_version(db) < version) {
        for (const auto& stmt : step(db, version)) db.exec(stmt);
        db.exec("INSERT INTO schema_version(version) VALUES (?1)", {std::int64_t{version}});
      }
      db.commit();
    }
  } catch (const SqlError& e) {
    try {
      db.rollback();
    } catch (const SqlError&) {
    }
    return core::fail(core::ErrorCode::kUnavailable, std::string("HQ schema: ") + e.what());
  }
  return {};
}

}  // namespace loyalty::hq
