// What HQ works out from one record alone, before it takes the lock: the
// record's text and hash, the receipt change it gives, and the replay
// through the same engine the terminal ran. A disagreement becomes a flag,
// never a refusal: the sale happened.
//
// Invariants it keeps:
// - It reads nothing from the database and writes nothing, so records of
//   several terminals are prepared in parallel and it is tested without one.
// - The replay starts from the member as the terminal saw it (the record's
//   member_before), so it judges the terminal's arithmetic, not HQ's state.
//
// Thread-safety: a pure function.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/engine.h"
#include "core/member_delta.h"
#include "core/program.h"
#include "sync/protocol.h"

namespace loyalty::hq {

struct PreparedRecord {
  std::string text;  // as stored and hashed
  std::string hash;
  // The replay's verdict: a flag kind and its detail, when it disagrees.
  std::optional<std::pair<core::FlagKind, std::string>> replay;
  std::string receipt;  // purchases: the receipt change's payload as sold
  // A referral's rewards for the referrer, from the replay: vouchers
  // (template, days valid) and what its limits count. The referrer's
  // points come with the record's entries.
  std::string referrer;
  std::vector<std::pair<std::string, int>> referrer_vouchers;
  std::vector<core::MetricDelta> referrer_metrics;
};

// `program`: the version the record names, nullptr when HQ does not have
// it (the replay is then flagged as not possible). Returns and voids are
// not replayed here: they are checked against their purchase when applied.
PreparedRecord prepare_record(const sync::TxnRecord& r, const core::Program* program);

}  // namespace loyalty::hq
