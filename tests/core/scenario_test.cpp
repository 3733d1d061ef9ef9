// Runs tests/core/scenarios/*.json: each seed program with cases whose
// expected numbers were worked out by hand from the program text (the
// arithmetic is written beside each expectation in the file).
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "core/engine.h"
#include "core/io_json.h"
#include "core/ledger.h"
#include "core/return_basis.h"
#include "core/tiers.h"
#include "tests/core/test_util.h"

using namespace loyalty;
using core::Json;

namespace {

const std::set<std::string> kKnownKeys{"points_earned",   "bonus_points",
                                       "awards",          "discount_total",
                                       "discounts",       "points_redeemed",
                                       "amount_due",      "stamps",
                                       "vouchers_issued", "referrer_vouchers_issued",
                                       "referrer_points", "stored_value_after",
                                       "balance_after",   "tier_after",
                                       "points_reversed", "points_restored",
                                       "debt_after",      "error",
                                       "counters",        "grace_until",
                                       "passes_after",    "referrer_metrics"};

std::vector<std::string> issued(const core::Outcome& o, core::Recipient to) {
  std::vector<std::string> v;
  for (const auto& i : o.vouchers_issued) {
    if (i.to == to) v.push_back(i.template_id);
  }
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> sorted(const Json& j) {
  auto v = j.get<std::vector<std::string>>();
  std::sort(v.begin(), v.end());
  return v;
}

void check_outcome(const Json& expect, const core::Outcome& o) {
  for (const auto& [key, value] : expect.items()) {
    INFO("expect." << key);
    if (key == "points_earned") CHECK(o.points_earned == value.get<std::int64_t>());
    if (key == "bonus_points") CHECK(o.bonus_points == value.get<std::int64_t>());
    if (key == "discount_total") CHECK(o.discount_total == value.get<std::int64_t>());
    if (key == "points_redeemed") CHECK(o.points_redeemed == value.get<std::int64_t>());
    if (key == "amount_due") CHECK(o.amount_due == value.get<std::int64_t>());
    if (key == "referrer_points") CHECK(o.referrer_points == value.get<std::int64_t>());
    if (key == "points_reversed") CHECK(o.points_reversed == value.get<std::int64_t>());
    if (key == "points_restored") CHECK(o.points_restored == value.get<std::int64_t>());
    if (key == "vouchers_issued") CHECK(issued(o, core::Recipient::kMember) == sorted(value));
    if (key == "referrer_vouchers_issued")
      CHECK(issued(o, core::Recipient::kReferrer) == sorted(value));
    // Metric changes this step gives the referrer (metric -> delta).
    if (key == "referrer_metrics") {
      std::map<std::string, std::int64_t> got;
      for (const auto& d : o.metrics)
        if (d.on == core::Recipient::kReferrer && d.metric.rfind("rule:", 0) != 0)
          got[d.metric] += d.delta;
      CHECK(got == value.get<std::map<std::string, std::int64_t>>());
    }
    if (key == "awards") {
      for (const auto& [rule, pts] : value.items()) {
        INFO("award of rule " << rule);
        std::int64_t got = 0;
        for (const auto& a : o.awards) {
          if (a.rule_id == rule) got += a.points;
        }
        CHECK(got == pts.get<std::int64_t>());
      }
    }
    if (key == "discounts") {
      for (const auto& [source, amount] : value.items()) {
        INFO("discount " << source);
        std::int64_t got = 0;
        for (const auto& d : o.discounts) {
          if (d.source == source || (source.rfind("voucher:", 0) == 0 &&
                                     d.source.rfind("voucher:", 0) == 0 && source == "voucher:*"))
            got += d.amount;
        }
        CHECK(got == amount.get<std::int64_t>());
      }
    }
  }
}

void check_member(const Json& expect, const core::Program& p, const core::MemberState& m,
                  core::LocalDays today) {
  for (const auto& [key, value] : expect.items()) {
    INFO("expect." << key);
    if (key == "balance_after") CHECK(m.available(today) == value.get<std::int64_t>());
    if (key == "debt_after") CHECK(m.debt == value.get<std::int64_t>());
    // The tier in force on the step's day (a next-day upgrade shows the day after).
    if (key == "tier_after") CHECK(m.tier_on(today) == value.get<std::string>());
    // A date, or null for no grace period running.
    if (key == "grace_until")
      CHECK((m.grace_until ? core::format_local_date(*m.grace_until) : std::string("null")) ==
            (value.is_null() ? std::string("null") : value.get<std::string>()));
    // Every pass the member holds, as [pass, valid_from, valid_to], in
    // order of valid_from.
    if (key == "passes_after") {
      std::vector<std::vector<std::string>> held, want;
      for (const auto& h : m.passes)
        held.push_back({h.pass_id, core::format_local_date(h.valid_from),
                        core::format_local_date(h.valid_to)});
      for (const auto& w : value) want.push_back(w.get<std::vector<std::string>>());
      std::sort(held.begin(), held.end(), [](const auto& a, const auto& b) {
        return a[1] < b[1] || (a[1] == b[1] && a[0] < b[0]);
      });
      CHECK(held == want);
    }
    // Raw counter keys ("carry:growth@Y2027"); an absent key is 0.
    if (key == "counters") {
      for (const auto& [k, v] : value.items()) {
        INFO("counter " << k);
        const auto it = m.counters.raw().find(k);
        CHECK((it == m.counters.raw().end() ? 0 : it->second) == v.get<std::int64_t>());
      }
    }
    if (key == "stored_value_after") {
      CHECK(m.sv_base == value.value("base", std::int64_t{0}));
      CHECK(m.sv_bonus == value.value("bonus", std::int64_t{0}));
    }
    if (key == "stamps") {
      for (const auto& [card, n] : value.items()) {
        const auto* c = p.find_card(card);
        REQUIRE(c != nullptr);
        CHECK(m.counters.get("stamps:" + card, c->reset, today) == n.get<std::int64_t>());
      }
    }
  }
}

void run_case(const core::Program& p, const Json& c, const std::string& tz) {
  auto member = core::member_from_json(c.at("member"));
  if (!member) FAIL(member.error().message);
  auto& m = *member;
  std::vector<std::optional<core::Committed>> done;
  std::size_t index = 0;
  for (const auto& step : c.at("steps")) {
    const auto txn = "T" + std::to_string(++index);
    INFO("step " << index << ": " << step.value("arithmetic", std::string{}));
    const Json expect = step.value("expect", Json::object());
    for (const auto& [key, _] : expect.items()) {
      INFO("unknown expectation key " << key);
      CHECK(kKnownKeys.contains(key));
    }
    const auto at = core::parse_local_datetime(step.at("at").get<std::string>());
    REQUIRE(at);
    const auto today = core::day_of(*at);
    (void)core::expire_lots(p, m, today, txn + "-exp");
    if (step.contains("evaluate_tiers")) {
      // What HQ's daily jobs do on this day: re-evaluation at a window's
      // end, or settling a grace period that has run out, or nothing.
      if (auto d = core::tier_job(p, m, today)) core::apply_tier_decision(m, *d, today);
      check_member(expect, p, m, today);
      done.emplace_back();
      continue;
    }
    core::Request r;
    r.at = *at;
    r.zone = tz;
    r.txn_id = txn;
    core::Result<core::Outcome> o;
    std::optional<std::size_t> original;
    if (step.contains("return")) {
      const auto& ret = step.at("return");
      original = ret.at("of_step").get<std::size_t>();
      REQUIRE(*original < done.size());
      REQUIRE(done[*original].has_value());
      std::vector<core::ReturnLine> lines;
      for (const auto& l : ret.at("lines"))
        lines.push_back({l.at("line").get<std::size_t>(), l.at("quantity").get<std::int64_t>()});
      o = core::evaluate_return(p, m, *done[*original], lines, r);
    } else {
      const Json body =
          step.contains("redeem_reward")
              ? Json{{"event", "redeem"}, {"reward", step.at("redeem_reward").at("reward")}}
          : step.contains("event") ? step.at("event")
                                   : step.at("basket");
      auto ok = core::request_from_json(body, r);
      if (!ok) {
        o = std::unexpected(ok.error());
      } else {
        const core::CounterReads reads;
        o = core::evaluate(p, m, r);
        // What a terminal uploads of a member HQ has: only the counters
        // the engine read. HQ's replay on it must give the same outcome.
        const auto trimmed = core::with_counters(m, reads.keys());
        CHECK(trimmed.counters.raw().size() <= m.counters.raw().size());
        const auto replay = core::evaluate(p, trimmed, r);
        REQUIRE(replay.has_value() == o.has_value());
        if (o) CHECK(core::outcome_to_json(*replay, p) == core::outcome_to_json(*o, p));
      }
    }
    if (expect.contains("error")) {
      REQUIRE_FALSE(o);
      INFO("error message: " << o.error().message);
      CHECK(o.error().message.find(expect.at("error").get<std::string>()) != std::string::npos);
      done.emplace_back();
      continue;
    }
    if (!o) FAIL("refused: " << o.error().message);
    check_outcome(expect, *o);
    core::Result<core::Committed> committed =
        original ? core::commit_return(p, m, *done[*original], *o) : core::commit(p, m, *o);
    if (!committed) FAIL("commit refused: " << committed.error().message);
    // A till keeps the sale's return basis as JSON and returns against
    // what it reads back: so do the scenarios.
    if (original) {
      done.emplace_back(std::nullopt);
    } else {
      auto basis = core::return_basis_from_json(core::return_basis_to_json(*committed));
      if (!basis) FAIL("return basis: " << basis.error().message);
      done.emplace_back(std::move(*basis));
    }
    check_member(expect, p, m, today);
  }
}

}  // namespace

TEST_CASE("every seed program gives the numbers its text implies", "[core][scenarios]") {
  namespace fs = std::filesystem;
  const fs::path dir = test::source_path("tests/core/scenarios");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 8);
  for (const auto& f : files) {
    const auto doc = Json::parse(test::slurp(f.string()));
    const auto program = test::example_program(doc.at("program").get<std::string>());
    for (const auto& c : doc.at("cases")) {
      DYNAMIC_SECTION(f.filename().string() << ": " << c.at("name").get<std::string>()) {
        run_case(program, c, doc.value("tz", std::string("Asia/Shanghai")));
      }
    }
  }
}

TEST_CASE("every example program loads without problems", "[core][scenarios]") {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e : fs::directory_iterator(test::source_path("examples/programs"))) {
    if (e.path().extension() != ".json") continue;
    INFO(e.path().string());
    auto p = core::load_program_text(test::slurp(e.path().string()));
    if (!p) FAIL(p.error().message);
    CHECK_FALSE(p->decisions.empty());
    ++n;
  }
  CHECK(n >= 8);
}

TEST_CASE("a member with only the counters the engine read gets the same outcome",
          "[core][scenarios]") {
  // A coffee member after a month of visits: every window of every metric.
  const auto p = test::example_program("coffee-chain.json");
  const Json basket = Json::parse(R"({"currency": "CNY", "lines": [
    {"sku": "latte-m", "categories": ["coffee"], "tags": ["basic-drink"], "quantity": 2, "unit_price": 2800},
    {"sku": "croissant", "categories": ["bakery"], "quantity": 1, "unit_price": 1200}]})");
  core::MemberState m;
  m.id = "C-T01";
  for (int day = 1; day <= 28; ++day) {
    const auto at =
        std::string("2026-11-") + (day < 10 ? "0" : "") + std::to_string(day) + "T09:30:00";
    const auto r = test::request_at(at, basket, "T" + std::to_string(day));
    const core::CounterReads reads;
    auto o = core::evaluate(p, m, r);
    REQUIRE(o.has_value());
    const auto trimmed = core::with_counters(m, reads.keys());
    auto replay = core::evaluate(p, trimmed, r);
    REQUIRE(replay.has_value());
    CHECK(core::outcome_to_json(*replay, p) == core::outcome_to_json(*o, p));
    if (day > 1) CHECK(trimmed.counters.raw().size() < m.counters.raw().size());
    REQUIRE(core::commit(p, m, *o).has_value());
  }
  // Reads nest: an inner scope sees its own, the outer one only its own.
  const core::CounterReads outer;
  (void)m.counters.get("orders", core::Period::kDay, *core::parse_local_date("2026-11-28"));
  {
    const core::CounterReads inner;
    (void)m.counters.get("spend", core::Period::kMonth, *core::parse_local_date("2026-11-28"));
    CHECK(inner.keys() == std::set<std::string>{"spend@M2026-11"});
  }
  CHECK(outer.keys() == std::set<std::string>{"orders@D2026-11-28"});
}
