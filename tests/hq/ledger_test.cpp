// loyalty-hq's ledger on both backends: exactly-once ingest, overdrafts,
// replay checks, identity, the change feed, expiry, admin validation, and
// `verify` after every scenario.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "tests/hq/hq_fixture.h"

using namespace loyalty;
using namespace loyalty::test;

namespace {

const Json kBasket = coffee_basket();

struct Hq {
  core::Program program = coffee_program();
  std::string target;
  std::unique_ptr<hq::SqlConn> db;
  std::unique_ptr<hq::HqLedger> ledger;
  platform::SigningKey key = platform::SigningKey::generate();
  std::int64_t now = 1'795'300'100;  // HQ's clock: 2026-11-21 22:28 UTC
  explicit Hq(const std::string& backend)
      : target(fresh_hq_target(backend)), db(open_hq_db(target)) {
    ledger = std::make_unique<hq::HqLedger>(*db, [this] { return now; });
    REQUIRE(ledger->publish_program(read_all(hq_source("examples/programs/coffee-chain.json")), 0,
                                    key, "test"));
  }
  // A registered terminal that knows the demo member M1001.
  FakeTerminal terminal(const std::string& store, const std::string& id = "T01") {
    FakeTerminal t(store, id, program);
    t.know(demo_member_state());
    REQUIRE(ledger->add_terminal(store, id, ""));
    return t;
  }
  // HQ's balance for M1001 is the terminal's view plus `adjusted` (what
  // admins changed that the terminal has not pulled).
  void balance_matches(FakeTerminal& t, std::int64_t adjusted = 0) {
    auto m = ledger->member("M1001");
    REQUIRE(m);
    CHECK((*m)["balance"] ==
          t.view("M1001").available(*core::parse_local_date("2026-11-23")) + adjusted);
  }
  void verified() {
    auto v = ledger->verify();
    REQUIRE(v);
    INFO(v->dump(2));
    CHECK((*v)["ok"] == true);
  }
  // `n` sales of kBasket to M1001 at `t`, not uploaded yet.
  static std::vector<sync::TxnRecord> sold(FakeTerminal& t, int n) {
    std::vector<sync::TxnRecord> records;
    for (int i = 0; i < n; ++i) records.push_back(t.sell("M1001", kBasket));
    return records;
  }
  // The same, uploaded in one batch.
  void sales(FakeTerminal& t, int n) { ingest(t, sold(t, n)); }
  Json ingest(const FakeTerminal& t, std::vector<sync::TxnRecord> records) {
    auto r = ledger->ingest(t.store(), t.terminal(), t.batch(std::move(records)));
    if (!r) FAIL(r.error().message);
    return sync::to_json(*r);
  }
};

// `sale` sold again `later` seconds after it under the same id, as a
// terminal restored from an older backup does, at sequence `seq`.
sync::TxnRecord sold_again(sync::TxnRecord sale, std::int64_t later, std::int64_t seq) {
  sale.text.clear();
  sale.committed_at += later;
  sale.seq = seq;
  return sale;
}

// The test case runs once on each backend (`backend` names it) with a
// fresh HQ named `hq`.
#define ON_EACH_BACKEND(hq)                                               \
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres"); \
  INFO("backend " << backend);                                            \
  Hq hq(backend)

std::int64_t count(hq::SqlConn& db, const std::string& table) {
  return db.query("SELECT COUNT(*) FROM " + table)[0].integer(0);
}

}  // namespace

// The bytes HQ sends terminals, kept in tests/hq/golden/ so that retyping
// the contract (sync/) cannot change them unnoticed: a batch's answers
// (accepted, duplicate, gap, conflict) and a store's feed page. Both
// backends must give the same bytes. After a deliberate change of the wire,
// regenerate with LOYALTY_UPDATE_GOLDEN=1 and review the diff.
TEST_CASE("HQ's batch answers and feed page keep their bytes on both backends",
          "[hq][ledger][golden]") {
  ON_EACH_BACKEND(hq);
  auto a = hq.terminal("S001");
  const auto sales = Hq::sold(a, 5);
  Json wire;
  wire["1 accepted"] = hq.ingest(a, {sales[0], sales[1]});
  wire["2 duplicate and new"] = hq.ingest(a, {sales[1], sales[2]});
  wire["3 past a gap"] = hq.ingest(a, {sales[4]});
  auto changed = sales[0];
  changed.text.clear();
  changed.totals["points_earned"] = 9999;
  wire["4 changed resend"] = hq.ingest(a, {changed});
  REQUIRE(hq.ledger->adjust("M1001", 50, "golden: goodwill", "ops"));
  REQUIRE(hq.ledger->set_blocked("M1001", true, "golden: card reported lost", "ops"));
  auto page = hq.ledger->changes(0, 100, "S001");
  REQUIRE(page);
  // A program change is signed with this run's fresh key, and its body is
  // the example program's text (the program tests check it): both masked.
  for (auto& c : (*page)["changes"]) {
    if (c.value("kind", "") != "program") continue;
    c["data"]["body"] = "<program text>";
    c["data"]["signature"] = "<signature>";
  }
  wire["5 feed page"] = *page;
  const auto path = hq_source("tests/hq/golden/wire.json");
  if (std::getenv("LOYALTY_UPDATE_GOLDEN") != nullptr && backend == "sqlite") {
    std::ofstream(path) << wire.dump(2) << "\n";
    WARN("wrote " << path);
  }
  const auto golden = Json::parse(read_all(path));
  for (const auto& [step, bytes] : golden.items()) {
    INFO(step);
    CHECK(wire[step].dump() == bytes.dump());
  }
  CHECK(wire.size() == golden.size());
}

TEST_CASE("HQ accepts each transaction exactly once, whatever the terminal resends",
          "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  auto a = hq.terminal("S001");
  const auto sales = Hq::sold(a, 5);

  auto first = hq.ingest(a, {sales[0], sales[1], sales[2]});
  CHECK(first["next_seq"] == 4);
  for (const auto& r : first["results"]) CHECK(r["status"] == "accepted");
  // The response was lost: the terminal resends, reordered, with two more.
  auto again = hq.ingest(a, {sales[4], sales[2], sales[0], sales[3], sales[1]});
  CHECK(again["next_seq"] == 6);
  std::map<std::string, std::string> status;
  for (const auto& r : again["results"]) status[r["txn_id"]] = r["status"];
  CHECK(status[sales[0].txn_id] == "duplicate");
  CHECK(status[sales[3].txn_id] == "accepted");
  CHECK(status[sales[4].txn_id] == "accepted");
  CHECK(count(*hq.db, "transactions") == 5);
  auto m = hq.ledger->member("M1001");
  REQUIRE(m);
  // Five sales of 68 yuan at the Daily tier's 1.2x: 81 points each.
  CHECK((*m)["balance"] == a.view("M1001").available(*core::parse_local_date("2026-11-23")));
  CHECK((*m)["flags"].empty());
  hq.verified();
}

TEST_CASE("a large batch resent whole, a record twice in one batch, and a changed resend",
          "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  auto a = hq.terminal("S001");
  const auto sales = Hq::sold(a, 250);
  const std::vector<sync::TxnRecord> first_half(sales.begin(), sales.begin() + 130);
  const auto first = hq.ingest(a, first_half);  // kept: the loop reads into it
  for (const auto& r : first["results"]) CHECK(r["status"] == "accepted");
  // All 250 again (HQ has the first 130, across its lookups of 100), with
  // one of the new ones twice over.
  auto all = sales;
  all.push_back(sales[200]);
  auto again = hq.ingest(a, all);
  CHECK(again["next_seq"] == 251);
  std::map<std::string, int> by_status;
  for (const auto& r : again["results"]) ++by_status[r["status"].get<std::string>()];
  CHECK(by_status["duplicate"] == 131);
  CHECK(by_status["accepted"] == 120);
  CHECK(count(*hq.db, "transactions") == 250);
  // The same id with other content: the first version stands, and says so.
  auto changed = sales[5];
  changed.text.clear();
  changed.totals["points_earned"] = 9999;
  auto res = hq.ingest(a, {changed})["results"][0];
  CHECK(res["status"] == "duplicate");
  CHECK(res["note"] == "resent with different content; the first version stands");
  CHECK(count(*hq.db, "transactions") == 250);
  hq.balance_matches(a);
  hq.verified();
}

TEST_CASE("a new sale under an id HQ has from a restored terminal is a conflict and not applied",
          "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  auto a = hq.terminal("S001");
  const auto sales = Hq::sold(a, 5);
  hq.ingest(a, sales);
  // An empty batch tells a terminal where HQ's numbering of it stands.
  const auto hello = hq.ingest(a, {});
  CHECK(hello["results"].empty());
  CHECK(hello["next_seq"] == 6);
  CHECK(hello["last_receipt"] == 100005);
  const auto before = hq.ledger->member("M1001");
  REQUIRE(before);

  // The terminal's database went back to the third sale: its next sale
  // reuses the fourth's id and sequence, an hour later.
  const auto reused = sold_again(sales[3], 3600, sales[3].seq);
  // And one under a new id but a sequence HQ holds.
  auto renumbered = sales[4];
  renumbered.text.clear();
  renumbered.txn_id = "S001-T01-100099";
  for (auto& e : renumbered.entries) e.id = "S001-T01-100099" + e.id.substr(e.id.find('/'));
  const auto answer = hq.ingest(a, {reused, renumbered});
  std::map<std::string, Json> by_id;
  for (const auto& r : answer["results"]) by_id[r["txn_id"]] = r;
  CHECK(by_id[reused.txn_id]["status"] == "conflict");
  CHECK(by_id[reused.txn_id]["reason"].get<std::string>().find("already names another") !=
        std::string::npos);
  CHECK(by_id[renumbered.txn_id]["status"] == "rejected");
  CHECK(answer["next_seq"] == 6);
  CHECK(answer["last_receipt"] == 100005);
  // Nothing of either was written.
  CHECK(count(*hq.db, "transactions") == 5);
  const auto after = hq.ledger->member("M1001");
  REQUIRE(after);
  CHECK((*after)["balance"] == (*before)["balance"]);
  // The true resend of the fourth sale is still a plain duplicate.
  CHECK(hq.ingest(a, {sales[3]})["results"][0]["status"] == "duplicate");
  // A reused id at the sequence HQ expects takes that place, so the
  // terminal's later records are not held up behind a sale it will never
  // resend; one beyond a gap waits for its turn like any other.
  const auto slot = hq.ingest(a, {sold_again(sales[2], 7200, 6), sold_again(sales[1], 7200, 9)});
  REQUIRE(slot["results"].size() == 2);
  CHECK(slot["results"][0]["status"] == "conflict");
  CHECK(slot["results"][1]["status"] == "gap");
  CHECK(slot["results"][1]["expected_seq"] == 7);
  CHECK(slot["next_seq"] == 7);
  CHECK(count(*hq.db, "transactions") == 5);
  hq.verified();
}

TEST_CASE("a return of a sale HQ refused as a conflict is refused too and kept for settling",
          "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  auto a = hq.terminal("S001");
  const auto sales = Hq::sold(a, 5);
  const auto receipts = hq.ingest(a, sales)["results"].size();
  const auto before = hq.ledger->member("M1001");
  REQUIRE(before);
  // Restored from an older backup while offline: a new sale under the
  // fourth sale's id, then, before the till has heard back, a coffee of it
  // brought back under a receipt id HQ has never seen.
  const auto reused = sold_again(sales[3], 3600, 6);
  auto back = reused;
  back.txn_id = "S001-T01-100006";
  back.seq = 7;
  back.kind = sync::TxnKind::kReturn;
  back.return_of = reused.txn_id;
  back.committed_at += 60;
  back.request = Json{{"receipt_id", reused.txn_id}, {"lines", {{{"line", 0}, {"quantity", 2}}}}};
  back.return_basis = Json();
  back.entries.clear();
  for (const auto& e : reused.entries)  // one of the two lattes: about half the points
    back.entries.push_back({back.txn_id + "/" + std::to_string(back.entries.size() + 1),
                            back.txn_id, e.credit, e.debit, e.amount / 2, e.unit, e.lot,
                            "returned"});
  const auto first = hq.ingest(a, {reused});
  CHECK(first["results"][0]["status"] == "conflict");
  // In a later batch: HQ remembers what it refused, so the take-back is
  // not applied to HQ's own sale of that id.
  const auto second = hq.ingest(a, {back});
  REQUIRE(second["results"].size() == 1);
  CHECK(second["results"][0]["status"] == "conflict");
  CHECK(second["results"][0]
            .value("reason", std::string())
            .find("takes back S001-T01-100004, a sale of this terminal HQ refused") !=
        std::string::npos);
  CHECK(second["next_seq"] == 8);
  CHECK(count(*hq.db, "transactions") == 5);
  // HQ's own sale under that id keeps its receipt as sold.
  CHECK(count(*hq.db, "changes WHERE kind = 'receipt'") == static_cast<std::int64_t>(receipts));
  const auto after = hq.ledger->member("M1001");
  REQUIRE(after);
  CHECK((*after)["balance"] == (*before)["balance"]);
  // Both kept with their records, each flagged for whoever settles it.
  CHECK(count(*hq.db, "refused_txns") == 2);
  const auto flags = hq.ledger->flags(true);
  REQUIRE(flags);
  std::map<std::string, std::int64_t> flag_of;
  for (const auto& f : (*flags)["flags"])
    if (f["kind"] == "refused") flag_of[f["txn_id"]] = f["id"];
  REQUIRE(flag_of.size() == 2);
  CHECK(flag_of.contains(reused.txn_id));
  CHECK(flag_of.contains(back.txn_id));

  // Both sent again in one batch (the answers were lost): the same answers,
  // nothing new kept or flagged.
  const auto again = hq.ingest(a, {reused, back});
  REQUIRE(again["results"].size() == 2);
  for (const auto& r : again["results"]) CHECK(r["status"] == "conflict");
  CHECK(again["results"][1]["reason"] == second["results"][0]["reason"]);
  CHECK(again["next_seq"] == 8);
  CHECK(count(*hq.db, "refused_txns") == 2);
  CHECK(count(*hq.db, "flags WHERE kind = 'refused'") == 2);
  // The terminal's next sale lands.
  auto next = a.sell("M1001", kBasket);
  next.seq = 8;
  next.txn_id = "S001-T01-100008";
  for (auto& e : next.entries) e.id = next.txn_id + e.id.substr(e.id.find('/'));
  for (auto& e : next.entries) e.txn_id = next.txn_id;
  next.text.clear();
  CHECK(hq.ingest(a, {next})["results"][0]["status"] == "accepted");
  const auto landed = hq.ledger->member("M1001");
  REQUIRE(landed);

  // Settling: each flag resolved with `settle` gives the member what its
  // refused record would have moved, in an audited adjustment.
  const auto moved = [](const sync::TxnRecord& r) {
    std::int64_t n = 0;
    for (const auto& e : r.entries)
      n += (e.credit == "member:M1001" ? e.amount : 0) - (e.debit == "member:M1001" ? e.amount : 0);
    return n;
  };
  REQUIRE(moved(reused) > 0);
  const auto sale =
      hq.ledger->resolve_flag(flag_of[reused.txn_id], "the member kept the sale", "test", true);
  REQUIRE(sale);
  CHECK((*sale)["resolved"] == true);
  CHECK((*sale)["settled_by"]["points"] == moved(reused));
  const auto ret =
      hq.ledger->resolve_flag(flag_of[back.txn_id], "one latte came back", "test", true);
  REQUIRE(ret);
  CHECK((*ret)["settled_by"]["points"] == moved(back));
  CHECK(moved(back) < 0);
  const auto settled = hq.ledger->member("M1001");
  REQUIRE(settled);
  CHECK((*settled)["balance"] ==
        (*landed)["balance"].get<std::int64_t>() + moved(reused) + moved(back));
  // Once only: a settled flag is resolved.
  const auto twice =
      hq.ledger->resolve_flag(flag_of[back.txn_id], "one latte came back", "test", true);
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code == core::ErrorCode::kConflict);
  CHECK(count(*hq.db, "audit WHERE action = 'adjust'") == 2);
  hq.verified();
}

TEST_CASE("a batch the database refuses midway leaves nothing, and the next one lands",
          "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  auto a = hq.terminal("S001");
  auto sales = Hq::sold(a, 40);
  // The 31st record repeats its entry's id: the database's unique key
  // refuses it after 30 records' writes have gone out (on PostgreSQL,
  // without waiting for their answers).
  sales[30].entries.push_back(sales[30].entries.front());
  sales[30].text.clear();
  auto refused = hq.ledger->ingest("S001", "T01", a.batch(sales));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == core::ErrorCode::kUnavailable);
  CHECK(count(*hq.db, "transactions") == 0);
  CHECK(count(*hq.db, "entries") == 0);
  CHECK(count(*hq.db, "accounts") == 0);
  // The same connection takes the terminal's corrected upload.
  sales[30].entries.pop_back();
  const auto landed = hq.ingest(a, sales);
  for (const auto& r : landed["results"]) CHECK(r["status"] == "accepted");
  CHECK(count(*hq.db, "transactions") == 40);
  hq.balance_matches(a);
  hq.verified();
}

TEST_CASE("ingest sees what another connection wrote to a member between its batches",
          "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  auto a = hq.terminal("S001");
  hq.sales(a, 3);
  // An operator's adjustment through another connection (the CLI, or
  // another HQ process on the same database), while serve keeps its own.
  auto other_db = open_hq_db(hq.target);
  hq::HqLedger other(*other_db, [] { return std::int64_t{1'795'300'200}; });
  REQUIRE(other.adjust("M1001", 500, "goodwill for a late delivery", "test"));
  hq.sales(a, 2);
  REQUIRE(other.adjust("M1001", -100, "correction of the goodwill", "test"));
  hq.sales(a, 1);
  hq.balance_matches(a, 500 - 100);
  hq.verified();
}

TEST_CASE("a gap in a terminal's sequence is reported and nothing after it applied",
          "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  auto a = hq.terminal("S001");
  auto s1 = a.sell("M1001", kBasket);
  auto s2 = a.sell("M1001", kBasket);
  auto s3 = a.sell("M1001", kBasket);
  auto r = hq.ingest(a, {s1, s3});
  CHECK(r["gap"]["expected_seq"] == 2);
  CHECK(r["results"][1]["status"] == "gap");
  CHECK(count(*hq.db, "transactions") == 1);
  auto fixed = hq.ingest(a, {s2, s3});
  CHECK(fixed["next_seq"] == 4);
  CHECK(count(*hq.db, "transactions") == 3);
  hq.verified();
}

TEST_CASE("the same points redeemed at two offline stores: both kept, debt and a flag",
          "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  auto a = hq.terminal("S001");
  auto b = hq.terminal("S002");
  const Json redeem{{"event", "redeem"}, {"reward", "voucher-10"}};
  std::vector<sync::TxnRecord> at_a, at_b;
  for (int i = 0; i < 3; ++i) {
    at_a.push_back(a.sell("M1001", redeem));
    at_b.push_back(b.sell("M1001", redeem));
  }
  hq.ingest(a, at_a);
  auto rb = hq.ingest(b, at_b);
  for (const auto& r : rb["results"]) {
    CHECK(r["status"] == "accepted");
    CHECK(r["flags"][0]["kind"] == "points-overdrawn");
  }
  auto m = hq.ledger->member("M1001");
  CHECK((*m)["debt"] == 600);
  CHECK((*m)["balance"] == -600);
  CHECK((*m)["member"]["vouchers"].size() == 6);  // every voucher was really handed out
  auto flags = hq.ledger->flags();
  const auto raised = (*flags)["flags"].size();
  CHECK(raised >= 3);
  // Finance looks into the first and resolves it: it stays listed, with
  // who and why, and leaves the open list; every store is told.
  const auto first = (*flags)["flags"][0];
  const auto before = (*hq.ledger->changes(0, 1000, "S001"))["next_cursor"].get<std::int64_t>();
  CHECK_FALSE(hq.ledger->resolve_flag(first["id"], "ok", "test"));  // a reason is required
  // Only a refused record's flag is settled by booking its points.
  const auto unsettled = hq.ledger->resolve_flag(first["id"], "book it for me", "test", true);
  REQUIRE_FALSE(unsettled);
  CHECK(unsettled.error().code == core::ErrorCode::kInvalidArgument);
  auto resolved = hq.ledger->resolve_flag(first["id"], "member repaid at the service desk", "test");
  REQUIRE(resolved);
  CHECK((*resolved)["resolved"] == true);
  CHECK((*resolved)["resolution"] == "member repaid at the service desk");
  CHECK((*hq.ledger->flags(true))["flags"].size() == raised - 1);
  const auto all = (*hq.ledger->flags())["flags"];
  REQUIRE(all.size() == raised);
  CHECK(all[0]["resolved_by"] == "test");
  auto told = (*hq.ledger->changes(before, 1000, "S002"))["changes"];
  REQUIRE(told.size() == 1);
  CHECK(told[0]["kind"] == "flag-resolved");
  CHECK(told[0]["data"]["txn_id"] == first["txn_id"]);
  CHECK(told[0]["data"]["kind"] == first["kind"]);
  auto again = hq.ledger->resolve_flag(first["id"], "second look at the same flag", "test");
  REQUIRE_FALSE(again);
  CHECK(again.error().code == core::ErrorCode::kConflict);
  auto unknown = hq.ledger->resolve_flag(99999, "no such flag exists", "test");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == core::ErrorCode::kNotFound);
  hq.verified();
}

TEST_CASE("HQ replays each sale and flags numbers that differ", "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  auto a = hq.terminal("S001");
  auto honest = a.sell("M1001", kBasket);
  auto tampered = a.sell("M1001", kBasket);
  tampered.totals["points_earned"] = 5000;
  auto r = hq.ingest(a, {honest, tampered});
  CHECK_FALSE(r["results"][0].contains("flags"));
  REQUIRE(r["results"][1]["flags"].size() == 1);
  CHECK(r["results"][1]["flags"][0]["kind"] == "replay-mismatch");
  CHECK(r["results"][1]["flags"][0]["detail"].get<std::string>().find("points_earned 5000") !=
        std::string::npos);
  hq.verified();
}

TEST_CASE("a terminal can only write as itself and a revoked one not at all", "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  auto a = hq.terminal("S001");
  auto b = hq.terminal("S002");
  auto forged = b.sell("M1001", kBasket);
  // S001/T01 uploads a transaction with S002's id.
  auto r = hq.ledger->ingest("S001", "T01", a.batch({forged}));
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("is not a transaction id of S001/T01") != std::string::npos);
  // Or claims to be S002 in the batch.
  auto r2 = hq.ledger->ingest("S001", "T01", b.batch({forged}));
  REQUIRE_FALSE(r2);
  CHECK(count(*hq.db, "transactions") == 0);
  REQUIRE(hq.ledger->revoke_terminal("S001", "T01"));
  auto r3 = hq.ledger->ingest("S001", "T01", a.batch({a.sell("M1001", kBasket)}));
  REQUIRE_FALSE(r3);
  CHECK(hq.ledger->check_terminal("S001", "T01", "").error().code ==
        core::ErrorCode::kFailedPrecondition);
  CHECK(hq.ledger->check_terminal("S009", "T01", "").error().code == core::ErrorCode::kNotFound);
  CHECK(count(*hq.db, "transactions") == 0);
  hq.verified();
}

TEST_CASE("the change feed pages and resumes from a cursor", "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  auto a = hq.terminal("S001");
  hq.sales(a, 7);
  // 1 program + 7 receipts + the member's state once for the batch.
  std::vector<Json> seen;
  std::int64_t cursor = 0;
  for (int page = 0; page < 10; ++page) {
    auto c = hq.ledger->changes(cursor, 4, "S001");
    REQUIRE(c);
    for (const auto& ch : (*c)["changes"]) seen.push_back(ch);
    cursor = (*c)["next_cursor"];
    if (!(*c)["more"].get<bool>()) break;
  }
  CHECK(seen.size() == 9);
  CHECK(seen.front()["kind"] == "program");
  CHECK(seen.back()["kind"] == "member");
  // The last member change carries HQ's authoritative member: its state,
  // the name it is looked up by and whether it is blocked. The state is
  // stored once, in the member's row; the change keeps no second copy.
  const auto& served = seen.back()["data"];
  const auto row = hq.db->query("SELECT state, name FROM members WHERE id = 'M1001'");
  REQUIRE(row.size() == 1);
  CHECK(served["state"] == Json::parse(row[0].text(0)));
  CHECK(served["state"] == (*hq.ledger->member("M1001"))["member"]);
  CHECK(served["name"] == row[0].text(1));
  CHECK(served["blocked"] == false);
  CHECK(hq.db->query("SELECT payload FROM changes WHERE kind = 'member'")[0].text(0).empty());
  auto empty = hq.ledger->changes(cursor, 4, "S001");
  CHECK((*empty)["changes"].empty());
  CHECK((*empty)["next_cursor"] == cursor);
  // A stock delivery is for its store only: S002 gets it, S001 never sees it.
  auto b = hq.terminal("S002");
  REQUIRE(hq.ledger->allocate_stock("S002", "T01", "voucher-10", 5, "test"));
  CHECK((*hq.ledger->changes(cursor, 4, "S001"))["changes"].empty());
  auto for_b = hq.ledger->changes(cursor, 4, "S002");
  REQUIRE((*for_b)["changes"].size() == 1);
  CHECK((*for_b)["changes"][0]["kind"] == "stock");
  CHECK((*for_b)["changes"][0]["data"]["add"] == 5);
  // Allocations are checked: the reward exists, the store is known, the
  // quantity is positive.
  CHECK_FALSE(hq.ledger->allocate_stock("S002", "T01", "no-such", 5, "test"));
  CHECK_FALSE(hq.ledger->allocate_stock("S404", "T01", "voucher-10", 5, "test"));
  CHECK_FALSE(hq.ledger->allocate_stock("S002", "T01", "voucher-10", 0, "test"));
  CHECK_FALSE(hq.ledger->allocate_stock("S002", "T09", "voucher-10", 5, "test"));
  CHECK((*hq.ledger->changes(cursor, 10, "S002"))["changes"].size() == 1);
  // With the delivery note's number, a retried allocation (the answer was
  // lost, the operator ran it again) is delivered once.
  auto noted = hq.ledger->allocate_stock("S002", "T01", "voucher-10", 7, "test", "DN-2026-0042");
  REQUIRE(noted);
  CHECK_FALSE(noted->contains("duplicate"));
  auto retried = hq.ledger->allocate_stock("S002", "T01", "voucher-10", 7, "test", "DN-2026-0042");
  REQUIRE(retried);
  CHECK((*retried)["duplicate"] == true);
  CHECK((*retried)["added"] == 7);
  auto other_goods =
      hq.ledger->allocate_stock("S002", "T01", "voucher-10", 9, "test", "DN-2026-0042");
  REQUIRE_FALSE(other_goods);
  CHECK(other_goods.error().code == core::ErrorCode::kConflict);
  CHECK(other_goods.error().message.find("already recorded as 7 of voucher-10 for S002/T01") !=
        std::string::npos);
  CHECK_FALSE(hq.ledger->allocate_stock("S002", "T01", "voucher-10", 7, "test", "DN 42; --"));
  const auto deliveries = (*hq.ledger->changes(cursor, 10, "S002"))["changes"];
  REQUIRE(deliveries.size() == 2);
  CHECK(deliveries[1]["data"]["add"] == 7);
  // Without a number, a second command is a second delivery, as before.
  REQUIRE(hq.ledger->allocate_stock("S002", "T01", "voucher-10", 5, "test"));
  CHECK((*hq.ledger->changes(cursor, 10, "S002"))["changes"].size() == 3);
  // Blocked later: a store that reads the member's change from then on
  // reads the member as blocked.
  REQUIRE(hq.ledger->set_blocked("M1001", true, "card reported stolen", "test"));
  const auto again = (*hq.ledger->changes(0, 100, "S001"))["changes"];
  const auto member = std::find_if(again.begin(), again.end(),
                                   [](const Json& ch) { return ch["kind"] == "member"; });
  REQUIRE(member != again.end());
  CHECK((*member)["data"]["blocked"] == true);
  CHECK((*member)["data"]["state"] == Json::parse(row[0].text(0)));
  REQUIRE(hq.ledger->set_blocked("M1001", false, "card found again", "test"));
}

TEST_CASE("expiry takes dead lots by date and the liability report follows", "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  auto a = hq.terminal("S001");  // lots: 120 expiring 2026-12-01, 480 on 2027-06-15
  hq.ingest(a, {a.sell("M1001", kBasket)});
  auto before = hq.ledger->liability();
  REQUIRE(before);
  CHECK((*before)["by_expiry_month"][0]["expires"] == "2026-12");
  CHECK((*before)["by_expiry_month"][0]["points"] == 120);
  // Expiry runs for a day that has come, never ahead.
  auto early = hq.ledger->expire("2026-11-30");
  REQUIRE_FALSE(early);
  CHECK(early.error().message.find("has not come yet") != std::string::npos);
  hq.now += 10 * 86'400;  // 2026-12-01
  auto none = hq.ledger->expire("2026-11-30");
  CHECK((*none)["points_expired"] == 0);
  auto run = hq.ledger->expire("2026-12-01");
  CHECK((*run)["points_expired"] == 120);
  // Running the same day again (say after late uploads) expires only what is new.
  auto rerun = hq.ledger->expire("2026-12-01");
  REQUIRE(rerun);
  CHECK((*rerun)["points_expired"] == 0);
  auto after = hq.ledger->liability();
  CHECK((*after)["outstanding_points"] ==
        (*before)["outstanding_points"].get<std::int64_t>() - 120);
  hq.verified();
}

TEST_CASE("admin changes are validated and audited", "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  // Every problem of a broken program is listed.
  auto bad = hq.ledger->publish_program(R"({"schema": 1, "program": "x", "version": 0})", 0, hq.key,
                                        "ops");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().problems.size() >= 2);
  auto same = hq.ledger->publish_program(read_all(hq_source("examples/programs/coffee-chain.json")),
                                         0, hq.key, "ops");
  REQUIRE_FALSE(same);
  CHECK(same.error().message.find("higher version") != std::string::npos);
  auto a = hq.terminal("S001");
  hq.ingest(a, {a.sell("M1001", kBasket)});
  CHECK_FALSE(hq.ledger->adjust("M1001", 100, "", "ops"));
  CHECK_FALSE(hq.ledger->adjust("M-NOBODY", 100, "goodwill for a late order", "ops"));
  CHECK_FALSE(hq.ledger->adjust("M1001", 100, "      ", "ops"));  // spaces are no reason
  // Past any real correction: refused, so no balance can overflow.
  for (const auto points : {INT64_C(1'000'000'001), INT64_C(-1'000'000'001),
                            std::numeric_limits<std::int64_t>::max()}) {
    auto huge = hq.ledger->adjust("M1001", points, "goodwill for a late order", "ops");
    REQUIRE_FALSE(huge);
    CHECK(huge.error().problems.front().path == "points");
  }
  auto adj = hq.ledger->adjust("M1001", -50, "duplicate welcome gift reversed", "ops");
  REQUIRE(adj);
  CHECK_FALSE(hq.ledger->set_blocked("M1001", true, "", "ops"));
  // Unblocking someone who is not blocked is a mistake worth saying.
  auto not_blocked = hq.ledger->set_blocked("M1001", false, "card found again", "ops");
  REQUIRE_FALSE(not_blocked);
  CHECK(not_blocked.error().message.find("not blocked") != std::string::npos);
  REQUIRE(hq.ledger->set_blocked("M1001", true, "card reported stolen", "ops"));
  CHECK(count(*hq.db, "audit") == 3);  // publish, adjust, block
  auto feed = hq.ledger->changes(0, 1000, "S001");
  CHECK((*feed)["changes"].back()["kind"] == "block");
  // One code of a member: refused without a reason, for a code that is not
  // a member code, or one HQ does not know; nothing written then.
  CHECK_FALSE(hq.ledger->set_code_blocked("LM1:M1001", true, "", "ops"));
  CHECK_FALSE(hq.ledger->set_code_blocked("12345", true, "shared on social media", "ops"));
  auto unknown = hq.ledger->set_code_blocked("LM1:M-NOBODY", true, "shared on social media", "ops");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == core::ErrorCode::kNotFound);
  CHECK(count(*hq.db, "audit") == 3);
  REQUIRE(hq.ledger->set_code_blocked("LM1:M1001", true, "shared on social media", "ops"));
  CHECK(count(*hq.db, "audit") == 4);
  CHECK(count(*hq.db, "blocked_codes") == 1);
  feed = hq.ledger->changes(0, 1000, "S001");
  const auto last = (*feed)["changes"].back();
  CHECK(last["kind"] == "code");
  CHECK(last["data"] == Json{{"code", "LM1:M1001"}, {"member_id", "M1001"}, {"blocked", true}});
  // A program published for later is not in force: stock and campaigns
  // follow the version the stores run now.
  auto later = Json::parse(read_all(hq_source("examples/programs/coffee-chain.json")));
  later["version"] = 2;
  later["rewards"][0]["id"] = "mug";
  REQUIRE(hq.ledger->publish_program(later.dump(), 4'102'444'800, hq.key, "ops"));  // 2100
  CHECK(hq.ledger->allocate_stock("S001", "T01", "voucher-10", 2, "ops", ""));
  CHECK_FALSE(hq.ledger->allocate_stock("S001", "T01", "mug", 2, "ops", ""));
  // Nor to a terminal that is revoked.
  REQUIRE(hq.ledger->revoke_terminal("S001", "T01"));
  auto revoked = hq.ledger->allocate_stock("S001", "T01", "voucher-10", 2, "ops", "");
  REQUIRE_FALSE(revoked);
  CHECK(revoked.error().message.find("revoked") != std::string::npos);
  CHECK_FALSE(hq.ledger->publish_program(later.dump(), -1, hq.key, "ops"));
  // Taking back more than the member has: debt, and a flag that says an
  // adjustment did it, listed with the member under the id resolve-flag takes.
  REQUIRE(hq.ledger->adjust("M1001", -100'000, "fraudulent points reversed", "ops"));
  const auto held = *hq.ledger->member("M1001");
  REQUIRE(held["flags"].size() == 1);
  CHECK(held["flags"][0]["kind"] == "points-overdrawn");
  CHECK(held["flags"][0]["detail"].get<std::string>().find("this adjustment takes") !=
        std::string::npos);
  CHECK(hq.ledger->resolve_flag(held["flags"][0]["id"], "member agreed to repay", "ops", false));
  hq.verified();
}

TEST_CASE("members import from CSV: bad rows are listed with their reason, the rest load",
          "[hq][ledger][import]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  // Saved by a spreadsheet: with a byte-order mark.
  std::istringstream csv(
      "\xEF\xBB\xBFmember_id,phone,card_number,name,birthday,tier,points,points_expire_on\n"
      "M2001,13900000001,9000000000010018,\"Wang, Fang\",1990-05-17,daily,1200,2027-06-30\n"
      "M2002,13900000002,,Li Wei,,,0,\n"
      "M2003,12ab,,Bad Phone,,,10,\n"
      "M2004,13900000004,9000000000010019,Typo Card,,,10,\n"
      "M2001,13900000005,,Same Id,,,10,\n"
      "M2006,13900000006,,Negative,,,-5,\n"
      "M2007,13900000007,,Short Row\n"
      "M2008,13900000008,,Bad Date,1990-13-40,,10,\n"
      "M2009,13900000002,,Same Phone,,,10,\n"
      "M2010,13900000010,9000000000010018,Same Card,,,10,\n"
      "M2011,13900000011,,Odd Tier,,platinum,10,\n"
      "M2012,13900000012,,Half Point,,,1.5,\n");
  std::vector<std::int64_t> progress;
  auto r = hq.ledger->import_members(
      csv, "2026-11-22", [&](std::int64_t done, std::int64_t) { progress.push_back(done); });
  REQUIRE(r);
  INFO(r->dump(2));
  CHECK((*r)["rows"] == 12);
  CHECK((*r)["added"] == 2);
  CHECK((*r)["rejected"] == 10);
  CHECK((*r)["opening_points"] == 1200);
  const auto problems = (*r)["problems"].dump();
  CHECK(problems.find("line 4: phone") != std::string::npos);
  CHECK(problems.find("line 5: card_number") != std::string::npos);
  CHECK(problems.find("line 6: member_id: M2001 already exists") != std::string::npos);
  CHECK(problems.find("line 7: points") != std::string::npos);
  CHECK(problems.find("line 8: has 4 fields") != std::string::npos);
  CHECK(problems.find("line 9:") != std::string::npos);
  // A card or phone finds one member at the till: never given twice.
  CHECK(problems.find("line 10: phone: 13900000002 already belongs to M2002") != std::string::npos);
  CHECK(problems.find("line 11: card_number: 9000000000010018 already belongs to M2001") !=
        std::string::npos);
  CHECK(problems.find("line 12: tier: platinum is not a tier") != std::string::npos);
  CHECK(problems.find("line 13: points") != std::string::npos);
  CHECK(progress.back() == 12);
  auto m = hq.ledger->member("M2001");
  REQUIRE(m);
  CHECK((*m)["balance"] == 1200);
  CHECK((*m)["member"]["tier"] == "daily");
  auto liability = hq.ledger->liability();
  CHECK((*liability)["outstanding_points"] == 1200);
  std::istringstream no_header("M1,1,2\n");
  CHECK_FALSE(hq.ledger->import_members(no_header, "2026-11-22"));
  // Her card, phone and name travel with every later state of hers in the
  // feed, however many batches she shops in.
  auto a = hq.terminal("S001");
  auto state = core::member_from_json((*m)["member"]);
  REQUIRE(state);
  a.know(*state);
  for (int batch = 0; batch < 3; ++batch)
    hq.ingest(a, {a.sell("M2001", kBasket), a.sell("M2001", kBasket)});
  auto feed = hq.ledger->changes(0, 1000, "S001");
  REQUIRE(feed);
  int states = 0;
  for (const auto& c : (*feed)["changes"]) {
    if (c["kind"] != "member" || c["key"] != "M2001") continue;
    ++states;
    CHECK(c["data"].value("card_number", "") == "9000000000010018");
    CHECK(c["data"].value("phone", "") == "13900000001");
    CHECK(c["data"].value("name", "") == "Wang, Fang");
  }
  CHECK(states == 1);  // superseded states are left out
  CHECK((*hq.ledger->member("M2001"))["balance"] ==
        a.view("M2001").available(*core::parse_local_date("2026-11-23")));
  hq.verified();
}

TEST_CASE("scheduled jobs give birthday rewards once, and reports count sales and members",
          "[hq][ledger][jobs]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  auto a = hq.terminal("S001");
  hq.sales(a, 3);
  const auto vouchers = (*hq.ledger->member("M1001"))["member"]["vouchers"].size();
  // M1001 (Daily tier) was born in November: the coffee program's birthday
  // drink voucher on the first of the month, and Daily's two monthly bakery
  // vouchers (period_end), once however often the day runs.
  auto jobs = hq.ledger->run_jobs("2026-11-01");
  REQUIRE(jobs);
  INFO(jobs->dump());
  CHECK((*jobs)["birthday"] == 1);
  CHECK((*jobs)["period_end"] == 1);
  CHECK(hq.ledger->run_jobs("2026-11-01"));
  CHECK((*hq.ledger->member("M1001"))["member"]["vouchers"].size() == vouchers + 3);
  CHECK_FALSE(hq.ledger->run_jobs("2026-12-01"));  // not yet: nothing runs ahead of its day
  hq.now += 10 * 86'400;
  // Not the birthday month: only December's two bakery vouchers.
  CHECK(hq.ledger->run_jobs("2026-12-01"));
  CHECK((*hq.ledger->member("M1001"))["member"]["vouchers"].size() == vouchers + 5);

  auto report = hq.ledger->report("2026-11-01", "2026-11-30");
  REQUIRE(report);
  INFO(report->dump());
  REQUIRE((*report)["per_store_day"].size() == 1);
  const auto& day = (*report)["per_store_day"][0];
  CHECK(day["store_id"] == "S001");
  CHECK(day["transactions"] == 3);
  CHECK(day["sales"] == 3 * 6800);
  CHECK((*report)["metrics"]["active_members"] == 1);
  CHECK((*report)["metrics"]["repurchase_rate"] == 1.0);
  CHECK((*report)["metrics"]["points_redeemed"] == 0);
  CHECK_FALSE(hq.ledger->report("November", "2026-11-30"));
  // A campaign: one voucher each; an unknown member is listed, not fatal.
  auto campaign = hq.ledger->issue_vouchers("bakery-9", {"M1001", "M-NOBODY"}, "2026-11-22", "ops");
  REQUIRE(campaign);
  CHECK((*campaign)["issued"] == 1);
  CHECK((*campaign)["unknown_members"][0] == "M-NOBODY");
  CHECK((*campaign)["codes"]["M1001"].get<std::string>().starts_with("HQ-V"));
  // The audit says what was done, not what was asked.
  const auto audited = hq.db->query("SELECT detail FROM audit WHERE action = 'issue-vouchers'");
  REQUIRE(audited.size() == 1);
  CHECK(audited[0].text(0) == "bakery-9 to 1 members (1 unknown ids skipped)");
  CHECK((*hq.ledger->member("M1001"))["member"]["vouchers"].size() ==
        vouchers + 6);  // the jobs gave 5
  CHECK_FALSE(hq.ledger->issue_vouchers("no-such-template", {"M1001"}, "2026-11-22", "ops"));
  hq.verified();
}

TEST_CASE("a purchase's receipt in the feed is its basis as sold", "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  auto a = hq.terminal("S001");
  auto sold = a.sell("M1001", kBasket);
  // A terminal that sends a basis with returns already counted in it: HQ
  // counts returns from their own records, so the receipt starts from zero.
  auto counted = a.sell("M1001", kBasket);
  REQUIRE(counted.return_basis["returned_qty"].size() == 2);
  counted.return_basis["returned_qty"][1] = 1;
  counted.return_basis["points_reversed"] = 7;
  REQUIRE(hq.ledger->ingest("S001", "T01", a.batch({sold, counted})));
  std::map<std::string, Json> receipts;
  auto c = hq.ledger->changes(0, 100, "S001");
  REQUIRE(c.has_value());
  const Json changes = (*c)["changes"];
  for (const auto& ch : changes)
    if (ch["kind"] == "receipt") receipts[ch["key"].get<std::string>()] = ch["data"];
  REQUIRE(receipts.size() == 2);
  const auto& first = receipts.at(sold.txn_id);
  CHECK(first["member_id"] == "M1001");
  CHECK(first["txn_id"] == sold.txn_id);
  CHECK(first["return_basis"] == sold.return_basis);
  const auto& second = receipts.at(counted.txn_id)["return_basis"];
  CHECK(second["returned_qty"] == Json::array({0, 0}));
  CHECK(second["points_reversed"] == 0);
  CHECK(second["points_earned"] == counted.return_basis["points_earned"]);
  hq.verified();
}

TEST_CASE("HQ's SQLite file takes in its write-ahead log while serve stays connected",
          "[hq][ledger]") {
  // serve keeps one connection open for days: the log must still be copied
  // into the database file as it grows, not only when serve stops.
  const auto target = fresh_hq_target("sqlite");
  const std::filesystem::path file = target.substr(std::string("sqlite:").size());
  auto db = open_hq_db(target);
  const std::string detail(3000, 'x');
  for (int batch = 0; batch < 16; ++batch) {  // about 24 MB, 500 rows a commit
    db->begin();
    for (int i = 0; i < 500; ++i)
      db->exec("INSERT INTO audit(actor, action, detail, created_at) VALUES ('t', 'bulk', ?1, 0)",
               {detail});
    db->commit();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::filesystem::file_size(file) < 20'000'000 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(std::filesystem::file_size(file) >= 20'000'000);
  // Bounded: the writer checkpoints itself at 16,000 pages if the thread
  // falls behind.
  CHECK(std::filesystem::file_size(file.string() + "-wal") < 16'100 * 4096);
  CHECK(count(*db, "audit") == 8000);
  db.reset();
  for (const auto* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix);
}

TEST_CASE("two HQ processes starting on a fresh database both come up with one schema",
          "[hq][ledger]") {
  // serve and a CLI command (or two hosts' serve on one PostgreSQL) may
  // create or upgrade the schema at the same moment; neither may fail.
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  for (int round = 0; round < 3; ++round) {
    const auto target = fresh_hq_target(backend);
    auto a = hq::open_sql(target);
    auto b = hq::open_sql(target);
    REQUIRE(a);
    REQUIRE(b);
    core::Status first, second;
    std::thread other([&] { second = hq::migrate_hq(**b); });
    first = hq::migrate_hq(**a);
    other.join();
    for (const auto* s : {&first, &second}) {
      INFO((*s ? std::string() : s->error().message));
      CHECK(s->has_value());
    }
    const auto versions = (*a)->query("SELECT version FROM schema_version ORDER BY version");
    REQUIRE(versions.size() == static_cast<std::size_t>(hq::kHqSchemaVersion));
    for (std::size_t i = 0; i < versions.size(); ++i)
      CHECK(versions[i].integer(0) == static_cast<std::int64_t>(i + 1));
  }
}

TEST_CASE("the feed answers while an ingest waits for the database", "[slow][hq][ledger]") {
  // serve reads the feed on a connection of its own: a terminal polling the
  // feed is not held up by another terminal's batch, however long it takes.
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  hq.ledger->serve_feed_from(open_hq_db(hq.target));
  auto a = hq.terminal("S001");
  hq.sales(a, 2);
  const auto before = (*hq.ledger->changes(0, 100, "S001"))["changes"].size();
  // Another writer (a CLI command, a second host) holds the write lock, so
  // the next ingest waits inside the ledger.
  auto writer = open_hq_db(hq.target);
  writer->begin();
  std::atomic<bool> released{false};
  const auto release = [&] {
    if (!released.exchange(true)) writer->rollback();
  };
  core::Result<sync::BatchAnswer> ingested = core::fail(core::ErrorCode::kUnavailable, "not run");
  std::thread upload(
      [&] { ingested = hq.ledger->ingest(a.store(), a.terminal(), a.batch(Hq::sold(a, 1))); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the ingest is waiting
  // Should the feed wait for the ingest, the writer lets go after 3 s, so
  // the test fails instead of hanging.
  std::thread watchdog([&] {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    release();
  });
  const auto during = hq.ledger->changes(0, 100, "S001");
  const bool answered_while_waiting = !released.load();
  release();
  upload.join();
  watchdog.join();
  REQUIRE(during);
  CHECK(answered_while_waiting);
  CHECK((*during)["changes"].size() == before);  // what was committed then
  REQUIRE(ingested);
  CHECK(ingested->results.at(0).status == sync::BatchStatus::kAccepted);
  // The new sale's receipt, now committed, is in the feed.
  CHECK((*hq.ledger->changes(0, 100, "S001"))["changes"].size() == before + 1);
  hq.verified();
}

TEST_CASE("a voucher revoked at HQ leaves the member and a use a store made unaware is flagged",
          "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  auto a = hq.terminal("S001");
  hq.sales(a, 1);  // HQ knows M1001 from now on
  auto issued = hq.ledger->issue_vouchers("bakery-9", {"M1001"}, "2026-11-23", "test");
  REQUIRE(issued);
  const auto held = (*hq.ledger->member("M1001"))["member"];
  REQUIRE(held["vouchers"].size() == 1);
  const auto code = held["vouchers"][0]["code"].get<std::string>();
  // The store has the feed: it holds the voucher too.
  a.know(*core::member_from_json(held));

  // Refused, nothing written: no reason, an unknown member, a code not held.
  const auto audited = count(*hq.db, "audit");
  CHECK(hq.ledger->revoke_voucher("M1001", code, "", "test").error().code ==
        core::ErrorCode::kInvalidArgument);
  CHECK(hq.ledger->revoke_voucher("M404", code, "sent to the wrong list", "test").error().code ==
        core::ErrorCode::kNotFound);
  const auto not_held =
      hq.ledger->revoke_voucher("M1001", "HQ-V9-9", "sent to the wrong list", "test");
  REQUIRE_FALSE(not_held);
  CHECK(not_held.error().message.find("holds no voucher HQ-V9-9") != std::string::npos);
  CHECK(count(*hq.db, "audit") == audited);
  CHECK(count(*hq.db, "revoked_vouchers") == 0);

  const auto feed_at = (*hq.ledger->changes(0, 1000, "S001"))["next_cursor"].get<std::int64_t>();
  auto revoked = hq.ledger->revoke_voucher("M1001", code, "sent to the wrong list", "test");
  REQUIRE(revoked);
  CHECK((*revoked)["template"] == "bakery-9");
  CHECK((*hq.ledger->member("M1001"))["member"]["vouchers"].empty());
  CHECK(count(*hq.db, "audit") == audited + 1);
  // Every store hears through the member's change: the state without it.
  const auto told = (*hq.ledger->changes(feed_at, 1000, "S002"))["changes"];
  REQUIRE(told.size() == 1);
  CHECK(told[0]["kind"] == "member");
  CHECK(told[0]["data"]["state"]["vouchers"].empty());
  // Twice is refused: it is no longer held.
  CHECK_FALSE(hq.ledger->revoke_voucher("M1001", code, "sent to the wrong list", "test"));

  // S001 was offline and took the voucher before it heard: the sale is a
  // fact and is booked, flagged as a use of a revoked voucher.
  Json with_voucher = kBasket;
  with_voucher["vouchers"] = Json::array({code});
  auto sale = a.sell("M1001", with_voucher);
  REQUIRE(sale.delta.vouchers_used.size() == 1);
  const auto answer = hq.ingest(a, {sale});
  CHECK(answer["results"][0]["status"] == "accepted");
  REQUIRE(answer["results"][0]["flags"].size() == 1);
  CHECK(answer["results"][0]["flags"][0]["kind"] == "voucher-revoked");
  CHECK(answer["results"][0]["flags"][0]["detail"].get<std::string>().find(
            "sent to the wrong list") != std::string::npos);
  hq.balance_matches(a);
  hq.verified();
}

TEST_CASE("with the visited member feed a store gets only the members it sold to or looked up",
          "[hq][ledger]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  Hq hq(backend);
  hq.ledger->set_member_feed(hq::HqLedger::MemberFeed::kVisited);
  auto a = hq.terminal("S001");
  auto b = hq.terminal("S002");
  hq.sales(a, 2);
  const auto kinds = [&](const std::string& store) {
    std::vector<std::string> out;
    const auto page = hq.ledger->changes(0, 100, store);
    if (!page) FAIL(page.error().message);
    for (const auto& ch : (*page)["changes"])
      out.push_back(ch["kind"].get<std::string>() + ":" + ch["key"].get<std::string>());
    return out;
  };
  // S001 sold to M1001: it gets the member and its receipts. S002 gets the
  // program only.
  const auto at_a = kinds("S001");
  CHECK(std::count(at_a.begin(), at_a.end(), "member:M1001") == 1);
  CHECK(std::count_if(at_a.begin(), at_a.end(),
                      [](const std::string& k) { return k.starts_with("receipt:"); }) == 2);
  CHECK(kinds("S002") == std::vector<std::string>{"program:coffee-chain@1"});
  // What happens to M1001 later still goes to S001 only.
  REQUIRE(hq.ledger->set_blocked("M1001", true, "card reported stolen", "test"));
  REQUIRE(hq.ledger->set_code_blocked("LM1:M1001", true, "QR leaked online", "test"));
  CHECK(kinds("S002").size() == 1);
  const auto blocked_at_a = kinds("S001");
  CHECK(std::count(blocked_at_a.begin(), blocked_at_a.end(), "block:M1001") == 1);
  CHECK(std::count(blocked_at_a.begin(), blocked_at_a.end(), "code:LM1:M1001") == 1);
  // With every member to every store, S002 has it all too.
  hq.ledger->set_member_feed(hq::HqLedger::MemberFeed::kAll);
  CHECK(kinds("S002").size() == kinds("S001").size());
  hq.ledger->set_member_feed(hq::HqLedger::MemberFeed::kVisited);

  // S002 looks her up (she came in with her app): the answer is what S002
  // would have had, and S002 holds her from now on.
  const auto rows_before = count(*hq.db, "member_stores");
  auto found = hq.ledger->lookup_member("member_id", "M1001", "S002");
  REQUIRE(found);
  const auto& got = (*found)["changes"];
  REQUIRE(got.size() >= 4);
  CHECK(got[0]["kind"] == "member");
  CHECK(got[0]["data"]["blocked"] == true);
  CHECK(got[0]["data"]["state"] == (*hq.ledger->member("M1001"))["member"]);
  std::vector<std::string> kinds_got;
  for (const auto& ch : got) kinds_got.push_back(ch["kind"]);
  CHECK(std::count(kinds_got.begin(), kinds_got.end(), "code") == 1);
  CHECK(std::count(kinds_got.begin(), kinds_got.end(), "receipt") == 2);
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i]["cursor"] == i + 1);
  CHECK(count(*hq.db, "member_stores") == rows_before + 1);
  // Looking her up again adds nothing; later changes reach S002 as well.
  REQUIRE(hq.ledger->lookup_member("member_id", "M1001", "S002"));
  CHECK(count(*hq.db, "member_stores") == rows_before + 1);
  const auto cursor = (*hq.ledger->changes(0, 100, "S002"))["next_cursor"].get<std::int64_t>();
  REQUIRE(hq.ledger->set_blocked("M1001", false, "card found again", "test"));
  const auto later = (*hq.ledger->changes(cursor, 100, "S002"))["changes"];
  REQUIRE(later.size() >= 1);
  CHECK(later[0]["kind"] == "block");
  // By phone and card too; unknown keys and members are refused.
  CHECK(hq.ledger->lookup_member("phone", "13900000000", "S002").error().code ==
        core::ErrorCode::kNotFound);
  CHECK(hq.ledger->lookup_member("email", "x@example.com", "S002").error().code ==
        core::ErrorCode::kInvalidArgument);
  CHECK(hq.ledger->lookup_member("member_id", "M404", "S002").error().code ==
        core::ErrorCode::kNotFound);
  // Sales at S002 later keep it holding her, once.
  b.know(*core::member_from_json(got[0]["data"]["state"]));
  hq.sales(b, 1);
  CHECK(count(*hq.db, "member_stores") == rows_before + 1);

  // Members imported with their stores reach those stores before a first
  // visit (which may come while the store is offline), and no others.
  std::istringstream csv(
      "member_id,phone,card_number,name,birthday,tier,points,points_expire_on,stores\n"
      "M2001,13900000021,,Wang,,,100,,S002\n"
      "M2002,13900000022,,Li,,,0,,S001; S002\n"
      "M2003,13900000023,,Zhao,,,0,,\n"
      "M2004,13900000024,,Sun,,,0,,S00 2\n");
  const auto imported = hq.ledger->import_members(csv, "2026-11-22");
  REQUIRE(imported);
  INFO(imported->dump());
  CHECK((*imported)["added"] == 3);
  REQUIRE((*imported)["problems"].size() == 1);
  CHECK((*imported)["problems"][0] == "line 5: stores: must be store ids separated by ';'");
  const auto has = [&](const std::string& store, const std::string& id) {
    const auto k = kinds(store);
    return std::count(k.begin(), k.end(), "member:" + id) == 1;
  };
  CHECK(has("S002", "M2001"));
  CHECK_FALSE(has("S001", "M2001"));
  CHECK(has("S001", "M2002"));
  CHECK(has("S002", "M2002"));
  CHECK_FALSE(has("S001", "M2003"));
  CHECK_FALSE(has("S002", "M2003"));
  hq.verified();
}

TEST_CASE("a grace period is settled by the daily jobs the day it runs out", "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  // The learning platform: yearly window, 30 days' grace for L2 and up.
  REQUIRE(hq.ledger->publish_program(
      read_all(hq_source("examples/programs/learning-platform.json")), 1, hq.key, "test"));
  std::istringstream csv(
      "member_id,phone,card_number,name,birthday,tier,points,points_expire_on\n"
      "LP-G1,13900000031,,Qian,,l2,0,\n");
  const auto imported = hq.ledger->import_members(csv, "2026-11-22");
  REQUIRE(imported);
  INFO(imported->dump());
  REQUIRE((*imported)["added"] == 1);
  const auto state = [&] {
    auto m = hq.ledger->member("LP-G1");
    REQUIRE(m);
    return (*m)["member"];
  };
  hq.now = 1'801'000'000;  // 2027-01-26 UTC
  // No growth in 2026: L2 fails on 1 January and its grace starts.
  REQUIRE(hq.ledger->run_jobs("2027-01-01"));
  CHECK(state()["tier"] == "l2");
  CHECK(state()["grace_until"] == "2027-01-31");
  REQUIRE(hq.ledger->run_jobs("2027-01-15"));
  CHECK(state()["tier"] == "l2");
  hq.now = 1'801'500'000;  // 2027-02-01 UTC
  // The grace ran 2027-01-01..30 without half the thresholds: one level
  // down on the 31st, not on the next 1 January.
  const auto settled = hq.ledger->run_jobs("2027-01-31");
  REQUIRE(settled);
  CHECK((*settled)["tier_changes"] == 1);
  CHECK(state()["tier"] == "l1");
  CHECK_FALSE(state().contains("grace_until"));
  hq.verified();
}

TEST_CASE("daily rules run once a day at HQ: an enrolment anniversary gift", "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  auto program = Json::parse(read_all(hq_source("examples/programs/coffee-chain.json")));
  program["version"] = 2;
  program["vouchers"].push_back({{"id", "anniversary-gift"},
                                 {"name", "Anniversary gift"},
                                 {"kind", "amount"},
                                 {"value", 2000}});
  program["rules"].push_back(
      {{"id", "enrolment-anniversary"},
       {"name", "A year a member"},
       {"trigger", "daily"},
       {"when", {{"anniversary", {{"of", "enrollment"}}}}},
       {"effects", Json::array({{{"type", "issue_voucher"}, {"voucher", "anniversary-gift"}}})}});
  REQUIRE(hq.ledger->publish_program(program.dump(), 1, hq.key, "test"));
  std::istringstream csv(
      "member_id,phone,card_number,name,birthday,tier,points,points_expire_on\n"
      "M3001,13900000041,,Zhou,,,0,\n");
  REQUIRE(hq.ledger->import_members(csv, "2025-11-22"));  // enrolled that day
  const auto gifts = [&] {
    const auto m = hq.ledger->member("M3001");
    REQUIRE(m);
    int n = 0;
    for (const auto& v : (*m)["member"]["vouchers"]) n += v["template"] == "anniversary-gift";
    return n;
  };
  REQUIRE(hq.ledger->run_jobs("2026-11-21"));
  CHECK(gifts() == 0);
  auto day = hq.ledger->run_jobs("2026-11-22");
  REQUIRE(day);
  INFO(day->dump());
  CHECK((*day)["daily"] == 1);
  CHECK(gifts() == 1);
  REQUIRE(hq.ledger->run_jobs("2026-11-22"));  // the same day again gives nothing more
  CHECK(gifts() == 1);
  hq.now += 86'400;
  REQUIRE(hq.ledger->run_jobs("2026-11-23"));
  CHECK(gifts() == 1);
  hq.verified();
}

TEST_CASE("a verified attribute is set until a day and removed, audited, as a member change",
          "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  auto a = hq.terminal("S001");
  hq.sales(a, 1);
  const auto state = [&] {
    auto m = hq.ledger->member("M1001");
    REQUIRE(m);
    return (*m)["member"];
  };
  const auto changes = [&] {
    return hq.db->query("SELECT COUNT(*) FROM changes WHERE kind = 'member' AND key = 'M1001'")[0]
        .integer(0);
  };
  const auto before = changes();
  const auto until = core::parse_local_date("2027-07-31");
  // Refused with nothing written: no reason, a name that is not one, nobody.
  CHECK_FALSE(hq.ledger->set_attribute("M1001", "student", until, "", "ops"));
  CHECK_FALSE(hq.ledger->set_attribute("M1001", "stu dent", until, "card checked", "ops"));
  CHECK_FALSE(hq.ledger->set_attribute("M9999", "student", until, "card checked", "ops"));
  CHECK_FALSE(state().contains("attributes"));
  CHECK(changes() == before);
  REQUIRE(hq.ledger->set_attribute("M1001", "student", until, "student card checked", "ops"));
  CHECK(state()["attributes"]["student"] == "2027-07-31");
  CHECK(changes() == before + 1);
  REQUIRE(hq.ledger->set_attribute("M1001", "student", std::nullopt, "left school", "ops"));
  CHECK_FALSE(state().contains("attributes"));
  // Nothing to remove is an error, not a silent success.
  CHECK_FALSE(hq.ledger->set_attribute("M1001", "student", std::nullopt, "again", "ops"));
  const auto audited =
      hq.db->query("SELECT actor, detail FROM audit WHERE action = 'member-attribute'");
  REQUIRE(audited.size() == 2);
  CHECK(audited[0].text(1).find("student card checked") != std::string::npos);
  hq.verified();
}

TEST_CASE("an audited reset zeroes a member's metrics or sets a trial tier kept until a day",
          "[hq][ledger]") {
  ON_EACH_BACKEND(hq);
  auto a = hq.terminal("S001");
  hq.sales(a, 2);  // M1001's points and orders counters
  const auto state = [&] {
    auto m = hq.ledger->member("M1001");
    REQUIRE(m);
    return (*m)["member"];
  };
  const auto has_counter = [&](const std::string& prefix) {
    const auto now = state();
    for (const auto& [k, v] : now["counters"].items())
      if (k.starts_with(prefix)) return true;
    return false;
  };
  REQUIRE(has_counter("orders@"));
  REQUIRE(has_counter("points@"));
  const auto member_changes =
      hq.db->query("SELECT COUNT(*) FROM changes WHERE kind = 'member' AND key = 'M1001'")[0]
          .integer(0);
  // A reason is required; an unknown tier is refused with nothing written.
  CHECK_FALSE(hq.ledger->reset_member("M1001", {{"orders"}, "", std::nullopt}, "", "ops"));
  CHECK_FALSE(hq.ledger->reset_member("M1001", {{}, "platinum", std::nullopt}, "fraud", "ops"));
  CHECK(has_counter("orders@"));
  // Shared account, growth farmed: orders zeroed, points counters kept.
  auto r = hq.ledger->reset_member("M1001", {{"orders"}, "", std::nullopt},
                                   "ticket 4711: account shared, orders farmed", "ops");
  REQUIRE(r);
  INFO(r->dump());
  CHECK((*r)["counters_cleared"].get<int>() > 0);
  CHECK_FALSE(has_counter("orders@"));
  CHECK(has_counter("points@"));
  // A launch trial: Elite until 2027-01-31, kept by re-evaluations until then.
  REQUIRE(hq.ledger->reset_member("M1001", {{}, "elite", core::parse_local_date("2027-01-31")},
                                  "launch trial upgrade", "ops"));
  CHECK(state()["tier"] == "elite");
  CHECK(state()["tier_valid_until"] == "2027-01-31");
  hq.now += 12 * 86'400;  // 2026-12-03
  REQUIRE(hq.ledger->run_jobs("2026-12-01"));
  CHECK(state()["tier"] == "elite");
  const auto audited =
      hq.db->query("SELECT actor, detail FROM audit WHERE action = 'reset-member'");
  REQUIRE(audited.size() == 2);
  CHECK(audited[0].text(0) == "ops");
  CHECK(audited[0].text(1).find("ticket 4711") != std::string::npos);
  // Each reset is a member change in the feed (it carries the row's state).
  CHECK(hq.db->query("SELECT COUNT(*) FROM changes WHERE kind = 'member' AND key = 'M1001'")[0]
            .integer(0) >= member_changes + 2);
  hq.verified();
}
