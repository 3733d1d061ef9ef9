#include <catch2/catch.hpp>

#include "core/json_reader.h"
#include "core/program_loader.h"

using namespace loyalty::core;

namespace {

Json minimal() {
  return Json::parse(R"({
    "schema": 1, "program": "t", "version": 1, "name": "Test", "currency": "CNY",
    "earning": {"basis": {"after_discounts": true, "after_redemptions": true},
                "rounding": "floor", "rounding_scope": "transaction", "multipliers": "multiply"},
    "expiry": {"policy": "never"},
    "rules": [{"id": "base", "name": "Base", "trigger": "purchase",
               "effects": [{"type": "earn_per_amount", "points": 1, "per": 100}]}]
  })");
}

bool has_problem(const Error& e, const std::string& path, const std::string& words) {
  for (const auto& p : e.problems) {
    if (p.path == path && p.message.find(words) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a minimal program loads", "[core][loader]") {
  auto p = load_program(minimal());
  REQUIRE(p);
  CHECK(p->id == "t");
  CHECK(p->currency.minor_digits == 2);
  CHECK(p->rules.size() == 1);
}

TEST_CASE("every problem is reported with its JSON path, not just the first", "[core][loader]") {
  auto j = minimal();
  j["currency"] = "XYZ";
  j["rules"][0]["effects"][0]["per"] = 0;
  j["rules"].push_back(Json::parse(R"({"id": "m", "name": "M", "trigger": "purchase",
      "effects": [{"type": "multiplier", "factor": 1.5}]})"));
  j["rules"].push_back(Json::parse(R"({"id": "w", "name": "W", "trigger": "purchase",
      "when": {"day_of_week": ["wednesday"]}, "effects": [{"type": "multiplier", "factor": "0.00001"}]})"));
  j["colour"] = "green";
  auto p = load_program(j);
  REQUIRE_FALSE(p);
  const auto& e = p.error();
  CHECK(e.code == ErrorCode::kInvalidArgument);
  CHECK(has_problem(e, "currency", "ISO 4217"));
  CHECK(has_problem(e, "rules[0].effects[0].per", "integer from 1"));
  CHECK(has_problem(e, "rules[1].effects[0].factor", "written as a string"));
  CHECK(has_problem(e, "rules[2].effects[0].factor", "at most 4 places"));
  CHECK(has_problem(e, "rules[2].when.day_of_week[0]", "mon, tue"));
  CHECK(has_problem(e, "colour", "unknown key"));
  CHECK(e.problems.size() == 6);
}

TEST_CASE("a reader names every key nobody asked for, however often others were read",
          "[core][loader]") {
  const Json j = Json::parse(R"({"a": 1, "b": null, "c": "x", "zz": 2, "aa": 3})");
  Problems problems;
  {
    ObjectReader rd(j, "obj", problems);
    CHECK(rd.integer("a") == 1);
    CHECK(rd.integer("a") == 1);  // read twice: still one key
    CHECK_FALSE(rd.get("b"));     // null counts as asked for
    CHECK(rd.string("c") == "x");
    CHECK_FALSE(rd.get("missing"));
  }
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].path == "obj.aa");
  CHECK(problems[0].message == "unknown key");
  CHECK(problems[1].path == "obj.zz");
  Problems none;
  {
    ObjectReader rd(j, "", none);
    for (const char* k : {"zz", "c", "b", "aa", "a", "a"}) (void)rd.get(k);
  }
  CHECK(none.empty());
}

TEST_CASE("references to undefined tiers, vouchers, cards and calendars are refused",
          "[core][loader]") {
  auto j = minimal();
  j["rules"].push_back(Json::parse(R"({"id": "x", "name": "X", "trigger": "purchase",
      "when": {"all": [{"tier": ["gold"]}, {"calendar": "festivals"}]},
      "effects": [{"type": "issue_voucher", "voucher": "v10"}, {"type": "add_stamp", "card": "coffee"}]})"));
  auto p = load_program(j);
  REQUIRE_FALSE(p);
  CHECK(has_problem(p.error(), "rules[1].when.all[0].tier[0]", "tier 'gold'"));
  CHECK(has_problem(p.error(), "rules[1].when.all[1].calendar", "calendar 'festivals'"));
  CHECK(has_problem(p.error(), "rules[1].effects[0].voucher", "voucher 'v10'"));
  CHECK(has_problem(p.error(), "rules[1].effects[1].card", "card 'coffee'"));
}

TEST_CASE("purchase-only effects on other triggers and bad windows are refused", "[core][loader]") {
  auto j = minimal();
  j["rules"][0]["trigger"] = "review";
  j["rules"].push_back(Json::parse(R"({"id": "tw", "name": "TW", "trigger": "purchase",
      "when": {"time_window": {"from": "10:00", "to": "07:30"}}, "effects": [{"type": "fixed_points", "points": 5}]})"));
  auto p = load_program(j);
  REQUIRE_FALSE(p);
  CHECK(has_problem(p.error(), "rules[0].effects", "only works with trigger purchase"));
  CHECK(has_problem(p.error(), "rules[1].when.time_window.to", "later than from"));
}

TEST_CASE("malformed documents never crash the loader", "[core][loader]") {
  for (const char* text : {"", "[]", "null", "{\"schema\": 1", "{\"rules\": 5}",
                           "{\"earning\": []}", "{\"rules\": [{\"when\": {\"all\": []}}]}",
                           "{\"rules\": [{\"effects\": [{\"type\": \"counter\"}]}]}",
                           "{\"tiers\": {\"levels\": [{}, {\"id\": 1}]}}"}) {
    auto p = load_program_text(text);
    CHECK_FALSE(p);
  }
}

TEST_CASE("conditions nested too deep are refused", "[core][loader]") {
  auto j = minimal();
  Json cond = Json::parse(R"({"day_of_week": ["mon"]})");
  for (int i = 0; i < 40; ++i) cond = Json{{"not", cond}};
  j["rules"][0]["when"] = cond;
  auto p = load_program(j);
  REQUIRE_FALSE(p);
  CHECK(p.error().message.find("deeper than 16") != std::string::npos);
}
