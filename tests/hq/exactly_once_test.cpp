// The exactly-once verdict on its own: no database, no HQ, just what HQ
// already holds of a terminal and the records of one batch.
#include <catch2/catch.hpp>

#include "hq/exactly_once.h"

using loyalty::hq::AcceptedTxn;
using loyalty::hq::ExactlyOnce;
using loyalty::hq::RefusedTxn;
using loyalty::sync::BatchStatus;
using loyalty::sync::TxnRecord;

namespace {

TxnRecord sale(std::int64_t receipt, std::int64_t seq, std::int64_t points = 10,
               std::string member = "M1") {
  TxnRecord r;
  r.txn_id = "S001-T01-" + std::to_string(receipt);
  r.seq = seq;
  r.kind = loyalty::sync::TxnKind::kPurchase;
  r.member_id = std::move(member);
  r.committed_at = 1'700'000'000 + receipt;
  r.entries.push_back({r.txn_id + "/1", r.txn_id, "program:points", "member:" + r.member_id, points,
                       "pts", "", ""});
  return r;
}

AcceptedTxn as_accepted(const TxnRecord& r, std::string hash) {
  return {std::move(hash), r.committed_at, r.member_id, std::string(to_string(r.kind)),
          loyalty::hq::entries_key(r.entries)};
}

}  // namespace

TEST_CASE("A batch of new records in sequence is applied in order", "[exactly-once]") {
  ExactlyOnce once(1, {}, {});
  CHECK(once.judge(sale(1, 1), "h1").status == BatchStatus::kAccepted);
  CHECK(once.judge(sale(2, 2), "h2").status == BatchStatus::kAccepted);
  CHECK(once.next_seq() == 3);
  CHECK_FALSE(once.gap());
  // The same id twice in one batch: the second is the resend.
  CHECK(once.judge(sale(2, 2), "h2").status == BatchStatus::kDuplicate);
  CHECK(once.next_seq() == 3);
}

TEST_CASE("A resend of an accepted sale is a duplicate, whatever it carries now",
          "[exactly-once]") {
  const auto first = sale(7, 7);
  ExactlyOnce once(8, {{first.txn_id, as_accepted(first, "h7")}}, {});
  const auto same = once.judge(first, "h7");
  CHECK(same.status == BatchStatus::kDuplicate);
  CHECK_FALSE(same.changed);
  // Same transaction (same entries), other bytes: the first version stands.
  const auto other_bytes = once.judge(first, "h7-reencoded");
  CHECK(other_bytes.status == BatchStatus::kDuplicate);
  CHECK(other_bytes.changed);
  CHECK(once.next_seq() == 8);
}

TEST_CASE("A missing sequence holds the rest of the batch behind a gap", "[exactly-once]") {
  ExactlyOnce once(3, {}, {});
  const auto v = once.judge(sale(5, 5), "h5");
  CHECK(v.status == BatchStatus::kGap);
  CHECK(v.expected_seq == 3);
  // Even the expected sequence, once the batch has a gap, waits: records
  // apply in order only.
  CHECK(once.judge(sale(6, 6), "h6").status == BatchStatus::kGap);
  CHECK(once.gap() == 3);
  CHECK(once.next_seq() == 3);
}

TEST_CASE("A used sequence with a new id is rejected for renumbering", "[exactly-once]") {
  ExactlyOnce once(10, {}, {});
  const auto v = once.judge(sale(4, 4), "h4");
  CHECK(v.status == BatchStatus::kRejected);
  CHECK(v.reason == "sequence 4 already holds another transaction");
  CHECK(once.next_seq() == 10);
}

TEST_CASE("A new sale under a used id is a conflict, and the same answer when resent",
          "[exactly-once]") {
  const auto hq_has = sale(9, 9, 10, "M1");
  ExactlyOnce once(10, {{hq_has.txn_id, as_accepted(hq_has, "h9")}}, {});
  // A till restored from an older backup numbered another sale 9 again,
  // at the sequence HQ expects next.
  const auto restored = sale(9, 10, 25, "M2");
  const auto v = once.judge(restored, "h9-other");
  CHECK(v.status == BatchStatus::kConflict);
  CHECK(v.refuse_now);
  CHECK(v.reason.find("already names another transaction at HQ") != std::string::npos);
  // It takes its sequence's place, so later records are not held up.
  CHECK(once.next_seq() == 11);
  CHECK(once.judge(sale(10, 11), "h10").status == BatchStatus::kAccepted);
  // Its take-back is of the refused sale, not of HQ's transaction 9.
  auto take_back = sale(11, 12);
  take_back.kind = loyalty::sync::TxnKind::kReturn;
  take_back.return_of = restored.txn_id;
  const auto back = once.judge(take_back, "h11");
  CHECK(back.status == BatchStatus::kConflict);
  CHECK(back.refuse_now);
  CHECK(once.next_seq() == 13);
}

TEST_CASE("A record refused before gets the same reason again and is not kept twice",
          "[exactly-once]") {
  const auto r = sale(3, 3);
  ExactlyOnce once(4, {}, {{r.txn_id, RefusedTxn{"h3", "the reason HQ gave"}}});
  const auto v = once.judge(r, "h3");
  CHECK(v.status == BatchStatus::kConflict);
  CHECK(v.reason == "the reason HQ gave");
  CHECK_FALSE(v.refuse_now);
  CHECK(once.next_seq() == 4);
}

TEST_CASE("A differing resend beyond a gap waits for its turn", "[exactly-once]") {
  const auto hq_has = sale(8, 8);
  ExactlyOnce once(5, {{hq_has.txn_id, as_accepted(hq_has, "h8")}}, {});
  // Sequence 5 is missing; 8 comes again with other entries: it is judged
  // when it arrives in order, not refused now.
  const auto v = once.judge(sale(8, 8, 99), "h8-other");
  CHECK(v.status == BatchStatus::kGap);
  CHECK(v.expected_seq == 5);
  CHECK_FALSE(v.refuse_now);
}
