// HQ's merge of a member's transactions: entries for points, a delta for
// the rest. What one store did must arrive exactly; what two offline stores
// did to the same member must both count, with collisions flagged.
#include <catch2/catch.hpp>

#include "core/engine.h"
#include "core/ledger.h"
#include "core/member_delta.h"
#include "tests/core/test_util.h"

using namespace loyalty;
using core::Json;

namespace {

core::MemberState demo_member() {
  auto m = core::member_from_json(
      Json::parse(test::slurp(test::source_path("examples/members/demo-member.json"))));
  REQUIRE(m);
  return *m;
}

struct Sale {
  core::Outcome outcome;
  core::Committed committed;
  core::MemberState after;
};

Sale sell(const core::Program& p, const core::MemberState& m, const Json& basket,
          const std::string& txn) {
  auto req = test::request_at("2026-11-23T08:15:00", basket, txn);
  auto o = core::evaluate(p, m, req);
  REQUIRE(o);
  Sale s{*o, {}, m};
  auto c = core::commit(p, s.after, *o);
  REQUIRE(c);
  s.committed = *c;
  return s;
}

// HQ applies one terminal transaction to its own view of the member.
std::vector<core::Conflict> hq_apply(core::MemberState& hq, const core::MemberState& before,
                                     const Sale& s) {
  auto delta = core::delta_from_json(core::delta_to_json(core::diff_member(before, s.after)));
  REQUIRE(delta);
  auto conflicts = core::apply_point_entries(
      hq, s.committed.entries, core::day_of(s.outcome.request.at), s.outcome.earn_expires_on);
  auto more = core::apply_delta(hq, *delta);
  conflicts.insert(conflicts.end(), more.begin(), more.end());
  return conflicts;
}

std::int64_t balance(const core::MemberState& m) {
  std::int64_t sum = -m.debt;
  for (const auto& l : m.lots) sum += l.points;
  return sum;
}

}  // namespace

TEST_CASE("one store's sale arrives at HQ exactly as the terminal saw it", "[core][delta]") {
  const auto p = test::example_program("coffee-chain.json");
  const auto before = demo_member();
  const auto s = sell(
      p, before, Json::parse(test::slurp(test::source_path("examples/baskets/demo-basket.json"))),
      "S001-T01-00000001");
  auto hq = before;
  CHECK(hq_apply(hq, before, s).empty());
  CHECK(core::member_to_json(hq) == core::member_to_json(s.after));
}

TEST_CASE("two offline stores spending the same points: both kept, the overdraft is debt",
          "[core][delta]") {
  const auto p = test::example_program("coffee-chain.json");
  auto before = demo_member();
  const Json redeem{{"event", "redeem"}, {"reward", "voucher-10"}};
  // The member has 600 points; each store lets them redeem 200 three times.
  auto at_a = before, at_b = before;
  std::vector<std::pair<core::MemberState, Sale>> a, b;
  for (int i = 0; i < 3; ++i) {
    auto s = sell(p, at_a, redeem, "S001-T01-0000000" + std::to_string(i + 1));
    a.emplace_back(at_a, s);
    at_a = s.after;
    auto t = sell(p, at_b, redeem, "S002-T01-0000000" + std::to_string(i + 1));
    b.emplace_back(at_b, t);
    at_b = t.after;
  }
  auto hq = before;
  std::vector<core::Conflict> conflicts;
  std::int64_t entries_balance = balance(before);
  for (auto* side : {&a, &b})
    for (const auto& [seen, sale] : *side) {
      auto c = hq_apply(hq, seen, sale);
      conflicts.insert(conflicts.end(), c.begin(), c.end());
      entries_balance += core::member_points_delta(hq.id, sale.committed.entries);
      CHECK(balance(hq) == entries_balance);  // lots minus debt equal the ledger
    }
  CHECK(hq.debt == 600);
  CHECK(balance(hq) == -600);
  // Store B's three redemptions (four entries: the first drew on two lots)
  // found nothing left; each is flagged.
  REQUIRE(conflicts.size() == 4);
  for (const auto& c : conflicts) CHECK(c.kind == core::FlagKind::kPointsOverdrawn);
  // All six vouchers were issued, none lost.
  CHECK(hq.vouchers.size() == 6);
}

TEST_CASE("counters from two stores add up and a voucher used at both is flagged",
          "[core][delta]") {
  const auto p = test::example_program("coffee-chain.json");
  auto before = demo_member();
  before.vouchers.push_back({"GIFT-1", "bakery-9", std::nullopt});
  const Json basket{{"currency", "CNY"},
                    {"vouchers", {"GIFT-1"}},
                    {"lines",
                     {{{"sku", "croissant"},
                       {"categories", {"bakery"}},
                       {"quantity", 1},
                       {"unit_price", 1200}}}}};
  const auto a = sell(p, before, basket, "S001-T01-00000001");
  const auto b = sell(p, before, basket, "S002-T01-00000001");
  auto hq = before;
  CHECK(hq_apply(hq, before, a).empty());
  auto conflicts = hq_apply(hq, before, b);
  REQUIRE(conflicts.size() == 1);
  CHECK(conflicts[0].kind == core::FlagKind::kVoucherReused);
  const auto d = core::parse_local_date("2026-11-23").value();
  CHECK(hq.counters.get("orders", core::Period::kMonth, d) ==
        before.counters.get("orders", core::Period::kMonth, d) + 2);
}

TEST_CASE("a delta's counters travel compactly and come back exactly", "[core][delta]") {
  const auto p = test::example_program("coffee-chain.json");
  auto m = demo_member();
  const Json basket = Json::parse(R"({"currency": "CNY", "lines": [
    {"sku": "latte-m", "categories": ["coffee"], "quantity": 2, "unit_price": 2800}]})");
  const auto s = sell(p, m, basket, "T-compact");
  const auto delta = core::diff_member(m, s.after);
  REQUIRE(delta.counters.size() > 20);  // seven period keys for each metric
  const Json j = core::delta_to_json(delta);
  CHECK(j["counters"].empty());  // all of them fit the one-day shape
  CHECK(j["counter_days"].size() * 7 == delta.counters.size());
  auto back = core::delta_from_json(j);
  REQUIRE(back);
  CHECK(back->counters == delta.counters);

  // Shapes that do not fit stay keys, and the sum still comes back exactly:
  // two days of one week, a lone key, a day whose month key differs.
  core::MemberDelta mixed;
  core::Counters c;
  c.add("orders", *core::parse_local_date("2026-11-23"), 1);
  c.add("orders", *core::parse_local_date("2026-11-24"), 2);
  c.add("spend", *core::parse_local_date("2026-11-23"), 500);
  c.add_key("spend@M2026-11", 7);
  c.add_key("referrals@L", 1);
  mixed.counters = c.raw();
  auto round = core::delta_from_json(core::delta_to_json(mixed));
  REQUIRE(round);
  CHECK(round->counters == mixed.counters);

  // Hostile shapes are refused with the place named.
  Json bad = j;
  bad["counter_days"][0]["day"] = "2026-13-45";
  auto refused = core::delta_from_json(bad);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("counter_days[0].day") != std::string::npos);
  bad = j;
  bad["counter_days"][0]["delta"] = std::int64_t{9'000'000'000'000'000'000};
  CHECK_FALSE(core::delta_from_json(bad));
}
