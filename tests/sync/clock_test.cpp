// A till's wrong clock, moved while it runs (libfaketime), against the real
// daemons: the offline allowances go by time the till can trust, HQ flags
// and re-dates what a wrong clock recorded, and both sides say the clock is
// wrong, even when it is so wrong that nothing reaches HQ.
#include <signal.h>

#include "core/local_time.h"
#include "tests/sync/sync_fixture.h"

using namespace loyalty;
using namespace loyalty::test;

namespace {

const Json kRedeem{{"member_id", "M-A"}, {"event", "redeem"}, {"reward", "voucher-10"}};

// A redemption of the 200-point voucher; its answer.
HttpResult redeem(Daemon& d, const std::string& key) {
  return d.post("/v1/transactions", kRedeem, key);
}

bool online(Daemon& d) {
  return d.get("/v1/status").body["online"] == true;
}

// A flag of `kind` HQ holds for M-A.
std::vector<Json> flags_of(SyncWorld& w, const std::string& kind) {
  std::vector<Json> out;
  const auto member = hq_json(w.hq.cli("member M-A"));
  for (const auto& f : member["flags"])
    if (f["kind"] == kind) out.push_back(f);
  return out;
}

// HQ and store S001's till, whose wall clock is `offset` off, running.
struct SkewedTill {
  SyncWorld w;
  std::unique_ptr<Daemon> d;
  MovableClock clock;
  SkewedTill(const std::string& name, const std::string& offset, std::int64_t points = 1000)
      : w(name, "sqlite", points), d(w.terminal("S001")), clock(w.dir / "faketime", offset) {
    d->set_env(clock.env());
    w.hq.start(w.port);
    REQUIRE(d->start());
  }
  // `loyaltyctl status` against the till.
  std::string ctl_status() {
    return run_ctl("status --url 127.0.0.1:" + std::to_string(d->port()) + " --token-file " +
                   (d->dir() / "token").string())
        .out;
  }
};

}  // namespace

TEST_CASE("setting an offline till's clock forward or back opens no new day of allowances",
          "[slow][sync][clock]") {
  SkewedTill till("clock-allowance", "+0", 5000);
  auto& w = till.w;
  auto& d = till.d;
  auto& clock = till.clock;
  REQUIRE(eventually([&] { return online(*d); }));
  w.hq.stop();
  REQUIRE(eventually([&] { return !online(*d); }));

  // Offline, a member may redeem 1,000 points a day: five vouchers.
  for (int i = 0; i < 5; ++i) {
    auto r = redeem(*d, "day0-" + std::to_string(i));
    INFO(r.body.dump());
    REQUIRE(r.status == 201);
    CHECK(r.body["offline"] == true);
  }
  CHECK(redeem(*d, "day0-5").type() == "offline-allowance-exceeded");
  // The clock says tomorrow, then the day after: to the allowances, it is
  // still the day the till last heard from HQ plus the seconds since.
  for (const auto* offset : {"+1d", "+2d", "+30h"}) {
    clock.set(offset);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto r = redeem(*d, std::string("moved") + offset);
    INFO(offset << ": " << r.body.dump());
    CHECK(r.status == 409);
    CHECK(r.type() == "offline-allowance-exceeded");
  }
  CHECK(d->get("/v1/status").body["offline_allowance"]["trusted_time"] == true);
  // Set back a day: no new day either.
  clock.set("-1d");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(redeem(*d, "back").status == 409);
  // HQ back, clock right: the five redemptions are HQ's, once.
  clock.set("+0");
  w.hq.start(w.port);
  REQUIRE(eventually([&] { return d->get("/v1/status").body["outbox"]["depth"] == 0; }, 30));
  CHECK(hq_json(w.hq.cli("member M-A"))["balance"] == 5000 - 5 * 200);
}

TEST_CASE("a till counts as offline soon after HQ hangs, and a restart resumes what it knew",
          "[slow][sync][clock]") {
  SyncWorld w("clock-hang", "sqlite", 5000);
  auto d = w.terminal("S001");
  w.hq.start(w.port);
  REQUIRE(d->start());
  REQUIRE(eventually([&] { return online(*d); }));
  // A restart while HQ answers: online at once, not after its first round.
  d->kill(SIGKILL);
  REQUIRE(d->start());
  CHECK(online(*d));
  // HQ hangs: it accepts connections and answers nothing. Within a few
  // seconds the till stops counting on it, long before its 20 s timeout.
  REQUIRE(eventually([&] { return d->post("/v1/sync", Json::object()).status == 202; }));
  REQUIRE(eventually([&] { return online(*d); }));
  ::kill(w.hq.pid(), SIGSTOP);
  const auto hung = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return !online(*d); }, 15));
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - hung).count();
  WARN("offline " << seconds << " s after HQ hung");
  CHECK(seconds < 8);
  auto r = redeem(*d, "while-hung");
  INFO(r.body.dump());
  CHECK(r.status == 201);
  CHECK(r.body["offline"] == true);  // counted against the allowances
  ::kill(w.hq.pid(), SIGCONT);
  REQUIRE(eventually([&] { return d->get("/v1/status").body["outbox"]["depth"] == 0; }, 40));
}

TEST_CASE("a till whose clock is days behind still syncs, and both sides say its clock is off",
          "[slow][sync][clock]") {
  SkewedTill till("clock-behind", "-2d");
  auto& w = till.w;
  auto& d = till.d;
  // HQ's certificates are valid from well before they were issued.
  REQUIRE(eventually([&] { return online(*d); }));
  REQUIRE(sold(sell(*d, latte_sale("M-A", 1), "behind-1")));
  REQUIRE(eventually([&] { return d->get("/v1/status").body["outbox"]["depth"] == 0; }));
  const auto st = d->get("/v1/status").body;
  INFO(st.dump());
  CHECK(std::abs(st["clock_skew_seconds"].get<std::int64_t>() + 2 * 86400) < 120);
  CHECK(d->metric("loyaltyd_clock_skew_seconds") < -2 * 86400 + 120);
  const auto ctl = till.ctl_status();
  INFO(ctl);
  CHECK(ctl.find("CLOCK OFF   behind HQ's by 28") != std::string::npos);
  const auto t = hq_json(w.hq.cli("terminals list"))["terminals"][0];
  CHECK(t["clock_ok"] == false);
  CHECK(std::abs(t["clock_skew_seconds"].get<std::int64_t>() + 2 * 86400) < 120);
  // The sale is booked as sold, flagged, and its points dated by HQ's clock:
  // a sale cannot have been made before its till was registered.
  const auto f = flags_of(w, "clock-behind");
  REQUIRE(f.size() == 1);
  CHECK(f[0]["detail"].get<std::string>().find("before its terminal was registered") !=
        std::string::npos);
}

TEST_CASE("a till whose clock is months off says so, and HQ logs who refused its certificate",
          "[slow][sync][clock]") {
  // Three months behind: HQ's certificate is not valid yet by this clock.
  SkewedTill till("clock-months", "-90d");
  auto& w = till.w;
  auto& d = till.d;
  REQUIRE(eventually([&] { return d->get("/v1/status").body["clock_error"].is_string(); }));
  const auto st = d->get("/v1/status").body;
  INFO(st.dump());
  CHECK(st["online"] == false);
  CHECK(st["clock_error"].get<std::string>().find("not valid yet") != std::string::npos);
  CHECK(d->metric("loyaltyd_clock_error") == 1);
  CHECK(till.ctl_status().find("CLOCK WRONG") != std::string::npos);
  CHECK(eventually([&] {
    return read_all((w.dir / "hq" / "hq.log").string()).find("refused our certificate") !=
           std::string::npos;
  }));
  // Never measured: HQ does not claim the clock is fine.
  CHECK(hq_json(w.hq.cli("terminals list"))["terminals"][0]["clock_ok"].is_null());
  // The clock is put right: it syncs, and the error clears.
  till.clock.set("+0");
  REQUIRE(d->post("/v1/sync", Json::object()).status == 202);
  REQUIRE(eventually([&] { return online(*d); }, 30));
  CHECK(d->get("/v1/status").body["clock_error"].is_null());
  CHECK(d->metric("loyaltyd_clock_error") == 0);
}

TEST_CASE("a sale dated far in HQ's future is booked, flagged, and its points expire by HQ's date",
          "[slow][sync][clock]") {
  SkewedTill till("clock-ahead", "+200d");
  auto& w = till.w;
  auto& d = till.d;
  REQUIRE(eventually([&] { return online(*d); }));
  REQUIRE(sold(sell(*d, latte_sale("M-A", 1), "ahead-1")));
  REQUIRE(eventually([&] { return d->get("/v1/status").body["outbox"]["depth"] == 0; }));
  const auto m = hq_json(w.hq.cli("member M-A"));
  INFO(m.dump());
  CHECK(m["balance"].get<std::int64_t>() > 1000);  // a fact is a fact: the sale's points
  const auto f = flags_of(w, "clock-ahead");
  REQUIRE(f.size() == 1);
  CHECK(f[0]["detail"].get<std::string>().find("after HQ received it") != std::string::npos);
  // The program's points live 12 months: from HQ's date, not 200 days on.
  const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  const auto date_in = [&](int days) {
    return core::format_local_date(core::LocalDays((today + date::days(days)).time_since_epoch()));
  };
  bool found = false;
  for (const auto& lot : m["member"]["lots"])
    if (lot["id"].get<std::string>().starts_with("S001-T01-")) {
      found = true;
      INFO(lot.dump());
      CHECK(lot["earned_on"].get<std::string>() <= date_in(1));
      CHECK(lot["expires_on"].get<std::string>() <= date_in(367));
    }
  CHECK(found);
}
