// A member who shops every day must keep a bounded state: counters of
// periods no rule reads any more are pruned, at the terminal's commit and
// at HQ, without changing a single number the engine gives.
#include <random>

#include <catch2/catch.hpp>

#include "core/engine.h"
#include "core/ledger.h"
#include "core/member_delta.h"
#include "tests/core/test_util.h"

using namespace loyalty;
using core::Json;

namespace {

void shop_for_years(const std::string& file, const Json& basket) {
  const auto program = test::example_program(file);
  std::mt19937_64 rng(7);
  core::MemberState pruned;  // what the terminal keeps: commit prunes
  pruned.id = "M1";
  pruned.enrolled_on = core::parse_local_date("2025-01-01");
  core::Counters full;            // every key ever written: what pruning dropped comes back
  core::MemberState hq = pruned;  // HQ's view, built from the records' deltas
  auto day = *core::parse_local_date("2025-01-01");
  for (int n = 0; n < 700; ++n) {
    day += date::days{static_cast<int>(rng() % 3)};
    const auto at = core::format_local_date(day) + "T12:00:00";
    const auto txn = "T" + std::to_string(n);
    auto unpruned = pruned;
    unpruned.counters = full;
    auto o = core::evaluate(program, pruned, test::request_at(at, basket, txn));
    auto u = core::evaluate(program, unpruned, test::request_at(at, basket, txn));
    REQUIRE(o);
    REQUIRE(u);
    INFO(file << " purchase " << n << " on " << at);
    REQUIRE(core::outcome_totals_to_json(*o) == core::outcome_totals_to_json(*u));
    REQUIRE(o->tier_after == u->tier_after);
    const auto before = pruned;
    auto c = core::commit(program, pruned, *o);
    REQUIRE(c);
    const auto delta = core::diff_member(before, pruned);
    for (const auto& [k, v] : delta.counters) {
      // Pruned keys are not sent as changes; the receiver prunes alike.
      REQUIRE(core::Counters::retained(k, day));
      full.add_key(k, v);
    }
    (void)core::apply_point_entries(hq, c->entries, day, o->earn_expires_on);
    REQUIRE(core::apply_delta(hq, delta).empty());
    hq.counters.prune();
    REQUIRE(hq.counters.raw() == pruned.counters.raw());
  }
  INFO(file);
  CHECK(full.raw().size() > 2000);
  CHECK(pruned.counters.raw().size() < 700);
  // Two years of purchases every other day: what is kept is this period and
  // the one before, and the months a rolling tier window may read.
  CHECK(Json(pruned.counters.raw()).dump().size() < 12'000);
  CHECK(Json(full.raw()).dump().size() > 50'000);
}

}  // namespace

TEST_CASE("pruning counters changes no number the engine gives, over two years of purchases",
          "[core][counters]") {
  const Json basket = Json::parse(R"({"currency": "CNY", "lines": [
    {"sku": "latte-m", "categories": ["coffee"], "tags": ["basic-drink"], "quantity": 2, "unit_price": 2800},
    {"sku": "croissant", "categories": ["bakery"], "quantity": 1, "unit_price": 1200}]})");
  shop_for_years("coffee-chain.json", basket);
  shop_for_years("multi-purchase-ladder.json", basket);
}

TEST_CASE("a counter key is kept while a rule can read it", "[core][counters]") {
  const auto today = *core::parse_local_date("2026-11-23");  // a Monday
  using C = core::Counters;
  CHECK(C::retained("spend@D2026-11-23", today));
  CHECK(C::retained("spend@D2026-11-22", today));
  CHECK_FALSE(C::retained("spend@D2026-11-21", today));
  CHECK(C::retained("spend@W2026-11-16", today));
  CHECK_FALSE(C::retained("spend@W2026-11-09", today));
  CHECK(C::retained("spend@M2021-10", today));
  CHECK_FALSE(C::retained("spend@M2021-09", today));
  CHECK(C::retained("spend@Q2026-3", today));
  CHECK_FALSE(C::retained("spend@Q2026-2", today));
  CHECK(C::retained("spend@H2026-1", today));
  CHECK_FALSE(C::retained("spend@H2025-2", today));
  CHECK(C::retained("spend@Y2025", today));
  CHECK_FALSE(C::retained("spend@Y2024", today));
  CHECK(C::retained("spend@L", today));
  CHECK(C::retained("stamps:coffee@X-unknown", today));  // a future kind is left alone
}
