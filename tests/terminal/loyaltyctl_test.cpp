// loyaltyctl as a user runs it: the real binary, real files, exit codes.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "tests/terminal/daemon_fixture.h"

namespace {

using loyalty::test::CtlRun;

CtlRun run(const std::string& args) {
  return loyalty::test::run_ctl(args);
}

std::string src(const std::string& rel) {
  return std::string(LOYALTY_SOURCE_DIR) + "/" + rel;
}

}  // namespace

TEST_CASE("check-program accepts every example and lists its decisions", "[terminal][loyaltyctl]") {
  int checked = 0;
  for (const auto& f : std::filesystem::directory_iterator(src("examples/programs"))) {
    if (f.path().extension() != ".json") continue;
    auto r = run("check-program " + f.path().string());
    INFO(f.path().filename().string() << ": " << r.out);
    CHECK(r.code == 0);
    CHECK(r.out.find("ok: " + f.path().stem().string()) != std::string::npos);
    CHECK(r.out.find("decision:") != std::string::npos);
    ++checked;
  }
  CHECK(checked >= 8);  // every seed program's example
}

TEST_CASE("check-program names every problem of a broken program and exits 3",
          "[terminal][loyaltyctl]") {
  const std::string path = "broken-program.json";
  std::ofstream(path)
      << R"({"schema": 1, "program": "x", "version": 0, "name": "X", "currency": "CNY",
    "earning": {"basis": {"after_discounts": true, "after_redemptions": true}, "rounding": "sideways",
                "rounding_scope": "line", "multipliers": "multiply"},
    "expiry": {"policy": "never"}, "rules": [{"id": "r", "name": "R", "trigger": "purchase",
    "effects": [{"type": "multiplier", "factor": "-2"}]}]})";
  auto r = run("check-program " + path);
  INFO(r.out);
  CHECK(r.code == 3);
  CHECK(r.out.find("version: must be an integer from 1") != std::string::npos);
  CHECK(r.out.find("earning.rounding: must be one of: floor, half_up, ceil") != std::string::npos);
  CHECK(r.out.find("rules[0].effects[0].factor") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("quote prints a receipt with points by rule, and JSON on request",
          "[terminal][loyaltyctl]") {
  const std::string args = "quote --program " + src("examples/programs/coffee-chain.json") +
                           " --member " + src("examples/members/demo-member.json") + " --basket " +
                           src("examples/baskets/demo-basket.json") +
                           " --at 2026-11-23T08:15:00 --tz Asia/Shanghai";
  auto r = run(args);
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("Amount due") != std::string::npos);
  CHECK(r.out.find("Points earned: ") != std::string::npos);
  auto j = run(args + " --json");
  CHECK(j.code == 0);
  CHECK(j.out.find("\"points_earned\"") != std::string::npos);
  CHECK(j.out.find("\"time_zone\": \"Asia/Shanghai\"") != std::string::npos);
}

TEST_CASE("quote refuses a bad zone, a missing flag and a missing file clearly",
          "[terminal][loyaltyctl]") {
  auto zone =
      run("quote --program " + src("examples/programs/coffee-chain.json") + " --member " +
          src("examples/members/demo-member.json") + " --basket " +
          src("examples/baskets/demo-basket.json") + " --at 2026-11-23T08:15:00 --tz Mars/Base");
  CHECK(zone.code == 2);
  CHECK(zone.out.find("Mars/Base") != std::string::npos);
  auto missing = run("quote --program x.json");
  CHECK(missing.code == 2);
  CHECK(missing.out.find("missing --member") != std::string::npos);
  auto nofile = run("check-program /nonexistent/p.json");
  CHECK(nofile.code == 3);
  CHECK(nofile.out.find("cannot open /nonexistent/p.json") != std::string::npos);
}
