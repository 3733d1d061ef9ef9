// Read-only views: status, outbox, stored transactions, rewards, metrics.
#include <set>
#include <sstream>

#include "core/return_basis.h"
#include "terminal/checkout.h"
#include "terminal/checkout_util.h"

namespace loyalty::terminal {

using detail::problem;
using platform::Db;

Json Checkout::status() {
  const auto now = clock_();
  auto program = program_at(now);
  auto r = store_.read<Json>([&](Db& db) -> core::Result<Json> {
    const auto out = outbox_stats(db);
    Json j{{"store_id", settings_.store_id},
           {"terminal_id", settings_.terminal_id},
           {"time_zone", settings_.zone},
           {"mode", settings_.standalone ? "standalone" : "synced"},
           {"online", settings_.standalone || !offline(db)},
           {"uptime_seconds", now - started_at_}};
    j["outbox"] = {{"depth", out.depth},
                   {"oldest_age_seconds",
                    out.oldest_queued_at ? Json(now - *out.oldest_queued_at) : Json(nullptr)}};
    const auto skew = sync_get(db, "hq_clock_skew");
    j["clock_skew_seconds"] = skew ? Json(std::stoll(*skew)) : Json(nullptr);
    // HQ's certificate out of its validity by this clock: a clock wrong by
    // days, which no skew measure can show (nothing reaches HQ).
    const auto clock_error = sync_get(db, "clock_error");
    j["clock_error"] = clock_error ? Json(*clock_error) : Json(nullptr);
    // When the offline allowances last knew HQ's time, by the monotonic clock.
    if (!settings_.standalone) {
      const auto allowance = allowance_clock(db, now);
      j["offline_allowance"] = {{"day", allowance.day},
                                {"trusted_time", allowance.measured},
                                {"contact_age_seconds", allowance.since && allowance.measured
                                                            ? Json(allowance.now - *allowance.since)
                                                            : Json(nullptr)}};
    }
    const auto last = sync_get(db, "last_sync_at");
    j["last_sync_at"] = last ? Json(std::stoll(*last)) : Json(nullptr);
    j["offline_since"] = nullptr;
    if (!settings_.standalone && offline(db)) {
      // The last round failed: since then (or since the last success before
      // it). The last round succeeded but too long ago (HQ hangs): since the
      // end of that success's window.
      const auto since = sync_get(db, "offline_since");
      const auto contact = last_contact(db);
      if (sync_get(db, "online").value_or("0") == "1" && contact)
        j["offline_since"] = contact->at + settings_.online_freshness_ms / 1000;
      else
        j["offline_since"] = since ? std::stoll(*since) : started_at_;
    }
    // Not an outage: HQ answered and refuses this terminal (revoked).
    const auto refuses = sync_get(db, "hq_refused_terminal");
    j["hq_refuses_terminal"] = refuses ? Json(*refuses) : Json(nullptr);
    const auto cursor = sync_get(db, "feed_cursor");
    j["feed"] = {{"cursor", cursor ? std::stoll(*cursor) : 0},
                 {"catching_up", sync_get(db, "feed_more").value_or("0") == "1"}};
    j["program"] =
        program ? Json{{"id", program->id}, {"version", program->version}, {"name", program->name}}
                : Json(nullptr);
    // A version installed for later: the operator can see it arrived.
    const auto next = program_after(now);
    j["program_next"] = next ? Json{{"id", next->second->id},
                                    {"version", next->second->version},
                                    {"effective_from", next->first}}
                             : Json(nullptr);
    platform::Stmt s(db, "SELECT COUNT(*) FROM members");
    s.step();
    j["members_cached"] = s.integer(0);
    platform::Stmt f(db, "SELECT COUNT(*), COUNT(DISTINCT member_id) FROM hq_flags");
    f.step();
    j["hq_flags"] = {{"count", f.integer(0)}, {"members", f.integer(1)}};
    // What HQ refused: sales whose receipt id names another transaction
    // there (a database restored from an older backup), and take-backs of
    // them. Kept here, no longer uploaded.
    Json refused = Json::array();
    platform::Stmt h(db,
                     "SELECT txn_id, refused FROM outbox WHERE refused IS NOT NULL ORDER BY seq");
    while (h.step()) refused.push_back({{"receipt_id", h.text(0)}, {"reason", h.text(1)}});
    j["hq_refused"] = refused;
    const auto caught = sync_get(db, "numbering_caught_up");
    j["numbering_caught_up"] = caught ? Json::parse(*caught, nullptr, false) : Json(nullptr);
    return j;
  });
  if (!r) return Json{{"error", r.error().message}};
  return *r;
}

ApiResult Checkout::outbox(std::int64_t limit) {
  auto r = store_.read<Json>([&](Db& db) -> core::Result<Json> {
    platform::Stmt s(db,
                     "SELECT o.seq, o.txn_id, o.queued_at, t.kind, t.member_id, t.points_earned, "
                     "t.points_redeemed, t.offline FROM outbox o JOIN transactions t "
                     "ON t.txn_id = o.txn_id WHERE o.acked_at IS NULL AND o.refused IS NULL "
                     "ORDER BY o.seq LIMIT ?1");
    s.bind(1, limit);
    Json items = Json::array();
    while (s.step())
      items.push_back({{"seq", s.integer(0)},
                       {"receipt_id", s.text(1)},
                       {"queued_at", s.integer(2)},
                       {"kind", s.text(3)},
                       {"member_id", s.text(4)},
                       {"points_earned", s.integer(5)},
                       {"points_redeemed", s.integer(6)},
                       {"offline", s.integer(7) != 0}});
    const auto stats = outbox_stats(db);
    return Json{{"depth", stats.depth}, {"items", items}};
  });
  if (!r) return std::unexpected(detail::from_error(r.error()));
  return Reply{*r, 200, false, {}};
}

ApiResult Checkout::transaction(const std::string& txn_id) {
  auto r = store_.read<std::optional<TxnRow>>(
      [&](Db& db) -> core::Result<std::optional<TxnRow>> { return find_txn(db, txn_id); });
  if (!r) return std::unexpected(detail::from_error(r.error()));
  if (!*r)
    return std::unexpected(
        problem(404, "receipt-not-found", "Receipt not found", "no receipt " + txn_id + " here"));
  const auto& t = **r;
  Json answer = Json::parse(t.response);
  // What a return can still take back, line by line: the basket as sold
  // and the units the returns so far took.
  if (t.return_basis && !t.voided_by) {
    const Json request = Json::parse(t.request, nullptr, false);
    auto basis = core::return_basis_from_json(Json::parse(*t.return_basis, nullptr, false));
    const Json* lines = request.is_object() && request.contains("basket") &&
                                request["basket"].is_object() && request["basket"].contains("lines")
                            ? &request["basket"]["lines"]
                            : nullptr;
    if (basis && lines != nullptr && lines->is_array()) {
      Json out = Json::array();
      for (std::size_t i = 0; i < lines->size(); ++i) {
        const auto& l = (*lines)[i];
        const auto qty = l.value("quantity", std::int64_t{0});
        const auto back = i < basis->returned_qty.size() ? basis->returned_qty[i] : 0;
        out.push_back({{"line", i},
                       {"sku", l.value("sku", "")},
                       {"name", l.value("name", l.value("sku", ""))},
                       {"quantity", qty},
                       {"returned", back},
                       {"left", qty - back},
                       {"list", i < basis->outcome.lines.size() ? basis->outcome.lines[i].list
                                                                : std::int64_t{0}}});
      }
      answer["returnable"] = out;
    }
  }
  if (t.voided_by) answer["voided_by"] = *t.voided_by;
  if (!t.staff_id.empty()) answer["staff_id"] = t.staff_id;
  return Reply{answer, 200, false, {}};
}

namespace {

void collect_activities(const core::Condition& c, std::set<std::string>& out) {
  if (c.kind == core::ConditionKind::kActivity) out.insert(c.names.begin(), c.names.end());
  for (const auto& child : c.children) collect_activities(child, out);
}

}  // namespace

ApiResult Checkout::program_summary() {
  auto p = program_at(clock_());
  if (!p)
    return std::unexpected(problem(503, "no-program", "No program installed",
                                   "this terminal has no loyalty program yet"));
  std::set<std::string> activities;
  for (const auto& r : p->rules) collect_activities(r.when, activities);
  Json passes = Json::array();
  for (const auto& ps : p->passes)
    passes.push_back({{"pass", ps.id},
                      {"name", ps.name},
                      {"sku", ps.sku},
                      {"price", ps.price},
                      {"valid_months", ps.valid_months}});
  return Reply{Json{{"id", p->id},
                    {"version", p->version},
                    {"name", p->name},
                    {"currency", p->currency.code},
                    {"activities", activities},
                    {"passes", passes}},
               200,
               false,
               {}};
}

ApiResult Checkout::rewards() {
  auto program = program_at(clock_());
  if (!program)
    return std::unexpected(problem(503, "no-program", "No program installed",
                                   "this terminal has no loyalty program yet"));
  auto local =
      core::to_local(std::chrono::sys_seconds(std::chrono::seconds(clock_())), settings_.zone);
  const auto today = local ? core::day_of(*local) : core::LocalDays{};
  auto r = store_.read<Json>([&](Db& db) -> core::Result<Json> {
    Json items = Json::array();
    for (const auto& rw : program->rewards) {
      auto stock = reward_stock(db, rw.id);
      items.push_back({{"reward", rw.id},
                       {"name", rw.name},
                       {"points", rw.points},
                       {"cash", rw.cash},
                       {"min_tier", rw.min_tier},
                       {"calendar", rw.calendar},
                       {"available_today", core::reward_open_on(*program, rw, today)},
                       {"stock", stock ? Json(*stock) : Json(nullptr)}});
    }
    return Json{{"rewards", items}};
  });
  if (!r) return std::unexpected(detail::from_error(r.error()));
  return Reply{*r, 200, false, {}};
}

ApiResult Checkout::set_stock(const std::string& reward_id, const Json& body) {
  auto program = program_at(clock_());
  if (!program || program->find_reward(reward_id) == nullptr)
    return std::unexpected(problem(404, "not-found", "Unknown reward",
                                   "the program has no reward " + reward_id, "reward"));
  if (!body.is_object() || !body.contains("available") || !body["available"].is_number_integer() ||
      body["available"].get<std::int64_t>() < 0)
    return std::unexpected(problem(422, "invalid-request", "Stock must be a count",
                                   "send {\"available\": N} with N >= 0", "available"));
  const auto n = body["available"].get<std::int64_t>();
  auto r = store_.write<bool>([&](Db& db) -> core::Result<bool> {
    set_reward_stock(db, reward_id, n);
    return true;
  });
  if (!r) return std::unexpected(detail::from_error(r.error()));
  return Reply{Json{{"reward", reward_id}, {"available", n}}, 200, false, {}};
}

std::string Checkout::metrics_text() {
  const auto st = status();
  std::ostringstream o;
  const auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n"
      << name << " " << v << "\n";
  };
  const auto gauge = [&](const char* name, const char* help, const Json& v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n"
      << name << " " << (v.is_number() ? v.dump() : "NaN") << "\n";
  };
  counter("loyaltyd_quotes_total", "Quotes answered.", counters_.quotes);
  counter("loyaltyd_commits_total", "Transactions committed (not counting replays).",
          counters_.commits);
  counter("loyaltyd_replays_total", "Idempotent repeats answered from the record.",
          counters_.replays);
  counter("loyaltyd_idempotency_conflicts_total", "Keys reused with another body.",
          counters_.conflicts);
  counter("loyaltyd_returns_total", "Returns committed.", counters_.returns);
  counter("loyaltyd_voids_total", "Voids committed.", counters_.voids);
  counter("loyaltyd_enrollments_total", "Members enrolled here.", counters_.enrollments);
  counter("loyaltyd_scans_total", "Member code scans.", counters_.scans);
  counter("loyaltyd_offline_refusals_total", "Redemptions refused by offline allowances.",
          counters_.refused_offline);
  counter("loyaltyd_live_checks_confirmed_total", "Large redemptions HQ's live balance covered.",
          counters_.live_confirmed);
  counter("loyaltyd_live_checks_refused_total",
          "Large redemptions refused on HQ's live balance or block.", counters_.live_refused);
  counter("loyaltyd_live_checks_unanswered_total",
          "Live checks HQ did not answer in time (the offline allowances decided).",
          counters_.live_unanswered);
  counter("loyaltyd_storage_errors_total", "Commits refused because storage failed.",
          counters_.errors);
  gauge("loyaltyd_online", "1 when HQ is reachable or the terminal is standalone.",
        st.value("online", false) ? 1 : 0);
  gauge("loyaltyd_clock_skew_seconds",
        "This terminal's clock minus HQ's, as HQ measured it at the last sync.",
        st.contains("clock_skew_seconds") ? st["clock_skew_seconds"] : Json(nullptr));
  gauge("loyaltyd_clock_error",
        "1 when HQ cannot be reached because this terminal's clock is wrong by days.",
        st.contains("clock_error") && st["clock_error"].is_string() ? 1 : 0);
  gauge("loyaltyd_outbox_depth", "Transactions not yet acknowledged by HQ.",
        st.contains("outbox") ? st["outbox"]["depth"] : Json(nullptr));
  gauge("loyaltyd_outbox_oldest_age_seconds", "Age of the oldest unacknowledged transaction.",
        st.contains("outbox") ? st["outbox"]["oldest_age_seconds"] : Json(nullptr));
  gauge("loyaltyd_program_version", "Version of the program in force.",
        st.contains("program") && st["program"].is_object() ? st["program"]["version"]
                                                            : Json(nullptr));
  return o.str();
}

}  // namespace loyalty::terminal
