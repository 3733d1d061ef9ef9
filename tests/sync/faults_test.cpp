// Sync under faults, with real processes and real TLS on loopback: an answer
// lost after HQ committed, loyaltyd SIGKILLed mid-upload, a program published
// for later and a tampered one, a terminal clock hours off.
#include <cstdlib>
#include <ctime>

#include "core/local_time.h"
#include "tests/sync/sync_fixture.h"
#include "tests/sync/tcp_proxy.h"

using namespace loyalty;
using namespace loyalty::test;

namespace {

// The terminal's member view settles on HQ's balance; HQ's books balance.
void converged_and_verified(SyncWorld& w, Daemon& d) {
  const auto at_hq = hq_json(w.hq.cli("member M-A"));
  CHECK(eventually([&] {
    const auto m = d.get("/v1/members/M-A").body;
    return m["points"]["pending_sync"] == 0 && m["points"]["available"] == at_hq["balance"];
  }));
  w.hq.stop();
  CHECK(w.hq.cli("verify").code == 0);
}

}  // namespace

TEST_CASE("HQ commits a batch but its answer is lost: the resend creates no duplicate",
          "[slow][sync][e2e]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  INFO("backend " << backend);
  SyncWorld w("lost-" + backend, backend);
  TcpProxy proxy(w.port);
  auto d = w.terminal("S001", proxy.port());
  w.hq.start(w.port);
  REQUIRE(d->start());
  REQUIRE(eventually([&] { return d->get("/v1/status").body["online"] == true; }));
  // The next upload (a record is over 3 KB) reaches HQ; its answer does not.
  proxy.lose_responses(1, 3000);
  for (int i = 1; i <= 5; ++i)
    REQUIRE(sold(sell(*d, latte_sale("M-A", i), "sale-" + std::to_string(i))));
  REQUIRE(eventually([&] { return outbox_depth(*d) == 0; }, 30));
  CHECK(proxy.responses_lost() == 1);
  CHECK(d->log().find("an earlier answer was lost") != std::string::npos);
  CHECK(w.count("transactions") == 5);
  converged_and_verified(w, *d);
}

TEST_CASE("loyaltyd SIGKILLed in the middle of an upload loses and doubles nothing",
          "[slow][sync][e2e]") {
  SyncWorld w("kill");
  auto d = w.terminal("S001");
  REQUIRE(d->start());
  // A long outage: 700 sales queue (several batches: at most 500 records
  // or about 4 MB each).
  constexpr int kSales = 700;
  for (int i = 1; i <= kSales; ++i)
    REQUIRE(sold(sell(*d, latte_sale("M-A", 1), "sale-" + std::to_string(i))));
  REQUIRE(outbox_depth(*d) == kSales);
  // HQ comes back and the operator asks for a sync now (the terminal is
  // backing off after its failed rounds); the moment HQ holds the first
  // batch, the terminal dies.
  w.hq.start(w.port);
  CHECK(d->post("/v1/sync", Json::object()).status == 202);
  REQUIRE(eventually([&] { return w.count("transactions") > 0; }, 60));
  d->kill(SIGKILL);
  const auto at_kill = w.count("transactions");
  CHECK(at_kill < kSales);  // the kill came before HQ had everything
  WARN("HQ held " << at_kill << " of " << kSales << " when loyaltyd was killed");
  REQUIRE(d->start());
  REQUIRE(eventually([&] { return outbox_depth(*d) == 0; }, 60));
  CHECK(w.count("transactions") == kSales);
  // HQ's sequence for the terminal is contiguous: every sale, once.
  const auto terminals = hq_json(w.hq.cli("terminals list"))["terminals"];
  REQUIRE(terminals.size() == 1);
  CHECK(terminals[0]["uploaded"] == kSales);
  converged_and_verified(w, *d);
}

TEST_CASE("PostgreSQL ends HQ's session under load and HQ reconnects, nothing lost or doubled",
          "[slow][sync][e2e][faults]") {
  SyncWorld w("pgdrop", "postgres");
  auto d = w.terminal("S001");
  w.hq.start(w.port);
  REQUIRE(d->start());
  REQUIRE(eventually([&] { return d->get("/v1/status").body["online"] == true; }));
  auto admin = hq::open_sql(w.target);
  REQUIRE(admin);
  // Sales go on while the database server ends HQ's session again and
  // again (a restart, a failover, an administrator's pg_terminate_backend),
  // sometimes in the middle of a batch's transaction.
  constexpr int kRounds = 6, kPerRound = 25;
  const auto others = [&](const std::string& what) {
    return (*admin)
        ->query("SELECT COUNT(" + what +
                ") FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
                "pg_backend_pid()")[0]
        .integer(0);
  };
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 1; i <= kPerRound; ++i)
      REQUIRE(sold(sell(*d, latte_sale("M-A", 1),
                        "sale-" + std::to_string(round) + "-" + std::to_string(i))));
    // HQ has a session again (its uploads are under way): end it.
    CHECK(d->post("/v1/sync", Json::object()).status == 202);
    REQUIRE(eventually([&] { return others("*") > 0; }, 30));
    CHECK(others("pg_terminate_backend(pid)") > 0);
  }
  // HQ connects again by itself: the outbox drains without restarting it.
  CHECK(d->post("/v1/sync", Json::object()).status == 202);
  REQUIRE(eventually([&] { return outbox_depth(*d) == 0; }, 60));
  CHECK(w.count("transactions") == kRounds * kPerRound);
  CHECK(read_all((w.dir / "hq" / "hq.log").string())
            .find("the PostgreSQL session was lost; reconnected") != std::string::npos);
  converged_and_verified(w, *d);
}

TEST_CASE(
    "a program version reaches the terminal and applies from its effective time, a "
    "tampered one is refused",
    "[slow][sync][e2e]") {
  SyncWorld w("programs");
  auto d = w.terminal("S001");
  w.hq.start(w.port);
  REQUIRE(d->start());
  REQUIRE(eventually([&] { return d->get("/v1/status").body["online"] == true; }));
  CHECK(d->get("/v1/status").body["program"]["version"] == 1);

  auto program = Json::parse(read_all(hq_source("examples/programs/coffee-chain.json")));
  program["version"] = 2;
  program["name"] = "Coffee chain, winter";
  write_file(w.dir / "v2.json", program.dump(2));
  // The daemon's clock (system_clock). time() may read a coarser clock that
  // is still on the previous second when the daemon is on the next.
  const auto now = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const auto effective = now() + 20;
  REQUIRE(w.hq.cli("publish " + (w.dir / "v2.json").string() + " --effective-from " +
                   std::to_string(effective))
              .code == 0);
  // The terminal has it before it applies, and keeps using v1 until then.
  REQUIRE(eventually([&] { return sql_int(d->db(), "SELECT COUNT(*) FROM programs") == 2; }));
  {
    const auto st = d->get("/v1/status").body;
    REQUIRE(now() < effective - 1);  // the wait below is what is tested
    // Status shows both: the version in force and the one waiting.
    CHECK(st["program"]["version"] == 1);
    CHECK(st["program_next"]["version"] == 2);
    CHECK(st["program_next"]["effective_from"] == effective);
  }
  REQUIRE(eventually([&] { return d->get("/v1/status").body["program"]["version"] == 2; }, 40));
  CHECK(now() >= effective);
  CHECK(d->get("/v1/status").body["program"]["name"] == "Coffee chain, winter");

  // v3 is published, then altered in HQ's database on its way to the
  // terminal: the signature no longer matches and the terminal refuses it.
  w.hq.stop();
  program["version"] = 3;
  program["name"] = "Coffee chain v3";
  write_file(w.dir / "v3.json", program.dump(2));
  REQUIRE(w.hq.cli("publish " + (w.dir / "v3.json").string() + " --effective-from 0").code == 0);
  {
    auto db = hq::open_sql(w.target);
    REQUIRE(db);
    auto row = (*db)->query(
        "SELECT cursor, payload FROM changes WHERE kind = 'program' AND key "
        "= 'coffee-chain@3'");
    REQUIRE(row.size() == 1);
    auto payload = Json::parse(row[0].text(1));
    auto body = payload["body"].get<std::string>();
    const auto at = body.find("\"points\": 200");
    REQUIRE(at != std::string::npos);
    body.replace(at, 13, "\"points\": 2");  // the voucher for 2 points instead of 200
    payload["body"] = body;
    (*db)->exec("UPDATE changes SET payload = ?1 WHERE cursor = ?2",
                {payload.dump(), row[0].integer(0)});
  }
  w.hq.start(w.port);
  REQUIRE(eventually(
      [&] { return d->log().find("refused program coffee-chain v3") != std::string::npos; }));
  CHECK(d->get("/v1/status").body["program"]["version"] == 2);
  CHECK(d->get("/v1/rewards").body["rewards"][0]["points"] == 200);
  CHECK(sql_int(d->db(), "SELECT COUNT(*) FROM programs WHERE version = 3") == 0);
}

TEST_CASE("a terminal clock hours off is noticed and reported by HQ, sales keep the store's zone",
          "[slow][sync][e2e]") {
  SyncWorld w("clock");
  auto d = w.terminal("S001");
  // The terminal's wall clock runs five hours ahead (libfaketime); its
  // timers are left alone.
  d->set_env({"LD_PRELOAD=" + libfaketime(), "FAKETIME=+5h", "FAKETIME_DONT_FAKE_MONOTONIC=1",
              "FAKETIME_DONT_RESET=1", kAsanWithPreload});
  w.hq.start(w.port);
  REQUIRE(d->start());
  REQUIRE(eventually([&] { return d->get("/v1/status").body["online"] == true; }));
  REQUIRE(sold(sell(*d, latte_sale("M-A", 2), "sale-1")));
  REQUIRE(eventually([&] { return outbox_depth(*d) == 0; }));

  const auto t = hq_json(w.hq.cli("terminals list"))["terminals"][0];
  INFO(t.dump());
  const auto skew = t["clock_skew_seconds"].get<std::int64_t>();
  CHECK(skew > 5 * 3600 - 120);
  CHECK(skew < 5 * 3600 + 120);
  CHECK(t["clock_ok"] == false);
  // Said once, not at every upload.
  REQUIRE(sold(sell(*d, latte_sale("M-A", 1), "sale-2")));
  REQUIRE(eventually([&] { return outbox_depth(*d) == 0; }));
  const auto hq_log = read_all((w.dir / "hq" / "hq.log").string());
  const auto warned = hq_log.find("S001/T01's clock is");
  CHECK(warned != std::string::npos);
  CHECK(hq_log.find("S001/T01's clock is", warned + 1) == std::string::npos);
  // The terminal shows what HQ measured at its last upload (each upload is
  // measured again, to the second, so it may differ from the first by one),
  // and warns.
  const auto last = hq_json(w.hq.cli("terminals list"))["terminals"][0];
  CHECK(std::abs(d->get("/v1/status").body["clock_skew_seconds"].get<std::int64_t>() -
                 last["clock_skew_seconds"].get<std::int64_t>()) <= 1);
  CHECK(std::abs(last["clock_skew_seconds"].get<std::int64_t>() - skew) <= 1);
  CHECK(d->log().find("clock is") != std::string::npos);

  // The sale is dated by the terminal's clock in the store's zone, and HQ's
  // replay, which reads that recorded local time, agrees with it.
  auto db = hq::open_sql(w.target);
  REQUIRE(db);
  const auto record = Json::parse((*db)->query("SELECT record FROM transactions")[0].text(0));
  CHECK(record["zone"] == "Asia/Shanghai");
  const auto expected =
      core::to_local(std::chrono::sys_seconds(std::chrono::seconds(std::time(nullptr) + 5 * 3600)),
                     "Asia/Shanghai");
  REQUIRE(expected);
  const auto recorded = core::parse_local_datetime(record["local_time"].get<std::string>());
  REQUIRE(recorded);
  CHECK(std::chrono::abs(*recorded - *expected) < std::chrono::minutes(3));
  // Dated five hours after HQ received them: booked, and flagged for the
  // clock, nothing else.
  const auto flags = hq_json(w.hq.cli("member M-A"))["flags"];
  CHECK(flags.size() == 2);
  for (const auto& f : flags) CHECK(f["kind"] == "clock-ahead");

  // The clock is put right: both sides see it without waiting for a sale.
  d->stop();
  d->set_env({});
  REQUIRE(d->start());
  CHECK(eventually([&] {
    const auto s = d->get("/v1/status").body["clock_skew_seconds"];
    return s.is_number() && std::abs(s.get<std::int64_t>()) < 120;
  }));
  const auto fixed = hq_json(w.hq.cli("terminals list"))["terminals"][0];
  CHECK(std::abs(fixed["clock_skew_seconds"].get<std::int64_t>()) < 120);
  CHECK(fixed["clock_ok"] == true);
}

TEST_CASE(
    "HQ's disk fails under load: batches are refused, nothing is half-written, the "
    "terminals resend once it clears",
    "[slow][sync][e2e][faults]") {
  const std::string mode = GENERATE("full", "eio", "sync");
  INFO("fault " << mode);
  SyncWorld w("hqdisk-" + mode);
  const auto control = w.dir / "fault";
  // The fault layer under HQ's SQLite file (tests/faults/faultfs.cpp).
  w.hq.set_env(faultfs_env(control, w.target.substr(w.target.find(':') + 1)));
  auto d = w.terminal("S001");
  REQUIRE(d->start());
  w.hq.start(w.port);
  for (int i = 1; i <= 3; ++i)
    REQUIRE(sold(sell(*d, latte_sale("M-A", 1), "sale-" + std::to_string(i))));
  REQUIRE(eventually([&] { return outbox_depth(*d) == 0; }, 30));

  write_file(control, mode);
  for (int i = 4; i <= 8; ++i)
    REQUIRE(sold(sell(*d, latte_sale("M-A", 1), "sale-" + std::to_string(i))));
  CHECK(d->post("/v1/sync", Json::object()).status == 202);
  REQUIRE(eventually([&] { return fs::exists(w.dir / "fault.count"); }, 30));
  // HQ answers with an error and keeps running; the terminal keeps all five.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CHECK(outbox_depth(*d) == 5);
  CHECK(w.count("transactions") == 3);  // nothing of a refused batch is in HQ's books
  CHECK(d->get("/v1/members/M-A").body["points"]["pending_sync"].get<std::int64_t>() > 0);

  write_file(control, "none");
  CHECK(d->post("/v1/sync", Json::object()).status == 202);
  REQUIRE(eventually([&] { return outbox_depth(*d) == 0; }, 60));
  CHECK(w.count("transactions") == 8);
  converged_and_verified(w, *d);
}
