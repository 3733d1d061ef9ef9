// Member codes and the terminal's schema migrations, without the daemon.
#include <catch2/catch.hpp>
#include <filesystem>

#include "platform/crypto.h"
#include "terminal/member_codes.h"
#include "terminal/schema.h"
#include "terminal/store.h"
#include "tests/scratch.h"

using namespace loyalty;
using terminal::parse_member_code;

TEST_CASE("card numbers carry a Luhn check digit that catches typos", "[terminal][codes]") {
  // The classic Luhn example: 7992739871 has check digit 3.
  CHECK(terminal::luhn_check_digit("7992739871") == '3');
  for (int i = 0; i < 50; ++i) {
    const auto card = terminal::make_card_number();
    REQUIRE(card.size() == 16);
    CHECK(parse_member_code(card, nullptr, 0).has_value());
    // Any single wrong digit is caught, and so is swapping two neighbours
    // that differ (except 0/9, Luhn's known blind spot).
    auto typo = card;
    typo[5] = static_cast<char>('0' + (typo[5] - '0' + 1) % 10);
    CHECK_FALSE(parse_member_code(typo, nullptr, 0).has_value());
  }
  CHECK(parse_member_code("12345", nullptr, 0).error().type == "invalid-member-code");
}

TEST_CASE("dynamic codes verify offline, expire, and reject other keys", "[terminal][codes]") {
  const auto hq = platform::SigningKey::generate();
  const auto pub = platform::SigningKey::from_pem(hq.public_pem());
  REQUIRE(pub);
  CHECK_FALSE(pub->can_sign());
  const std::int64_t now = 1'800'000'000;
  const auto code = terminal::mint_dynamic_code(hq, "M-42", now + 60, "abcdef0123");
  CHECK(code.size() < 160);  // fits a small QR code
  auto ok = parse_member_code(code, &*pub, now);
  REQUIRE(ok);
  CHECK(ok->value == "M-42");
  CHECK(ok->nonce == "abcdef0123");
  CHECK(parse_member_code(code, &*pub, now + 60 + terminal::kClockSkew + 1).error().type ==
        "member-code-expired");
  CHECK(parse_member_code(code, nullptr, now).error().type == "member-code-unverifiable");
  const auto far = terminal::mint_dynamic_code(hq, "M-42", now + 86400, "abcdef0123");
  CHECK(parse_member_code(far, &*pub, now).error().type == "member-code-expired");
  auto flipped = code;
  flipped[6] = flipped[6] == 'A' ? 'B' : 'A';
  CHECK_FALSE(parse_member_code(flipped, &*pub, now).has_value());
}

TEST_CASE("an old terminal database upgrades to the current schema", "[terminal][store]") {
  const auto path = test::remove_after_run(std::filesystem::temp_directory_path() /
                                           ("loyaltyd-migrate-" + platform::random_hex(4) + ".db"));
  {
    auto db = platform::Db::open(path.string());
    REQUIRE(db);
    const auto all = terminal::terminal_migrations();
    REQUIRE(db->migrate(all.first(1)));
    CHECK(db->user_version() == 1);
    db->exec("INSERT INTO meta(key, value) VALUES ('last_seq', '41')");
  }
  {
    auto store = terminal::Store::open(path.string());
    REQUIRE(store);
    auto seq = (*store)->write<std::int64_t>(
        [](platform::Db& db) -> core::Result<std::int64_t> { return terminal::next_seq(db); });
    REQUIRE(seq);
    CHECK(*seq == 42);  // data written under v1 is still there
    auto v = (*store)->read<int>(
        [](platform::Db& db) -> core::Result<int> { return db.user_version(); });
    CHECK(*v == terminal::terminal_migrations().back().version);  // upgraded to the newest
    // v2 makes ledger entries append-only in the database itself: triggers
    // refuse any UPDATE or DELETE of an entry (on a real sale: daemon_test).
    auto triggers =
        (*store)->read<std::int64_t>([](platform::Db& db) -> core::Result<std::int64_t> {
          platform::Stmt s(db,
                           "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN "
                           "('entries_append_only_update', 'entries_append_only_delete')");
          s.step();
          return s.integer(0);
        });
    REQUIRE(triggers);
    CHECK(*triggers == 2);
  }
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
}
