#include "terminal/checkout.h"

#include <algorithm>

#include "core/io_json.h"
#include "core/ledger.h"
#include "core/program_loader.h"
#include "core/return_basis.h"
#include "platform/log.h"
#include "terminal/checkout_util.h"

namespace loyalty::terminal {

using detail::problem;
using platform::Db;

ApiError storage_problem(const core::Error& e) {
  platform::log_error("storage: " + e.message);
  // An I/O error at COMMIT (writing or flushing the log) leaves the outcome
  // open: the log may hold the sale, and a restart would find it. A full
  // disk writes nothing. Retrying with the same key is safe either way: it
  // returns the sale if it was kept and commits it once if not.
  if (e.outcome_unknown)
    return problem(503, "storage-failure", "The terminal could not confirm the save",
                   "the disk failed while saving, so the sale may or may not be recorded; check "
                   "the terminal's disk, then retry with the same Idempotency-Key (" +
                       e.message + ")");
  return problem(503, "storage-failure", "The terminal could not save",
                 "nothing was recorded; check the terminal's disk, then retry with the same "
                 "Idempotency-Key (" +
                     e.message + ")");
}

Checkout::Checkout(Store& store, TerminalSettings settings,
                   std::optional<platform::SigningKey> hq_key, Clock clock)
    : store_(store),
      settings_(std::move(settings)),
      hq_key_(std::move(hq_key)),
      clock_(std::move(clock)),
      started_at_(clock_()) {}

core::Status Checkout::load_programs() {
  auto rows = store_.read<std::vector<std::pair<std::int64_t, std::string>>>(
      [](Db& db) -> core::Result<std::vector<std::pair<std::int64_t, std::string>>> {
        std::vector<std::pair<std::int64_t, std::string>> out;
        platform::Stmt s(
            db, "SELECT effective_from, body FROM programs ORDER BY effective_from, version");
        while (s.step()) out.emplace_back(s.integer(0), s.text(1));
        return out;
      });
  if (!rows) return std::unexpected(rows.error());
  auto last = store_.read<std::int64_t>(
      [](Db& db) -> core::Result<std::int64_t> { return last_receipt(db); });
  if (!last) return std::unexpected(last.error());
  next_receipt_ = *last;
  std::lock_guard lock(programs_mutex_);
  programs_.clear();
  for (const auto& [from, body] : *rows) {
    auto p = core::load_program_text(body);
    // Only validated programs are ever installed; one that no longer loads
    // means this build cannot run it.
    if (!p) return std::unexpected(p.error());
    programs_.emplace_back(from, std::make_shared<const core::Program>(std::move(*p)));
  }
  return {};
}

core::Result<bool> Checkout::install_program(const std::string& body, std::int64_t effective_from) {
  auto p = core::load_program_text(body);
  if (!p) return std::unexpected(p.error());
  if (auto z = core::check_zone(settings_.zone); !z) return std::unexpected(z.error());
  const auto now = clock_();
  auto added = store_.write<bool>([&](Db& db) -> core::Result<bool> {
    platform::Stmt same(db, "SELECT body FROM programs WHERE program_id = ?1 AND version = ?2");
    same.bind(1, p->id).bind(2, p->version);
    // A version is immutable once installed: a changed file must carry a new
    // version number, or terminals would disagree about what vN means.
    if (same.step() && same.text(0) != body)
      return core::invalid("version", "program " + p->id + " version " +
                                          std::to_string(p->version) +
                                          " is already installed with other content; give the "
                                          "changed program a new version number");
    return terminal::install_program(db, p->id, p->version, effective_from, body, now);
  });
  if (!added) return added;
  if (*added) {
    std::lock_guard lock(programs_mutex_);
    programs_.emplace_back(effective_from, std::make_shared<const core::Program>(std::move(*p)));
    std::stable_sort(programs_.begin(), programs_.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second->version < b.second->version;
    });
  }
  return added;
}

std::shared_ptr<const core::Program> Checkout::program_at(std::int64_t now) {
  std::lock_guard lock(programs_mutex_);
  std::shared_ptr<const core::Program> best;
  // Sorted by effective time: the last one already in effect is in force.
  for (const auto& [from, p] : programs_)
    if (from <= now) best = p;
  return best;
}

std::optional<std::pair<std::int64_t, std::shared_ptr<const core::Program>>>
Checkout::program_after(std::int64_t now) {
  std::lock_guard lock(programs_mutex_);
  for (const auto& [from, p] : programs_)
    if (from > now) return std::pair{from, p};
  return std::nullopt;
}

void Checkout::note_contact(Db& db, std::int64_t now, std::int64_t skew) {
  const auto up = uptime_();
  sync_set(
      db, "contact",
      Json{{"at", now}, {"hq_at", now - skew}, {"boot", up.boot_id}, {"uptime_ms", up.ms}}.dump());
}

std::optional<Checkout::Contact> Checkout::last_contact(Db& db) {
  const auto text = sync_get(db, "contact");
  if (!text) return std::nullopt;
  const auto j = Json::parse(*text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return Contact{j.value("at", std::int64_t{0}), j.value("hq_at", std::int64_t{0}),
                 j.value("boot", ""), j.value("uptime_ms", std::int64_t{0})};
}

Checkout::AllowanceClock Checkout::allowance_clock(Db& db, std::int64_t wall_now) {
  AllowanceClock c;
  const auto contact = last_contact(db);
  const auto up = uptime_();
  if (contact && contact->boot == up.boot_id && up.ms >= contact->uptime_ms) {
    c.now = contact->hq_at + (up.ms - contact->uptime_ms) / 1000;
    c.since = contact->hq_at;
    c.measured = true;
  } else {
    // Restarted the machine since (or never reached HQ): nothing measured
    // the time in between, so the wall clock it is; the clock-behind check
    // and the maximum offline age bound what that allows.
    c.now = wall_now;
    if (const auto last = sync_get(db, "last_sync_at")) c.since = std::stoll(*last);
  }
  const auto local =
      core::to_local(std::chrono::sys_seconds(std::chrono::seconds(c.now)), settings_.zone);
  c.day = local ? core::format_local_date(core::day_of(*local)) : std::string();
  return c;
}

bool Checkout::offline(Db& db) {
  if (settings_.standalone) return false;
  if (sync_get(db, "online").value_or("0") != "1") return true;  // the last round failed
  // The last round succeeded, but how long ago? A round that hangs (HQ
  // half-up) must not keep the till "online" while it waits.
  const auto contact = last_contact(db);
  const auto up = uptime_();
  return !contact || contact->boot != up.boot_id || up.ms < contact->uptime_ms ||
         up.ms - contact->uptime_ms > settings_.online_freshness_ms;
}

void Checkout::raise_receipts_to(std::int64_t last) {
  auto cur = next_receipt_.load();
  while (cur < last && !next_receipt_.compare_exchange_weak(cur, last)) {
  }
}

std::string Checkout::new_txn_id(std::int64_t seq) const {
  std::string n = std::to_string(seq);
  if (n.size() < 8) n.insert(0, 8 - n.size(), '0');
  return settings_.store_id + "-" + settings_.terminal_id + "-" + n;
}

Checkout::OfflineLeft Checkout::offline_left(Db& db, const core::Program& p,
                                             const std::string& member_id, const std::string& day) {
  const auto pick = [](std::int64_t program, std::int64_t fallback) {
    return program > 0 ? program : fallback;
  };
  const auto& d = settings_.default_allowance;
  OfflineLeft o;
  o.per_member = pick(p.offline.max_points_per_member_per_day, d.max_points_per_member_per_day);
  o.per_terminal =
      pick(p.offline.max_points_per_terminal_per_day, d.max_points_per_terminal_per_day);
  o.member_left =
      std::max<std::int64_t>(0, o.per_member - offline_points_redeemed(db, day, member_id));
  o.terminal_left =
      std::max<std::int64_t>(0, o.per_terminal - offline_points_redeemed(db, day, ""));
  return o;
}

std::optional<ApiError> Checkout::check_offline_allowance(
    Db& db, const core::Program& p, const std::string& member_id, std::int64_t points,
    const AllowanceClock& clock, std::int64_t now, const char* redeem_field, bool applies) {
  if (points <= 0 || !applies) return std::nullopt;
  const auto pick = [](std::int64_t program, std::int64_t fallback) {
    return program > 0 ? program : fallback;
  };
  const auto& d = settings_.default_allowance;
  const auto max_hours = pick(p.offline.max_hours_since_sync, d.max_hours_since_sync);
  const std::int64_t since = clock.since.value_or(-1);
  const auto sell_anyway = " The sale can go ahead without redeeming points.";
  const std::string field = redeem_field;
  if (const auto refused = sync_get(db, "hq_refused_terminal")) {
    counters_.refused_offline++;
    return problem(409, "terminal-refused-by-hq", "Redemption stopped: HQ refuses this terminal",
                   "HQ refuses this terminal (" + *refused +
                       "): it was revoked or is not registered, so nothing it does reaches HQ; "
                       "provision it again." +
                       sell_anyway,
                   field);
  }
  // A clock behind this terminal's own last sync or sale (set back, or a
  // dead RTC battery) would open a new "day" of allowances and hide how long
  // the terminal has been offline: no offline redemption until it is right.
  constexpr std::int64_t kClockSlack = 300;
  // Sales HQ has acknowledged are left out: one dated by a clock that ran
  // fast, since corrected, must not pause redemptions for as long.
  platform::Stmt newest(db,
                        "SELECT MAX(t.committed_at) FROM transactions t JOIN outbox o ON o.txn_id "
                        "= t.txn_id WHERE o.acked_at IS NULL");
  const auto last_sale = newest.step() && !newest.is_null(0) ? newest.integer(0) : -1;
  const auto last = sync_get(db, "last_sync_at");
  const std::int64_t synced_at = last ? std::stoll(*last) : -1;
  if (const auto seen = std::max(synced_at, last_sale); seen > now + kClockSlack) {
    counters_.refused_offline++;
    return problem(409, "clock-behind", "Redemption paused: terminal clock behind",
                   "this terminal's clock is " + std::to_string((seen - now + 59) / 60) +
                       " minutes behind its last sync or sale; correct the clock (or wait for "
                       "HQ) before redeeming offline." +
                       sell_anyway,
                   field);
  }
  if (since < 0 || clock.now - since > max_hours * 3600) {
    counters_.refused_offline++;
    return problem(409, "offline-too-long", "Redemption paused: offline too long",
                   (since < 0 ? std::string("this terminal has not synced with HQ yet")
                              : "this terminal last synced with HQ " +
                                    std::to_string((clock.now - since) / 3600) + " hours ago") +
                       "; offline redemptions need a sync within the last " +
                       std::to_string(max_hours) + " hours." + sell_anyway,
                   field);
  }
  const auto [per_member, per_terminal, member_left, terminal_left] =
      offline_left(db, p, member_id, clock.day);
  if (points > member_left || points > terminal_left) {
    counters_.refused_offline++;
    const bool member_limit = member_left <= terminal_left;
    return problem(
        409, "offline-allowance-exceeded", "Offline redemption limit reached",
        std::string("while offline, ") +
            (member_limit ? "a member may redeem " + std::to_string(per_member) +
                                " points a day here; " + std::to_string(member_left) + " left today"
                          : "this terminal may redeem " + std::to_string(per_terminal) +
                                " points a day; " + std::to_string(terminal_left) + " left today") +
            "." + sell_anyway,
        field, Json{{"max_points_now", std::min(member_left, terminal_left)}});
  }
  return std::nullopt;
}

std::optional<ApiError> Checkout::check_live(Db& db, const LiveMember& live,
                                             const std::string& member_id, std::int64_t points,
                                             core::LocalDays today, const char* redeem_field) {
  if (live.blocked) {
    counters_.live_refused++;
    return problem(403, "member-blocked", "Member blocked",
                   "HQ has blocked this membership; the sale can go ahead without loyalty, "
                   "refer the member to customer service",
                   "member_id");
  }
  // HQ's balance now plus what this terminal sold that HQ has not applied
  // yet: the member's points as of this moment across every store.
  const auto hq_now =
      live.state.available(today) + points_after_seq(db, member_id, live.applied_seq);
  if (points <= hq_now) {
    counters_.live_confirmed++;
    return std::nullopt;
  }
  counters_.live_refused++;
  const auto most = std::max<std::int64_t>(0, hq_now);
  return problem(409, "points-spent-elsewhere", "Not enough points at HQ",
                 "HQ shows " + std::to_string(most) +
                     " points for this member now (some were used at another store since this "
                     "terminal last heard); redeem at most that, or sell without redeeming",
                 redeem_field, Json{{"max_points_now", most}, {"hq_available", hq_now}});
}

ApiResult Checkout::quote(const Json& body) {
  counters_.quotes++;
  auto member_id = detail::read_member_id(body);
  if (!member_id) return std::unexpected(member_id.error());
  auto req = detail::read_request(body);
  if (!req) return std::unexpected(req.error());
  const auto now = clock_();
  auto program = program_at(now);
  if (!program)
    return std::unexpected(problem(503, "no-program", "No program installed",
                                   "this terminal has no loyalty program yet; sell without "
                                   "loyalty and check its provisioning"));
  auto local = core::to_local(std::chrono::sys_seconds(std::chrono::seconds(now)), settings_.zone);
  if (!local) return std::unexpected(detail::from_error(local.error()));
  req->at = *local;
  req->zone = settings_.zone;
  req->txn_id = "quote";
  auto r = store_.read<Reply>([&](Db& db) -> core::Result<Reply> {
    auto m = find_member(db, MemberKey::kId, *member_id);
    if (!m) return core::fail(core::ErrorCode::kNotFound, "member");
    attach_referrer(db, m->state, core::day_of(*local), settings_.standalone);
    auto outcome = core::evaluate(*program, m->state, *req);
    if (!outcome) return std::unexpected(outcome.error());
    Json j = core::outcome_to_json(*outcome, *program);
    const bool is_offline = offline(db);
    j["offline"] = is_offline;
    const auto available = m->state.available(core::day_of(*local));
    Json redemption{{"available_points", std::max<std::int64_t>(0, available)}};
    if (auto refusal = check_offline_allowance(
            db, *program, m->id, outcome->points_redeemed, allowance_clock(db, now), now,
            req->trigger == core::Trigger::kRedeem ? "reward" : "basket.redeem_points", is_offline))
      redemption["refused"] = {{"type", refusal->type}, {"detail", refusal->detail}};
    j["redemption"] = redemption;
    j["member"] = member_summary(db, *m, *program, now);
    for (const auto& line : j["member"]["receipt_lines"]) j["receipt"].push_back(line);
    j["member"].erase("receipt_lines");
    return Reply{j, 200, false, {}};
  });
  if (!r && r.error().code == core::ErrorCode::kNotFound && r.error().message == "member")
    return std::unexpected(
        problem(404, "unknown-member", "Unknown member",
                "no member " + *member_id + " at this terminal; scan the code again or enroll them",
                "member_id"));
  if (!r) return std::unexpected(detail::from_error(r.error()));
  return *r;
}

ApiResult Checkout::commit(const Json& body, const std::string& idem_key,
                           const std::string& staff_id) {
  const bool event = body.is_object() && body.contains("event");
  const bool redeem = event && body["event"] == "redeem";
  return commit_request(body, idem_key,
                        redeem  ? "redeem"
                        : event ? "event"
                                : "purchase",
                        "commit", staff_id);
}

}  // namespace loyalty::terminal
