// The real loyalty-hq process over real HTTPS with mutual TLS: certificates
// from `loyalty-hq init` and `terminals add`, a batch in, a resend, refused
// identities, hostile bodies, the admin API, and `verify` at the end.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <limits>
#include <thread>
#include <tuple>

#include "platform/http_client.h"
#include "platform/tls.h"
#include "sync/feed.h"
#include "tests/hq/hq_fixture.h"
#include "tests/hq/hq_process.h"
#include "tests/terminal/daemon_fixture.h"

using namespace loyalty;
using namespace loyalty::test;
using verb = platform::http::verb;

namespace {

platform::HttpClient terminal_client(const Json& bundle, int port) {
  auto tls = platform::client_tls(bundle["ca_pem"], bundle["cert_pem"], bundle["key_pem"]);
  REQUIRE(tls);
  return platform::HttpClient("127.0.0.1", static_cast<std::uint16_t>(port), *tls,
                              bundle["server_name"]);
}

// M1001's balance at HQ, as `loyalty-hq member` prints it.
std::int64_t m1001_balance(HqProcess& hq) {
  const auto m = hq.cli("member M1001");
  REQUIRE(m.code == 0);
  return Json::parse(m.out.substr(m.out.find('{')))["balance"].get<std::int64_t>();
}

}  // namespace

TEST_CASE("loyalty-hq takes batches over mutual TLS, exactly once, from registered terminals",
          "[hq][server]") {
  const auto backend = GENERATE(as<std::string>{}, "sqlite", "postgres");
  INFO("backend " << backend);
  const auto dir = scratch_dir("hq");
  HqProcess hq(dir, fresh_hq_target(backend, dir));
  REQUIRE(hq.cli("init").code == 0);
  REQUIRE(
      hq.cli("publish " + hq_source("examples/programs/coffee-chain.json") + " --effective-from 0")
          .code == 0);
  auto added = hq.cli("terminals add S001 T01 --out " + (dir / "s001.json").string());
  INFO(added.out);
  REQUIRE(added.code == 0);
  REQUIRE(hq.cli("terminals add S002 T01 --out " + (dir / "s002.json").string()).code == 0);
  const auto bundle = Json::parse(read_all((dir / "s001.json").string()));
  const auto bundle2 = Json::parse(read_all((dir / "s002.json").string()));
  hq.start();

  const auto program = coffee_program();
  FakeTerminal a("S001", "T01", program);
  a.dated_from(std::time(nullptr));  // HQ checks record times against its clock
  a.know(demo_member_state());
  std::vector<sync::TxnRecord> sales;
  for (int i = 0; i < 3; ++i)
    sales.push_back(a.sell("M1001", Json::parse(R"({"currency": "CNY", "lines": [
      {"sku": "latte-m", "categories": ["coffee"], "quantity": 1, "unit_price": 2800}]})")));
  const auto body = sync::batch_to_json(a.batch(sales)).dump();

  auto client = terminal_client(bundle, hq.sync_port);
  auto r = client.request(verb::post, "/v1/sync/batches", body);
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 200);
  CHECK(Json::parse(r->body)["next_seq"] == 4);
  auto again = client.request(verb::post, "/v1/sync/batches", body);
  REQUIRE(again);
  CHECK(Json::parse(again->body)["results"][0]["status"] == "duplicate");

  // Another store's certificate cannot write S001's transactions.
  auto other = terminal_client(bundle2, hq.sync_port);
  auto forged = other.request(verb::post, "/v1/sync/batches", body);
  REQUIRE(forged);
  CHECK(forged->status == 403);
  // No client certificate, or one from another CA: no TLS session at all.
  auto anon_tls = platform::client_tls(bundle["ca_pem"]);
  platform::HttpClient anon("127.0.0.1", static_cast<std::uint16_t>(hq.sync_port), *anon_tls,
                            "localhost", std::chrono::seconds(3));
  CHECK_FALSE(anon.request(verb::get, "/v1/sync/changes"));
  const auto rogue_ca = platform::make_ca("rogue", 30);
  REQUIRE(rogue_ca);
  auto rogue = platform::issue_cert(*rogue_ca, "S001/T01", false, {}, {}, 30);
  auto rogue_tls = platform::client_tls(bundle["ca_pem"], rogue->cert_pem, rogue->key_pem);
  platform::HttpClient impostor("127.0.0.1", static_cast<std::uint16_t>(hq.sync_port), *rogue_tls,
                                "localhost", std::chrono::seconds(3));
  CHECK_FALSE(impostor.request(verb::get, "/v1/sync/changes"));
  // The terminal checks HQ's name, too.
  auto wrong_name = platform::HttpClient(
      "127.0.0.1", static_cast<std::uint16_t>(hq.sync_port),
      *platform::client_tls(bundle["ca_pem"], bundle["cert_pem"], bundle["key_pem"]),
      "hq.example.com", std::chrono::seconds(3));
  CHECK_FALSE(wrong_name.request(verb::get, "/v1/sync/changes"));

  // Hostile bodies: refused with a reason, nothing written.
  auto junk = client.request(verb::post, "/v1/sync/batches", "{\"store_id\": ");
  CHECK(junk->status == 400);
  auto bad = client.request(verb::post, "/v1/sync/batches",
                            R"({"store_id": "S001", "terminal_id": "T01", "sent_at": 1,
                                "transactions": [{"txn_id": "S001-T01-9", "seq": -4}]})");
  CHECK(bad->status == 422);
  CHECK(Json::parse(bad->body)["problems"].size() > 3);
  auto wrong_totals = sync::batch_to_json(a.batch({sales[0]}));
  wrong_totals["transactions"][0]["totals"] = "lots";
  auto bad_totals = client.request(verb::post, "/v1/sync/batches", wrong_totals.dump());
  CHECK(bad_totals->status == 422);
  CHECK(Json::parse(bad_totals->body)["field"] == "transactions[0].totals");
  auto huge = client.request(verb::post, "/v1/sync/batches", std::string(17 << 20, ' '));
  CHECK((!huge || huge->status == 413));

  // The change feed carries HQ's balance back.
  auto feed = terminal_client(bundle, hq.sync_port)
                  .request(verb::get, "/v1/sync/changes?after=0&limit=100");
  REQUIRE(feed);
  // The program, three receipts, and the member's state once for the batch.
  CHECK(Json::parse(feed->body)["changes"].size() == 1 + 3 + 1);

  // A live check: the member's state now and the last sequence HQ applied
  // from the asking terminal; bad bodies and unknown members refused.
  auto live = client.request(verb::post, "/v1/sync/live-checks", R"({"member_id": "M1001"})");
  REQUIRE(live);
  INFO(live->body);
  REQUIRE(live->status == 200);
  const auto checked = sync::parse_live_check(live->body, "M1001");
  REQUIRE(checked);
  CHECK(checked->applied_seq == 3);
  CHECK_FALSE(checked->blocked);
  CHECK(other.request(verb::post, "/v1/sync/live-checks", R"({"member_id": "M1001"})")->status ==
        200);
  CHECK(Json::parse(other.request(verb::post, "/v1/sync/live-checks",
                                  R"({"member_id": "M1001"})")
                        ->body)["applied_seq"] == 0);  // nothing from S002 yet
  CHECK(client.request(verb::post, "/v1/sync/live-checks", R"({"member_id": "M404"})")->status ==
        404);
  CHECK(client.request(verb::post, "/v1/sync/live-checks", "{\"member_id\": ")->status == 400);
  CHECK(client.request(verb::post, "/v1/sync/live-checks", R"({"member": 7})")->status == 422);
  CHECK(client.request(verb::post, "/v1/sync/live-checks", R"([1, 2])")->status == 422);

  // Admin API: its own token; terminal credentials are not enough.
  platform::HttpClient admin("127.0.0.1", static_cast<std::uint16_t>(hq.admin_port));
  CHECK(admin.request(verb::get, "/v1/admin/verify")->status == 401);
  std::string token = read_all((dir / "admin-token").string());
  token.pop_back();
  auto v = admin.request(verb::get, "/v1/admin/verify", "", {{"Authorization", "Bearer " + token}});
  CHECK(Json::parse(v->body)["ok"] == true);
  // A delivery posted twice with its note's number is allocated once.
  Json delivery{{"store_id", "S001"},
                {"terminal_id", "T01"},
                {"reward_id", "voucher-10"},
                {"quantity", 3},
                {"delivery_id", "DN-1"}};
  const auto post_stock = [&](const Json& b) {
    return admin.request(verb::post, "/v1/admin/stock", b.dump(),
                         {{"Authorization", "Bearer " + token}});
  };
  CHECK(post_stock(delivery)->status == 200);
  auto twice = post_stock(delivery);
  CHECK(twice->status == 200);
  CHECK(Json::parse(twice->body)["duplicate"] == true);
  delivery["quantity"] = 4;
  CHECK(post_stock(delivery)->status == 409);
  delivery["delivery_id"] = 7;
  auto not_text = post_stock(delivery);
  CHECK(not_text->status == 422);
  CHECK(Json::parse(not_text->body)["field"] == "delivery_id");
  // Resolving a flag: `settle` is true or false, and the flag must exist.
  const auto resolve = [&](const std::string& id, const Json& b) {
    return admin.request(verb::post, "/v1/admin/flags/" + id + "/resolve", b.dump(),
                         {{"Authorization", "Bearer " + token}});
  };
  auto vague = resolve("1", {{"reason", "looked into it"}, {"settle", "yes"}});
  CHECK(vague->status == 422);
  CHECK(Json::parse(vague->body)["field"] == "settle");
  CHECK(resolve("99999", {{"reason", "looked into it"}, {"settle", true}})->status == 404);

  // A revoked terminal is refused from its next request on.
  REQUIRE(hq.cli("terminals revoke S001 T01").code == 0);
  auto after = terminal_client(bundle, hq.sync_port).request(verb::get, "/v1/sync/changes");
  REQUIRE(after);
  CHECK(after->status == 403);
  hq.stop();
  auto verify = hq.cli("verify");
  INFO(verify.out);
  CHECK(verify.code == 0);
  CHECK(verify.out.find("\"ok\": true") != std::string::npos);
}

TEST_CASE("loyalty-hq's command line and admin API refuse bad numbers, types and options",
          "[hq][server]") {
  const auto dir = scratch_dir("hq-bad-input");
  HqProcess hq(dir, fresh_hq_target("sqlite", dir));
  REQUIRE(hq.cli("init").code == 0);
  const auto program = hq_source("examples/programs/coffee-chain.json");
  REQUIRE(hq.cli("publish " + program + " --effective-from 0").code == 0);
  REQUIRE(hq.cli("import-members " + hq_source("examples/members/demo-members.csv")).code == 0);
  const auto balance = [&] { return m1001_balance(hq); };
  const auto before = balance();
  // Numbers are whole numbers, all of the text; an option nobody knows is
  // refused, never ignored, nor allowed to swallow the next argument.
  for (const auto* args :
       {"adjust M1001 1.5 --reason 'typo check'", "adjust M1001 10abc --reason 'typo check'",
        "adjust M1001 5 --reason 'typo check' --dry-run",
        "report sales 2026-11-01 2026-11-30 --cvs", "publish PROGRAM --effective-from 1.5e9"}) {
    std::string line = args;
    if (const auto at = line.find("PROGRAM"); at != std::string::npos) line.replace(at, 7, program);
    const auto r = hq.cli(line);
    INFO(line << " -> " << r.out);
    CHECK(r.code == 2);
  }
  CHECK(hq.cli("adjust M1001 5 --reason 'typo check' --dry-run")
            .out.find("unknown option --dry-run") != std::string::npos);
  auto huge = hq.cli("adjust M1001 9223372036854775807 --reason 'goodwill gone wrong'");
  CHECK(huge.code == 3);
  CHECK(huge.out.find("points") != std::string::npos);
  CHECK(balance() == before);  // nothing booked
  // A bundle that cannot be written registers nothing; one that exists is
  // never overwritten; HQ's address must be usable.
  CHECK(hq.cli("terminals add S010 T01 --out /nonexistent/dir/s010.json").code == 4);
  CHECK(hq.cli("terminals list").out.find("S010") == std::string::npos);
  REQUIRE(hq.cli("terminals add S010 T01 --out " + (dir / "s010.json").string()).code == 0);
  const auto bundle = read_all((dir / "s010.json").string());
  CHECK(hq.cli("terminals add S011 T01 --out " + (dir / "s010.json").string()).code == 4);
  CHECK(read_all((dir / "s010.json").string()) == bundle);
  CHECK(hq.cli("terminals list").out.find("S011") == std::string::npos);
  for (const auto* url : {"https://127.0.0.1:99999", "http://127.0.0.1:8443", "https://hq"})
    CHECK(hq.cli(std::string("terminals add S012 T01 --out ") + (dir / "s012.json").string() +
                 " --url " + url)
              .code == 2);
  // A campaign list with an unknown id: the others get theirs, the exit
  // code says not everyone did.
  write_file(dir / "campaign.txt", "M1001\n  M1002  \nM-NOBODY\n");
  auto campaign = hq.cli("issue-vouchers bakery-9 " + (dir / "campaign.txt").string());
  INFO(campaign.out);
  CHECK(campaign.code == 3);
  const auto issued = Json::parse(campaign.out.substr(campaign.out.find('{')));
  CHECK(issued["issued"] == 2);
  CHECK(issued["codes"].contains("M1002"));
  CHECK(issued["unknown_members"] == Json::array({"M-NOBODY"}));

  // The admin API: a wrong type is a 422 naming the field, never a 500.
  hq.start();
  platform::HttpClient admin("127.0.0.1", static_cast<std::uint16_t>(hq.admin_port));
  std::string token = read_all((dir / "admin-token").string());
  token.pop_back();
  const auto post = [&](const std::string& path, const std::string& body) {
    auto r = admin.request(verb::post, path, body, {{"Authorization", "Bearer " + token}});
    REQUIRE(r);
    return *r;
  };
  const std::vector<std::tuple<std::string, Json, std::string>> mistyped = {
      {"/v1/admin/blocks",
       {{"member_id", "M1001"}, {"blocked", "no"}, {"reason", "mistake"}},
       "blocked"},
      {"/v1/admin/programs",
       {{"program", Json::parse(read_all(program))}, {"effective_from", "soon"}},
       "effective_from"},
      {"/v1/admin/adjustments",
       {{"member_id", "M1001"}, {"points", 10}, {"reason", Json::array()}},
       "reason"},
      {"/v1/admin/adjustments",
       {{"member_id", "M1001"},
        {"points", std::numeric_limits<std::int64_t>::max()},
        {"reason", "goodwill gone wrong"}},
       "points"}};
  for (const auto& [path, body, field] : mistyped) {
    const auto r = post(path, body.dump());
    INFO(path << " " << r.body);
    CHECK(r.status == 422);
    CHECK(Json::parse(r.body)["field"] == field);
  }
  CHECK(post("/v1/admin/blocks", "[1]").status == 400);
  auto no_to = admin.request(verb::get, "/v1/admin/reports/sales?from=2026-11-01", "",
                             {{"Authorization", "Bearer " + token}});
  CHECK(no_to->status == 422);
  CHECK(Json::parse(no_to->body)["field"] == "to");
  hq.stop();
  CHECK(balance() == before);
  CHECK(hq.cli("verify").code == 0);
}

TEST_CASE("an admin write retried with its Idempotency-Key is done once, even after a restart",
          "[hq][server][idempotency]") {
  const auto dir = scratch_dir("hq-idem");
  HqProcess hq(dir, fresh_hq_target("sqlite", dir));
  REQUIRE(hq.cli("init").code == 0);
  REQUIRE(
      hq.cli("publish " + hq_source("examples/programs/coffee-chain.json") + " --effective-from 0")
          .code == 0);
  REQUIRE(hq.cli("import-members " + hq_source("examples/members/demo-members.csv")).code == 0);
  const auto balance = [&] { return m1001_balance(hq); };
  const auto before = balance();
  std::string token = read_all((dir / "admin-token").string());
  token.pop_back();
  const Json goodwill{{"member_id", "M1001"}, {"points", 50}, {"reason", "late delivery"}};
  const auto adjust = [&](const Json& body, const std::string& key) {
    platform::HttpClient admin("127.0.0.1", static_cast<std::uint16_t>(hq.admin_port));
    std::map<std::string, std::string> h{{"Authorization", "Bearer " + token}};
    if (!key.empty()) h["Idempotency-Key"] = key;
    auto r = admin.request(verb::post, "/v1/admin/adjustments", body.dump(), h);
    REQUIRE(r);
    return *r;
  };
  hq.start();
  auto first = adjust(goodwill, "ticket-4711");
  INFO(first.body);
  REQUIRE(first.status == 200);
  CHECK_FALSE(first.headers.contains("idempotent-replayed"));
  // The operator's request timed out and they send it again: the same answer,
  // the same adjustment, nothing booked twice.
  auto again = adjust(goodwill, "ticket-4711");
  CHECK(again.status == 200);
  CHECK(again.body == first.body);
  CHECK(again.headers["idempotent-replayed"] == "true");
  // The key is kept for good, not for the life of the process.
  hq.stop();
  hq.start();
  auto after_restart = adjust(goodwill, "ticket-4711");
  CHECK(after_restart.body == first.body);
  CHECK(after_restart.headers["idempotent-replayed"] == "true");
  // Another request under that key is refused, and writes nothing.
  auto other = adjust(Json{{"member_id", "M1001"}, {"points", 500}, {"reason", "late delivery"}},
                      "ticket-4711");
  CHECK(other.status == 409);
  CHECK(Json::parse(other.body)["type"].get<std::string>().ends_with("/idempotency-conflict"));
  // A refused request is not remembered: fixed and resent, it is done.
  auto nobody = adjust(Json{{"member_id", "M-NOBODY"}, {"points", 5}, {"reason", "wrong member"}},
                       "ticket-4712");
  CHECK(nobody.status == 404);
  auto fixed = adjust(Json{{"member_id", "M1001"}, {"points", 5}, {"reason", "wrong member"}},
                      "ticket-4712");
  CHECK(fixed.status == 200);
  // Without a key each request is its own.
  CHECK(adjust(goodwill, "").status == 200);
  hq.stop();
  CHECK(balance() == before + 50 + 5 + 50);
  CHECK(hq.cli("verify").code == 0);
  // HQ's database and secrets are its user's alone, outside systemd too.
  int checked = 0;
  for (const auto& f : fs::directory_iterator(dir)) {
    const auto name = f.path().filename().string();
    if (!name.ends_with(".db") && name != "admin-token" && !name.ends_with(".key")) continue;
    INFO(name);
    ++checked;
    CHECK((fs::status(f.path()).permissions() & (fs::perms::group_all | fs::perms::others_all)) ==
          fs::perms::none);
  }
  CHECK(checked >= 5);  // the database, the token and three keys
}
