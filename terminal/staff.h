// Staff sign-in for the counter page (docs/counter.md): the accounts HQ's
// feed delivers, PINs checked against their slow hash, a lock after a run
// of wrong PINs (kept in SQLite, so a restart does not reset it), and
// signed-in sessions: a random id in an HttpOnly, SameSite=Strict cookie,
// a CSRF token the page sends back on every write, an idle timeout. The
// terminal's API token never reaches a browser.
//
// Thread-safety: CounterAuth's functions may be called from any thread
// (sessions under a mutex; the database through Store).
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "platform/sqlite.h"
#include "terminal/store.h"

namespace loyalty::terminal {

struct StaffRow {
  std::string staff_id, name, role, pin_hash;
  bool active = true;
  std::int64_t failures = 0, locked_until = 0;  // unix seconds
};

// HQ's account as the feed sent it; a run of failures and its lock stay.
void put_staff(platform::Db& db, const StaffRow& row);
std::optional<StaffRow> find_staff(platform::Db& db, const std::string& staff_id);

struct CounterSession {
  std::string id;    // the cookie's value
  std::string csrf;  // sent back in X-CSRF-Token on every write
  std::string staff_id, name, role;
  std::int64_t last_seen_ms = 0;
  bool supervisor() const { return role == "supervisor"; }
};

struct SignInRefusal {
  enum class Why {
    kWrong,      // no such id, or a wrong PIN: the same answer for both
    kLocked,     // too many wrong PINs for this account
    kDisabled,   // HQ disabled the account (told only to who knows the PIN)
    kThrottled,  // too many wrong sign-ins at this terminal, any account
    kStorage,    // the database could not be read or written
  };
  Why why = Why::kWrong;
  std::int64_t retry_after_s = 0;  // kLocked, kThrottled
  int failures_left = 0;           // kWrong for a known account
  std::string detail;              // kStorage
};

struct CounterAuthOptions {
  int max_failures = 5;           // wrong PINs in a row before the lock
  int lockout_s = 600;            // how long the lock holds
  int idle_timeout_s = 900;       // a session unused this long is over
  int terminal_failures = 20;     // wrong sign-ins at this terminal, any account,
  int terminal_window_s = 300;    //   within this window pause every sign-in
  std::size_t max_sessions = 64;  // the oldest goes past this
};

class CounterAuth {
 public:
  CounterAuth(Store& store, CounterAuthOptions options, std::function<std::int64_t()> now_ms);

  // Checks the PIN and opens a session, or says why not.
  [[nodiscard]] std::expected<CounterSession, SignInRefusal> sign_in(const std::string& staff_id,
                                                                     const std::string& pin);
  // The session of a Cookie header, its staff still active here; marks it
  // used. nullopt when there is none, it went idle, or HQ disabled them.
  std::optional<CounterSession> session(std::string_view cookie_header);
  // Whether the Cookie header names a live session (without marking it used).
  bool has_session(std::string_view cookie_header) const;
  void sign_out(std::string_view cookie_header);

  static constexpr std::string_view kCookie = "loyalty_counter";

 private:
  std::string cookie_value(std::string_view header) const;

  Store& store_;
  CounterAuthOptions options_;
  std::function<std::int64_t()> now_ms_;
  mutable std::mutex mutex_;
  std::map<std::string, CounterSession> sessions_;
  std::vector<std::int64_t> recent_failures_;  // ms, this terminal, any account
  std::string dummy_hash_;                     // checked for an unknown id, so it takes as long
};

}  // namespace loyalty::terminal
