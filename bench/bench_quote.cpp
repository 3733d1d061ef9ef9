// Quote latency for a 30-line basket on the coffee-chain program (tier
// multipliers, time windows, stamps, streaks, referral and stored-value
// rules). Prints p50/p99 per quote and quotes per second, and the ratio to a
// 1-line basket measured in the same run (this machine is shared and noisy:
// compare ratios, not absolute numbers, across runs).
//
// usage: bench_quote [PROGRAM_FILE] [ITERATIONS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/io_json.h"
#include "core/program_loader.h"

using namespace loyalty;
using core::Json;
using Clock = std::chrono::steady_clock;

namespace {

Json basket(int lines) {
  static const char* kCats[] = {"coffee", "bakery", "tea", "merch", "basic-drink"};
  Json b{{"currency", "CNY"}, {"lines", Json::array()}};
  for (int i = 0; i < lines; ++i) {
    b["lines"].push_back({{"sku", "SKU-" + std::to_string(i)},
                          {"name", "Item " + std::to_string(i)},
                          {"categories", {kCats[i % 5]}},
                          {"tags", {i % 3 == 0 ? "basic-drink" : "bakery-addon"}},
                          {"quantity", 1 + i % 3},
                          {"unit_price", 900 + 137 * i}});
  }
  return b;
}

struct Stats {
  double p50_us, p99_us, per_second;
};

Stats measure(const core::Program& p, const core::MemberState& m, const core::Request& r, int n) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  std::int64_t sink = 0;
  for (int i = 0; i < n / 10; ++i) sink += core::evaluate(p, m, r)->points_earned;  // warm up
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    auto o = core::evaluate(p, m, r);
    const auto t1 = Clock::now();
    if (!o) {
      std::fprintf(stderr, "quote refused: %s\n", o.error().message.c_str());
      std::exit(1);
    }
    sink += o->points_earned;
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(us.begin(), us.end());
  if (sink == 42) std::puts("");  // keep the work observable
  return {us[us.size() / 2], us[us.size() * 99 / 100], n / total};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string file =
      argc > 1 ? argv[1] : std::string(LOYALTY_SOURCE_DIR) + "/examples/programs/coffee-chain.json";
  const int n = argc > 2 ? std::atoi(argv[2]) : 20000;
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  auto program = core::load_program_text(ss.str());
  if (!program) {
    std::fprintf(stderr, "%s: %s\n", file.c_str(), program.error().message.c_str());
    return 1;
  }
  core::MemberState m;
  m.id = "BENCH";
  m.tier = program->tiers ? program->tiers->levels[1 % program->tiers->levels.size()].id : "";
  m.enrolled_on = *core::parse_local_date("2025-06-01");
  m.last_purchase_on = *core::parse_local_date("2026-11-22");
  m.first_purchase_on = *core::parse_local_date("2025-06-02");
  m.streak_days = 4;
  for (int i = 0; i < 24; ++i)
    m.lots.push_back({"L" + std::to_string(i),
                      core::add_months(*core::parse_local_date("2025-12-01"), i / 2), std::nullopt,
                      100});
  for (int d = 0; d < 60; ++d)
    m.counters.add("points", *core::parse_local_date("2026-09-01") + date::days{d}, 30);

  auto request = [&](int lines) {
    core::Request r;
    if (!core::request_from_json(basket(lines), r)) std::exit(1);
    r.at = *core::parse_local_datetime("2026-11-23T08:15:00");  // Monday, in the morning window
    r.zone = "Asia/Shanghai";
    r.txn_id = "bench";
    return r;
  };
  const auto one = measure(*program, m, request(1), n);
  const auto thirty = measure(*program, m, request(30), n);
  std::printf("program: %s v%lld (%zu rules), %d quotes each\n", program->id.c_str(),
              static_cast<long long>(program->version), program->rules.size(), n);
  std::printf("baseline  1-line basket: p50 %7.2f us  p99 %7.2f us  %9.0f quotes/s\n", one.p50_us,
              one.p99_us, one.per_second);
  std::printf("         30-line basket: p50 %7.2f us  p99 %7.2f us  %9.0f quotes/s\n",
              thirty.p50_us, thirty.p99_us, thirty.per_second);
  std::printf("ratio 30-line / 1-line p50: %.2fx\n", thirty.p50_us / one.p50_us);
  std::printf("goal p99 < 50 us for 30 lines: %s\n", thirty.p99_us < 50.0 ? "met" : "NOT met");
  return 0;
}
