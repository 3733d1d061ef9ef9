#include "terminal/staff.h"

#include <algorithm>

#include "platform/crypto.h"
#include "platform/log.h"

namespace loyalty::terminal {

using platform::Db;
using platform::Stmt;

void put_staff(Db& db, const StaffRow& row) {
  // A new PIN from HQ (someone forgot theirs) lifts the lock; the same
  // one (a change of name or role) keeps it.
  Stmt s(db,
         "INSERT INTO staff(staff_id, name, role, pin_hash, active) VALUES (?1, ?2, ?3, ?4, ?5) "
         "ON CONFLICT(staff_id) DO UPDATE SET name = ?2, role = ?3, active = ?5, "
         "failures = CASE WHEN pin_hash = ?4 THEN failures ELSE 0 END, "
         "locked_until = CASE WHEN pin_hash = ?4 THEN locked_until ELSE 0 END, pin_hash = ?4");
  s.bind(1, row.staff_id).bind(2, row.name).bind(3, row.role).bind(4, row.pin_hash);
  s.bind(5, std::int64_t{row.active});
  s.exec();
}

std::optional<StaffRow> find_staff(Db& db, const std::string& staff_id) {
  Stmt s(db,
         "SELECT staff_id, name, role, pin_hash, active, failures, locked_until FROM staff "
         "WHERE staff_id = ?1");
  s.bind(1, staff_id);
  if (!s.step()) return std::nullopt;
  return StaffRow{s.text(0),         s.text(1),    s.text(2),   s.text(3),
                  s.integer(4) != 0, s.integer(5), s.integer(6)};
}

namespace {

std::string cookie_of(std::string_view header, std::string_view name) {
  // "a=1; loyalty_counter=abc; b=2"
  while (!header.empty()) {
    const auto semi = header.find(';');
    auto part = header.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return {};
}

std::unexpected<SignInRefusal> refuse(SignInRefusal::Why why, std::int64_t retry_after_s = 0,
                                      std::int64_t failures_left = 0, std::string detail = {}) {
  return std::unexpected(
      SignInRefusal{why, retry_after_s, static_cast<int>(failures_left), std::move(detail)});
}

}  // namespace

CounterAuth::CounterAuth(Store& store, CounterAuthOptions options,
                         std::function<std::int64_t()> now_ms)
    : store_(store),
      options_(options),
      now_ms_(std::move(now_ms)),
      // A hash of the usual form and cost that no PIN was hashed into (its
      // bytes are random): checking against it costs what a real one does,
      // and nothing is hashed at start-up.
      dummy_hash_("pbkdf2-sha256$" + std::to_string(platform::kPinIterations) + "$" +
                  platform::base64url_encode(platform::random_bytes(16)) + "$" +
                  platform::base64url_encode(platform::random_bytes(32))) {}

std::string CounterAuth::cookie_value(std::string_view header) const {
  return cookie_of(header, kCookie);
}

std::expected<CounterSession, SignInRefusal> CounterAuth::sign_in(const std::string& staff_id,
                                                                  const std::string& pin) {
  using Why = SignInRefusal::Why;
  const auto now_ms = now_ms_();
  const auto now_s = now_ms / 1000;
  {
    std::lock_guard lock(mutex_);
    const auto window = std::int64_t{options_.terminal_window_s} * 1000;
    std::erase_if(recent_failures_, [&](std::int64_t t) { return t <= now_ms - window; });
    if (static_cast<int>(recent_failures_.size()) >= options_.terminal_failures)
      return refuse(Why::kThrottled, (recent_failures_.front() + window - now_ms) / 1000 + 1);
  }
  auto row = store_.read<std::optional<StaffRow>>(
      [&](Db& db) -> core::Result<std::optional<StaffRow>> { return find_staff(db, staff_id); });
  if (!row) return refuse(Why::kStorage, 0, 0, row.error().message);
  if (*row && (*row)->locked_until > now_s)
    return refuse(Why::kLocked, (*row)->locked_until - now_s);
  // An unknown id costs the same hash as a known one: the time of the
  // answer does not tell which ids exist.
  const bool ok = platform::verify_pin(pin, *row ? (*row)->pin_hash : dummy_hash_) && *row;
  if (!ok) {
    {
      std::lock_guard lock(mutex_);
      recent_failures_.push_back(now_ms);
    }
    if (!*row) return refuse(Why::kWrong);
    const auto failures = (*row)->failures + 1;
    const bool lock_now = failures >= options_.max_failures;
    auto saved = store_.write<bool>([&](Db& db) -> core::Result<bool> {
      Stmt s(db, "UPDATE staff SET failures = ?2, locked_until = ?3 WHERE staff_id = ?1");
      s.bind(1, staff_id)
          .bind(2, lock_now ? std::int64_t{0} : failures)
          .bind(3, lock_now ? now_s + options_.lockout_s : std::int64_t{0});
      s.exec();
      return true;
    });
    if (!saved) return refuse(Why::kStorage, 0, 0, saved.error().message);
    if (lock_now) {
      platform::log_warn("counter: staff " + staff_id + " locked for " +
                         std::to_string(options_.lockout_s) + " s after " +
                         std::to_string(failures) + " wrong PINs");
      return refuse(Why::kLocked, options_.lockout_s);
    }
    return refuse(Why::kWrong, 0, static_cast<int>(options_.max_failures - failures));
  }
  const auto& staff = **row;
  if (!staff.active) return refuse(Why::kDisabled);
  if (staff.failures != 0) {
    auto saved = store_.write<bool>([&](Db& db) -> core::Result<bool> {
      Stmt s(db, "UPDATE staff SET failures = 0, locked_until = 0 WHERE staff_id = ?1");
      s.bind(1, staff_id);
      s.exec();
      return true;
    });
    if (!saved) return refuse(Why::kStorage, 0, 0, saved.error().message);
  }
  CounterSession session{platform::random_hex(32),
                         platform::random_hex(16),
                         staff.staff_id,
                         staff.name,
                         staff.role,
                         now_ms};
  std::lock_guard lock(mutex_);
  if (sessions_.size() >= options_.max_sessions) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](auto& a, auto& b) {
      return a.second.last_seen_ms < b.second.last_seen_ms;
    });
    sessions_.erase(oldest);
  }
  sessions_[session.id] = session;
  platform::log_info("counter: " + staff.staff_id + " (" + staff.role + ") signed in");
  return session;
}

std::optional<CounterSession> CounterAuth::session(std::string_view cookie_header) {
  const auto id = cookie_value(cookie_header);
  if (id.empty()) return std::nullopt;
  const auto now_ms = now_ms_();
  CounterSession s;
  {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(id);
    if (it == sessions_.end()) return std::nullopt;
    if (now_ms - it->second.last_seen_ms > std::int64_t{options_.idle_timeout_s} * 1000) {
      sessions_.erase(it);
      return std::nullopt;
    }
    it->second.last_seen_ms = now_ms;
    s = it->second;
  }
  // HQ may have disabled them, or changed their role, since they signed in.
  auto row = store_.read<std::optional<StaffRow>>(
      [&](Db& db) -> core::Result<std::optional<StaffRow>> { return find_staff(db, s.staff_id); });
  if (!row || !*row || !(*row)->active) {
    if (row) sign_out(cookie_header);
    return std::nullopt;
  }
  s.role = (*row)->role;
  s.name = (*row)->name;
  return s;
}

bool CounterAuth::has_session(std::string_view cookie_header) const {
  const auto id = cookie_value(cookie_header);
  if (id.empty()) return false;
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(id);
  return it != sessions_.end() &&
         now_ms_() - it->second.last_seen_ms <= std::int64_t{options_.idle_timeout_s} * 1000;
}

void CounterAuth::sign_out(std::string_view cookie_header) {
  const auto id = cookie_value(cookie_header);
  std::lock_guard lock(mutex_);
  sessions_.erase(id);
}

}  // namespace loyalty::terminal
