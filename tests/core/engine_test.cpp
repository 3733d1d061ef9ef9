// Engine behaviour on small inline programs, one choice at a time: how
// multipliers combine, where rounding happens, what points are earned on.
#include <catch2/catch.hpp>

#include "core/engine.h"
#include "core/ledger.h"
#include "tests/core/test_util.h"

using namespace loyalty;
using core::Json;

namespace {

Json program_json(const std::string& combine, const std::string& scope = "transaction") {
  return Json::parse(R"({
    "schema": 1, "program": "t", "version": 1, "name": "Test", "currency": "CNY",
    "earning": {"basis": {"after_discounts": true, "after_redemptions": true},
                "rounding": "floor", "rounding_scope": ")" +
                     scope + R"(", "multipliers": ")" + combine + R"("},
    "expiry": {"policy": "rolling_months", "months": 12},
    "tiers": {"levels": [{"id": "bean", "name": "Bean"},
                         {"id": "elite", "name": "Elite", "qualify": {"metric": {"name": "points", "at_least": 3600}}}],
              "window": {"rolling_months": 12}, "upgrade": "next_day"},
    "redemption": {"points_as_tender": {"points": 100, "value": 100, "max_share_percent": "15"}},
    "rules": [
      {"id": "base", "name": "Base", "trigger": "purchase", "priority": 100,
       "effects": [{"type": "earn_per_amount", "points": 1, "per": 100}]},
      {"id": "elite-2x", "name": "Elite 2x", "trigger": "purchase", "priority": 50,
       "when": {"tier": ["elite"]}, "effects": [{"type": "multiplier", "factor": "2"}]},
      {"id": "wed-double", "name": "Wednesday double points", "trigger": "purchase", "priority": 40,
       "when": {"day_of_week": ["wed"]}, "effects": [{"type": "multiplier", "factor": "2"}],
       "limit": {"period": "transaction", "max_points": 5000}}
    ]
  })");
}

core::MemberState member(const std::string& tier, std::int64_t points = 0) {
  core::MemberState m;
  m.id = "M1";
  m.tier = tier;
  if (points > 0)
    m.lots.push_back({"L0", *core::parse_local_date("2026-01-01"), std::nullopt, points});
  return m;
}

Json basket(std::int64_t price, std::int64_t qty = 1) {
  return Json{{"currency", "CNY"},
              {"lines", {{{"sku", "A"}, {"quantity", qty}, {"unit_price", price}}}}};
}

std::int64_t award(const core::Outcome& o, const std::string& rule) {
  for (const auto& a : o.awards) {
    if (a.rule_id == rule) return a.points;
  }
  return -1;
}

}  // namespace

TEST_CASE("how multipliers combine is the program's choice", "[core][engine]") {
  // 88.50 yuan on Wednesday 2026-11-25 by an Elite member: base 88.5.
  const auto req = test::request_at("2026-11-25T12:00:00", basket(8850));
  SECTION("multiply: 88.5 x 2 x 2") {
    auto o = core::evaluate(test::program_from(program_json("multiply")), member("elite"), req);
    REQUIRE(o);
    // Exact awards 88.5 + 88.5 + 177, each rounded once (floor): a bonus
    // never rounds up past what its own share is worth.
    CHECK(award(*o, "base") == 88);
    CHECK(award(*o, "elite-2x") == 88);
    CHECK(award(*o, "wed-double") == 177);
    CHECK(o->points_earned == 353);
  }
  SECTION("add: 88.5 x (1 + 1 + 1)") {
    auto o = core::evaluate(test::program_from(program_json("add")), member("elite"), req);
    REQUIRE(o);
    CHECK(o->points_earned == 264);  // 88 + 88 + 88
    CHECK(award(*o, "base") + award(*o, "elite-2x") + award(*o, "wed-double") == 264);
  }
  SECTION("best: only the larger of two 2x applies, the first listed on a tie") {
    auto o = core::evaluate(test::program_from(program_json("best")), member("elite"), req);
    REQUIRE(o);
    CHECK(award(*o, "wed-double") == 0);
    CHECK(o->points_earned == 176);  // 88 + 88
  }
}

TEST_CASE("double points are twice the base whatever the fraction of a yuan", "[core][engine]") {
  // 39.99 yuan on a Wednesday: 39 base points, doubled is 78, not
  // floor(79.98) = 79 (light-meal's 每消费1元积1积分 ... 每周三消费积分双倍).
  const auto o = core::evaluate(test::program_from(program_json("multiply")), member("bean"),
                                test::request_at("2026-11-25T12:00:00", basket(3999)));
  REQUIRE(o);
  CHECK(award(*o, "base") == 39);
  CHECK(award(*o, "wed-double") == 39);
  CHECK(o->points_earned == 78);
}

TEST_CASE("rounding per line and per transaction give different totals", "[core][engine]") {
  // Three lines of 1.50 yuan: per line floor(1.5) x 3 = 3; per transaction floor(4.5) = 4.
  Json b{{"currency", "CNY"}, {"lines", Json::array()}};
  for (const char* sku : {"A", "B", "C"})
    b["lines"].push_back({{"sku", sku}, {"quantity", 1}, {"unit_price", 150}});
  const auto req = test::request_at("2026-11-23T12:00:00", b);
  auto line =
      core::evaluate(test::program_from(program_json("multiply", "line")), member("bean"), req);
  auto txn = core::evaluate(test::program_from(program_json("multiply", "transaction")),
                            member("bean"), req);
  REQUIRE(line);
  REQUIRE(txn);
  CHECK(line->points_earned == 3);
  CHECK(txn->points_earned == 4);
}

TEST_CASE("rounding the transaction's total once gives 177 where each rule's floor gives 176",
          "[core][engine]") {
  // 88.50 yuan on a Wednesday, Bean: base 88.5 and double bonus 88.5.
  const auto req = test::request_at("2026-11-25T12:00:00", basket(8850));
  auto rule = core::evaluate(test::program_from(program_json("multiply", "transaction")),
                             member("bean"), req);
  REQUIRE(rule);
  CHECK(rule->points_earned == 176);  // 88 + 88
  const auto p = test::program_from(program_json("multiply", "total"));
  auto total = core::evaluate(p, member("bean"), req);
  REQUIRE(total);
  CHECK(total->points_earned == 177);  // floor(177.0)
  // The rules' parts add up to the total: the extra point goes to the
  // first of the equal remainders.
  CHECK(award(*total, "base") == 89);
  CHECK(award(*total, "wed-double") == 88);

  // Three lines of 29.50 on a Wednesday: exact 2 x 88.5 = 177 in all. Each
  // line's part is shown and a return of one line takes back that part;
  // returning the rest takes back exactly what is left.
  Json b{{"currency", "CNY"}, {"lines", Json::array()}};
  for (const char* sku : {"A", "B", "C"})
    b["lines"].push_back({{"sku", sku}, {"quantity", 1}, {"unit_price", 2950}});
  auto m = member("bean");
  auto sale = core::evaluate(p, m, test::request_at("2026-11-25T12:00:00", b, "S1"));
  REQUIRE(sale);
  CHECK(sale->points_earned == 177);
  std::int64_t by_line = 0;
  for (const auto& l : sale->lines) by_line += l.points;
  CHECK(by_line == 177);
  auto committed = core::commit(p, m, *sale);
  REQUIRE(committed);
  const auto return_at = [](const std::string& txn) {
    core::Request r;
    r.at = *core::parse_local_datetime("2026-11-26T12:00:00");
    r.zone = "Asia/Shanghai";
    r.txn_id = txn;
    return r;
  };
  auto first = core::evaluate_return(p, m, *committed, {{0, 1}}, return_at("R1"));
  REQUIRE(first);
  CHECK(first->points_reversed == sale->lines[0].points);
  REQUIRE(core::commit_return(p, m, *committed, *first));
  auto rest = core::evaluate_return(p, m, *committed, {{1, 1}, {2, 1}}, return_at("R2"));
  REQUIRE(rest);
  CHECK(first->points_reversed + rest->points_reversed == 177);
  REQUIRE(core::commit_return(p, m, *committed, *rest));
  CHECK(m.available(*core::parse_local_date("2026-11-26")) == 0);
}

TEST_CASE("a daily rule grants on the anniversary of the first purchase, once a year",
          "[core][engine]") {
  const auto p = test::program_from(Json::parse(R"({
    "schema": 1, "program": "t", "version": 1, "name": "Test", "currency": "CNY",
    "earning": {"basis": {"after_discounts": true, "after_redemptions": true}, "rounding": "floor",
                "rounding_scope": "transaction", "multipliers": "multiply"},
    "expiry": {"policy": "never"},
    "rules": [
      {"id": "customer-day", "name": "Customer day", "trigger": "daily",
       "when": {"anniversary": {"of": "first_purchase"}},
       "effects": [{"type": "issue_voucher", "voucher": "gift"}]},
      {"id": "three-years", "name": "Three years", "trigger": "purchase",
       "when": {"years_since": {"of": "enrollment", "at_least": 3}},
       "effects": [{"type": "fixed_points", "points": 300}], "limit": {"period": "lifetime", "max_times": 1}}
    ],
    "vouchers": [{"id": "gift", "name": "Gift", "kind": "amount", "value": 1000}]
  })"));
  auto m = member("");
  m.first_purchase_on = *core::parse_local_date("2024-02-29");
  m.enrolled_on = *core::parse_local_date("2023-11-22");
  const auto daily = [&](const char* day) {
    core::Request r;
    r.trigger = core::Trigger::kDaily;
    r.at = *core::parse_local_datetime(std::string(day) + "T00:00:00");
    r.txn_id = std::string("D-") + day;
    auto o = core::evaluate(p, m, r);
    REQUIRE(o);
    return o->vouchers_issued.size();
  };
  CHECK(daily("2025-02-27") == 0);
  CHECK(daily("2025-02-28") == 1);  // 29 February's anniversary in a common year
  CHECK(daily("2025-03-01") == 0);
  CHECK(daily("2024-02-29") == 0);  // the day itself is not an anniversary
  CHECK(daily("2028-02-29") == 1);
  CHECK(daily("2028-02-28") == 0);
  // Enrolled 2023-11-22: a purchase on 2026-11-21 is 1,095 days on, but
  // not three years; the next day is.
  const auto sale = [&](const char* at) {
    auto o = core::evaluate(p, m, test::request_at(at, basket(1000)));
    REQUIRE(o);
    return o->points_earned;
  };
  CHECK(sale("2026-11-21T12:00:00") == 0);
  CHECK(sale("2026-11-22T12:00:00") == 300);
}

TEST_CASE("items for a tier and above, and early access before a sale opens to all",
          "[core][engine]") {
  auto j = program_json("multiply");
  j["eligibility"] = Json::parse(R"([
    {"id": "new-items", "name": "New items", "items": {"tags": ["new"]}, "min_tier": "elite"},
    {"id": "early", "name": "24 hours early", "items": {"tags": ["double11"]}, "min_tier": "elite",
     "from": "2026-11-10T00:00:00", "until": "2026-11-11T00:00:00"}
  ])");
  const auto p = test::program_from(j);
  const auto line = [](const char* tag) {
    return Json{{"currency", "CNY"},
                {"lines",
                 {{{"sku", "A"},
                   {"name", "Item A"},
                   {"tags", {tag}},
                   {"quantity", 1},
                   {"unit_price", 1000}}}}};
  };
  const auto sells = [&](const std::string& tier, const char* tag, const char* at) {
    return core::evaluate(p, member(tier), test::request_at(at, line(tag)));
  };
  auto refused = sells("bean", "new", "2026-11-23T12:00:00");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().problems.front().path == "basket.lines[0]");
  CHECK(refused.error().message.find("Item A is for Elite members and above") != std::string::npos);
  CHECK(sells("elite", "new", "2026-11-23T12:00:00"));
  // Early access: Elite only on the 10th; everyone from the 11th at 00:00.
  CHECK_FALSE(sells("bean", "double11", "2026-11-10T09:00:00"));
  CHECK(sells("elite", "double11", "2026-11-10T09:00:00"));
  CHECK(sells("bean", "double11", "2026-11-11T00:00:00"));
  CHECK(sells("bean", "double11", "2026-11-09T23:59:59"));  // not on sale yet: not restricted
}

TEST_CASE("a bonus cap limits only the bonus part", "[core][engine]") {
  // 8,000 yuan on Wednesday, Bean: base 8000, double bonus 8000 capped at 5000.
  auto o = core::evaluate(test::program_from(program_json("multiply")), member("bean"),
                          test::request_at("2026-11-25T12:00:00", basket(800000)));
  REQUIRE(o);
  CHECK(award(*o, "base") == 8000);
  CHECK(award(*o, "wed-double") == 5000);
  CHECK(o->points_earned == 13000);
  CHECK_FALSE(o->notes.empty());
}

TEST_CASE("points as tender respects the share cap and is off the earning basis",
          "[core][engine]") {
  const auto p = test::program_from(program_json("multiply"));
  Json b = basket(10000);  // 100 yuan: at most 15 yuan = 1500 points
  b["redeem_points"] = 1500;
  auto o = core::evaluate(p, member("bean", 5000), test::request_at("2026-11-23T12:00:00", b));
  REQUIRE(o);
  CHECK(o->points_value == 1500);
  CHECK(o->amount_due == 8500);
  CHECK(o->points_earned == 85);  // earned on 85 yuan actually paid
  b["redeem_points"] = 1600;
  auto refused =
      core::evaluate(p, member("bean", 5000), test::request_at("2026-11-23T12:00:00", b));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("at most 1500 points") != std::string::npos);
  b["redeem_points"] = 1500;
  auto poor = core::evaluate(p, member("bean", 1000), test::request_at("2026-11-23T12:00:00", b));
  REQUIRE_FALSE(poor);
  CHECK(poor.error().message.find("only 1000 points") != std::string::npos);
}

TEST_CASE("bad baskets are refused with the field named", "[core][engine]") {
  const auto p = test::program_from(program_json("multiply"));
  auto check = [&](Json b, const std::string& words) {
    auto o = core::evaluate(p, member("bean"), test::request_at("2026-11-23T12:00:00", b));
    REQUIRE_FALSE(o);
    INFO(o.error().message);
    CHECK(o.error().message.find(words) != std::string::npos);
  };
  Json b = basket(100, -1);
  check(b, "basket.lines[0].quantity");
  b = basket(100);
  b["currency"] = "USD";
  check(b, "basket.currency");
  b = basket(-5);
  check(b, "basket.lines[0].unit_price");
  b = basket(100);
  b["vouchers"] = {"NOPE"};
  check(b, "not held by this member");
  b = basket(100);
  b["lines"] = Json::array();
  check(b, "at least one line");
  // Each line within its limits, the basket past what a sale may come to
  // (a member's state could not hold what it would earn): refused, naming
  // the line that tips it over.
  b = basket(100'000'000'000, 100'000);
  check(b, "basket.lines[0].quantity");
  check(b, "split it into several sales");
  b = basket(60'000'000'000);
  b["lines"].push_back(b["lines"][0]);
  check(b, "basket.lines[1].quantity");
}

TEST_CASE("a top-up is bounded and cannot overflow the member's stored value", "[core][engine]") {
  const auto p = test::program_from(program_json("multiply"));
  const auto top_up = [&](const core::MemberState& m, std::int64_t amount) {
    return core::evaluate(
        p, m, test::request_at("2026-11-23T12:00:00", {{"event", "top_up"}, {"amount", amount}}));
  };
  auto m = member("bean");
  auto fine = top_up(m, 100'000);
  REQUIRE(fine);
  CHECK(fine->sv_base_added == 100'000);
  auto huge = top_up(m, 1'000'000'000'000'000);
  REQUIRE_FALSE(huge);
  CHECK(huge.error().problems.front().path == "amount");
  m.sv_base = 999'999'999'999'999;
  auto full = top_up(m, 100'000);
  REQUIRE_FALSE(full);
  CHECK(full.error().message.find("most a member can hold") != std::string::npos);
}

TEST_CASE("an event that completes a tier's threshold upgrades at once", "[core][engine]") {
  // four-tier: silver at 10 interactions a year (达标自动升级). The tenth is
  // a check-in, not a purchase: silver from that moment, so the next
  // purchase already gets silver's price.
  const auto p = test::example_program("four-tier-generic.json");
  auto m = member("regular");
  m.counters.add("interactions", *core::parse_local_date("2026-11-01"), 9);
  auto o = core::evaluate(p, m, test::request_at("2026-11-23T12:00:00", {{"event", "check_in"}}));
  REQUIRE(o);
  CHECK(o->tier_after == "silver");
  auto c = core::commit(p, m, *o);
  REQUIRE(c);
  CHECK(m.tier_on(*core::parse_local_date("2026-11-23")) == "silver");
}

TEST_CASE("a member in debt is told so when a redemption is refused", "[core][engine]") {
  const auto p = test::example_program("coffee-chain.json");
  auto m = member("bean");
  m.debt = 810;  // spent at two offline stores
  auto o = core::evaluate(
      p, m,
      test::request_at("2026-11-23T12:00:00", {{"event", "redeem"}, {"reward", "voucher-10"}}));
  REQUIRE_FALSE(o);
  CHECK(o.error().message.find("has 0 (and owes 810 points") != std::string::npos);
}

TEST_CASE("a next-day upgrade applies from the following day", "[core][engine]") {
  const auto p = test::program_from(program_json("multiply"));
  auto m = member("bean");
  m.counters.add("points", *core::parse_local_date("2026-11-01"), 3500);
  auto o = core::evaluate(p, m, test::request_at("2026-11-23T12:00:00", basket(20000)));
  REQUIRE(o);
  CHECK(o->tier_after == "elite");
  CHECK(core::format_local_date(*o->tier_from) == "2026-11-24");
  auto c = core::commit(p, m, *o);
  REQUIRE(c);
  CHECK(m.tier_on(*core::parse_local_date("2026-11-23")) == "bean");
  CHECK(m.tier_on(*core::parse_local_date("2026-11-24")) == "elite");
}
