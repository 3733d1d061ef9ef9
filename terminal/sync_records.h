// Shared by the sync agent's files (terminal/sync_agent.cpp uploads,
// terminal/sync_feed.cpp applies HQ's feed): a stored transaction as the
// record HQ gets, and a member as this till shows them.
#pragma once

#include <optional>

#include "core/member.h"
#include "platform/sqlite.h"
#include "sync/protocol.h"
#include "terminal/store.h"

namespace loyalty::terminal::detail {

// The upload record of stored transaction `t`; nullopt when its kind or
// stored delta does not read back.
std::optional<sync::TxnRecord> record_of(platform::Db& db, const TxnRow& t);

// The member as this till shows them: HQ's state plus what HQ has not
// acknowledged yet (and has not refused), in sequence order.
core::MemberState local_view(platform::Db& db, const core::MemberState& hq);

}  // namespace loyalty::terminal::detail
