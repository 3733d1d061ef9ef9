// Sync end to end with real processes and real TLS on loopback: loyaltyd
// provisioned from `loyalty-hq terminals add`, selling while HQ is down,
// then reconnecting.
#include "tests/sync/sync_fixture.h"
#include "tests/sync/tcp_proxy.h"

using namespace loyalty;
using namespace loyalty::test;

namespace {

Json sale(int qty) {
  return latte_sale("M-A", qty);
}

// A stopped terminal's database copied to `to`, or put back from there
// (as an operator restores a backup: the file with its -wal and -shm).
void copy_db(const fs::path& from_db, const fs::path& to_db) {
  for (const auto* suffix : {"", "-wal", "-shm"}) {
    fs::remove(to_db.string() + suffix);
    if (fs::exists(from_db.string() + suffix))
      fs::copy_file(from_db.string() + suffix, to_db.string() + suffix);
  }
}

// `d` ran a whole sync round (upload, then the feed) after this call: one
// is asked for, and its last_sync_at moves on.
bool round_done(Daemon& d, int seconds = 20) {
  const auto before = d.get("/v1/status").body["last_sync_at"];
  if (d.post("/v1/sync", Json::object()).status != 202) return false;
  return eventually([&] { return d.get("/v1/status").body["last_sync_at"] != before; }, seconds);
}

// Every committed transaction of `d` reached HQ (its outbox is empty).
bool synced(Daemon& d) {
  return eventually([&] { return d.get("/v1/status").body["outbox"]["depth"] == 0; });
}

// HQ and store S001's till, running; an operator backs the till's
// database up and later puts that copy back while HQ is out of reach.
struct BackedUpTill {
  SyncWorld w;
  std::unique_ptr<Daemon> d;
  fs::path backup;
  explicit BackedUpTill(const std::string& name)
      : w(name), d(w.terminal("S001")), backup(w.dir / "backup.db") {
    w.hq.start(w.port);
    REQUIRE(d->start());
  }
  void back_up() {
    d->stop();
    copy_db(d->db(), backup);
    REQUIRE(d->start());
  }
  void restore_with_hq_down() {
    d->stop();
    w.hq.stop();
    copy_db(backup, d->db());
    REQUIRE(d->start());
  }
};

// The receipt ids HQ refused, as the terminal's status lists them.
std::vector<std::string> refused_ids(const Json& status) {
  std::vector<std::string> ids;
  for (const auto& r : status["hq_refused"]) ids.push_back(r["receipt_id"]);
  return ids;
}

// HQ running, and the tills of stores S001 and S002 running with M-A.
std::pair<std::unique_ptr<Daemon>, std::unique_ptr<Daemon>> two_stores(SyncWorld& w) {
  w.hq.start(w.port);
  auto a = w.terminal("S001");
  auto b = w.terminal("S002");
  for (auto* d : {a.get(), b.get()}) {
    REQUIRE(d->start());
    REQUIRE(eventually([&] { return d->get("/v1/members/M-A").status == 200; }));
  }
  return {std::move(a), std::move(b)};
}

}  // namespace

TEST_CASE("a day of sales while HQ is down reaches HQ exactly once after reconnection",
          "[slow][sync][e2e]") {
  const auto dir = scratch_dir("sync");
  HqProcess hq(dir / "hq", fresh_hq_target("sqlite", dir));
  fs::create_directories(dir / "hq");
  const int port = free_port();
  REQUIRE(hq.cli("init").code == 0);
  REQUIRE(
      hq.cli("publish " + hq_source("examples/programs/coffee-chain.json") + " --effective-from 0")
          .code == 0);
  REQUIRE(hq.cli("terminals add S001 T01 --out " + (dir / "bundle.json").string() +
                 " --url https://127.0.0.1:" + std::to_string(port))
              .code == 0);
  auto prov = run_ctl("provision " + (dir / "bundle.json").string() + " --to " +
                      (dir / "hq-bundle.json").string());
  INFO(prov.out);
  REQUIRE(prov.code == 0);
  const std::string card15 = "900000000000001";
  write_file(dir / "members.json",
             Json::array({seeded_member("M-A", card15 + core::luhn_check_digit(card15),
                                        "13900000001", 1000)})
                 .dump());
  Daemon d(dir / "t", {"--hq.bundle", (dir / "hq-bundle.json").string(), "--program.file",
                       hq_source("examples/programs/coffee-chain.json"), "--program.members",
                       (dir / "members.json").string()});
  fs::create_directories(dir / "t");
  const bool started = d.start();
  INFO(d.log());
  REQUIRE(started);

  // HQ is down: sales go on, offline, and queue.
  std::int64_t earned = 0;
  for (int i = 1; i <= 5; ++i) {
    auto r = d.post("/v1/transactions", sale(i), "sale-" + std::to_string(i));
    INFO(r.body.dump());
    REQUIRE(r.status == 201);
    CHECK(r.body["offline"] == true);
    earned += r.body["outcome"]["totals"]["points_earned"].get<std::int64_t>();
  }
  auto st = d.get("/v1/status");
  CHECK(st.body["online"] == false);
  CHECK(st.body["outbox"]["depth"] == 5);
  CHECK(st.body["feed"]["cursor"] == 0);  // nothing read from HQ yet
  CHECK(d.get("/v1/members/M-A").body["points"]["pending_sync"] == earned);

  // HQ comes back: everything uploads, exactly once, and the feed confirms.
  hq.start(port);
  REQUIRE(eventually([&] {
    auto s = d.get("/v1/status");
    return s.body["outbox"]["depth"] == 0 && s.body["online"] == true;
  }));
  REQUIRE(eventually([&] { return d.get("/v1/members/M-A").body["points"]["pending_sync"] == 0; }));
  // The feed is read to its end: the status says where, and not catching up.
  const auto feed = d.get("/v1/status").body["feed"];
  CHECK(feed["catching_up"] == false);
  CHECK(feed["cursor"].get<std::int64_t>() > 0);
  const auto local = d.get("/v1/members/M-A").body;
  CHECK(local["points"]["available"] == 1000 + earned);
  auto at_hq = hq.cli("member M-A");
  INFO(at_hq.out);
  REQUIRE(at_hq.code == 0);
  const auto hq_view = Json::parse(at_hq.out.substr(at_hq.out.find('{')));
  CHECK(hq_view["balance"] == 1000 + earned);
  CHECK(hq_view["flags"].empty());  // HQ's replay agreed with every sale

  // HQ has the member now (its feed sent it back): a sale uploads it with
  // only the counters the engine read, and HQ's replay still agrees. The
  // sales before went with the whole member, as HQ started from it.
  auto sixth = d.post("/v1/transactions", sale(6), "sale-6");
  REQUIRE(sixth.status == 201);
  earned += sixth.body["outcome"]["totals"]["points_earned"].get<std::int64_t>();
  REQUIRE(eventually([&] { return d.get("/v1/status").body["outbox"]["depth"] == 0; }));
  const auto counters_sent = [&](const std::string& txn) {
    return sql_int(d.db(),
                   "SELECT count(*) FROM transactions t, json_each(t.member_before, '$.counters') "
                   "WHERE t.txn_id = '" +
                       txn + "'");
  };
  const auto whole = counters_sent("S001-T01-00000005");
  const auto trimmed = counters_sent("S001-T01-00000006");
  CHECK(trimmed > 0);
  CHECK(trimmed * 2 < whole);
  REQUIRE(eventually([&] { return d.get("/v1/members/M-A").body["points"]["pending_sync"] == 0; }));
  auto after_sixth = hq.cli("member M-A");
  INFO(after_sixth.out);
  const auto sixth_view = Json::parse(after_sixth.out.substr(after_sixth.out.find('{')));
  CHECK(sixth_view["balance"] == 1000 + earned);
  CHECK(sixth_view["flags"].empty());

  // The customer returns a latte of the first sale at store S002, which
  // learned the receipt from HQ's feed.
  REQUIRE(hq.cli("terminals add S002 T01 --out " + (dir / "b2.json").string() +
                 " --url https://127.0.0.1:" + std::to_string(port))
              .code == 0);
  fs::create_directories(dir / "t2");
  Daemon other(dir / "t2", {"--hq.bundle", (dir / "b2.json").string()});
  REQUIRE(other.start());
  REQUIRE(eventually([&] { return other.get("/v1/members/M-A").status == 200; }));
  const Json give_back{{"receipt_id", "S001-T01-00000001"},
                       {"lines", {{{"line", 0}, {"quantity", 1}}}}};
  HttpResult ret;
  REQUIRE(eventually([&] {
    ret = other.post("/v1/returns", give_back, "return-1");
    return ret.status == 201;
  }));
  INFO(ret.body.dump());
  const auto reversed = ret.body["outcome"]["points_reversed"].get<std::int64_t>();
  CHECK(reversed > 0);
  CHECK(ret.body["return_of"] == "S001-T01-00000001");
  REQUIRE(eventually([&] { return other.get("/v1/status").body["outbox"]["depth"] == 0; }));
  REQUIRE(eventually([&] {
    return d.get("/v1/members/M-A").body["points"]["available"] == 1000 + earned - reversed;
  }));
  earned -= reversed;

  // A restart re-sends nothing and loses nothing.
  d.stop();
  REQUIRE(d.start());
  REQUIRE(eventually([&] { return d.get("/v1/status").body["online"] == true; }));
  CHECK(d.get("/v1/members/M-A").body["points"]["available"] == 1000 + earned);
  hq.stop();
  auto verify = hq.cli("verify");
  INFO(verify.out);
  CHECK(verify.code == 0);
  auto txns = hq.cli("report sales 2026-01-01 2099-12-31");
  const auto days = Json::parse(txns.out.substr(txns.out.find('{')))["per_store_day"];
  REQUIRE(days.size() == 2);
  CHECK(days[0]["transactions"] == 6);                                     // S001
  CHECK(days[1]["transactions"] == 1);                                     // S002's return
  CHECK(days[1]["sales"] == ret.body["outcome"]["totals"]["amount_due"]);  // the refund
  CHECK(days[1]["points_taken_back"] == reversed);
}

TEST_CASE("the same points redeemed at two offline stores: both kept, debt and a flag everywhere",
          "[slow][sync][e2e]") {
  const auto dir = scratch_dir("sync2");
  fs::create_directories(dir / "hq");
  HqProcess hq(dir / "hq", fresh_hq_target("sqlite", dir));
  const int port = free_port();
  REQUIRE(hq.cli("init").code == 0);
  REQUIRE(
      hq.cli("publish " + hq_source("examples/programs/coffee-chain.json") + " --effective-from 0")
          .code == 0);
  const std::string card15 = "900000000000001";
  write_file(dir / "members.json",
             Json::array({seeded_member("M-A", card15 + core::luhn_check_digit(card15),
                                        "13900000001", 600)})
                 .dump());
  std::vector<std::unique_ptr<Daemon>> stores;
  for (const char* s : {"S001", "S002"}) {
    const auto bundle = dir / (std::string(s) + ".json");
    REQUIRE(hq.cli(std::string("terminals add ") + s + " T01 --out " + bundle.string() +
                   " --url https://127.0.0.1:" + std::to_string(port))
                .code == 0);
    fs::create_directories(dir / s);
    stores.push_back(std::make_unique<Daemon>(
        dir / s, std::vector<std::string>{"--hq.bundle", bundle.string(), "--program.file",
                                          hq_source("examples/programs/coffee-chain.json"),
                                          "--program.members", (dir / "members.json").string()}));
    REQUIRE(stores.back()->start());
  }
  // Both stores sync once, then the network to HQ goes down.
  hq.start(port);
  for (auto& d : stores)
    REQUIRE(eventually([&] { return d->get("/v1/status").body["online"] == true; }));
  hq.stop();
  for (auto& d : stores) {
    for (int i = 0; i < 3; ++i) {
      auto r = d->post("/v1/redeem", {{"member_id", "M-A"}, {"reward", "voucher-10"}},
                       "redeem-" + std::to_string(i));
      INFO(r.body.dump());
      REQUIRE(r.status == 201);  // within the offline allowance: 600 of 1,000 a day
    }
    CHECK(d->get("/v1/members/M-A").body["points"]["available"] == 0);
  }
  hq.start(port);
  // After both have synced, both show HQ's view: the overdraft is debt.
  for (auto& d : stores)
    REQUIRE(eventually([&] {
      const auto m = d->get("/v1/members/M-A").body;
      return d->get("/v1/status").body["outbox"]["depth"] == 0 && m["points"]["debt"] == 600 &&
             m["points"]["pending_sync"] == 0 && !m["hq_flags"].empty();
    }));
  for (auto& d : stores) {
    const auto m = d->get("/v1/members/M-A").body;
    CHECK(m["points"]["available"] == -600);
    CHECK(m["vouchers"].size() == 6);  // every voucher handed out is real
    // HQ flagged each of the three redemptions that overdrew; the flags are
    // on the member at both tills, and counted in status.
    REQUIRE(m["hq_flags"].size() == 3);
    for (const auto& f : m["hq_flags"]) CHECK(f["kind"] == "points-overdrawn");
    CHECK(d->get("/v1/status").body["hq_flags"]["count"] == 3);
    CHECK(d->get("/v1/status").body["hq_flags"]["members"] == 1);
  }
  auto flags = hq.cli("flags");
  CHECK(flags.out.find("points-overdrawn") != std::string::npos);
  // Finance resolves them at HQ; both tills drop them from the member.
  const auto open = hq_json(hq.cli("flags --open"))["flags"];
  REQUIRE(open.size() == 3);
  for (const auto& f : open)
    REQUIRE(hq.cli("resolve-flag " + std::to_string(f["id"].get<std::int64_t>()) +
                   " --reason 'debt agreed with the member'")
                .code == 0);
  CHECK(hq_json(hq.cli("flags --open"))["flags"].empty());
  for (auto& d : stores)
    REQUIRE(eventually([&] { return d->get("/v1/members/M-A").body["hq_flags"].empty(); }, 30));
  for (auto& d : stores) CHECK(d->get("/v1/status").body["hq_flags"]["count"] == 0);
  // A stock delivery for S001's counter reaches S001 only.
  auto stock = hq.cli("stock S001 T01 voucher-10 5 --delivery DN-77");
  INFO(stock.out);
  REQUIRE(stock.code == 0);
  // The operator is unsure it ran and runs it again: still one delivery.
  auto again = hq.cli("stock S001 T01 voucher-10 5 --delivery DN-77");
  REQUIRE(again.code == 0);
  CHECK(again.out.find("\"duplicate\": true") != std::string::npos);
  CHECK(hq.cli("stock S001 T01 voucher-10 6 --delivery DN-77").code == 4);
  CHECK(hq.cli("stock S001 T01 no-such-reward 5").code != 0);
  CHECK(hq.cli("stock S009 T01 voucher-10 5").code != 0);
  REQUIRE(eventually([&] { return stores[0]->get("/v1/rewards").body["rewards"][0]["stock"] == 5; },
                     30));
  CHECK(stores[1]->get("/v1/rewards").body["rewards"][0]["stock"].is_null());
  hq.stop();
  CHECK(hq.cli("verify").code == 0);
}

TEST_CASE("a lost card blocked at HQ is refused at the till, the member's other codes still work",
          "[slow][sync][e2e]") {
  SyncWorld w("codes");
  const auto card_b = card("900000000000002");
  write_file(w.dir / "import.csv",
             "member_id,phone,card_number,name,birthday,tier,points,points_expire_on\n"
             "M-B,13900000002," +
                 card_b + ",Lin Bo,,,300,2099-12-31\n");
  auto imported = w.hq.cli("import-members " + (w.dir / "import.csv").string());
  INFO(imported.out);
  REQUIRE(imported.code == 0);
  auto d = w.terminal("S001");
  REQUIRE(d->start());
  w.hq.start(w.port);
  const Json by_card{{"code", card_b}}, by_qr{{"code", "LM1:M-B"}};
  REQUIRE(eventually([&] { return d->post("/v1/members/scan", by_card).status == 200; }, 30));

  // Refused by HQ before anything is written: a typo, a code nobody has, no reason.
  CHECK(w.hq.cli("block-code 9000000000000020 --reason 'reported lost'").code != 0);
  CHECK(w.hq.cli("block-code " + card("900000000000099") + " --reason 'reported lost'").code != 0);
  CHECK(w.hq.cli("block-code " + card_b).code != 0);
  CHECK(w.count("blocked_codes") == 0);

  const auto audited = w.count("audit");
  auto blocked = w.hq.cli("block-code " + card_b + " --reason 'card reported lost at S001'");
  INFO(blocked.out);
  REQUIRE(blocked.code == 0);
  REQUIRE(eventually([&] { return d->post("/v1/members/scan", by_card).status == 403; }, 30));
  const auto refused = d->post("/v1/members/scan", by_card);
  CHECK(refused.body["type"].get<std::string>().ends_with("member-code-blocked"));
  CHECK(refused.body["detail"].get<std::string>().find("app") != std::string::npos);
  // The membership itself is fine: the static QR and the phone still find it.
  CHECK(d->post("/v1/members/scan", by_qr).status == 200);
  CHECK(d->post("/v1/members/scan", Json{{"phone", "13900000002"}}).status == 200);
  CHECK(w.count("audit") == audited + 1);  // the block, with its reason
  CHECK(w.count("blocked_codes") == 1);

  REQUIRE(w.hq.cli("unblock-code " + card_b + " --reason 'card found by the member'").code == 0);
  REQUIRE(eventually([&] { return d->post("/v1/members/scan", by_card).status == 200; }, 30));
  CHECK(w.count("blocked_codes") == 0);
  CHECK(w.hq.cli("unblock-code " + card_b + " --reason 'card found by the member'").code != 0);
}

TEST_CASE("a member who enrolls at one store is found by card and phone at another",
          "[slow][sync][e2e]") {
  SyncWorld w("enrolled");
  auto a = w.terminal("S001");
  auto b = w.terminal("S002");
  auto c = w.terminal("S003");
  for (auto* d : {a.get(), b.get(), c.get()}) REQUIRE(d->start());
  // HQ is down: she enrolls at S001, and the same phone enrolls again at
  // S003, which cannot know.
  auto enrolled = a->post("/v1/members", {{"phone", "13800138000"}, {"name", "Zhou Min"}}, "e-1");
  INFO(enrolled.body.dump());
  REQUIRE(enrolled.status == 201);
  const auto member = enrolled.body["member"]["member_id"].get<std::string>();
  const auto card_no = enrolled.body["member"]["card_number"].get<std::string>();
  auto twice = c->post("/v1/members", {{"phone", "13800138000"}}, "e-2");
  REQUIRE(twice.status == 201);
  const auto other = twice.body["member"]["member_id"].get<std::string>();

  w.hq.start(w.port);
  REQUIRE(eventually(
      [&] {
        return b->post("/v1/members/scan", {{"code", card_no}}).status == 200;
      },
      30));
  CHECK(b->post("/v1/members/scan", {{"code", card_no}}).body["points"]["available"] == 50);
  // Both memberships are kept; the phone stays with the one HQ heard of
  // first, and the other is flagged for someone to merge.
  REQUIRE(eventually(
      [&] { return w.hq.cli("flags").out.find("duplicate-phone") != std::string::npos; }, 30));
  const auto by_phone = b->post("/v1/members/scan", {{"phone", "13800138000"}});
  REQUIRE(by_phone.status == 200);
  std::string flagged;
  const auto flags = hq_json(w.hq.cli("flags"));
  for (const auto& f : flags["flags"])
    if (f["kind"] == "duplicate-phone") flagged = f["member_id"];
  INFO("flagged " << flagged);
  CHECK((flagged == member || flagged == other));
  CHECK(by_phone.body["member_id"] != flagged);  // the phone finds the one that kept it
  // HQ knows the card, so a lost one can be blocked at every store.
  REQUIRE(w.hq.cli("block-code " + card_no + " --reason 'lost on the bus'").code == 0);
  REQUIRE(eventually(
      [&] {
        return b->post("/v1/members/scan", {{"code", card_no}}).status == 403;
      },
      30));
  w.hq.stop();
  CHECK(w.hq.cli("verify").code == 0);
}

TEST_CASE("a friend's first order rewards both, and the referrer's voucher reaches every store",
          "[slow][sync][e2e]") {
  SyncWorld w("referral");
  auto [a, b] = two_stores(w);
  const auto drinks = [](const Json& member) {
    int n = 0;
    for (const auto& v : member["vouchers"]) n += v["template"] == "drink-10" ? 1 : 0;
    return n;
  };
  // M-A shops at S001 first, so HQ has her, and S001 hears that it does
  // (a till credits only a referrer HQ has).
  REQUIRE(sold(sell(*a, latte_sale("M-A", 1), "referrer-sale")));
  REQUIRE(synced(*a));
  REQUIRE(round_done(*a, 30));
  REQUIRE(drinks(b->get("/v1/members/M-A").body) == 0);
  // M-A brings a friend, who enrolls at S001 and buys a 28.00 latte: the
  // program's "friend's first order" gives the friend a welcome voucher
  // and M-A a drink voucher.
  auto friend_ = a->post("/v1/members", {{"phone", "13800138111"}, {"referred_by", "M-A"}}, "e-1");
  REQUIRE(friend_.status == 201);
  const auto id = friend_.body["member"]["member_id"].get<std::string>();
  auto sale = sell(*a, latte_sale(id, 1), "first-order");
  INFO(sale.body.dump());
  REQUIRE(sold(sale));
  std::map<std::string, std::string> issued;
  for (const auto& v : sale.body["outcome"]["vouchers_issued"]) issued[v["to"]] = v["template"];
  CHECK(issued ==
        std::map<std::string, std::string>{{"member", "welcome-5"}, {"referrer", "drink-10"}});
  const auto friend_now = a->get("/v1/members/" + id).body;
  INFO(friend_now.dump());
  bool welcome = false;
  for (const auto& v : friend_now["vouchers"]) welcome = welcome || v["template"] == "welcome-5";
  CHECK(welcome);
  // HQ replays the sale, agrees, and gives M-A the voucher; both stores
  // have it with the feed.
  for (auto* d : {a.get(), b.get()})
    CHECK(eventually([&] { return drinks(d->get("/v1/members/M-A").body) == 1; }, 30));
  // A second order is not a first one: nothing more for anyone.
  auto again = sell(*a, latte_sale(id, 1), "second-order");
  REQUIRE(sold(again));
  CHECK(again.body["outcome"]["vouchers_issued"].empty());
  REQUIRE(synced(*a));
  w.hq.stop();
  const auto hq_member = hq_json(w.hq.cli("member M-A"));
  CHECK(drinks(hq_member["member"]) == 1);
  CHECK(hq_json(w.hq.cli("flags"))["flags"].empty());  // the replay agreed
  CHECK(w.hq.cli("verify").code == 0);
}

TEST_CASE("a student verified at HQ is a student at every till until HQ removes it",
          "[slow][sync][e2e]") {
  SyncWorld w("attribute");
  auto [a, b] = two_stores(w);
  REQUIRE(sold(sell(*a, latte_sale("M-A", 1), "first-sale")));
  REQUIRE(synced(*a));
  REQUIRE(round_done(*a, 30));
  CHECK(a->get("/v1/members/M-A").body["attributes"].empty());
  // Refused with nothing written: no reason, no date, a name that is not one.
  CHECK(w.hq.cli("member-attribute M-A student --until 2027-07-31").code != 0);
  CHECK(w.hq.cli("member-attribute M-A student --reason 'card checked'").code != 0);
  CHECK(w.hq.cli("member-attribute M-A 'stu dent' --until 2027-07-31 --reason x").code != 0);
  auto set = w.hq.cli(
      "member-attribute M-A student --until 2099-07-31 --reason "
      "'student card checked at S001'");
  INFO(set.out);
  REQUIRE(set.code == 0);
  for (auto* d : {a.get(), b.get()})
    CHECK(eventually(
        [&] {
          return d->get("/v1/members/M-A").body["attributes"].value("student", "") == "2099-07-31";
        },
        30));
  REQUIRE(w.hq.cli("member-attribute M-A student --remove --reason 'left school'").code == 0);
  for (auto* d : {a.get(), b.get()})
    CHECK(eventually([&] { return d->get("/v1/members/M-A").body["attributes"].empty(); }, 30));
  CHECK(w.hq.cli("member-attribute M-A student --remove --reason again").code != 0);
  w.hq.stop();
  CHECK(w.hq.cli("verify").code == 0);
}

TEST_CASE("a revoked terminal says so, not 'offline', and stops redeeming while sales go on",
          "[slow][sync][e2e]") {
  SyncWorld w("revoked-till");
  w.hq.start(w.port);
  auto d = w.terminal("S001");
  REQUIRE(d->start());
  REQUIRE(eventually([&] { return d->get("/v1/status").body["online"] == true; }));
  CHECK(d->get("/v1/status").body["hq_refuses_terminal"].is_null());
  REQUIRE(w.hq.cli("terminals revoke S001 T01").code == 0);
  REQUIRE(d->post("/v1/sync", Json::object()).status == 202);
  Json st;
  REQUIRE(eventually([&] {
    st = d->get("/v1/status").body;
    return st["hq_refuses_terminal"].is_string();
  }));
  INFO(st.dump());
  CHECK(st["online"] == false);
  // No redemption: nothing this terminal does reaches HQ any more.
  auto r = d->post("/v1/redeem", {{"member_id", "M-A"}, {"reward", "voucher-10"}}, "r-revoked");
  INFO(r.body.dump());
  CHECK(r.status == 409);
  CHECK(r.type() == "terminal-refused-by-hq");
  // The sale goes ahead, kept here.
  CHECK(sold(sell(*d, latte_sale("M-A", 1), "s-revoked")));
  auto out = run_ctl("status --url 127.0.0.1:" + std::to_string(d->port()) + " --token-file " +
                     (d->dir() / "token").string());
  CHECK(out.out.find("HQ REFUSES") != std::string::npos);
}

TEST_CASE("a voucher revoked at HQ is refused at the till once the store has the feed",
          "[slow][sync][e2e]") {
  SyncWorld w("revoke");
  write_file(w.dir / "import.csv",
             "member_id,phone,card_number,name,birthday,tier,points,points_expire_on\n"
             "M-B,13900000002,,Lin Bo,,,300,2099-12-31\n");
  REQUIRE(w.hq.cli("import-members " + (w.dir / "import.csv").string()).code == 0);
  write_file(w.dir / "list.txt", "M-B\n");
  const auto issued = hq_json(w.hq.cli("issue-vouchers bakery-9 " + (w.dir / "list.txt").string()));
  REQUIRE(issued["issued"] == 1);
  auto d = w.terminal("S001");
  REQUIRE(d->start());
  w.hq.start(w.port);
  const Json by_qr{{"code", "LM1:M-B"}};
  const auto vouchers = [&] {
    const auto r = d->post("/v1/members/scan", by_qr);
    return r.status == 200 ? r.body.value("vouchers", Json::array()) : Json::array();
  };
  REQUIRE(eventually([&] { return vouchers().size() == 1; }, 30));
  const auto code = vouchers()[0]["code"].get<std::string>();
  Json bakery{{"member_id", "M-B"},
              {"basket",
               {{"currency", "CNY"},
                {"lines", Json::array({{{"sku", "croissant"},
                                        {"categories", {"bakery"}},
                                        {"quantity", 1},
                                        {"unit_price", 1200}}})},
                {"vouchers", Json::array({code})}}}};
  CHECK(d->post("/v1/quote", bakery).status == 200);  // held: the till takes it

  // Refused without a reason, nothing written.
  const auto audited = w.count("audit");
  CHECK(w.hq.cli("revoke-voucher M-B " + code).code != 0);
  CHECK(w.count("audit") == audited);
  const auto revoked = hq_json(
      w.hq.cli("revoke-voucher M-B " + code + " --reason 'campaign sent to the wrong list'"));
  CHECK(revoked["revoked"] == true);
  CHECK(w.count("revoked_vouchers") == 1);
  CHECK(w.count("audit") == audited + 1);
  // The store drops it with the member's next change; the till refuses it.
  REQUIRE(eventually([&] { return vouchers().empty(); }, 30));
  const auto refused = d->post("/v1/quote", bakery);
  CHECK(refused.status == 404);
  CHECK(refused.body["detail"].get<std::string>().find("revoked") != std::string::npos);
  // A second revocation finds nothing to take back.
  CHECK(
      w.hq.cli("revoke-voucher M-B " + code + " --reason 'campaign sent to the wrong list'").code !=
      0);
}

TEST_CASE("a large redemption asks HQ first and falls back to the offline allowance without it",
          "[slow][sync][e2e]") {
  SyncWorld w("live", "sqlite", 600);
  // HQ has her (a check for a member HQ has not heard of goes unanswered).
  const std::string card15 = "900000000000001";
  write_file(w.dir / "import.csv",
             "member_id,phone,card_number,name,birthday,tier,points,points_expire_on\n"
             "M-A,13900000001," +
                 card15 + core::luhn_check_digit(card15) + ",,,,600,2099-12-31\n");
  REQUIRE(w.hq.cli("import-members " + (w.dir / "import.csv").string()).code == 0);
  auto a = w.terminal("S001");
  // S002 checks redemptions of 200 points or more with HQ and, selling
  // nothing, syncs only every ten minutes: its copy of the member goes stale.
  TcpProxy link(w.port);  // S002's network to HQ
  auto b = w.terminal("S002", link.port(),
                      {"--hq.live_check_points", "200", "--hq.live_check_timeout_ms", "1500",
                       "--hq.sync_interval_ms", "600000"});
  w.hq.start(w.port);
  for (auto* d : {a.get(), b.get()}) {
    REQUIRE(d->start());
    REQUIRE(eventually([&] { return d->get("/v1/status").body["online"] == true; }));
  }
  const auto redeem = [](Daemon& d, const std::string& key) {
    return d.post("/v1/redeem", {{"member_id", "M-A"}, {"reward", "voucher-10"}}, key);
  };
  // HQ has 600 points for her: confirmed.
  auto first = redeem(*b, "b-1");
  INFO(first.body.dump());
  REQUIRE(first.status == 201);
  CHECK(first.body["live_check"]["status"] == "confirmed");
  CHECK(b->metric("loyaltyd_live_checks_confirmed_total") == 1);
  // Its commit started a round: S002 uploads it and reads the feed once.
  REQUIRE(eventually([&] { return b->get("/v1/status").body["outbox"]["depth"] == 0; }));
  REQUIRE(
      eventually([&] { return b->get("/v1/members/M-A").body["points"]["pending_sync"] == 0; }));
  CHECK(b->get("/v1/members/M-A").body["points"]["available"] == 400);
  // S001 spends the other 400 and uploads them; S002 has not heard.
  for (const char* key : {"a-1", "a-2"}) REQUIRE(redeem(*a, key).status == 201);
  REQUIRE(eventually([&] { return a->get("/v1/status").body["outbox"]["depth"] == 0; }));
  CHECK(b->get("/v1/members/M-A").body["points"]["available"] == 400);
  // S002 would allow it from its copy; HQ says none are left: refused,
  // nothing written.
  const auto txns = w.count("transactions");
  auto spent = redeem(*b, "b-2");
  INFO(spent.body.dump());
  CHECK(spent.status == 409);
  CHECK(spent.body["type"].get<std::string>().ends_with("points-spent-elsewhere"));
  CHECK(spent.body["max_points_now"] == 0);
  CHECK(spent.body["field"] == "reward");
  CHECK(b->get("/v1/status").body["outbox"]["depth"] == 0);
  CHECK(b->metric("loyaltyd_live_checks_refused_total") == 1);
  // A sale without redeeming goes on as usual (no check).
  REQUIRE(sold(sell(*b, latte_sale("M-A", 1), "b-sale")));
  REQUIRE(eventually([&] { return w.count("transactions") == txns + 1; }));
  // Customer service grants 2,000 points; S002 is told to sync now.
  REQUIRE(w.hq.cli("adjust M-A 2000 --reason 'goodwill after a complaint'").code == 0);
  REQUIRE(b->post("/v1/sync", Json::object()).status == 202);
  REQUIRE(eventually(
      [&] { return b->get("/v1/members/M-A").body["points"]["available"].get<int>() >= 2000; }));
  // S002's network swallows everything: the check goes unanswered within
  // its deadline (1.5 s) and the offline allowance decides (1,000 points a
  // member a day here).
  link.hang(true);
  const auto t0 = std::chrono::steady_clock::now();
  auto blind = redeem(*b, "b-3");
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO(blind.body.dump());
  REQUIRE(blind.status == 201);
  CHECK(blind.body["live_check"]["status"] == "unanswered");
  CHECK(took >= std::chrono::milliseconds(400));
  CHECK(took < std::chrono::seconds(4));
  CHECK(b->metric("loyaltyd_live_checks_unanswered_total") == 1);
  // Unconfirmed, it counts against the offline allowance: 1,000 a day
  // less the 200 just redeemed leaves room for four more, not five.
  for (int i = 0; i < 4; ++i) REQUIRE(redeem(*b, "b-more-" + std::to_string(i)).status == 201);
  auto over = redeem(*b, "b-over");
  INFO(over.body.dump());
  CHECK(over.status == 409);
  CHECK(over.body["type"].get<std::string>().ends_with("offline-allowance-exceeded"));
  CHECK(over.body["field"] == "reward");
  // Back online, everything S002 sold reaches HQ, which stays consistent.
  link.hang(false);
  REQUIRE(b->post("/v1/sync", Json::object()).status == 202);
  REQUIRE(eventually([&] { return b->get("/v1/status").body["outbox"]["depth"] == 0; }, 60));
  w.hq.stop();
  CHECK(w.hq.cli("verify").code == 0);
}

TEST_CASE("with the visited member feed a store fetches a member on first sight and follows them",
          "[slow][sync][e2e]") {
  SyncWorld w("visited");
  // M-B joined through HQ (imported); no store has served her yet.
  write_file(w.dir / "import.csv",
             "member_id,phone,card_number,name,birthday,tier,points,points_expire_on\n"
             "M-B,13900000002,,Lin Bo,,,300,2099-12-31\n");
  REQUIRE(w.hq.cli("import-members " + (w.dir / "import.csv").string()).code == 0);
  w.hq.set_serve_args({"--member-feed", "visited"});
  w.hq.start(w.port);
  auto a = w.terminal("S001");
  auto b = w.terminal("S002");
  for (auto* d : {a.get(), b.get()}) {
    REQUIRE(d->start());
    REQUIRE(eventually([&] { return d->get("/v1/status").body["online"] == true; }));
  }
  // Not sent to any store: S001 has never heard of her...
  CHECK(a->get("/v1/members/M-B").status == 404);
  // ...until she gives her phone number at the till: S001 asks HQ.
  auto scanned = a->post("/v1/members/scan", {{"phone", "13900000002"}});
  INFO(scanned.body.dump());
  REQUIRE(scanned.status == 200);
  CHECK(scanned.body["member_id"] == "M-B");
  CHECK(scanned.body["points"]["available"] == 300);
  auto sale = sell(*a, latte_sale("M-B", 2), "a-sale");
  REQUIRE(sold(sale));
  const auto receipt = sale.body["receipt_id"].get<std::string>();
  const auto earned = sale.body["outcome"]["totals"]["points_earned"].get<int>();
  REQUIRE(eventually([&] { return a->get("/v1/status").body["outbox"]["depth"] == 0; }));
  // S002 syncs and still holds nobody but its own: her sale went to S001.
  REQUIRE(round_done(*b));
  CHECK(b->get("/v1/members/M-B").status == 404);
  // She comes to S002 with her static QR: fetched with her balance and
  // her receipts, so S002 can take a return of what she bought at S001.
  auto at_b = b->post("/v1/members/scan", {{"code", "LM1:M-B"}});
  INFO(at_b.body.dump());
  REQUIRE(at_b.status == 200);
  CHECK(at_b.body["points"]["available"] == 300 + earned);
  auto ret =
      b->post("/v1/returns", {{"receipt_id", receipt}, {"lines", {{{"line", 0}, {"quantity", 1}}}}},
              "b-return");
  INFO(ret.body.dump());
  CHECK(ret.status == 201);
  // From now on her changes reach S002 as well: a block at HQ, at both.
  REQUIRE(w.hq.cli("block M-B --reason 'account under review'").code == 0);
  for (auto* d : {a.get(), b.get()})
    REQUIRE(eventually([&] { return d->get("/v1/members/M-B").body["blocked"] == true; }, 30));
  CHECK(sell(*b, latte_sale("M-B", 1), "b-blocked").status == 403);
  // Someone HQ does not have either: a clear 404.
  auto nobody = b->post("/v1/members/scan", {{"phone", "13900000009"}});
  CHECK(nobody.status == 404);
  CHECK(nobody.body["detail"].get<std::string>().find("HQ has no member with it either") !=
        std::string::npos);
  w.hq.stop();
  CHECK(w.hq.cli("verify").code == 0);
}

TEST_CASE("a terminal restored from an older backup numbers after HQ and loses no sale",
          "[slow][sync][e2e]") {
  BackedUpTill till("restore");
  auto& w = till.w;
  auto& d = till.d;
  std::int64_t earned = 0;
  const auto sale_of = [&](int qty, const std::string& key) {
    auto r = sell(*d, latte_sale("M-A", qty), key);
    REQUIRE(sold(r));
    earned += r.body["outcome"]["totals"]["points_earned"].get<std::int64_t>();
    return r.body["receipt_id"].get<std::string>();
  };
  for (int i = 1; i <= 3; ++i) sale_of(1, "before-backup-" + std::to_string(i));
  REQUIRE(synced(*d));

  // A backup taken with the daemon stopped, then two more sales HQ gets.
  till.back_up();
  sale_of(1, "lost-timeline-4");
  CHECK(sale_of(1, "lost-timeline-5") == "S001-T01-00000005");
  REQUIRE(synced(*d));

  // The terminal is restored from that backup while HQ is out of reach, and
  // sells: its next receipt is the fourth's again.
  till.restore_with_hq_down();
  auto collided = sell(*d, latte_sale("M-A", 2), "after-restore-1");
  REQUIRE(sold(collided));
  CHECK(collided.body["receipt_id"] == "S001-T01-00000004");

  // Back in touch: HQ refuses that sale as a conflict rather than take it
  // for a resend of its own fourth, and the terminal numbers after HQ's.
  w.hq.start(w.port);
  Json st;
  const bool refused = eventually([&] {
    st = d->get("/v1/status").body;
    return st["online"] == true && st["hq_refused"].size() == 1;
  });
  INFO(st.dump());
  INFO(d->log());
  REQUIRE(refused);
  CHECK(refused_ids(st) == std::vector<std::string>{"S001-T01-00000004"});
  CHECK(st["numbering_caught_up"].is_object());
  // Kept in the database, no longer pending: the member's view here is
  // HQ's again, without the refused sale's points.
  CHECK(st["outbox"]["depth"] == 0);
  CHECK(d->get("/v1/transactions/S001-T01-00000004").status == 200);
  // It cannot be taken back here: HQ would apply that to its own fourth.
  const auto back = d->post(
      "/v1/returns",
      Json{{"receipt_id", "S001-T01-00000004"}, {"lines", {{{"line", 0}, {"quantity", 1}}}}},
      "return-refused");
  CHECK(back.status == 409);
  CHECK(back.type() == "sale-refused-by-hq");
  CHECK(d->post("/v1/transactions/S001-T01-00000004/void", Json::object(), "void-refused").status ==
        409);
  REQUIRE(eventually([&] {
    const auto m = d->get("/v1/members/M-A").body["points"];
    return m["pending_sync"] == 0 && m["available"] == 1000 + earned;
  }));
  CHECK(sale_of(1, "after-restore-2") == "S001-T01-00000006");
  REQUIRE(eventually([&] {
    st = d->get("/v1/status").body;
    return st["outbox"]["depth"] == 0 && st["hq_refused"].size() == 1;
  }));
  auto out = run_ctl("status --url 127.0.0.1:" + std::to_string(d->port()) + " --token-file " +
                     (d->dir() / "token").string());
  CHECK(out.out.find("REFUSED     S001-T01-00000004") != std::string::npos);

  // HQ has each of the six sales it was given once, and its own fourth
  // stands; nothing was applied twice. The till agrees.
  REQUIRE(eventually(
      [&] { return d->get("/v1/members/M-A").body["points"]["available"] == 1000 + earned; }));
  w.hq.stop();
  CHECK(w.count("transactions") == 6);
  const auto member = hq_json(w.hq.cli("member M-A"));
  CHECK(member["balance"] == 1000 + earned);
  CHECK(w.hq.cli("verify").code == 0);
}

TEST_CASE("a restored terminal's return of a sale HQ refused is refused too and kept for settling",
          "[slow][sync][e2e]") {
  BackedUpTill till("restore-return");
  auto& w = till.w;
  auto& d = till.d;
  REQUIRE(sold(sell(*d, sale(1), "before-backup")));
  REQUIRE(synced(*d));
  till.back_up();
  // HQ gets a second sale; then the till goes back to the backup while HQ
  // is out of reach, sells under that second id, and takes a coffee of it
  // back before it hears from HQ, under an id HQ has never seen.
  auto hq_sale = sell(*d, sale(1), "lost-timeline-2");
  REQUIRE(sold(hq_sale));
  REQUIRE(synced(*d));
  till.restore_with_hq_down();
  auto collided = sell(*d, sale(2), "after-restore");
  REQUIRE(sold(collided));
  CHECK(collided.body["receipt_id"] == "S001-T01-00000002");
  const auto back = d->post(
      "/v1/returns",
      Json{{"receipt_id", "S001-T01-00000002"}, {"lines", {{{"line", 0}, {"quantity", 1}}}}},
      "return-before-contact");
  INFO(back.body.dump());
  REQUIRE(back.status == 201);
  CHECK(back.body["receipt_id"] == "S001-T01-00000003");

  // Back in touch: both refused (HQ would otherwise take the return from
  // its own second sale), both kept at the till, the outbox empty.
  w.hq.start(w.port);
  Json st;
  REQUIRE(eventually([&] {
    st = d->get("/v1/status").body;
    return st["online"] == true && st["outbox"]["depth"] == 0;
  }));
  INFO(st.dump());
  CHECK(refused_ids(st) == std::vector<std::string>{"S001-T01-00000002", "S001-T01-00000003"});
  // The member's view there is HQ's: both HQ sales, nothing taken back.
  const auto earned = [](const HttpResult& r) {
    return r.body["outcome"]["totals"]["points_earned"].get<std::int64_t>();
  };
  const auto first = 1000 + 2 * earned(hq_sale);
  REQUIRE(eventually([&] {
    const auto p = d->get("/v1/members/M-A").body["points"];
    return p["pending_sync"] == 0 && p["available"] == first;
  }));
  w.hq.stop();
  CHECK(w.count("transactions") == 2);
  CHECK(hq_json(w.hq.cli("member M-A"))["balance"] == first);
  // HQ keeps both records, each flagged for whoever settles it, with the
  // points it would have moved for the member.
  const auto flags = hq_json(w.hq.cli("flags --open"));
  std::map<std::string, std::string> refused;
  std::vector<std::int64_t> ids;
  for (const auto& f : flags["flags"]) {
    if (f["kind"] != "refused") continue;
    refused[f["txn_id"]] = f["detail"];
    ids.push_back(f["id"]);
  }
  REQUIRE(refused.size() == 2);
  CHECK(refused["S001-T01-00000002"].find("+" + std::to_string(earned(collided)) + " points") !=
        std::string::npos);
  CHECK(refused["S001-T01-00000003"].find("takes back S001-T01-00000002") != std::string::npos);
  CHECK(w.count("refused_txns") == 2);

  // Finance settles both: the member gets what the till gave them (the
  // second sale's points less the latte taken back), and the till follows.
  for (const auto id : ids)
    CHECK(w.hq.cli("resolve-flag " + std::to_string(id) +
                   " --reason 'restored till, settled with the member' --settle")
              .code == 0);
  const auto settled =
      first + earned(collided) - back.body["outcome"]["points_reversed"].get<std::int64_t>();
  CHECK(hq_json(w.hq.cli("member M-A"))["balance"] == settled);
  CHECK(hq_json(w.hq.cli("flags --open"))["flags"].empty());
  CHECK(w.hq.cli("verify").code == 0);
  w.hq.start(w.port);
  CHECK(eventually([&] {
    const auto p = d->get("/v1/members/M-A").body["points"];
    return p["available"] == settled && d->get("/v1/members/M-A").body["hq_flags"].empty();
  }));
  // HQ's receipt of its own second sale, pulled with the feed, is not
  // taken for the till's: the till's record of what it sold and took
  // back under that id stays as it was.
  const auto till_sale = [&](const std::string& path) {
    return sql_int(d->db(), "SELECT json_extract(return_basis, '$." + path +
                                "') FROM transactions WHERE txn_id = 'S001-T01-00000002'");
  };
  CHECK(till_sale("lines[0].quantity") == 2);
  CHECK(till_sale("returned_qty[0]") == 1);
}

TEST_CASE("a pass sold at one store is used and deferred at another, and HQ holds it once",
          "[slow][sync][e2e]") {
  SyncWorld w("pass");
  auto [a, b] = two_stores(w);
  const auto passes = [](Daemon& d) { return d.get("/v1/members/M-A").body["passes"]; };
  // The latte pass's SKU at its 129.00 price gives M-A a month of lattes.
  const Json buy{{"member_id", "M-A"},
                 {"basket",
                  {{"currency", "CNY"},
                   {"lines", Json::array({{{"sku", "pass-latte-basic"},
                                           {"name", "Latte art basic pass"},
                                           {"quantity", 1},
                                           {"unit_price", 12900}}})}}}};
  auto sale = sell(*a, buy, "pass-sale");
  INFO(sale.body.dump());
  REQUIRE(sold(sale));
  REQUIRE(sale.body["outcome"]["passes_sold"].size() == 1);
  const auto from = sale.body["outcome"]["passes_sold"][0]["valid_from"].get<std::string>();
  const auto to = sale.body["outcome"]["passes_sold"][0]["valid_to"].get<std::string>();
  REQUIRE(passes(*a).size() == 1);
  // A wrong price is refused with the field named, and nothing is sold.
  auto cheap = buy;
  cheap["basket"]["lines"][0]["unit_price"] = 9900;
  auto refused = a->post("/v1/transactions", cheap, "pass-cheap");
  CHECK(refused.status == 422);
  CHECK(refused.body.dump().find("unit_price") != std::string::npos);
  // The other store has the pass with HQ's feed, and a small latte there
  // is paid by it.
  REQUIRE(synced(*a));
  REQUIRE(eventually([&] { return passes(*b).size() == 1; }, 30));
  const Json cup{{"member_id", "M-A"},
                 {"basket",
                  {{"currency", "CNY"},
                   {"lines", Json::array({{{"sku", "latte-s"},
                                           {"categories", {"coffee"}},
                                           {"tags", {"basic-drink"}},
                                           {"quantity", 1},
                                           {"unit_price", 2400}}})},
                   {"passes", Json::array({{{"pass", "latte-basic"}, {"line", 0}}})}}}};
  auto used = sell(*b, cup, "pass-cup");
  REQUIRE(sold(used));
  CHECK(used.body["outcome"]["totals"]["amount_due"] == 0);
  // A deferral of 3 days at that store, starting today: the pass pauses
  // and ends 3 days later; a second one this month is refused.
  auto deferred =
      b->post("/v1/transactions",
              {{"member_id", "M-A"}, {"event", "defer_pass"}, {"pass", "latte-basic"}, {"days", 3}},
              "pass-defer");
  INFO(deferred.body.dump());
  REQUIRE(deferred.status == 201);
  auto again =
      b->post("/v1/transactions",
              {{"member_id", "M-A"}, {"event", "defer_pass"}, {"pass", "latte-basic"}, {"days", 1}},
              "pass-defer-2");
  CHECK(again.status == 409);
  const auto end_of = [](const Json& ps) {
    std::string last;
    for (const auto& p : ps) last = std::max(last, p["valid_to"].get<std::string>());
    return last;
  };
  const auto moved = end_of(passes(*b));
  CHECK(moved > to);
  // HQ books both stores' facts once, and the first store hears of the
  // deferral.
  REQUIRE(synced(*b));
  REQUIRE(eventually([&] { return end_of(passes(*a)) == moved; }, 30));
  w.hq.stop();
  const auto hq_member = hq_json(w.hq.cli("member M-A"));
  INFO(hq_member.dump());
  CHECK(end_of(hq_member["member"]["passes"]) == moved);
  CHECK(hq_member["member"]["passes"].size() == 1);  // bought today: moved whole
  CHECK(hq_member["member"]["passes"][0]["valid_from"].get<std::string>() > from);
  CHECK(hq_json(w.hq.cli("flags"))["flags"].empty());  // the replays agreed
  CHECK(w.hq.cli("verify").code == 0);
}
