// Processes killed under load: sales go on at a store while loyaltyd and
// loyalty-hq are SIGKILLed and restarted at random moments (so uploads are
// cut at random points) and a proxy between them delays, truncates and
// resets connections. The client's own record of every acknowledged sale is
// compared with HQ at the end: each one there exactly once, nothing else.
//
// Rounds: LOYALTY_CHAOS_ROUNDS (default 12; the ci preset runs 250).
#include <random>

#include "tests/sync/sync_fixture.h"
#include "tests/sync/tcp_proxy.h"

using namespace loyalty;
using namespace loyalty::test;

TEST_CASE(
    "SIGKILLs of loyaltyd and loyalty-hq under load, through a faulty network, lose "
    "and double no acknowledged sale",
    "[slow][sync][e2e][chaos]") {
  const char* env = std::getenv("LOYALTY_CHAOS_ROUNDS");
  const int rounds = env != nullptr ? std::atoi(env) : 12;
  const std::uint64_t seed = std::random_device{}();
  INFO("seed " << seed << ", " << rounds << " rounds");
  std::mt19937_64 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  SyncWorld w("chaos");
  TcpProxy proxy(w.port);
  proxy.chaos(0.05, seed);
  auto d = w.terminal("S001", proxy.port());
  w.hq.start(w.port);
  REQUIRE(d->start());
  std::set<std::string> acked;
  int kills_terminal = 0, kills_hq = 0;
  for (int round = 0; round < rounds; ++round) {
    const int sales = pick(5, 40);
    for (int i = 0; i < sales; ++i) {
      const auto key = "r" + std::to_string(round) + "-" + std::to_string(i);
      auto r = sell(*d, latte_sale("M-A", pick(1, 3)), key);
      INFO(r.body.dump());
      REQUIRE(sold(r));
      acked.insert(r.body["receipt_id"].get<std::string>());
    }
    // An upload starts now (even if the terminal was backing off after a
    // fault): wait a random moment, then kill one side or both.
    REQUIRE(d->post("/v1/sync", Json::object()).status == 202);
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(0, 400)));
    const int victim = pick(0, 3);
    if (victim == 0 || victim == 2) {
      d->kill(SIGKILL);
      ++kills_terminal;
    }
    if (victim == 1 || victim == 2) {
      w.hq.stop(SIGKILL);
      ++kills_hq;
      w.hq.start(w.port);
    }
    if (victim == 0 || victim == 2) REQUIRE(d->start());
  }
  // The network heals; everything acknowledged must reach HQ once.
  proxy.chaos(0, seed);
  REQUIRE(d->post("/v1/sync", Json::object()).status == 202);
  const bool drained =
      eventually([&] { return d->get("/v1/status").body["outbox"]["depth"] == 0; }, 120);
  if (!drained) {
    // What kept the outbox from draining, for the report (the logs go with
    // the scratch directory).
    const auto tail = [](const std::string& s) {
      return s.substr(s.size() > 6000 ? s.size() - 6000 : 0);
    };
    WARN("status: " << d->get("/v1/status").body.dump() << "\nloyaltyd log:\n"
                    << tail(d->log()) << "\nHQ log:\n"
                    << tail(slurp_file(w.dir / "hq" / "hq.log")));
  }
  REQUIRE(drained);
  auto db = hq::open_sql(w.target);
  REQUIRE(db);
  std::set<std::string> at_hq;
  for (const auto& row : (*db)->query("SELECT txn_id FROM transactions")) at_hq.insert(row.text(0));
  CHECK(at_hq == acked);
  // Both sides were killed and the network misbehaved: the faults happened.
  CHECK(kills_terminal > 0);
  CHECK(kills_hq > 0);
  CHECK(proxy.faults() > 0);
  CHECK(!acked.empty());
  WARN(rounds << " rounds: " << acked.size() << " acknowledged sales, loyaltyd killed "
              << kills_terminal << " times, loyalty-hq " << kills_hq << " times, " << proxy.faults()
              << " network faults; HQ holds each sale once");
  w.hq.stop();
  CHECK(w.hq.cli("verify").code == 0);
}
