// Counter sign-in on the terminal: PINs checked against HQ's hash, a lock
// after a run of wrong PINs that a restart does not lift, a new PIN from
// HQ that does, sessions that end when idle or when HQ disables the person,
// and a pause of every sign-in when a terminal sees too many wrong ones.
#include <catch2/catch.hpp>
#include <filesystem>

#include "platform/crypto.h"
#include "terminal/staff.h"
#include "tests/scratch.h"

using namespace loyalty;
using terminal::CounterAuth;
using Why = terminal::SignInRefusal::Why;

namespace {

struct Counter {
  std::unique_ptr<terminal::Store> store;
  std::int64_t now_ms = 1'795'300'000'000;
  terminal::CounterAuthOptions options;

  Counter() {
    const auto path = test::remove_after_run(std::filesystem::temp_directory_path() /
                                             ("counter-" + platform::random_hex(4) + ".db"));
    auto s = terminal::Store::open(path.string());
    REQUIRE(s);
    store = std::move(*s);
  }
  // What HQ's feed does with a staff change.
  void put(const std::string& id, const std::string& pin, const std::string& role = "clerk",
           bool active = true) {
    // Few iterations: the test is about the rules, not the cost.
    const auto hash = platform::hash_pin(pin, 1000);
    REQUIRE(store->write<bool>([&](platform::Db& db) -> core::Result<bool> {
      terminal::put_staff(db, {id, "王芳", role, hash, active});
      return true;
    }));
  }
  CounterAuth auth() {
    return CounterAuth(*store, options, [this] { return now_ms; });
  }
};

std::string cookie(const terminal::CounterSession& s) {
  return "theme=dark; " + std::string(CounterAuth::kCookie) + "=" + s.id;
}

}  // namespace

TEST_CASE("a clerk signs in with the right PIN, and a wrong PIN or id gets the same answer",
          "[terminal][staff]") {
  Counter c;
  c.put("1001", "2468");
  auto auth = c.auth();
  auto s = auth.sign_in("1001", "2468");
  REQUIRE(s);
  CHECK(s->name == "王芳");
  CHECK(s->role == "clerk");
  CHECK_FALSE(s->supervisor());
  CHECK(s->csrf.size() == 32);
  auto again = auth.session(cookie(*s));
  REQUIRE(again);
  CHECK(again->staff_id == "1001");
  CHECK(auth.has_session(cookie(*s)));
  CHECK_FALSE(auth.session("loyalty_counter=" + std::string(64, 'a')));

  auto wrong = auth.sign_in("1001", "1357");
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().why == Why::kWrong);
  CHECK(wrong.error().failures_left == 4);
  auto nobody = auth.sign_in("7777", "2468");
  REQUIRE_FALSE(nobody);
  CHECK(nobody.error().why == Why::kWrong);

  auth.sign_out(cookie(*s));
  CHECK_FALSE(auth.session(cookie(*s)));
}

TEST_CASE(
    "five wrong PINs lock the account, through a restart, until it expires or HQ "
    "sends a new PIN",
    "[terminal][staff]") {
  Counter c;
  c.put("1001", "2468");
  {
    auto auth = c.auth();
    for (int i = 0; i < 4; ++i) CHECK(auth.sign_in("1001", "0000").error().why == Why::kWrong);
    auto locked = auth.sign_in("1001", "0000");
    CHECK(locked.error().why == Why::kLocked);
    CHECK(locked.error().retry_after_s == 600);
    CHECK(auth.sign_in("1001", "2468").error().why == Why::kLocked);  // even the right PIN
  }
  auto restarted = c.auth();  // loyaltyd restarted: the lock is in SQLite
  c.now_ms += 599'000;
  CHECK(restarted.sign_in("1001", "2468").error().why == Why::kLocked);
  c.now_ms += 2'000;
  CHECK(restarted.sign_in("1001", "2468"));

  // Locked again; HQ gives them a new PIN, which lifts the lock.
  for (int i = 0; i < 5; ++i) (void)restarted.sign_in("1001", "0000");
  CHECK(restarted.sign_in("1001", "2468").error().why == Why::kLocked);
  c.put("1001", "8642");
  CHECK(restarted.sign_in("1001", "8642"));
  // A right PIN ends the run of wrong ones.
  for (int i = 0; i < 4; ++i) (void)restarted.sign_in("1001", "0000");
  CHECK(restarted.sign_in("1001", "8642"));
  CHECK(restarted.sign_in("1001", "0000").error().failures_left == 4);
}

TEST_CASE("a session ends when idle, and at once when HQ disables the person",
          "[terminal][staff]") {
  Counter c;
  c.put("1001", "2468");
  c.put("9001", "1357", "supervisor");
  auto auth = c.auth();
  auto s = auth.sign_in("1001", "2468");
  REQUIRE(s);
  c.now_ms += 899'000;
  CHECK(auth.session(cookie(*s)));  // used: the idle time starts again
  c.now_ms += 899'000;
  CHECK(auth.session(cookie(*s)));
  c.now_ms += 901'000;
  CHECK_FALSE(auth.session(cookie(*s)));
  CHECK_FALSE(auth.has_session(cookie(*s)));

  auto boss = auth.sign_in("9001", "1357");
  REQUIRE(boss);
  CHECK(boss->supervisor());
  c.put("9001", "1357", "supervisor", false);  // HQ disabled them
  CHECK_FALSE(auth.session(cookie(*boss)));
  auto disabled = auth.sign_in("9001", "1357");
  CHECK(disabled.error().why == Why::kDisabled);
  CHECK(auth.sign_in("9001", "0000").error().why == Why::kWrong);  // no hint without the PIN
}

TEST_CASE("too many wrong sign-ins at one terminal pause every sign-in for a while",
          "[terminal][staff]") {
  Counter c;
  c.options.terminal_failures = 6;
  c.put("1001", "2468");
  auto auth = c.auth();
  // Guessing across staff numbers: each gets few tries, the terminal fewer.
  for (int i = 0; i < 6; ++i) CHECK_FALSE(auth.sign_in("x" + std::to_string(i), "0000"));
  auto paused = auth.sign_in("1001", "2468");
  REQUIRE_FALSE(paused);
  CHECK(paused.error().why == Why::kThrottled);
  CHECK(paused.error().retry_after_s > 0);
  c.now_ms += 301'000;
  CHECK(auth.sign_in("1001", "2468"));
}
