// The upload as HQ reads it from its text (sync::batch_from_text): the same
// batch as from the parsed document, each record kept as it arrived, and
// every body that is not a well-formed batch object left to the full parse.
#include "hq/json_fast.h"
#include "tests/hq/hq_fixture.h"

using namespace loyalty;
using namespace loyalty::test;

namespace {

std::vector<sync::TxnRecord> three_sales(FakeTerminal& t) {
  std::vector<sync::TxnRecord> sales;
  for (int i = 0; i < 3; ++i)
    sales.push_back(t.sell("M1001", Json::parse(R"({"currency": "CNY", "lines": [
      {"sku": "latte-m", "categories": ["coffee"], "quantity": 1, "unit_price": 2800}]})")));
  return sales;
}

}  // namespace

TEST_CASE("An upload read from its text gives the batch its parsed document gives",
          "[sync][protocol]") {
  const auto program = coffee_program();
  FakeTerminal t("S001", "T01", program);
  t.know(demo_member_state());
  const Json doc = sync::batch_to_json(t.batch(three_sales(t)));
  // Compact, as terminals send it, and pretty-printed, as a person might.
  for (const int indent : {-1, 2}) {
    INFO("indent " << indent);
    const std::string body = doc.dump(indent);
    auto from_text = sync::batch_from_text(body);
    REQUIRE(from_text.has_value());
    REQUIRE(from_text->has_value());
    auto from_doc = sync::batch_from_json(Json::parse(body));
    REQUIRE(from_doc.has_value());
    const auto& a = **from_text;
    const auto& b = *from_doc;
    CHECK(a.store_id == "S001");
    CHECK(a.terminal_id == "T01");
    CHECK(a.sent_at == b.sent_at);
    REQUIRE(a.records.size() == 3);
    REQUIRE(b.records.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(sync::record_to_json(a.records[i]) == sync::record_to_json(b.records[i]));
      CHECK(Json::parse(a.records[i].text) == doc["transactions"][i]);
      // What HQ stores and hashes is the record's own text.
      CHECK(body.find(a.records[i].text) != std::string::npos);
    }
    // Compact records keep the text HQ hashed before it read texts.
    if (indent < 0) CHECK(a.records[1].text == b.records[1].text);
  }
}

TEST_CASE("An upload that is not a well-formed batch object is left to the full parse",
          "[sync][protocol]") {
  for (const std::string& body : std::vector<std::string>{
           "", "   ", "{\"store_id\": ", "[1, 2]", "42", "\"batch\"", "{\"a\": 1, \"a\": 2}",
           "{\"transactions\": [{} {}]}", "{\"transactions\": [{}, ]}",
           "{\"transactions\": [{\"x\": }]}", "{\"store_id\": \"S001\"} trailing",
           "{\"store_id\": \"S0\\\"", "{\"transactions\": [\"a\\\"]}",
           "{\"transactions\": [{\"a\": [1, 2}]}", "{'store_id': 1}", "{\"store_id\" \"S001\"}",
           std::string("{\"sent_at\": 1\0\0, \"transactions\": []}", 36)}) {
    INFO(body);
    CHECK_FALSE(sync::batch_from_text(body).has_value());
  }
}

TEST_CASE("An upload read from its text names what is wrong with it as the document would",
          "[sync][protocol]") {
  const auto program = coffee_program();
  FakeTerminal t("S001", "T01", program);
  t.know(demo_member_state());
  Json doc = sync::batch_to_json(t.batch(three_sales(t)));
  doc["transactions"][1]["seq"] = -4;
  auto bad = sync::batch_from_text(doc.dump());
  REQUIRE(bad.has_value());
  REQUIRE_FALSE(bad->has_value());
  CHECK(bad->error().problems.front().path == "transactions[1].seq");
  CHECK(bad->error().message == sync::batch_from_json(doc).error().message);

  auto missing =
      sync::batch_from_text(R"({"store_id": "S001", "terminal_id": "T01", "sent_at": 1})");
  REQUIRE(missing.has_value());
  REQUIRE_FALSE(missing->has_value());
  CHECK(missing->error().message.find("transactions") != std::string::npos);

  auto not_array = sync::batch_from_text(
      R"({"store_id": "S001", "terminal_id": "T01", "sent_at": 1, "transactions": 7})");
  REQUIRE(not_array.has_value());
  REQUIRE_FALSE(not_array->has_value());
  CHECK(not_array->error().problems.front().path == "transactions");

  std::string many =
      R"({"store_id": "S001", "terminal_id": "T01", "sent_at": 1, "transactions": [)";
  for (std::size_t i = 0; i <= sync::kMaxBatchRecords; ++i) many += i == 0 ? "{}" : ", {}";
  many += "]}";
  auto too_many = sync::batch_from_text(many);
  REQUIRE(too_many.has_value());
  REQUIRE_FALSE(too_many->has_value());
  CHECK(too_many->error().message.find("at most 1000") != std::string::npos);

  // An escaped quote in a key or a value does not end it early.
  auto escaped = sync::batch_from_text(
      R"({"store_id": "S\"001", "terminal_id": "T01", "sent_at": 1, "transactions": []})");
  REQUIRE(escaped.has_value());
  REQUIRE_FALSE(escaped->has_value());
  CHECK(escaped->error().problems.front().path == "store_id");
  auto empty = sync::batch_from_text(
      R"({"store_id": "S001", "terminal_id": "T01", "sent_at": 1, "transactions": [ ]})");
  REQUIRE(empty.has_value());
  REQUIRE(empty->has_value());
  CHECK((*empty)->records.empty());
}

TEST_CASE("HQ's fast JSON reader builds the document Json::parse builds or refuses alike",
          "[sync][protocol]") {
  std::vector<std::string> texts{"0",
                                 "-0",
                                 "7",
                                 "-7",
                                 "1.0",
                                 "-0.0",
                                 "1e2",
                                 "1E-2",
                                 "2.5e+3",
                                 "1e400",
                                 "-1e400",
                                 "9223372036854775807",
                                 "9223372036854775808",
                                 "-9223372036854775808",
                                 "-9223372036854775809",
                                 "18446744073709551615",
                                 "18446744073709551616",
                                 "0.1000000000000000055511151231257827",
                                 "true",
                                 "false",
                                 "null",
                                 "\"\"",
                                 R"("a\"b\\c\/d\b\f\n\r\t")",
                                 R"("\u00e9\u4e2d")",
                                 "\"\xe4\xb8\xad\xe6\x96\x87\"",
                                 R"("\ud83d\ude00")",
                                 R"("\ud800")",
                                 R"("\udc00x")",
                                 "\"\xff\"",
                                 "\"\xc0\xaf\"",
                                 "\"a\x01\"",
                                 "{}",
                                 "[]",
                                 " [ 1 , [ ] , { } ] ",
                                 R"({"a": 1, "a": 2})",
                                 R"({"b": {"x": [1, {"y": null}]}, "a": "z"})",
                                 "",
                                 " ",
                                 "[1,]",
                                 "{\"a\" 1}",
                                 "01",
                                 "1.",
                                 ".5",
                                 "+1",
                                 "[1] 2",
                                 "nul",
                                 "\"open",
                                 std::string("[1]\0", 4),
                                 std::string(3000, '[') + std::string(3000, ']')};
  // Larger than what a thread's own parser keeps (64 KiB): read all the same.
  std::string big = "[";
  for (int i = 0; i < 30000; ++i) big += std::to_string(i * 7) + (i % 3 ? ", " : ", \"x\", ");
  texts.push_back(big + "0]");
  for (const auto& text : texts) {
    INFO(text.substr(0, 80));
    const Json slow = Json::parse(text, nullptr, false);
    const Json fast = hq::parse_json(text);
    REQUIRE(fast.is_discarded() == slow.is_discarded());
    if (slow.is_discarded()) continue;
    CHECK(fast.dump() == slow.dump());
    // The one difference: "-0" is a signed zero to Json::parse and an
    // unsigned one here (simdjson keeps no sign for it); both read as 0.
    if (text != "-0") CHECK(fast.type() == slow.type());
  }
  // A whole upload read with it: the same batch, record by record.
  const auto program = coffee_program();
  FakeTerminal t("S001", "T01", program);
  t.know(demo_member_state());
  const std::string body = sync::batch_to_json(t.batch(three_sales(t))).dump();
  auto fast = sync::batch_from_text(body, hq::parse_json);
  auto slow = sync::batch_from_text(body);
  REQUIRE(fast.has_value());
  REQUIRE(fast->has_value());
  REQUIRE(slow->has_value());
  REQUIRE((*fast)->records.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(sync::record_to_json((*fast)->records[i]) == sync::record_to_json((*slow)->records[i]));
    CHECK((*fast)->records[i].text == (*slow)->records[i].text);
  }
}

TEST_CASE("a record's member is found in its text as it stands", "[sync][protocol]") {
  const std::string rec = R"({"kind": "purchase", "return_basis": {"kind": [1, "}"]} , "z": 2})";
  CHECK(sync::member_text(rec, "return_basis") == R"({"kind": [1, "}"]})");
  CHECK(sync::member_text(rec, "kind") == R"("purchase")");
  CHECK(sync::member_text(rec, "z") == "2");
  CHECK_FALSE(sync::member_text(rec, "missing").has_value());
  // Repeated, or spelled with an escape: the parser decides, not the scan.
  CHECK_FALSE(sync::member_text(R"({"a": 1, "a": 2})", "a").has_value());
  CHECK_FALSE(sync::member_text(R"({"\u0061": 1})", "a").has_value());
  CHECK_FALSE(sync::member_text("[1]", "a").has_value());
}
