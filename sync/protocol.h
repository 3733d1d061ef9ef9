// The sync wire format shared by loyaltyd and loyalty-hq (docs/sync.md).
// A terminal uploads batches of transaction records; each record carries
// every input the engine read (for HQ's replay check), the ledger entries
// (the facts) and the member delta (how HQ merges the rest).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_reader.h"
#include "core/ledger.h"
#include "core/member_delta.h"
#include "core/program.h"

namespace loyalty::sync {

using core::Json;

// A terminal clock further than this from HQ's (HQ measures it at every
// upload) is reported by HQ and warned about by the terminal: its sales
// would be misdated and its time-window rules misapplied.
inline constexpr std::int64_t kClockToleranceSeconds = 120;

// What a transaction record is (its "kind" on the wire).
enum class TxnKind { kPurchase, kEvent, kRedeem, kEnrollment, kReturn, kVoid };
std::string_view to_string(TxnKind k);
// nullopt for a word that is not a kind.
std::optional<TxnKind> txn_kind_from(std::string_view text);

// A record's verdict in HQ's answer to a batch (docs/sync.md, "Response").
enum class BatchStatus {
  kAccepted,   // applied now
  kDuplicate,  // applied before (an answer was lost): done, counted once
  kGap,        // a sequence before it is missing: send again from expected_seq
  kRejected,   // its sequence holds another transaction: renumber and resend
  kConflict,   // its id names another transaction at HQ: kept aside, flagged, never applied
  kUnknown,    // a word a newer HQ uses that this side does not know
};
std::string_view to_string(BatchStatus s);
BatchStatus batch_status_from(std::string_view text);

// A flag HQ raised on an accepted record (docs/hq.md, "Flags").
struct RecordFlag {
  std::string kind, detail;
  bool operator==(const RecordFlag&) const = default;
};

// HQ's verdict on one record of a batch (docs/sync.md, "Response").
struct RecordAnswer {
  std::string txn_id;
  std::int64_t seq = 0;
  BatchStatus status = BatchStatus::kUnknown;
  std::string reason;                        // kConflict, kRejected
  std::optional<std::int64_t> expected_seq;  // kGap
  std::string note;                          // kDuplicate resent with other content
  std::vector<RecordFlag> flags;             // kAccepted
};

// HQ's answer to a batch.
struct BatchAnswer {
  std::vector<RecordAnswer> results;  // in sequence order
  std::int64_t clock_skew_seconds = 0;
  // Where HQ's numbering of this terminal stands: the sequence it expects
  // next and the highest receipt number it has (absent from older HQs).
  std::optional<std::int64_t> next_seq, last_receipt;
  std::optional<std::int64_t> gap;  // the sequence a gap waits for
};

// The answer as it goes on the wire (HQ's hq/api.cpp writes it; the
// terminal reads it with parse_batch_answer, sync/feed.h).
Json to_json(const RecordAnswer& r);
Json to_json(const BatchAnswer& a);

// The problem type (after the problem base) HQ answers a revoked or
// unregistered terminal with.
inline constexpr std::string_view kProblemTerminalRefused = "terminal-refused";

struct TxnRecord {
  std::string txn_id;    // "<store>-<terminal>-<receipt>", the idempotency key forever
  std::int64_t seq = 0;  // per-terminal upload sequence, contiguous from 1
  TxnKind kind = TxnKind::kPurchase;
  std::string member_id;
  std::int64_t committed_at = 0;  // terminal clock, unix seconds
  std::string business_day;       // store-local date
  std::string local_time;         // store-local wall clock
  std::string zone;
  std::string program_id;
  std::int64_t program_version = 0;
  Json request;        // the engine input: a basket or an event (core::request_from_json)
  Json member_before;  // the member as the terminal saw it (core::member_from_json)
  Json totals;         // the terminal's outcome totals, compared by HQ's replay
  std::vector<core::Entry> entries;
  core::MemberDelta delta;
  std::optional<std::string> points_expire_on;
  std::optional<std::string> return_of;
  Json return_basis;  // purchases: what a later return reads, at any store
  // Enrollments: how the member is found at a till ({"card_number",
  // "phone", "name"}, each optional), so every store can scan the card or
  // look up the phone of a member who joined elsewhere.
  Json identity;
  // Who made it at the till (the counter page's signed-in staff, or the
  // POS's X-Cashier); empty when not known.
  std::string staff_id;

  // Filled by record_from_json, so a receiver neither re-parses nor
  // re-serialises: the member_before document read once, and the record's
  // JSON text as received (what HQ stores and hashes).
  std::optional<core::MemberState> before;
  std::string text;
};

// The record of a transaction the engine evaluated (`o`) and core::commit
// applied (`c`), taking the member from `before` to `after`; `request` is
// the engine input as JSON. The engine's request gives id, time and zone.
TxnRecord record_of_commit(const core::Program& p, const core::MemberState& before,
                           const core::MemberState& after, const core::Outcome& o,
                           const core::Committed& c, const Json& request, std::int64_t seq,
                           std::int64_t committed_at);

Json record_to_json(const TxnRecord& r);
// Validates everything; every problem with its path. Takes the document by
// value: a caller that moves it in (HQ, with each upload) saves a copy of
// every record's member and basket.
// `text` is the record as it arrived, when the caller has it (HQ stores and
// hashes that); otherwise the record is serialised again.
[[nodiscard]] core::Result<TxnRecord> record_from_json(Json j, std::string text = {});

struct Batch {
  std::string store_id;
  std::string terminal_id;
  std::int64_t sent_at = 0;  // terminal clock when sent (HQ measures skew)
  std::vector<TxnRecord> records;
};

inline constexpr std::size_t kMaxBatchRecords = 1000;

// The receipt number in a terminal's transaction id (`S001-T01-00000042`:
// 42): the digits after the last '-', 0 when there are none.
std::int64_t receipt_number(std::string_view txn_id);

Json batch_to_json(const Batch& b);
[[nodiscard]] core::Result<Batch> batch_from_json(Json j);
// The same from the upload's text, without building one document for the
// whole body or serialising each record again: the body is cut into its
// records' texts, and each is parsed on its own and kept as it arrived.
// nullopt when the body is not well-formed JSON (the caller reports that).
// `parse` reads each record's text (Json::parse by default; HQ passes its
// faster reader, which builds the same document); it returns a discarded
// document for text that is not JSON.
using JsonParse = Json (*)(std::string_view);
[[nodiscard]] std::optional<core::Result<Batch>> batch_from_text(std::string_view body,
                                                                 JsonParse parse = nullptr);

// The text of the value of `key` in the JSON object `object` (well-formed,
// as a record that parsed), as it stands there; nullopt when the key is
// absent, repeated or written with an escape.
std::optional<std::string_view> member_text(std::string_view object, std::string_view key);

// "<store>-<terminal>-" : a terminal may only write ids with its own prefix.
std::string txn_prefix(const std::string& store_id, const std::string& terminal_id);

}  // namespace loyalty::sync
