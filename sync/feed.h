// What the terminal reads from HQ, checked before any of it is used: a page
// of the change feed and the answer to an uploaded batch. A broken or
// compromised HQ must not crash a store or make it write half-read data, so
// each field the terminal reads is checked for presence and type here, and
// the terminal works only on the checked structures. Fields a newer HQ adds
// are ignored; kinds of change this terminal does not know are kept (and
// skipped by the applier) so that their cursors still move.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_reader.h"
#include "core/member.h"
#include "core/result.h"
#include "sync/changes.h"
#include "sync/protocol.h"

namespace loyalty::sync {

using core::Json;

struct Change {
  std::int64_t cursor = 0;
  std::string key;
  ChangeData data;  // one struct per kind (sync/changes.h)
  std::string kind() const { return kind_of(data); }
};

struct FeedPage {
  std::vector<Change> changes;  // cursors increasing, all above the cursor asked from
  std::int64_t next_cursor = 0;
  bool more = false;
};

// Parses `body`, HQ's answer to GET /v1/sync/changes?after=`after`.
[[nodiscard]] core::Result<FeedPage> parse_feed_page(std::string_view body, std::int64_t after);

// The most a terminal's sequence or receipt numbers can reach (a million
// sales a day for over two thousand years).
constexpr std::int64_t kMaxNumbering = 1'000'000'000'000;

// Parses `body`, HQ's 200 answer to POST /v1/sync/batches.
[[nodiscard]] core::Result<BatchAnswer> parse_batch_answer(std::string_view body);

// HQ's answer to a live check (docs/sync.md, "Live check"): the member as HQ
// has them now and the last sequence HQ applied from the asking terminal.
struct LiveMember {
  core::MemberState state;
  bool blocked = false;
  std::int64_t applied_seq = 0;
};

// Parses `body`, HQ's 200 answer to POST /v1/sync/live-checks for
// `member_id`; an answer about anyone else is refused.
[[nodiscard]] core::Result<LiveMember> parse_live_check(std::string_view body,
                                                        const std::string& member_id);

}  // namespace loyalty::sync
