// HQ's schema, the same tables on SQLite and PostgreSQL, applied at start
// as numbered migrations recorded in schema_version.
#pragma once

#include "core/result.h"
#include "hq/sql.h"

namespace loyalty::hq {

inline constexpr int kHqSchemaVersion = 12;

// Creates or upgrades the schema; a database from a newer release is refused.
[[nodiscard]] core::Status migrate_hq(SqlConn& db);

}  // namespace loyalty::hq
