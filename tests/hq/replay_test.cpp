// HQ's replay of a record on its own: no database, the same engine and
// program the terminal ran.
#include <catch2/catch.hpp>

#include "hq/replay.h"
#include "tests/hq/hq_fixture.h"

using namespace loyalty;
using namespace loyalty::test;

TEST_CASE("HQ's replay agrees with an honest till and flags one whose numbers differ", "[replay]") {
  const auto program = coffee_program();
  FakeTerminal till("S001", "T01", program);
  till.know(demo_member_state());
  const auto sale = till.sell("M1001", coffee_basket());

  const auto honest = hq::prepare_record(sale, &program);
  CHECK_FALSE(honest.replay);
  CHECK(honest.hash.size() == 64);
  // The receipt change other stores take returns from, as sold.
  const auto receipt = Json::parse(honest.receipt);
  CHECK(receipt["txn_id"] == sale.txn_id);
  CHECK(receipt["member_id"] == "M1001");
  CHECK(receipt["return_basis"].is_object());

  // A till that claims more points than the program gives for this basket.
  auto inflated = sale;
  inflated.totals["points_earned"] = inflated.totals["points_earned"].get<std::int64_t>() + 100;
  inflated.text.clear();
  const auto caught = hq::prepare_record(inflated, &program);
  REQUIRE(caught.replay);
  CHECK(caught.replay->first == core::FlagKind::kReplayMismatch);
  CHECK(caught.replay->second.find("points_earned") != std::string::npos);
  CHECK(caught.hash != honest.hash);

  // A program version HQ never published cannot be replayed: flagged too.
  const auto unknown = hq::prepare_record(sale, nullptr);
  REQUIRE(unknown.replay);
  CHECK(unknown.replay->first == core::FlagKind::kProgramUnknown);
}
