#include "terminal/schema.h"

namespace loyalty::terminal {

namespace {

// v1: the cache, the transactions with their entries, and the outbox.
constexpr const char* kV1 = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE programs(
  program_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  effective_from INTEGER NOT NULL,      -- unix seconds
  body TEXT NOT NULL,
  installed_at INTEGER NOT NULL,
  PRIMARY KEY(program_id, version));
CREATE TABLE members(
  id TEXT PRIMARY KEY,
  card_number TEXT UNIQUE,
  phone TEXT UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  blocked INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,                  -- core::MemberState as JSON, local view
  updated_at INTEGER NOT NULL);
CREATE TABLE transactions(
  txn_id TEXT PRIMARY KEY,              -- receipt id, idempotency key up to HQ
  seq INTEGER NOT NULL UNIQUE,          -- per-terminal sequence
  idem_key TEXT NOT NULL UNIQUE,        -- the POS's Idempotency-Key
  body_hash TEXT NOT NULL,
  kind TEXT NOT NULL,                   -- purchase, event, redeem, enrollment, return, void
  member_id TEXT NOT NULL REFERENCES members(id),
  business_day TEXT NOT NULL,           -- store-local date
  local_time TEXT NOT NULL,
  zone TEXT NOT NULL,
  committed_at INTEGER NOT NULL,        -- unix seconds
  program_id TEXT NOT NULL,
  program_version INTEGER NOT NULL,
  points_earned INTEGER NOT NULL,
  points_redeemed INTEGER NOT NULL,
  offline INTEGER NOT NULL,
  request TEXT NOT NULL,                -- every input the engine read
  member_before TEXT NOT NULL,
  response TEXT NOT NULL,
  return_basis TEXT,                    -- purchases: what a later return reads
  return_of TEXT,
  voided_by TEXT);
CREATE TABLE entries(
  id TEXT PRIMARY KEY,
  txn_id TEXT NOT NULL REFERENCES transactions(txn_id),
  debit TEXT NOT NULL,
  credit TEXT NOT NULL,
  amount INTEGER NOT NULL CHECK(amount > 0),
  unit TEXT NOT NULL,
  lot TEXT NOT NULL DEFAULT '',
  memo TEXT NOT NULL DEFAULT '');
CREATE TABLE outbox(
  seq INTEGER PRIMARY KEY,
  txn_id TEXT NOT NULL UNIQUE REFERENCES transactions(txn_id),
  queued_at INTEGER NOT NULL,
  acked_at INTEGER);
CREATE TABLE reward_stock(reward_id TEXT PRIMARY KEY, available INTEGER NOT NULL CHECK(available >= 0));
CREATE TABLE used_codes(nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE sync_state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
)sql";

// v2: lookups the daily allowance and outbox queries need, and the ledger's
// append-only promise enforced by the database itself.
constexpr const char* kV2 = R"sql(
CREATE INDEX transactions_member_day ON transactions(member_id, business_day);
CREATE INDEX transactions_day ON transactions(business_day);
CREATE INDEX entries_txn ON entries(txn_id);
CREATE INDEX outbox_pending ON outbox(acked_at, seq);
CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER transactions_keep BEFORE DELETE ON transactions
  BEGIN SELECT RAISE(ABORT, 'committed transactions are kept'); END;
)sql";

// v3: what sync uploads and applies. Each transaction keeps its member delta
// (core/member_delta.h) and its lots' expiry; members keep HQ's state as of
// the feed cursor, so the local view is HQ's plus what HQ has not yet
// acknowledged; receipts from other stores can be returned here.
constexpr const char* kV3 = R"sql(
ALTER TABLE transactions ADD COLUMN delta TEXT;
ALTER TABLE transactions ADD COLUMN points_expire_on TEXT;
ALTER TABLE members ADD COLUMN hq_state TEXT;
CREATE TABLE remote_receipts(
  txn_id TEXT PRIMARY KEY,
  member_id TEXT NOT NULL,
  return_basis TEXT NOT NULL);
)sql";

// v4: what HQ flagged for a person to review (debt from an overdraft, a
// voucher used twice, a replay mismatch), as its feed delivered it, so the
// till shows it on the member and status counts it.
constexpr const char* kV4 = R"sql(
CREATE TABLE hq_flags(
  id INTEGER PRIMARY KEY,
  txn_id TEXT NOT NULL,
  member_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL,
  received_at INTEGER NOT NULL);
CREATE INDEX hq_flags_member ON hq_flags(member_id);
)sql";

// v5: lookups that stay cheap however long the outbox grows during an
// outage: a member's entries by account (their pending points), and the
// day's offline redemptions (the allowances) without reading every sale.
constexpr const char* kV5 = R"sql(
CREATE INDEX entries_credit ON entries(credit, unit);
CREATE INDEX entries_debit ON entries(debit, unit);
CREATE INDEX transactions_offline_redeemed ON transactions(business_day, member_id)
  WHERE offline = 1 AND points_redeemed > 0;
)sql";

// v6: single codes HQ blocked (a lost card, a leaked static QR): refused at
// the scan while the member's other codes go on working.
constexpr const char* kV6 = R"sql(
CREATE TABLE blocked_codes(
  code TEXT PRIMARY KEY,
  member_id TEXT NOT NULL);
)sql";

// v7: a sale HQ refused as a conflict (its receipt id names another
// transaction at HQ: sold on a database restored from an older backup)
// keeps HQ's reason and leaves the pending work: not uploaded again, not in
// the member's unsynced points, not in the outbox depth.
constexpr const char* kV7 = R"sql(
ALTER TABLE outbox ADD COLUMN refused TEXT;
)sql";

// v8: the offline allowances count by the day of the time they trust (HQ's
// clock at the last contact plus monotonic time since), not the wall
// clock's day: setting the clock forward opens no new day of allowances.
constexpr const char* kV8 = R"sql(
ALTER TABLE transactions ADD COLUMN allowance_day TEXT;
UPDATE transactions SET allowance_day = business_day;
CREATE INDEX transactions_offline_allowance ON transactions(allowance_day, member_id)
  WHERE offline = 1 AND points_redeemed > 0;
)sql";

// v9: the staff who sign in at the counter page, as HQ's feed sent them
// (PIN hash only), with their run of wrong PINs and the lock it set.
constexpr const char* kV9 = R"sql(
CREATE TABLE staff(
  staff_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  pin_hash TEXT NOT NULL,
  active INTEGER NOT NULL,
  failures INTEGER NOT NULL DEFAULT 0,
  locked_until INTEGER NOT NULL DEFAULT 0);
)sql";

// v10: who made each transaction at the till: the counter page's signed-in
// staff, or the cashier the POS names (X-Cashier); uploaded to HQ.
constexpr const char* kV10 = R"sql(
ALTER TABLE transactions ADD COLUMN staff_id TEXT;
)sql";

constexpr platform::Migration kMigrations[] = {{1, kV1}, {2, kV2}, {3, kV3}, {4, kV4}, {5, kV5},
                                               {6, kV6}, {7, kV7}, {8, kV8}, {9, kV9}, {10, kV10}};

}  // namespace

std::span<const platform::Migration> terminal_migrations() {
  return kMigrations;
}

}  // namespace loyalty::terminal
