// Thousands of random purchases, redemptions, partial returns and expiry
// runs; after every step the ledger's truths must hold (DESIGN.md 2-4).
#include <map>
#include <random>

#include <catch2/catch.hpp>

#include "core/engine.h"
#include "core/ledger.h"
#include "tests/core/test_util.h"

using namespace loyalty;
using core::Json;

namespace {

const char* kProgram = R"({
  "schema": 1, "program": "prop", "version": 1, "name": "Property", "currency": "CNY",
  "earning": {"basis": {"after_discounts": true, "after_redemptions": true},
              "rounding": "half_up", "rounding_scope": "line", "multipliers": "multiply"},
  "expiry": {"policy": "rolling_months", "months": 2},
  "redemption": {"points_as_tender": {"points": 100, "value": 100, "max_share_percent": "50"}},
  "vouchers": [{"id": "v5", "name": "5 off", "kind": "amount", "value": 500}],
  "rules": [
    {"id": "base", "name": "Base", "trigger": "purchase", "effects": [{"type": "earn_per_amount", "points": 1, "per": 100}]},
    {"id": "tea", "name": "Tea 3x", "trigger": "purchase", "effects": [{"type": "multiplier", "factor": "3", "on": {"categories": ["tea"]}}]},
    {"id": "big", "name": "Big basket bonus", "trigger": "purchase", "when": {"basket_amount": {"at_least": 20000}},
     "effects": [{"type": "fixed_points", "points": 50}, {"type": "issue_voucher", "voucher": "v5"}]},
    {"id": "tue", "name": "Tuesday 10% off", "trigger": "purchase", "when": {"day_of_week": ["tue"]},
     "effects": [{"type": "discount_percent", "percent": "10"}]}
  ]
})";

struct Book {
  std::map<std::pair<std::string, std::string>, std::int64_t> balances;  // (account, unit)
  void post(const std::vector<core::Entry>& entries) {
    for (const auto& e : entries) {
      REQUIRE(e.amount > 0);
      REQUIRE(e.debit != e.credit);
      balances[{e.debit, e.unit}] -= e.amount;
      balances[{e.credit, e.unit}] += e.amount;
    }
  }
  std::int64_t sum(const std::string& unit) const {
    std::int64_t s = 0;
    for (const auto& [k, v] : balances) {
      if (k.second == unit) s += v;
    }
    return s;
  }
  std::int64_t of(const std::string& account) const {
    auto it = balances.find({account, "pts"});
    return it == balances.end() ? 0 : it->second;
  }
};

std::int64_t lot_sum(const core::MemberState& m) {
  std::int64_t s = 0;
  for (const auto& l : m.lots) {
    REQUIRE(l.points >= 0);
    s += l.points;
  }
  return s;
}

}  // namespace

TEST_CASE("random transactions and returns keep the ledger balanced and lots equal to balance",
          "[core][ledger][property]") {
  const auto program = *core::load_program_text(kProgram);
  const auto seed = GENERATE(1u, 2u, 3u);
  std::mt19937_64 rng(seed);
  auto pick = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  core::MemberState m;
  m.id = "P1";
  Book book;
  std::vector<core::Committed> history;
  auto day = *core::parse_local_date("2026-01-01");
  int returns = 0, debts = 0;
  for (int step = 0; step < 1500; ++step) {
    INFO("seed " << seed << " step " << step);
    day += date::days{pick(0, 2)};
    const auto at = core::format_local_date(day) + "T12:00:00";
    const auto txn = "S" + std::to_string(seed) + "-" + std::to_string(step);
    book.post(core::expire_lots(program, m, day, txn + "-exp"));
    const auto op = pick(0, 9);
    if (op < 7 || history.empty()) {
      Json b{{"currency", "CNY"}, {"lines", Json::array()}};
      const auto n = pick(1, 4);
      for (int i = 0; i < n; ++i)
        b["lines"].push_back({{"sku", "S" + std::to_string(i)},
                              {"categories", {pick(0, 2) == 0 ? "tea" : "food"}},
                              {"quantity", pick(1, 3)},
                              {"unit_price", pick(1, 9000)}});
      if (pick(0, 2) == 0 && m.available(day) > 0)
        b["redeem_points"] = pick(1, std::min<std::int64_t>(m.available(day), 3000));
      if (pick(0, 3) == 0 && !m.vouchers.empty() &&
          !(m.vouchers.front().expires_on && day >= *m.vouchers.front().expires_on))
        b["vouchers"] = {m.vouchers.front().code};
      auto o = core::evaluate(program, m, test::request_at(at, b, txn));
      if (!o) continue;  // e.g. redemption above the share cap: refused, nothing written
      auto c = core::commit(program, m, *o);
      if (!c) FAIL(c.error().message);
      book.post(c->entries);
      history.push_back(std::move(*c));
    } else {
      auto& orig =
          history[static_cast<std::size_t>(pick(0, static_cast<std::int64_t>(history.size()) - 1))];
      std::vector<core::ReturnLine> lines;
      for (std::size_t i = 0; i < orig.returned_qty.size(); ++i) {
        const auto left = orig.outcome.request.basket.lines[i].quantity - orig.returned_qty[i];
        if (left > 0 && pick(0, 1) == 0) lines.push_back({i, pick(1, left)});
      }
      if (lines.empty()) continue;
      core::Request r;
      r.at = *core::parse_local_datetime(at);
      r.zone = "Asia/Shanghai";
      r.txn_id = txn;
      auto ret = core::evaluate_return(program, m, orig, lines, r);
      REQUIRE(ret);
      const auto debt_before = m.debt;
      auto c = core::commit_return(program, m, orig, *ret);
      REQUIRE(c);
      book.post(c->entries);
      ++returns;
      if (m.debt > debt_before) ++debts;
    }
    REQUIRE(book.sum("pts") == 0);
    REQUIRE(book.sum("CNY") == 0);
    REQUIRE(m.debt >= 0);
    REQUIRE(book.of(core::member_account("P1")) == lot_sum(m) - m.debt);
  }
  // A full return of everything leaves exactly the points never earned by
  // purchases: the member's account can only hold what is still earned.
  CHECK(returns > 100);
  CHECK(debts > 0);  // some returns hit already-spent lots and became debt
}

TEST_CASE("returning a whole order in parts reverses exactly what it earned and spent",
          "[core][ledger]") {
  const auto program = *core::load_program_text(kProgram);
  core::MemberState m;
  m.id = "P2";
  m.lots.push_back({"L0", *core::parse_local_date("2026-05-01"), std::nullopt, 10000});
  Json b{{"currency", "CNY"},
         {"lines",
          {{{"sku", "A"}, {"categories", {"tea"}}, {"quantity", 3}, {"unit_price", 3333}},
           {{"sku", "B"}, {"categories", {"food"}}, {"quantity", 2}, {"unit_price", 7777}}}},
         {"redeem_points", 999}};
  auto o = core::evaluate(program, m, test::request_at("2026-05-04T10:00:00", b, "T-A"));
  REQUIRE(o);
  auto c = core::commit(program, m, *o);
  REQUIRE(c);
  const auto balance_after_sale = m.available(*core::parse_local_date("2026-05-04"));
  std::int64_t reversed = 0, restored = 0;
  int k = 0;
  for (auto [line, qty] : {std::pair<std::size_t, std::int64_t>{0, 1}, {1, 1}, {0, 2}, {1, 1}}) {
    core::Request r;
    r.at = *core::parse_local_datetime("2026-05-05T10:00:00");
    r.txn_id = "R" + std::to_string(++k);
    auto ret = core::evaluate_return(program, m, *c, {{line, qty}}, r);
    REQUIRE(ret);
    REQUIRE(core::commit_return(program, m, *c, *ret));
    reversed += ret->points_reversed;
    restored += ret->points_restored;
  }
  CHECK(reversed == o->points_earned);
  CHECK(restored == o->points_redeemed);
  CHECK(m.available(*core::parse_local_date("2026-05-05")) ==
        balance_after_sale - o->points_earned + o->points_redeemed);
  CHECK(m.available(*core::parse_local_date("2026-05-05")) == 10000);
  core::Request again;
  again.at = *core::parse_local_datetime("2026-05-05T11:00:00");
  again.txn_id = "R9";
  auto too_many = core::evaluate_return(program, m, *c, {{0, 1}}, again);
  REQUIRE_FALSE(too_many);
  CHECK(too_many.error().message.find("only 0 of this line") != std::string::npos);
}
