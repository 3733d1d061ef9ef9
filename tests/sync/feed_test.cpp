// What loyaltyd reads from HQ is checked before use: a broken or hostile
// answer is refused whole with a message naming the field, never half-used.
#include <catch2/catch.hpp>

#include "core/io_json.h"
#include "sync/feed.h"

using namespace loyalty;
using core::Json;

namespace {

Json page_with(Json change, std::int64_t next = 5) {
  return Json{{"changes", Json::array({change})}, {"next_cursor", next}, {"more", false}};
}

std::string refusal(const Json& page, std::int64_t after = 0) {
  auto r = sync::parse_feed_page(page.dump(), after);
  REQUIRE_FALSE(r);
  return r.error().message;
}

}  // namespace

TEST_CASE("a well-formed feed page is read, newer fields and kinds kept for the applier",
          "[sync][feed]") {
  const Json page{{"changes",
                   {{{"cursor", 3},
                     {"kind", "stock"},
                     {"key", "voucher-10"},
                     {"data",
                      {{"reward_id", "voucher-10"},
                       {"add", 5},
                       {"terminal_id", "T01"},
                       {"note", "added by a newer HQ"}}}},
                    {{"cursor", 4}, {"kind", "coupon-wallet"}, {"data", {{"anything", 1}}}}}},
                  {"next_cursor", 4},
                  {"more", true},
                  {"served_by", "hq-2"}};
  auto r = sync::parse_feed_page(page.dump(), 2);
  REQUIRE(r);
  REQUIRE(r->changes.size() == 2);
  CHECK(r->changes[0].kind() == "stock");
  REQUIRE(std::holds_alternative<sync::StockChange>(r->changes[0].data));
  CHECK(std::get<sync::StockChange>(r->changes[0].data).add == 5);
  CHECK(r->changes[1].kind() == "coupon-wallet");
  // A kind this terminal does not know is kept whole, so its cursor moves.
  REQUIRE(std::holds_alternative<sync::UnknownChange>(r->changes[1].data));
  CHECK(std::get<sync::UnknownChange>(r->changes[1].data).data["anything"] == 1);
  CHECK(r->next_cursor == 4);
  CHECK(r->more);
}

TEST_CASE("a hostile or broken feed page is refused with the field named", "[sync][feed]") {
  CHECK(sync::parse_feed_page("not json", 0).error().message.find("not a JSON object") !=
        std::string::npos);
  CHECK(refusal(Json{{"changes", 1}, {"next_cursor", 0}}).find("changes") != std::string::npos);
  CHECK(refusal(Json{{"changes", Json::array()}, {"next_cursor", "9"}}).find("next_cursor") !=
        std::string::npos);
  // A stock delivery whose quantity is text, a member without a state, a
  // program without a signature: each names the field.
  CHECK(
      refusal(page_with(
                  {{"cursor", 1}, {"kind", "stock"}, {"data", {{"reward_id", "r"}, {"add", "5"}}}}))
          .find("changes[0].data.add") != std::string::npos);
  CHECK(refusal(page_with({{"cursor", 1}, {"kind", "member"}, {"data", Json::object()}}))
            .find("data.state") != std::string::npos);
  CHECK(refusal(page_with({{"cursor", 1},
                           {"kind", "program"},
                           {"data",
                            {{"id", "p"}, {"version", 2}, {"effective_from", 0}, {"body", "{}"}}}}))
            .find("data.signature") != std::string::npos);
  // Cursors must move forward from where the terminal asked.
  CHECK(refusal(page_with({{"cursor", 7}, {"kind", "x"}, {"data", Json::object()}}, 9), 7)
            .find("cursor: must be above 7") != std::string::npos);
  CHECK(refusal(page_with({{"cursor", 8}, {"kind", "x"}, {"data", Json::object()}}, 6), 7)
            .find("next_cursor") != std::string::npos);
  CHECK(refusal(page_with({{"cursor", 8}, {"kind", 3}, {"data", Json::object()}}), 7)
            .find("changes[0]") != std::string::npos);
}

TEST_CASE("HQ's answer to a batch is checked before anything is acknowledged", "[sync][feed]") {
  auto ok = sync::parse_batch_answer(
      R"({"results": [{"txn_id": "S001-T01-1", "seq": 1, "status": "accepted"}],
          "next_seq": 2, "clock_skew_seconds": -3})");
  REQUIRE(ok);
  CHECK(ok->results.size() == 1);
  CHECK(ok->results[0].status == sync::BatchStatus::kAccepted);
  CHECK(ok->clock_skew_seconds == -3);
  CHECK(ok->next_seq == 2);
  CHECK_FALSE(ok->last_receipt);  // an older HQ does not say
  // Where HQ's numbering stands moves the terminal's: it must be sane.
  auto numbered = sync::parse_batch_answer(R"({"results": [], "next_seq": 8, "last_receipt": 9})");
  REQUIRE(numbered);
  CHECK(numbered->last_receipt == 9);
  CHECK_FALSE(sync::parse_batch_answer(R"({"results": [], "next_seq": -1})"));
  CHECK_FALSE(sync::parse_batch_answer(R"({"results": [], "last_receipt": 1e300})"));
  CHECK_FALSE(sync::parse_batch_answer(R"({"results": [], "last_receipt": 9223372036854775807})"));
  CHECK_FALSE(sync::parse_batch_answer(R"({"results": [{"txn_id": 1, "status": "accepted"}]})"));
  CHECK_FALSE(sync::parse_batch_answer(R"({"results": {}})"));
  CHECK_FALSE(sync::parse_batch_answer(R"({"results": [], "clock_skew_seconds": "x"})"));
  CHECK_FALSE(sync::parse_batch_answer("[[[[["));
}

TEST_CASE("HQ's answer to a live check is read only when it is about the member asked for",
          "[sync][feed]") {
  core::MemberState m;
  m.id = "M1001";
  m.debt = 50;
  const Json good{{"member_id", "M1001"},
                  {"blocked", true},
                  {"applied_seq", 41},
                  {"member", core::member_to_json(m)}};
  auto r = sync::parse_live_check(good.dump(), "M1001");
  REQUIRE(r);
  CHECK(r->blocked);
  CHECK(r->applied_seq == 41);
  CHECK(r->state.debt == 50);
  // Asked about someone else, or carrying someone else's state: refused.
  CHECK_FALSE(sync::parse_live_check(good.dump(), "M2002"));
  Json swapped = good;
  swapped["member"]["id"] = "M2002";
  auto other = sync::parse_live_check(swapped.dump(), "M1001");
  REQUIRE_FALSE(other);
  CHECK(other.error().message.find("another member") != std::string::npos);
  for (const char* field : {"blocked", "applied_seq", "member"}) {
    Json broken = good;
    broken.erase(field);
    auto no = sync::parse_live_check(broken.dump(), "M1001");
    REQUIRE_FALSE(no);
    CHECK(no.error().message.find(field) != std::string::npos);
  }
  Json negative = good;
  negative["applied_seq"] = -1;
  CHECK_FALSE(sync::parse_live_check(negative.dump(), "M1001"));
  CHECK_FALSE(sync::parse_live_check("{not json", "M1001"));
}
