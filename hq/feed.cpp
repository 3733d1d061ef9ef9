// HqLedger's change feed: what every store's terminals pull (docs/sync.md,
// "Change feed"), member lookups for a first visit and live checks.
//
// Invariants it keeps:
// - Changes are appended in the transaction that made them, so a change is
//   served only once what it describes is committed; cursors only increase.
// - Of a member's changes only the newest is served, read with the member's
//   row in the same statement (each carries the whole state).
// - A store gets what is for every store and what is its own; with the
//   visited member feed, what is about a member only where they are held.
// - Reads run on their own connection when there is one (serve_feed_from),
//   so a feed read neither waits for an ingest nor holds one up.
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

void HqLedger::change(const sync::ChangeData& c, const std::string& key, const std::string& store,
                      const std::string& member) {
  change_text(sync::kind_of(c), key, sync::to_json(c).dump(), store, member);
}

void HqLedger::change_text(std::string_view kind, const std::string& key,
                           const std::string& payload, const std::string& store,
                           const std::string& member) {
  const auto or_null = [](const std::string& v) {
    return v.empty() ? SqlParam{nullptr} : SqlParam{v};
  };
  db_.defer(
      "INSERT INTO changes(kind, key, payload, created_at, store_id, member_id) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      {std::string(kind), key, payload, clock_(), or_null(store), or_null(member)});
}

void HqLedger::serve_feed_from(std::unique_ptr<SqlConn> reader) {
  std::lock_guard lock(feed_mutex_);
  feed_db_ = std::move(reader);
}

core::Result<Json> HqLedger::feed_read(const std::function<Json(SqlConn&)>& read) {
  std::unique_lock feed_lock(feed_mutex_);
  std::unique_lock ledger_lock(mutex_, std::defer_lock);
  if (!feed_db_) ledger_lock.lock();  // the ledger's own connection
  try {
    return read(feed_db_ ? *feed_db_ : db_);
  } catch (const SqlError& e) {
    return refused(core::ErrorCode::kUnavailable, e.what());
  }
}

core::Result<Json> HqLedger::live_member(const std::string& member_id, const std::string& store,
                                         const std::string& terminal) {
  bool found = false;
  auto out = feed_read([&](SqlConn& db) {
    const auto rows = db.query(
        "SELECT m.state, m.blocked, (SELECT t.next_seq FROM terminals t WHERE t.store_id = ?2 "
        "AND t.terminal_id = ?3) FROM members m WHERE m.id = ?1",
        {member_id, store, terminal});
    if (rows.empty()) return Json();
    found = true;
    const auto& row = rows[0];
    return Json{{"member_id", member_id},
                {"blocked", row.integer(1) != 0},
                {"applied_seq", row.is_null(2) ? 0 : row.integer(2) - 1},
                {"member", Json::parse(row.text(0))}};
  });
  if (out && !found)
    return core::fail(core::ErrorCode::kNotFound, "HQ has no member " + member_id + " yet");
  return out;
}

core::Result<Json> HqLedger::lookup_member(const std::string& by, const std::string& value,
                                           const std::string& store) {
  if (by != "member_id" && by != "card_number" && by != "phone")
    return core::invalid(by, "look a member up by member_id, card_number or phone");
  const std::string column = by == "member_id" ? "id" : by;
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    const auto rows = db_.query(std::string("SELECT id, state, ") + kMemberRowColumns +
                                    " FROM members WHERE " + column + " = ?1",
                                {value});
    if (rows.empty())
      return core::fail(core::ErrorCode::kNotFound, "HQ has no member with this " + by);
    const auto id = rows[0].text(0);
    // From now on the store holds the member: its feed carries their changes.
    db_.exec(
        "INSERT INTO member_stores(member_id, store_id, since) VALUES (?1, ?2, ?3) "
        "ON CONFLICT DO NOTHING",
        {id, store, clock_()});
    Json items = Json::array();
    const auto add = [&](std::string_view kind, const std::string& key, Json data) {
      items.push_back({{"cursor", static_cast<std::int64_t>(items.size()) + 1},
                       {"kind", std::string(kind)},
                       {"key", key},
                       {"data", std::move(data)}});
    };
    add(sync::MemberChange::kKind, id,
        member_change_data(id, Json::parse(rows[0].text(1)), member_row(rows[0], 2)));
    for (const auto& c : db_.query("SELECT code FROM blocked_codes WHERE member_id = ?1", {id}))
      add(sync::CodeChange::kKind, c.text(0), sync::to_json(sync::CodeChange{c.text(0), id, true}));
    for (const auto& f : db_.query("SELECT txn_id, kind, detail FROM flags WHERE member_id = ?1 "
                                   "AND resolved_at IS NULL ORDER BY id",
                                   {id}))
      add(sync::FlagChange::kKind, f.text(0),
          sync::to_json(sync::FlagChange{f.text(0), id, f.text(1), f.text(2)}));
    // Each receipt's newest basis, newest receipts first, so a return of
    // a recent sale made elsewhere can be taken here.
    for (const auto& r :
         db_.query("SELECT c.key, c.payload FROM changes c WHERE c.member_id = ?1 AND c.kind = "
                   "'receipt' AND NOT EXISTS (SELECT 1 FROM changes n WHERE n.member_id = ?1 AND "
                   "n.kind = 'receipt' AND n.key = c.key AND n.cursor > c.cursor) "
                   "ORDER BY c.cursor DESC LIMIT 200",
                   {id}))
      add(sync::ReceiptChange::kKind, r.text(0), Json::parse(r.text(1)));
    return Json{{"changes", items},
                {"next_cursor", static_cast<std::int64_t>(items.size())},
                {"more", false}};
  });
}

core::Result<Json> HqLedger::changes(std::int64_t cursor, std::int64_t limit,
                                     const std::string& store) {
  return feed_read([&](SqlConn& db) {
    limit = std::clamp<std::int64_t>(limit, 1, 1000);
    // Only each member's newest change is served, so its data is the
    // member's row read in the same statement (the ingest that wrote the
    // change wrote the row too).
    auto rows = db.query(
        std::string("SELECT c.cursor, c.kind, c.key, c.payload, m.state, m.") + kMemberRowColumns +
            " FROM changes c LEFT JOIN members m ON c.kind = 'member' "
            "AND c.payload = '' AND m.id = c.key WHERE c.cursor > ?1 "
            "AND (c.store_id IS NULL OR c.store_id = ?3) "
            "AND NOT (c.kind = 'member' AND EXISTS (SELECT 1 FROM changes n WHERE n.kind = "
            "'member' AND n.key = c.key AND n.cursor > c.cursor)) "
            // With --member-feed visited, what is about a member goes only
            // where the member is held.
            "AND (?4 = 0 OR c.member_id IS NULL OR EXISTS (SELECT 1 FROM member_stores s "
            "WHERE s.member_id = c.member_id AND s.store_id = ?3)) "
            "ORDER BY c.cursor LIMIT ?2",
        {cursor, limit + 1, store, std::int64_t{member_feed_ == MemberFeed::kVisited ? 1 : 0}});
    Json items = Json::array();
    std::int64_t last = cursor;
    for (std::size_t i = 0; i < rows.size() && static_cast<std::int64_t>(i) < limit; ++i) {
      const auto& row = rows[i];
      last = row.integer(0);
      Json data;
      if (row.text(3) != kMemberFromRow) {
        data = Json::parse(row.text(3));
      } else if (row.is_null(4)) {
        // HQ never deletes a member row; a change without one is a bug.
        throw SqlError("member change " + std::to_string(last) + " has no member " + row.text(2));
      } else {
        data = member_change_data(row.text(2), Json::parse(row.text(4)), member_row(row, 5));
      }
      items.push_back(
          {{"cursor", last}, {"kind", row.text(1)}, {"key", row.text(2)}, {"data", data}});
    }
    return Json{{"changes", items},
                {"next_cursor", last},
                {"more", static_cast<std::int64_t>(rows.size()) > limit}};
  });
}

}  // namespace loyalty::hq
