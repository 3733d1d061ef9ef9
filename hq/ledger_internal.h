// Helpers shared by HqLedger's files (ledger.cpp, ingest.cpp, replay.cpp,
// feed.cpp, terminals.cpp); not part of HQ's interface.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/member.h"
#include "core/result.h"
#include "hq/ledger.h"
#include "hq/sql.h"
#include "sync/protocol.h"

namespace loyalty::hq::detail {

core::Result<Json> refused(core::ErrorCode code, std::string message);
// A reason someone can audit later: five characters or more besides spaces.
bool auditable(const std::string& reason);
// A database error as an admin call's answer: kUnavailable.
core::Result<Json> db_failure(const SqlError& e);

// The record as HQ stores and hashes it: the text it arrived as.
std::string record_text(const sync::TxnRecord& r);

// The member as the terminal saw it; record_from_json has already read it.
std::optional<core::MemberState> before_of(const sync::TxnRecord& r);

// Rows for `ids` from `select` ("SELECT ... FROM t WHERE key IN"), 100 ids a
// query, always with 100 parameters (the last id pads), so that it is one
// prepared statement whatever the batch's size.
std::vector<SqlRow> query_ids(SqlConn& db, const std::string& select,
                              const std::vector<std::string>& ids);

inline constexpr const char* kMemberRowColumns = "version, card_number, phone, name, blocked";

// A MemberRow from columns `first`.. of `row` (kMemberRowColumns).
MemberRow member_row(const SqlRow& row, std::size_t first);

// A member change for the feed: the state plus the card, phone and name
// terminals look members up by.
Json member_change_data(const std::string& id, Json state, const MemberRow& row);

}  // namespace loyalty::hq::detail
