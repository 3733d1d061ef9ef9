#include "hq/ledger_internal.h"

#include <algorithm>
#include <cctype>

#include "core/io_json.h"

namespace loyalty::hq::detail {

core::Result<Json> refused(core::ErrorCode code, std::string message) {
  return std::unexpected(core::Error::make(code, std::move(message)));
}

bool auditable(const std::string& reason) {
  return std::count_if(reason.begin(), reason.end(),
                       [](unsigned char c) { return std::isspace(c) == 0; }) >= 5;
}

core::Result<Json> db_failure(const SqlError& e) {
  return core::fail(core::ErrorCode::kUnavailable, std::string("HQ database: ") + e.what());
}

// The record as HQ stores and hashes it: the text it arrived as.
std::string record_text(const sync::TxnRecord& r) {
  return r.text.empty() ? sync::record_to_json(r).dump() : r.text;
}

// The member as the terminal saw it; record_from_json has already read it.
std::optional<core::MemberState> before_of(const sync::TxnRecord& r) {
  if (r.before) return r.before;
  auto m = core::member_from_json(r.member_before);
  if (!m) return std::nullopt;
  return std::move(*m);
}

// Rows for `ids` from `select` ("SELECT ... FROM t WHERE key IN"), 100 ids a
// query, always with 100 parameters (the last id pads), so that it is one
// prepared statement whatever the batch's size.
std::vector<SqlRow> query_ids(SqlConn& db, const std::string& select,
                              const std::vector<std::string>& ids) {
  constexpr std::size_t kChunk = 100;
  std::string sql = select + " (";
  for (std::size_t k = 1; k <= kChunk; ++k) sql += (k > 1 ? ", ?" : "?") + std::to_string(k);
  sql += ")";
  std::vector<SqlRow> out;
  for (std::size_t at = 0; at < ids.size(); at += kChunk) {
    SqlParams params;
    for (std::size_t k = 0; k < kChunk; ++k)
      params.emplace_back(ids[std::min(at + k, ids.size() - 1)]);
    for (auto& row : db.query(sql, params)) out.push_back(std::move(row));
  }
  return out;
}

// A MemberRow from columns `first`.. of `row` (kMemberRowColumns).
MemberRow member_row(const SqlRow& row, std::size_t first) {
  MemberRow m;
  m.version = row.integer(first);
  if (!row.is_null(first + 1)) m.card_number = row.text(first + 1);
  if (!row.is_null(first + 2)) m.phone = row.text(first + 2);
  m.name = row.text(first + 3);
  m.blocked = row.integer(first + 4) != 0;
  return m;
}

// A member change for the feed: the state plus the card, phone and name
// terminals look members up by.
Json member_change_data(const std::string& id, Json state, const MemberRow& row) {
  return sync::to_json(
      sync::MemberChange{id, std::move(state), row.card_number, row.phone, row.name, row.blocked});
}

}  // namespace loyalty::hq::detail
