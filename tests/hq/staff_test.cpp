// Staff accounts for store counters at HQ: only the PIN's hash is kept and
// sent, each store's feed carries the people who work there, and a store
// taken off someone's list, or a disabled account, is told so.
#include "tests/hq/hq_fixture.h"

using namespace loyalty;
using namespace loyalty::test;

namespace {

// The staff changes in `store`'s feed after `cursor`.
Json staff_changes(hq::HqLedger& ledger, const std::string& store, std::int64_t cursor = 0) {
  Json out = Json::array();
  const auto page = ledger.changes(cursor, 1000, store);
  REQUIRE(page);
  for (const auto& c : (*page)["changes"])
    if (c["kind"] == "staff") out.push_back(c["data"]);
  return out;
}

}  // namespace

TEST_CASE("HQ sends a staff account to the stores they work at, with the PIN hashed",
          "[hq][staff]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  auto db = fresh_hq_db(backend);
  std::int64_t now = 1'795'300'100;
  hq::HqLedger ledger(*db, [&] { return now; });

  auto added = ledger.put_staff({"1001", "王芳", "clerk", "2468", {"S001", "S002"}}, "test");
  REQUIRE(added);
  CHECK((*added)["stores"] == Json::array({"S001", "S002"}));
  for (const auto* store : {"S001", "S002"}) {
    const auto got = staff_changes(ledger, store);
    REQUIRE(got.size() == 1);
    CHECK(got[0]["name"] == "王芳");
    CHECK(got[0]["role"] == "clerk");
    CHECK(got[0]["active"] == true);
    const auto hash = got[0]["pin_hash"].get<std::string>();
    CHECK(hash.find("2468") == std::string::npos);
    CHECK(hash.starts_with("pbkdf2-sha256$"));
    CHECK(platform::verify_pin("2468", hash));
    CHECK_FALSE(platform::verify_pin("2469", hash));
  }
  CHECK(staff_changes(ledger, "S003").empty());  // not a store they work at
  // The list never shows the hash.
  const auto list = (*ledger.staff())["staff"];
  REQUIRE(list.size() == 1);
  CHECK_FALSE(list[0].contains("pin_hash"));

  // Moved to S002 only, as a supervisor, keeping the PIN: S001 disables
  // them, S002 gets the new role with the same hash.
  const auto cursor = (*ledger.changes(0, 1000, "S002"))["next_cursor"].get<std::int64_t>();
  const auto old_hash = staff_changes(ledger, "S002")[0]["pin_hash"];
  REQUIRE(ledger.put_staff({"1001", "王芳", "supervisor", "", {"S002"}}, "test"));
  const auto s1 = staff_changes(ledger, "S001", cursor);
  REQUIRE(s1.size() == 1);
  CHECK(s1[0]["active"] == false);
  const auto s2 = staff_changes(ledger, "S002", cursor);
  REQUIRE(s2.size() == 1);
  CHECK(s2[0]["role"] == "supervisor");
  CHECK(s2[0]["pin_hash"] == old_hash);

  // Disabled: every store they work at is told.
  auto off = ledger.disable_staff("1001", "test");
  REQUIRE(off);
  CHECK((*off)["active"] == false);
  const auto last = staff_changes(ledger, "S002");
  CHECK(last.back()["active"] == false);
  CHECK(ledger.disable_staff("1001", "test").error().code == core::ErrorCode::kFailedPrecondition);
  CHECK(ledger.disable_staff("nobody", "test").error().code == core::ErrorCode::kNotFound);
}

TEST_CASE("a staff account with a bad PIN, role or store is refused and nothing is sent",
          "[hq][staff]") {
  auto db = fresh_hq_db("sqlite");
  hq::HqLedger ledger(*db, [] { return std::int64_t{1'795'300'100}; });
  const auto refused = [&](hq::HqLedger::StaffInput in, const std::string& field) {
    auto r = ledger.put_staff(in, "test");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == core::ErrorCode::kInvalidArgument);
    CHECK(r.error().problems.at(0).path == field);
  };
  refused({"1001", "王芳", "clerk", "12", {"S001"}}, "pin");    // too short
  refused({"1001", "王芳", "clerk", "12ab", {"S001"}}, "pin");  // not digits
  refused({"1001", "王芳", "clerk", "", {"S001"}}, "pin");      // new, no PIN
  refused({"1001", "王芳", "manager", "2468", {"S001"}}, "role");
  refused({"1001", "王芳", "clerk", "2468", {}}, "stores");
  refused({"1001", "王芳", "clerk", "2468", {"S 1"}}, "stores");
  refused({"10 01", "王芳", "clerk", "2468", {"S001"}}, "staff_id");
  refused({"1001", "", "clerk", "2468", {"S001"}}, "name");
  CHECK(staff_changes(ledger, "S001").empty());
  CHECK((*ledger.staff())["staff"].empty());
}

TEST_CASE("who made a sale at the till reaches HQ and is shown with the member's transactions",
          "[hq][staff]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  auto db = fresh_hq_db(backend);
  hq::HqLedger ledger(*db, [] { return std::int64_t{1'795'300'100}; });
  const auto key = platform::SigningKey::generate();
  REQUIRE(ledger.publish_program(read_all(hq_source("examples/programs/coffee-chain.json")), 0, key,
                                 "test"));
  REQUIRE(ledger.add_terminal("S001", "T01", ""));
  const auto program = coffee_program();
  FakeTerminal till("S001", "T01", program);
  till.know(demo_member_state());
  auto by_clerk = till.sell("M1001", coffee_basket());
  by_clerk.staff_id = "1001";
  auto by_pos = till.sell("M1001", coffee_basket());  // the POS named nobody
  // On the wire as any terminal sends it, read back as HQ reads it.
  auto batch = sync::batch_from_json(sync::batch_to_json(till.batch({by_clerk, by_pos})));
  REQUIRE(batch);
  CHECK(batch->records[0].staff_id == "1001");
  REQUIRE(ledger.ingest("S001", "T01", *batch));
  const auto m = ledger.member("M1001");
  REQUIRE(m);
  const auto& txns = (*m)["transactions"];
  REQUIRE(txns.size() == 2);
  CHECK(txns[1]["txn_id"] == by_clerk.txn_id);  // newest first
  CHECK(txns[1]["staff_id"] == "1001");
  CHECK(txns[1]["store_id"] == "S001");
  CHECK(txns[0]["staff_id"].is_null());

  // A staff id that is not an id is a malformed record.
  auto bad = by_clerk;
  bad.staff_id = "王 芳";
  auto refused = sync::batch_from_json(sync::batch_to_json(till.batch({bad})));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("staff_id") != std::string::npos);
}
