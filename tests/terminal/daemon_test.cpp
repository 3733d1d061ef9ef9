// loyaltyd end to end: the real binary on loopback, driven like a POS app.
#include <sqlite3.h>
#include <sys/stat.h>

#include "core/io_json.h"
#include "platform/crypto.h"
#include "terminal/member_codes.h"
#include "terminal/schema.h"
#include "terminal/store.h"
#include "tests/terminal/daemon_fixture.h"

using namespace loyalty;
using namespace loyalty::test;
using verb = platform::http::verb;

namespace {

void sql_exec(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  REQUIRE(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);
}

}  // namespace

TEST_CASE("a full checkout: enroll, scan, quote, commit, receipt, outbox", "[terminal][daemon]") {
  const auto dir = scratch_dir("checkout");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  CHECK(d.post("/v1/sync", Json::object()).type() == "standalone");  // no HQ to sync with

  auto enrolled =
      d.post("/v1/members", {{"phone", "13800138000"}, {"birthday", "1990-05-17"}}, "enroll-1");
  INFO(enrolled.body.dump());
  REQUIRE(enrolled.status == 201);
  const auto member = enrolled.body["member"]["member_id"].get<std::string>();
  const auto card_no = enrolled.body["member"]["card_number"].get<std::string>();
  // The coffee program's welcome gift is 50 points; a new member is at the
  // entry level.
  CHECK(enrolled.body["member"]["points"]["available"] == 50);
  CHECK(enrolled.body["member"]["tier"]["id"] == "bean");

  auto scanned = d.post("/v1/members/scan", {{"code", card_no}});
  REQUIRE(scanned.status == 200);
  CHECK(scanned.body["member_id"] == member);
  CHECK(scanned.body["phone"] == "138****8000");
  CHECK(d.post("/v1/members/scan", {{"phone", "13800138000"}}).body["member_id"] == member);

  auto quote = d.post("/v1/quote", basket(member));
  INFO(quote.body.dump());
  REQUIRE(quote.status == 200);
  // 2 x 28 + 12 = 68 yuan at 1 point per yuan.
  CHECK(quote.body["totals"]["points_earned"] == 68);
  CHECK(quote.body["totals"]["amount_due"] == 6800);
  CHECK(outbox_depth(d) == 1);  // a quote writes nothing

  auto sale = d.post("/v1/transactions", basket(member), "sale-1");
  INFO(sale.body.dump());
  REQUIRE(sale.status == 201);
  CHECK(sale.body["receipt_id"] == "S001-T01-00000002");
  CHECK(sale.body["member"]["points"]["available"] == 118);
  const auto receipt = sale.body["receipt"].dump();
  CHECK(receipt.find("Points earned: 68") != std::string::npos);
  CHECK(receipt.find("Points balance after: 118") != std::string::npos);
  CHECK(receipt.find("Next tier") != std::string::npos);
  CHECK(outbox_depth(d) == 2);

  auto stored = d.get("/v1/transactions/S001-T01-00000002");
  CHECK(stored.status == 200);
  CHECK(stored.body["receipt"] == sale.body["receipt"]);
  auto outbox = d.get("/v1/outbox");
  CHECK(outbox.body["items"].size() == 2);
  CHECK(outbox.body["items"][1]["points_earned"] == 68);
  // Every entry moves points between two accounts: the ledger sums to zero
  // and the member's lots equal what the entries credited.
  CHECK(sql_int(d.db(), "SELECT SUM(amount) FROM entries WHERE credit = 'member:" + member + "'") -
            sql_int(d.db(), "SELECT COALESCE(SUM(amount),0) FROM entries WHERE debit = 'member:" +
                                member + "'") ==
        118);
}

TEST_CASE("a repeated Idempotency-Key replays the original and another body is a 409",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("idem");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  auto first = d.post("/v1/transactions", basket("M-A"), "key-1");
  REQUIRE(first.status == 201);
  auto again = d.post("/v1/transactions", basket("M-A"), "key-1");
  CHECK(again.status == 200);
  CHECK(again.headers["idempotent-replayed"] == "true");
  CHECK(again.body["receipt_id"] == first.body["receipt_id"]);
  CHECK(again.body["receipt"] == first.body["receipt"]);
  auto other = d.post("/v1/transactions", basket("M-A", 3), "key-1");
  CHECK(other.status == 409);
  CHECK(other.type() == "idempotency-conflict");
  CHECK(other.body["field"] == "Idempotency-Key");
  CHECK(outbox_depth(d) == 1);
  CHECK(available(d, "M-A") == 5000 + 68);
}

TEST_CASE("a return reverses the points of the returned lines and a void cancels the sale",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("return");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  auto sale = d.post("/v1/transactions", basket("M-A"), "sale");
  REQUIRE(sale.status == 201);
  const auto receipt = sale.body["receipt_id"].get<std::string>();
  CHECK(available(d, "M-A") == 5068);

  auto ret =
      d.post("/v1/returns", {{"receipt_id", receipt}, {"lines", {{{"line", 0}, {"quantity", 1}}}}},
             "ret-1");
  INFO(ret.body.dump());
  REQUIRE(ret.status == 201);
  CHECK(ret.body["outcome"]["points_reversed"] == 28);
  CHECK(available(d, "M-A") == 5040);
  // Only one latte is left to return.
  auto too_many =
      d.post("/v1/returns", {{"receipt_id", receipt}, {"lines", {{{"line", 0}, {"quantity", 2}}}}},
             "ret-2");
  CHECK(too_many.status == 422);
  CHECK(too_many.body["field"] == "lines[0].quantity");
  // The receipt says what is left to take back (the counter page lists it).
  CHECK_FALSE(d.get("/v1/transactions/" + receipt).body.contains("staff_id"));
  const auto left = d.get("/v1/transactions/" + receipt).body["returnable"];
  REQUIRE(left.size() == 2);
  CHECK(left[0]["quantity"] == 2);
  CHECK(left[0]["returned"] == 1);
  CHECK(left[0]["left"] == 1);
  CHECK(left[1]["left"] == left[1]["quantity"]);
  // A partly returned sale cannot be voided; a fresh one can.
  CHECK(d.post("/v1/transactions/" + receipt + "/void", nullptr, "void-1").type() ==
        "void-not-allowed");
  auto sale2 = d.post("/v1/transactions", basket("M-A"), "sale-2");
  const auto receipt2 = sale2.body["receipt_id"].get<std::string>();
  CHECK(available(d, "M-A") == 5108);
  // The POS names the cashier who voids it; a name that is not an id is
  // refused and nothing is recorded.
  const auto void_by = [&](const std::string& cashier, const std::string& key) {
    return d.raw(platform::http::verb::post, "/v1/transactions/" + receipt2 + "/void", "",
                 {{"Authorization", "Bearer " + d.token()},
                  {"Idempotency-Key", key},
                  {"X-Cashier", cashier}});
  };
  auto bad_cashier = void_by("Li Wei", "void-2");
  CHECK(bad_cashier.status == 400);
  CHECK(bad_cashier.body["field"] == "X-Cashier");
  CHECK(available(d, "M-A") == 5108);
  auto v = void_by("C-0042", "void-2");
  INFO(v.body.dump());
  CHECK(v.status == 201);
  CHECK(available(d, "M-A") == 5040);
  CHECK(d.get("/v1/transactions/" + v.body["receipt_id"].get<std::string>()).body["staff_id"] ==
        "C-0042");
  CHECK(d.post("/v1/transactions/" + receipt2 + "/void", nullptr, "void-3").type() ==
        "already-voided");
  CHECK(d.post("/v1/returns",
               {{"receipt_id", "S001-T01-99999999"}, {"lines", {{{"line", 0}, {"quantity", 1}}}}},
               "ret-x")
            .type() == "receipt-not-found");
}

TEST_CASE("a void takes back the tier upgrade its sale reached", "[terminal][daemon]") {
  const auto dir = scratch_dir("void-tier");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  const auto goal = [&] {
    return d.get("/v1/members/M-A").body["next_tier"]["goals"][0]["current"].get<std::int64_t>();
  };
  REQUIRE(goal() == 0);
  // 50 croissants for a party: 600.00 at Bean's 1x is 600 points, Daily's
  // threshold, from tomorrow (the coffee program's next-day upgrades).
  const Json party{{"member_id", "M-A"},
                   {"basket",
                    {{"currency", "CNY"},
                     {"lines", Json::array({{{"sku", "croissant"},
                                             {"categories", {"bakery"}},
                                             {"quantity", 50},
                                             {"unit_price", 1200}}})}}}};
  auto sale = d.post("/v1/transactions", party, "big-sale");
  INFO(sale.body.dump());
  REQUIRE(sale.status == 201);
  REQUIRE(sale.body["outcome"]["tier_change"]["to"] == "daily");
  CHECK(goal() == 600);
  // Voided at the till: the order never counts, so neither does its tier.
  auto v = d.post("/v1/transactions/" + sale.body["receipt_id"].get<std::string>() + "/void",
                  nullptr, "big-void");
  INFO(v.body.dump());
  REQUIRE(v.status == 201);
  CHECK(v.body["outcome"]["tier_change"]["to"] == "bean");
  CHECK(goal() == 0);
  CHECK(v.body.dump().find("Tier back to Bean") != std::string::npos);  // on the receipt
}

TEST_CASE("standalone, the referrer's voucher the receipt promises is in the referrer's account",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("standalone-referral");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  const auto drinks = [&] {
    const auto member = d.get("/v1/members/M-A");
    int n = 0;
    for (const auto& v : member.body["vouchers"]) n += v["template"] == "drink-10";
    return n;
  };
  REQUIRE(drinks() == 0);
  auto friend_ = d.post("/v1/members", {{"phone", "13800138222"}, {"referred_by", "M-A"}}, "e-f");
  REQUIRE(friend_.status == 201);
  const auto id = friend_.body["member"]["member_id"].get<std::string>();
  // The friend's first order of 28.00: the receipt says M-A gets a drink
  // voucher, and with no HQ to deliver it, this till gives it at once.
  auto sale = d.post("/v1/transactions", basket(id, 1), "friend-first");
  INFO(sale.body.dump());
  REQUIRE(sale.status == 201);
  CHECK(sale.body.dump().find("Voucher for the referrer") != std::string::npos);
  CHECK(drinks() == 1);
  // A second order is not a first one: nothing more.
  REQUIRE(d.post("/v1/transactions", basket(id, 1), "friend-second").status == 201);
  CHECK(drinks() == 1);
}

TEST_CASE("stored value a sale spent goes back to stored value on a return or void, not in cash",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("return-sv");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  const auto stored = [&] {
    const auto sv = d.get("/v1/members/M-A").body["stored_value"];
    return std::pair{sv["base"].get<std::int64_t>(), sv["bonus"].get<std::int64_t>()};
  };
  REQUIRE(d.post("/v1/transactions", {{"member_id", "M-A"}, {"event", "top_up"}, {"amount", 10000}},
                 "top-up")
              .status == 201);
  const auto [base0, bonus0] = stored();
  REQUIRE(bonus0 == 500);  // the program's "top up 100, get 5"
  // 68.00 of coffee and bakery, 40.00 of it from stored value: the bonus
  // first, then base value; the rest in cash.
  auto paid = basket("M-A");
  paid["basket"]["stored_value"] = 4000;
  auto sale = d.post("/v1/transactions", paid, "sale");
  INFO(sale.body.dump());
  REQUIRE(sale.status == 201);
  const auto cash = sale.body["outcome"]["totals"]["amount_due"].get<std::int64_t>();
  CHECK(stored() == std::pair{base0 - 3500, std::int64_t{0}});
  const auto receipt = sale.body["receipt_id"].get<std::string>();

  // One latte back: its share of the stored value goes back there, the
  // rest of its price in cash; nothing is refunded twice over.
  auto ret =
      d.post("/v1/returns", {{"receipt_id", receipt}, {"lines", {{{"line", 0}, {"quantity", 1}}}}},
             "ret-1");
  INFO(ret.body.dump());
  REQUIRE(ret.status == 201);
  const auto sv_back = ret.body["outcome"]["stored_value_returned"].get<std::int64_t>();
  const auto cash_back = -ret.body["outcome"]["totals"]["amount_due"].get<std::int64_t>();
  CHECK(sv_back > 0);
  CHECK(cash_back > 0);
  CHECK(sv_back + cash_back == 2800);  // the latte's price: no discount on this basket
  const auto [base1, bonus1] = stored();
  CHECK(base1 + bonus1 == base0 + bonus0 - 4000 + sv_back);
  CHECK(ret.body["receipt"].dump().find("Stored value given back") != std::string::npos);

  // The rest back: everything the sale took from stored value is there
  // again, in the share of bonus and base it was spent, and the cash
  // refunds add up to the cash paid.
  auto rest = d.post("/v1/returns",
                     {{"receipt_id", receipt},
                      {"lines", {{{"line", 0}, {"quantity", 1}}, {{"line", 1}, {"quantity", 1}}}}},
                     "ret-2");
  INFO(rest.body.dump());
  REQUIRE(rest.status == 201);
  CHECK(stored() == std::pair{base0, bonus0});
  CHECK(cash_back - rest.body["outcome"]["totals"]["amount_due"].get<std::int64_t>() == cash);
  // Nothing is left of it to void, and the till says so.
  auto late_void = d.post("/v1/transactions/" + receipt + "/void", nullptr, "void-1");
  CHECK(late_void.status == 409);
  CHECK(late_void.body["title"] == "Returned in full");

  // A sale paid wholly with stored value, voided: no cash goes out.
  auto all_sv = basket("M-A", 1);
  all_sv["basket"]["stored_value"] = 4000;
  auto sale2 = d.post("/v1/transactions", all_sv, "sale-2");
  REQUIRE(sale2.status == 201);
  REQUIRE(sale2.body["outcome"]["totals"]["amount_due"] == 0);
  auto v = d.post("/v1/transactions/" + sale2.body["receipt_id"].get<std::string>() + "/void",
                  nullptr, "void-2");
  INFO(v.body.dump());
  REQUIRE(v.status == 201);
  CHECK(v.body["outcome"]["totals"]["amount_due"] == 0);
  CHECK(stored() == std::pair{base0, bonus0});
}

TEST_CASE("a restart with the same file loses nothing", "[terminal][daemon]") {
  const auto dir = scratch_dir("restart");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  std::vector<std::string> receipts;
  for (int i = 0; i < 5; ++i) {
    auto r = d.post("/v1/transactions", basket("M-A"), "k" + std::to_string(i));
    REQUIRE(r.status == 201);
    receipts.push_back(r.body["receipt_id"]);
  }
  const auto token = d.token();
  const int status = d.stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(d.log().find("stopped cleanly") != std::string::npos);
  REQUIRE(d.start());
  CHECK(d.token() == token);  // the token survives restarts
  CHECK(available(d, "M-A") == 5000 + 5 * 68);
  CHECK(outbox_depth(d) == 5);
  for (const auto& r : receipts) CHECK(d.get("/v1/transactions/" + r).status == 200);
  // Sequence numbers continue after the restart.
  CHECK(d.post("/v1/transactions", basket("M-A"), "k5").body["receipt_id"] == "S001-T01-00000006");
  CHECK(sql_int(d.db(), "PRAGMA user_version") == terminal::terminal_migrations().back().version);
}

TEST_CASE("bad input is refused with its problem type and nothing is written",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("bad");
  const auto key = platform::SigningKey::generate();
  write_file(dir / "hq.pub", key.public_pem());
  Daemon d(dir, standalone_args(dir, {"--hq.public_key", (dir / "hq.pub").string(),
                                      "--api.body_limit", "65536"}));
  REQUIRE(d.start());
  const auto before_members = sql_int(d.db(), "SELECT COUNT(*) FROM members");
  const auto refused = [&](const HttpResult& r, int status, const std::string& type,
                           const std::string& field = {}) {
    INFO(r.body.dump());
    CHECK(r.status == status);
    CHECK(r.type() == type);
    if (!field.empty()) CHECK(r.body["field"] == field);
    CHECK(r.body["detail"].get<std::string>().size() > 10);
  };
  using platform::http::verb;
  refused(d.raw(verb::post, "/v1/transactions", "{\"member_id\": ",
                {{"Authorization", "Bearer " + d.token()}, {"Idempotency-Key", "x1"}}),
          400, "malformed-json");
  refused(d.post("/v1/transactions", basket("M-NOBODY"), "x2"), 404, "unknown-member", "member_id");
  auto neg = basket("M-A");
  neg["basket"]["lines"][0]["quantity"] = -1;
  refused(d.post("/v1/transactions", neg, "x3"), 422, "invalid-request",
          "basket.lines[0].quantity");
  auto usd = basket("M-A");
  usd["basket"]["currency"] = "USD";
  refused(d.post("/v1/transactions", usd, "x4"), 422, "wrong-currency", "basket.currency");
  refused(d.post("/v1/transactions", basket("M-A")), 400, "idempotency-key-missing",
          "Idempotency-Key");
  refused(d.call(verb::post, "/v1/transactions", basket("M-A"), "x5", ""), 401, "unauthorized");
  refused(d.call(verb::post, "/v1/transactions", basket("M-A"), "x6", std::string(64, 'f')), 401,
          "unauthorized");
  auto big = basket("M-A");
  big["basket"]["lines"][0]["name"] = std::string(70000, 'x');
  refused(d.post("/v1/transactions", big, "x7"), 413, "body-too-large");

  // Member codes.
  refused(d.post("/v1/members/scan",
                 {{"code", kCardA.substr(0, 15) + (kCardA[15] == '9' ? "0" : "9")}}),
          422, "invalid-member-code", "code");
  refused(d.post("/v1/members/scan", {{"code", "hello"}}), 422, "invalid-member-code", "code");
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  const auto good = terminal::mint_dynamic_code(key, "M-A", now + 60, "nonce-0001");
  auto ok = d.post("/v1/members/scan", {{"code", good}});
  CHECK(ok.status == 200);
  CHECK(ok.body["member_id"] == "M-A");
  refused(d.post("/v1/members/scan", {{"code", good}}), 409, "member-code-replayed", "code");
  refused(d.post("/v1/members/scan",
                 {{"code", terminal::mint_dynamic_code(key, "M-A", now - 120, "nonce-0002")}}),
          422, "member-code-expired", "code");
  const auto other = platform::SigningKey::generate();
  refused(d.post("/v1/members/scan",
                 {{"code", terminal::mint_dynamic_code(other, "M-A", now + 60, "nonce-0003")}}),
          422, "member-code-forged", "code");
  // Tampering with the payload breaks the signature too.
  auto tampered = terminal::mint_dynamic_code(key, "M-B", now + 60, "nonce-0004");
  const auto forged =
      "LD1." + platform::base64url_encode("M-A|" + std::to_string(now + 60) + "|nonce-0004") +
      tampered.substr(tampered.rfind('.'));
  refused(d.post("/v1/members/scan", {{"code", forged}}), 422, "member-code-forged", "code");
  refused(d.post("/v1/members/scan", {{"code", "LM1:M-GHOST"}}), 404, "unknown-member", "code");
  refused(d.post("/v1/members", {{"phone", "13900000001"}}, "e1"), 409, "phone-taken", "phone");
  refused(d.post("/v1/members", {{"phone", "12ab"}}, "e2"), 422, "invalid-request", "phone");
  // SQL metacharacters are data, never code.
  refused(d.post("/v1/transactions", basket("M-A'; DROP TABLE members; --"), "x8"), 404,
          "unknown-member");
  refused(d.get("/v1/nothing-here"), 404, "not-found");
  // Welcome points and birthday gifts are not the POS's to give.
  refused(d.post("/v1/transactions", {{"member_id", "M-A"}, {"event", "enrollment"}}, "x9"), 422,
          "invalid-request", "event");
  auto smuggled = basket("M-A");
  smuggled["basket"]["event"] = "check_in";
  refused(d.post("/v1/transactions", smuggled, "x10"), 422, "invalid-request", "basket.event");
  auto extra = basket("M-A");
  extra["discount"] = 100;
  refused(d.post("/v1/transactions", extra, "x11"), 422, "invalid-request", "discount");
  refused(d.post("/v1/members", {{"phone", ""}}, "e3"), 422, "invalid-request", "phone");
  // Wrong types are named as such, at the field that has them.
  refused(d.post("/v1/members/scan", {{"phone", 13800138002}}), 422, "invalid-request", "phone");
  refused(
      d.post("/v1/transactions", {{"member_id", 5}, {"basket", basket("M-A")["basket"]}}, "x12"),
      422, "invalid-request", "member_id");
  refused(d.post("/v1/transactions", {{"member_id", "M-A"}, {"basket", "x"}}, "x13"), 422,
          "invalid-request", "basket");
  auto half = basket("M-A");
  half["basket"]["lines"][0]["quantity"] = 1.5;
  auto half_r = d.post("/v1/transactions", half, "x14");
  refused(half_r, 422, "invalid-request", "basket.lines[0].quantity");
  CHECK(half_r.body["detail"].get<std::string>().find("whole number, not 1.5") !=
        std::string::npos);
  auto no_currency = basket("M-A");
  no_currency["basket"].erase("currency");
  refused(d.post("/v1/transactions", no_currency, "x15"), 422, "invalid-request",
          "basket.currency");
  // Every problem of the basket is listed, not only the first.
  auto many = basket("M-A");
  many["basket"]["currency"] = "USD";
  many["basket"]["lines"][0]["sku"] = "";
  many["basket"]["lines"][0]["quantity"] = 0;
  many["basket"]["lines"][1]["unit_price"] = -1;
  auto many_r = d.post("/v1/transactions", many, "x16");
  INFO(many_r.body.dump());
  CHECK(many_r.status == 422);
  CHECK(many_r.body["problems"].size() == 4);
  refused(d.post("/v1/redeem", Json::array({1}), "x17"), 400, "invalid-request");
  refused(d.post("/v1/transactions",
                 {{"member_id", "M-A"}, {"event", "activity"}, {"activity", ""}}, "x18"),
          422, "invalid-request", "activity");
  refused(d.get("/v1/members/M-NOBODY"), 404, "unknown-member", "member_id");

  CHECK(outbox_depth(d) == 0);
  CHECK(sql_int(d.db(), "SELECT COUNT(*) FROM transactions") == 0);
  CHECK(sql_int(d.db(), "SELECT COUNT(*) FROM members") == before_members);
  CHECK(available(d, "M-A") == 5000);
}

TEST_CASE("offline, redemptions stay within the program's allowances and sales go on",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("offline");
  // An HQ that is not there: the terminal is offline.
  Daemon d(dir, standalone_args(dir, {"--hq.url", "https://127.0.0.1:9"}));
  REQUIRE(d.start());
  const Json redeem{{"member_id", "M-A"}, {"reward", "voucher-10"}};
  SECTION("never synced: no redemption, but the sale goes ahead") {
    auto r = d.post("/v1/redeem", redeem, "r1");
    INFO(r.body.dump());
    CHECK(r.status == 409);
    CHECK(r.type() == "offline-too-long");
    CHECK(r.body["detail"].get<std::string>().find("without redeeming") != std::string::npos);
    auto sale = d.post("/v1/transactions", basket("M-A"), "s1");
    CHECK(sale.status == 201);
    CHECK(sale.body["offline"] == true);
    const auto receipt = sale.body["receipt"].dump();
    CHECK(receipt.find("pending sync") != std::string::npos);
    auto member = d.get("/v1/members/M-A");
    CHECK(member.body["points"]["pending_sync"] == 68);
    auto st = d.get("/v1/status");
    CHECK(st.body["online"] == false);
    CHECK(st.body["mode"] == "synced");
  }
  SECTION("synced an hour ago: 1,000 points a member a day, then refused") {
    d.stop();
    sql_exec(d.db(), "INSERT INTO sync_state(key, value) VALUES ('last_sync_at', '" +
                         std::to_string(std::time(nullptr) - 3600) + "')");
    REQUIRE(d.start());
    for (int i = 0; i < 5; ++i) {
      auto r = d.post("/v1/redeem", redeem, "ok" + std::to_string(i));
      INFO(r.body.dump());
      REQUIRE(r.status == 201);
      CHECK(r.body["outcome"]["totals"]["points_redeemed"] == 200);
    }
    auto quote =
        d.post("/v1/quote", {{"member_id", "M-A"}, {"event", "redeem"}, {"reward", "voucher-10"}});
    CHECK(quote.body["redemption"]["refused"]["type"] == "offline-allowance-exceeded");
    auto sixth = d.post("/v1/redeem", redeem, "no");
    CHECK(sixth.status == 409);
    CHECK(sixth.type() == "offline-allowance-exceeded");
    CHECK(sixth.body["max_points_now"] == 0);
    CHECK(available(d, "M-A") == 4000);
    CHECK(d.get("/metrics").status == 200);
  }
  SECTION("a clock set back behind the last sync: no offline redemption, sales go on") {
    // The last sync was "tomorrow" by this clock: someone set it back a
    // day, which would open a fresh day of allowances.
    d.stop();
    sql_exec(d.db(), "INSERT INTO sync_state(key, value) VALUES ('last_sync_at', '" +
                         std::to_string(std::time(nullptr) + 30 * 3600) + "')");
    REQUIRE(d.start());
    auto r = d.post("/v1/redeem", redeem, "r-back");
    INFO(r.body.dump());
    CHECK(r.status == 409);
    CHECK(r.type() == "clock-behind");
    CHECK(r.body["field"] == "reward");
    CHECK(d.post("/v1/transactions", basket("M-A"), "s-back").status == 201);
    CHECK(available(d, "M-A") == 5068);
  }
}

TEST_CASE("counter redemptions respect the store's reward stock", "[terminal][daemon]") {
  const auto dir = scratch_dir("stock");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  auto set = d.call(verb::put, "/v1/rewards/voucher-10/stock", Json{{"available", 1}});
  REQUIRE(set.status == 200);
  auto first = d.post("/v1/redeem", {{"member_id", "M-A"}, {"reward", "voucher-10"}}, "a");
  INFO(first.body.dump());
  REQUIRE(first.status == 201);
  CHECK(first.body["member"]["vouchers"].size() == 1);
  auto second = d.post("/v1/redeem", {{"member_id", "M-A"}, {"reward", "voucher-10"}}, "b");
  CHECK(second.status == 409);
  CHECK(second.type() == "out-of-stock");
  CHECK(d.get("/v1/rewards").body["rewards"][0]["stock"] == 0);
  CHECK(available(d, "M-A") == 4800);
}

TEST_CASE("a time-limited reward is listed as not available and refused outside its calendar",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("limited");
  auto program = Json::parse(slurp_file(src_path("examples/programs/coffee-chain.json")));
  program["calendars"]["spring-2020"] = Json::array({"2020-03-01"});
  program["rewards"].push_back({{"id", "spring-mug"},
                                {"name", "Spring mug"},
                                {"points", 100},
                                {"cash", 0},
                                {"voucher", "reward-10"},
                                {"calendar", "spring-2020"}});
  write_file(dir / "limited.json", program.dump());
  auto args = standalone_args(dir);
  args[1] = (dir / "limited.json").string();
  Daemon d(dir, args);
  REQUIRE(d.start());
  auto list = d.get("/v1/rewards").body["rewards"];
  INFO(list.dump());
  REQUIRE(list.size() == 2);
  CHECK(list[0]["available_today"] == true);
  CHECK(list[1]["reward"] == "spring-mug");
  CHECK(list[1]["calendar"] == "spring-2020");
  CHECK(list[1]["available_today"] == false);
  auto r = d.post("/v1/redeem", {{"member_id", "M-A"}, {"reward", "spring-mug"}}, "mug");
  INFO(r.body.dump());
  CHECK(r.status == 422);
  CHECK(r.body["field"] == "reward");
  CHECK(r.body["detail"].get<std::string>().find("only on the days of its calendar") !=
        std::string::npos);
  CHECK(available(d, "M-A") == 5000);
}

TEST_CASE("a member freezes their level once at the till, and a second freeze is refused",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("freeze");
  auto program = Json::parse(slurp_file(src_path("examples/programs/coffee-chain.json")));
  program["tiers"]["freeze"] = {{"max_times", 1}, {"max_months", 3}};
  write_file(dir / "freeze.json", program.dump());
  auto args = standalone_args(dir);
  args[1] = (dir / "freeze.json").string();
  Daemon d(dir, args);
  REQUIRE(d.start());
  const auto freeze = [&](int months, const std::string& key) {
    return d.post("/v1/transactions",
                  {{"member_id", "M-A"}, {"event", "freeze_tier"}, {"months", months}}, key);
  };
  auto too_long = freeze(4, "f0");
  CHECK(too_long.status == 422);
  CHECK(too_long.body["field"] == "months");
  auto r = freeze(2, "f1");
  INFO(r.body.dump());
  REQUIRE(r.status == 201);
  CHECK(r.body.dump().find("Bean frozen for 2 month(s)") != std::string::npos);
  auto again = freeze(1, "f2");
  INFO(again.body.dump());
  CHECK(again.status == 409);
  CHECK(again.body["field"] == "event");
  CHECK(again.body["detail"].get<std::string>().find("already used") != std::string::npos);
}

TEST_CASE("a database from a newer release is refused with a clear message", "[terminal][daemon]") {
  const auto dir = scratch_dir("newer");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  d.stop();
  sql_exec(d.db(), "PRAGMA user_version = 99");
  CHECK_FALSE(d.start());
  CHECK(d.log().find("newer release") != std::string::npos);
}

TEST_CASE("an installed program version cannot be changed in place", "[terminal][daemon]") {
  const auto dir = scratch_dir("reinstall");
  auto program = Json::parse(slurp_file(src_path("examples/programs/coffee-chain.json")));
  write_file(dir / "program.json", program.dump());
  Daemon d(dir, {"--program.file", (dir / "program.json").string()});
  REQUIRE(d.start());
  d.stop();
  program["name"] = "Edited without a new version";
  write_file(dir / "program.json", program.dump());
  CHECK_FALSE(d.start());
  CHECK(d.log().find("new version number") != std::string::npos);
  program["version"] = 2;
  write_file(dir / "program.json", program.dump());
  REQUIRE(d.start());
  CHECK(d.get("/v1/status").body["program"]["version"] == 2);
}

TEST_CASE("loyaltyctl talks to the daemon, and says clearly when it cannot",
          "[terminal][daemon][loyaltyctl]") {
  const auto dir = scratch_dir("ctl");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  const auto conn =
      "--url 127.0.0.1:" + std::to_string(d.port()) + " --token-file " + (dir / "token").string();
  auto status = run_ctl("status " + conn);
  INFO(status.out);
  CHECK(status.code == 0);
  CHECK(status.out.find("coffee-chain v1") != std::string::npos);
  CHECK(status.out.find("standalone") != std::string::npos);

  // A host name works as well as an address.
  CHECK(run_ctl("status --url localhost:" + std::to_string(d.port()) + " --token-file " +
                (dir / "token").string())
            .code == 0);
  auto scan = run_ctl("scan " + kCardA + " " + conn);
  CHECK(scan.code == 0);
  CHECK(scan.out.find("5000 available") != std::string::npos);
  CHECK(scan.out.find("BLOCKED") == std::string::npos);

  write_file(dir / "basket.json", basket("M-A")["basket"].dump());
  auto commit = run_ctl("commit --member M-A --basket " + (dir / "basket.json").string() +
                        " --key ctl-1 " + conn);
  INFO(commit.out);
  CHECK(commit.code == 0);
  CHECK(commit.out.find("receipt S001-T01-00000001") != std::string::npos);
  CHECK(commit.out.find("Points earned: 68") != std::string::npos);
  auto json = run_ctl("outbox --json " + conn);
  CHECK(json.code == 0);
  CHECK(Json::parse(json.out)["depth"] == 1);
  auto table = run_ctl("outbox " + conn);
  CHECK(table.out.find("S001-T01-00000001") != std::string::npos);

  auto ret = run_ctl("return S001-T01-00000001 0:1 " + conn);
  CHECK(ret.code == 0);
  CHECK(ret.out.find("Points taken back: 28") != std::string::npos);
  // A top-up from the command line, with its amount.
  const auto base = d.get("/v1/members/M-A").body["stored_value"]["base"].get<std::int64_t>();
  auto top_up = run_ctl("commit --member M-A --event top_up --amount 10000 --key ctl-2 " + conn);
  INFO(top_up.out);
  CHECK(top_up.code == 0);
  CHECK(d.get("/v1/members/M-A").body["stored_value"]["base"] == base + 10000);
  CHECK(run_ctl("commit --member M-A --event top_up --amount 100.00 " + conn).code == 3);
  // Money in yuan, never minor units.
  const auto member = run_ctl("member M-A " + conn);
  INFO(member.out);
  CHECK(member.out.find("stored val  ¥") != std::string::npos);
  CHECK(member.out.find("¥" + std::to_string((base + 10000) / 100) + ".") != std::string::npos);
  CHECK(member.out.find("minor units") == std::string::npos);

  // The catalog with the store's stock, set after a stock-take.
  auto stock = run_ctl("stock voucher-10 3 " + conn);
  CHECK(stock.code == 0);
  auto rewards = run_ctl("rewards " + conn);
  INFO(rewards.out);
  CHECK(rewards.code == 0);
  CHECK(rewards.out.find("voucher-10") != std::string::npos);
  CHECK(rewards.out.find("      3") != std::string::npos);
  CHECK(run_ctl("stock voucher-10 many " + conn).code == 2);

  // A reprint, with what is left to return: one of two lattes went back.
  auto receipt = run_ctl("receipt S001-T01-00000001 " + conn);
  INFO(receipt.out);
  CHECK(receipt.code == 0);
  CHECK(receipt.out.find("Points earned: 68") != std::string::npos);
  // line, item, sold, returned, left
  CHECK(receipt.out.find("   0  Latte M" + std::string(21, ' ') + "2" + std::string(8, ' ') + "1" +
                         std::string(4, ' ') + "1\n") != std::string::npos);

  // A new member with a Chinese name, found by phone with it.
  auto enrolled = run_ctl("enroll --phone 13900000077 --name 王芳 " + conn);
  INFO(enrolled.out);
  CHECK(enrolled.code == 0);
  auto by_phone = run_ctl("scan --phone 13900000077 " + conn);
  CHECK(by_phone.out.find("name        王芳") != std::string::npos);
  // A misspelt option is refused, not ignored; nothing is committed.
  auto typo = run_ctl("commit --member M-A --event top_up --amout 10000 " + conn);
  CHECK(typo.code == 2);
  CHECK(typo.out.find("unknown option --amout") != std::string::npos);
  CHECK(d.get("/v1/members/M-A").body["stored_value"]["base"] == base + 10000);
  auto unknown = run_ctl("scan LM1:M-NOBODY " + conn);
  CHECK(unknown.code == 4);
  CHECK(unknown.out.find("Unknown member") != std::string::npos);

  // A blocked member cannot be missed at the scan (HQ's feed sets it; here
  // it is set in the database of the stopped daemon).
  d.stop();
  {
    auto db = platform::Db::open(d.db().string());
    REQUIRE(db);
    terminal::set_member_blocked(*db, "M-A", true);
  }
  REQUIRE(d.start());
  const auto conn2 =
      "--url 127.0.0.1:" + std::to_string(d.port()) + " --token-file " + (dir / "token").string();
  auto blocked = run_ctl("scan " + kCardA + " " + conn2);
  INFO(blocked.out);
  CHECK(blocked.code == 0);
  CHECK(blocked.out.rfind("*** BLOCKED", 0) == 0);  // the first thing on the screen

  write_file(dir / "wrong-token", std::string(64, 'a'));
  auto wrong = run_ctl("status --url 127.0.0.1:" + std::to_string(d.port()) + " --token-file " +
                       (dir / "wrong-token").string());
  const auto& down_conn = conn2;
  CHECK(wrong.code == 6);
  CHECK(wrong.out.find("refused the token") != std::string::npos);
  d.stop();
  auto down = run_ctl("status " + down_conn);
  CHECK(down.code == 5);
  CHECK(down.out.find("cannot reach loyaltyd") != std::string::npos);
}

TEST_CASE("a clerk who re-runs a timed-out loyaltyctl write with --retry records it once",
          "[terminal][daemon][loyaltyctl][idempotency]") {
  const auto dir = scratch_dir("ctl-retry");
  // The key is kept for --retry in the clerk's state directory.
  ::setenv("LOYALTYCTL_STATE_DIR", (dir / "ctl-state").c_str(), 1);
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  // The daemon's address as it is now (a restart picks another port).
  std::string conn;
  std::string sale;
  const auto reconnect = [&] {
    conn =
        "--url 127.0.0.1:" + std::to_string(d.port()) + " --token-file " + (dir / "token").string();
    sale = "commit --member M-A --basket " + (dir / "basket.json").string() + " " + conn;
  };
  reconnect();
  write_file(dir / "basket.json", basket("M-A")["basket"].dump());
  const auto points = [&] {
    return d.get("/v1/members/M-A").body["points"]["available"].get<std::int64_t>();
  };
  const auto before = points();

  // loyaltyd is down when the clerk first tries: the outcome is unknown,
  // and loyaltyctl says which key to resend.
  d.stop();
  auto lost = run_ctl(sale);
  INFO(lost.out);
  CHECK(lost.code == 5);
  const auto at = lost.out.find("idempotency key ctl-");
  REQUIRE(at != std::string::npos);
  const auto key = lost.out.substr(at + 16, lost.out.find('\n', at) - at - 16);
  CHECK(lost.out.find("--retry") != std::string::npos);
  REQUIRE(d.start());
  reconnect();
  // A mistyped command in between sends nothing and keeps the lost write's
  // key for --retry.
  CHECK(
      run_ctl("commit --member M-A --basket " + (dir / "no-such-basket.json").string() + " " + conn)
          .code == 3);

  // --retry sends it with that key; a second --retry replays the same sale.
  auto first = run_ctl(sale + " --retry");
  INFO(first.out);
  CHECK(first.code == 0);
  CHECK(first.out.find("idempotency key " + key) != std::string::npos);
  CHECK(first.out.find("receipt S001-T01-00000001") != std::string::npos);
  const auto after_one = points();
  CHECK(after_one > before);
  auto again = run_ctl(sale + " --retry --json");
  INFO(again.out);
  CHECK(again.code == 0);
  CHECK(again.out.find("S001-T01-00000001") != std::string::npos);
  CHECK(points() == after_one);
  CHECK(d.metric("loyaltyd_commits_total") == 1);
  CHECK(d.metric("loyaltyd_replays_total") == 1);

  // --retry resends the last write only, never another command's key.
  auto other = run_ctl("commit --member M-A --event top_up --amount 5000 --retry " + conn);
  CHECK(other.code == 2);
  CHECK(other.out.find("the last write, which was") != std::string::npos);
  // A key of the clerk's own choosing, sent twice, is one sale too.
  CHECK(run_ctl(sale + " --idempotency-key till-7-0815").code == 0);
  CHECK(run_ctl(sale + " --idempotency-key till-7-0815").code == 0);
  CHECK(d.metric("loyaltyd_commits_total") == 2);
  // Reads take no key.
  CHECK(run_ctl("status --retry " + conn).code == 2);
  ::unsetenv("LOYALTYCTL_STATE_DIR");
}

TEST_CASE("the database and the API token are the daemon user's alone, and entries stay as written",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("modes");
  ::umask(0022);  // a shell's usual umask: files would be world-readable
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  REQUIRE(d.post("/v1/transactions", basket("M-A"), "modes-1").status == 201);
  for (const auto* name : {"loyaltyd.db", "loyaltyd.db-wal", "token"}) {
    INFO(name);
    struct stat st {};
    REQUIRE(::stat((dir / name).c_str(), &st) == 0);
    CHECK((st.st_mode & 0077) == 0);
  }
  // The sale's ledger entries cannot be changed or removed, even in the file.
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(d.db().c_str(), &h) == SQLITE_OK);
  CHECK(sqlite3_exec(h, "UPDATE entries SET amount = amount + 1", nullptr, nullptr, nullptr) ==
        SQLITE_CONSTRAINT);
  CHECK(sqlite3_exec(h, "DELETE FROM entries", nullptr, nullptr, nullptr) == SQLITE_CONSTRAINT);
  sqlite3_close(h);
}

TEST_CASE("a member state the cache cannot read stops loyaltyd instead of serving wrong balances",
          "[terminal][daemon]") {
  const auto dir = scratch_dir("data-loss");
  Daemon d(dir, standalone_args(dir));
  REQUIRE(d.start());
  auto enrolled = d.post("/v1/members", {{"phone", "13800138077"}}, "enroll-loss");
  REQUIRE(enrolled.status == 201);
  const auto member = enrolled.body["member"]["member_id"].get<std::string>();
  REQUIRE(d.stop() == 0);

  // The file is damaged under the daemon (a bad sector, a hand edit): the
  // member's state is no longer a state.
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(d.db().c_str(), &h) == SQLITE_OK);
  const auto sql =
      "UPDATE members SET state = '{\"points\": \"lots\"}' WHERE id = '" + member + "'";
  REQUIRE(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);

  REQUIRE(d.start());
  platform::HttpClient client("127.0.0.1", d.port(), std::chrono::seconds(10));
  const auto answer = client.request(platform::http::verb::post, "/v1/members/scan",
                                     Json{{"phone", "13800138077"}}.dump(),
                                     {{"Authorization", "Bearer " + d.token()}});
  // No answer at all (not a 503 the POS would retry forever): the process
  // aborted, so systemd restarts it and the journal says why.
  CHECK_FALSE(answer);
  const int status = d.kill(SIGKILL);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  CHECK(d.log().find("data loss, stopping: member " + member + " has an unreadable state") !=
        std::string::npos);
}
