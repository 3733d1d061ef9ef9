// HqLedger's registry of terminals: who may upload, and how their clocks
// stand.
//
// Invariants it keeps:
// - A terminal is registered once, with the fingerprint of the certificate
//   HQ issued it; a connection presenting any other certificate under its
//   name is refused, even one signed by the same CA.
// - The registry answers operators (terminals()): last seen, uploads,
//   measured clock skew, with an unmeasured clock shown as unknown.
// - A revoked terminal stays in the table (its past sales keep their
//   origin) and may not write again; ingest checks this inside its own
//   transaction, so a revocation and a batch cannot interleave.
#include <algorithm>
#include <map>
#include <set>

#include "core/engine.h"
#include "core/io_json.h"
#include "core/local_time.h"
#include "core/member_delta.h"
#include "core/program_loader.h"
#include "core/return_basis.h"
#include "hq/ledger.h"
#include "hq/ledger_internal.h"
#include "platform/log.h"

namespace loyalty::hq {

using namespace detail;

core::Status HqLedger::add_terminal(const std::string& store, const std::string& terminal,
                                    const std::string& fingerprint) {
  std::lock_guard lock(mutex_);
  auto r = in_transaction(db_, [&]() -> core::Result<bool> {
    auto rows = db_.query("SELECT revoked FROM terminals WHERE store_id = ?1 AND terminal_id = ?2",
                          {store, terminal});
    if (!rows.empty())
      return core::fail(core::ErrorCode::kConflict,
                        "terminal " + store + "/" + terminal + " already exists");
    db_.exec(
        "INSERT INTO terminals(store_id, terminal_id, cert_fingerprint, created_at) "
        "VALUES (?1, ?2, ?3, ?4)",
        {store, terminal, fingerprint, clock_()});
    return true;
  });
  if (!r) return std::unexpected(r.error());
  return {};
}

core::Status HqLedger::revoke_terminal(const std::string& store, const std::string& terminal) {
  std::lock_guard lock(mutex_);
  auto r = in_transaction(db_, [&]() -> core::Result<bool> {
    if (db_.exec("UPDATE terminals SET revoked = 1 WHERE store_id = ?1 AND terminal_id = ?2",
                 {store, terminal}) != 1)
      return core::fail(core::ErrorCode::kNotFound, "no terminal " + store + "/" + terminal);
    return true;
  });
  if (!r) return std::unexpected(r.error());
  return {};
}

core::Status HqLedger::check_terminal(const std::string& store, const std::string& terminal,
                                      const std::string& fingerprint) {
  std::lock_guard lock(mutex_);
  try {
    auto rows = db_.query(
        "SELECT revoked, cert_fingerprint FROM terminals WHERE store_id = ?1 AND terminal_id = ?2",
        {store, terminal});
    if (rows.empty())
      return core::fail(core::ErrorCode::kNotFound,
                        "terminal " + store + "/" + terminal + " is not registered at HQ");
    if (rows[0].integer(0) != 0)
      return core::fail(core::ErrorCode::kFailedPrecondition,
                        "terminal " + store + "/" + terminal + " has been revoked");
    if (!fingerprint.empty() && rows[0].text(1) != fingerprint)
      return core::fail(
          core::ErrorCode::kFailedPrecondition,
          "terminal " + store + "/" + terminal + " presented a certificate HQ did not issue to it");
  } catch (const SqlError& e) {
    return core::fail(core::ErrorCode::kUnavailable, e.what());
  }
  return {};
}

void HqLedger::note_clock(const std::string& terminal, std::int64_t skew, std::int64_t now) {
  // Once when it goes off, then hourly while it stays off (a terminal
  // uploads every few seconds), and once when it is right again.
  const bool off = skew > kClockToleranceSeconds || skew < -kClockToleranceSeconds;
  const auto it = clock_warned_.find(terminal);
  if (off && (it == clock_warned_.end() || now - it->second >= 3600)) {
    platform::log_warn("terminal " + terminal + "'s clock is " + std::to_string(skew) +
                       " s off HQ's; its sales are misdated until it is corrected");
    clock_warned_[terminal] = now;
  } else if (!off && it != clock_warned_.end()) {
    platform::log_info("terminal " + terminal + "'s clock is right again (" + std::to_string(skew) +
                       " s off HQ's)");
    clock_warned_.erase(it);
  }
}

core::Result<Json> HqLedger::terminals() {
  std::lock_guard lock(mutex_);
  try {
    Json out = Json::array();
    for (const auto& t :
         db_.query("SELECT store_id, terminal_id, revoked, next_seq, last_seen, clock_skew "
                   "FROM terminals ORDER BY store_id, terminal_id")) {
      Json j{{"store_id", t.text(0)},
             {"terminal_id", t.text(1)},
             {"revoked", t.integer(2) != 0},
             {"uploaded", t.integer(3) - 1},
             {"last_seen", t.is_null(4) ? Json(nullptr) : Json(t.integer(4))},
             {"clock_skew_seconds", t.is_null(5) ? Json(nullptr) : Json(t.integer(5))}};
      // Never measured (it never reached HQ): unknown, not "ok".
      const auto skew = t.integer(5);
      j["clock_ok"] = t.is_null(5)
                          ? Json(nullptr)
                          : Json(skew >= -kClockToleranceSeconds && skew <= kClockToleranceSeconds);
      out.push_back(j);
    }
    return Json{{"terminals", out}};
  } catch (const SqlError& e) {
    return db_failure(e);
  }
}

}  // namespace loyalty::hq
