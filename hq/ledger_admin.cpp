// HqLedger's audited administration: programs, adjustments, vouchers,
// member resets and attributes, blocks, stock, expiry, flags, and the
// idempotent admin write (once()).
#include <algorithm>
#include <cctype>
#include <map>

#include "core/io_json.h"
#include "core/ledger.h"
#include "core/member_number.h"
#include "core/program_loader.h"
#include "hq/ledger.h"
#include "hq/ledger_internal.h"

namespace loyalty::hq {

using detail::auditable;
using detail::db_failure;

namespace {

// The last second a program may take effect from.
constexpr std::int64_t kLastUnixTime = 253'402'300'799;  // 9999-12-31T23:59:59Z

}  // namespace

core::Result<Json> HqLedger::publish_program(const std::string& body, std::int64_t effective_from,
                                             const platform::SigningKey& key,
                                             const std::string& actor) {
  if (effective_from < 0 || effective_from > kLastUnixTime)
    return core::invalid("effective_from",
                         "must be a Unix time in seconds, from 0 (in force at once) to " +
                             std::to_string(kLastUnixTime));
  auto p = core::load_program_text(body);
  if (!p) return std::unexpected(p.error());
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto rows = db_.query("SELECT MAX(version) FROM programs WHERE program_id = ?1", {p->id});
    const auto latest = rows.empty() || rows[0].is_null(0) ? 0 : rows[0].integer(0);
    if (p->version <= latest)
      return core::invalid("version", "program " + p->id + " is at version " +
                                          std::to_string(latest) +
                                          " already; publish a higher version");
    const auto signature = platform::base64url_encode(key.sign(body));
    db_.exec(
        "INSERT INTO programs(program_id, version, effective_from, body, signature, "
        "published_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        {p->id, p->version, effective_from, body, signature, clock_()});
    change(sync::ProgramChange{p->id, p->version, effective_from, body, signature},
           p->id + "@" + std::to_string(p->version));
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, "publish-program", p->id + " v" + std::to_string(p->version), clock_()});
    return Json{{"program", p->id}, {"version", p->version}, {"effective_from", effective_from}};
  });
}

core::Result<Json> HqLedger::adjust(const std::string& member_id, std::int64_t points,
                                    const std::string& reason, const std::string& actor) {
  if (!auditable(reason))
    return core::invalid("reason", "an adjustment needs a reason a finance team can audit");
  // A billion points either way is past any real correction, and keeps a
  // member's balance far inside what its state can hold.
  constexpr std::int64_t kMaxAdjustment = 1'000'000'000;
  if (points == 0 || points > kMaxAdjustment || points < -kMaxAdjustment)
    return core::invalid("points",
                         "must be a whole number of points from -1000000000 to "
                         "1000000000, not zero");
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&] { return book_adjustment(member_id, points, reason, actor); });
}

core::Result<Json> HqLedger::book_adjustment(const std::string& member_id, std::int64_t points,
                                             const std::string& reason, const std::string& actor) {
  auto m = load_member(member_id, kDirect);
  if (!m) return core::fail(core::ErrorCode::kNotFound, "no member " + member_id + " at HQ");
  auto prog = db_.query("SELECT program_id FROM programs ORDER BY published_at DESC LIMIT 1");
  const std::string pid = prog.empty() ? "hq" : prog[0].text(0);
  db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
           {actor, "adjust", member_id + " " + std::to_string(points) + ": " + reason, clock_()});
  const auto n = db_.query("SELECT MAX(id) FROM audit")[0].integer(0);
  const std::string txn = "HQ-ADJ-" + std::to_string(n);
  const auto acct = core::member_account(member_id);
  const auto adj = core::program_account(pid, "adjustment");
  core::Entry e{txn + "/1",
                txn,
                points > 0 ? adj : acct,
                points > 0 ? acct : adj,
                points > 0 ? points : -points,
                "pts",
                points > 0 ? txn + "/lot" : "",
                "adjustment: " + reason};
  post({e}, kDirect);
  Flags flags;
  const auto today = core::LocalDays(std::chrono::floor<std::chrono::days>(
                                         std::chrono::sys_seconds(std::chrono::seconds(clock_())))
                                         .time_since_epoch());
  const auto debt_before = m->debt;
  for (const auto& c : core::apply_point_entries(*m, {e}, today, std::nullopt))
    flag(txn, member_id, c.kind,
         c.kind == core::FlagKind::kPointsOverdrawn
             ? std::to_string(m->debt - debt_before) + " of the " + std::to_string(-points) +
                   " points this adjustment takes were not there; recorded as debt"
             : c.detail,
         flags);
  save_member(*m, kDirect);
  return Json{{"adjustment", txn},
              {"member_id", member_id},
              {"points", points},
              {"balance", m->available(today)}};
}

core::Result<Json> HqLedger::issue_vouchers(const std::string& template_id,
                                            const std::vector<std::string>& members,
                                            const std::string& today_text,
                                            const std::string& actor) {
  const auto today = core::parse_local_date(today_text);
  if (!today) return core::invalid("today", "must be YYYY-MM-DD");
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto p = program_in_force();
    if (!p) return std::unexpected(p.error());
    const auto* t = (*p)->find_voucher(template_id);
    if (t == nullptr)
      return core::invalid("template",
                           "program " + (*p)->id + " v" + std::to_string((*p)->version) +
                               ", in force, has no voucher template '" + template_id + "'");
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, std::string("issue-vouchers"),
              template_id + " to " + std::to_string(members.size()) + " members", clock_()});
    const auto run = db_.query("SELECT MAX(id) FROM audit")[0].integer(0);
    Json unknown = Json::array();
    Json codes = Json::object();
    std::int64_t issued = 0;
    for (const auto& id : members) {
      auto m = load_member(id, kDirect);
      if (!m) {
        unknown.push_back(id);
        continue;
      }
      const auto code = "HQ-V" + std::to_string(run) + "-" + std::to_string(++issued);
      m->vouchers.push_back({code, template_id, *today + date::days(t->valid_days)});
      save_member(*m, kDirect);
      codes[id] = code;
    }
    // The audit row says what was done, not what was asked.
    db_.exec("UPDATE audit SET detail = ?2 WHERE id = ?1",
             {run, template_id + " to " + std::to_string(issued) + " members (" +
                       std::to_string(unknown.size()) + " unknown ids skipped)"});
    return Json{{"template", template_id},
                {"issued", issued},
                {"codes", codes},
                {"unknown_members", unknown}};
  });
}

core::Result<Json> HqLedger::revoke_voucher(const std::string& member_id, const std::string& code,
                                            const std::string& reason, const std::string& actor) {
  if (!auditable(reason))
    return core::invalid("reason", "revoking a voucher needs a reason that can be audited");
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto m = load_member(member_id, kDirect);
    if (!m) return core::fail(core::ErrorCode::kNotFound, "no member " + member_id + " at HQ");
    const auto held = std::ranges::find(m->vouchers, code, &core::HeldVoucher::code);
    if (held == m->vouchers.end())
      return core::fail(core::ErrorCode::kNotFound,
                        "member " + member_id + " holds no voucher " + code +
                            " at HQ (already used, already revoked, never issued, or issued at "
                            "a store that has not uploaded it yet)");
    const auto template_id = held->template_id;
    m->vouchers.erase(held);
    db_.exec(
        "INSERT INTO revoked_vouchers(code, member_id, template_id, reason, actor, revoked_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        {code, member_id, template_id, reason, actor, clock_()});
    db_.exec(
        "INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
        {actor, std::string("revoke-voucher"), member_id + " " + code + ": " + reason, clock_()});
    save_member(*m, kDirect);  // the member's feed change carries the state without it
    return Json{
        {"member_id", member_id}, {"code", code}, {"template", template_id}, {"revoked", true}};
  });
}

core::Result<Json> HqLedger::reset_member(const std::string& member_id, const MemberReset& reset,
                                          const std::string& reason, const std::string& actor) {
  if (!auditable(reason))
    return core::invalid("reason", "resetting a member needs a reason that can be audited");
  if (reset.metrics.empty() && reset.tier.empty())
    return core::invalid("tier", "name a tier to set, metrics to reset, or both");
  if (reset.tier_until && reset.tier.empty())
    return core::invalid("until", "only applies with a tier");
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto in_force = program_in_force();
    if (!in_force) return std::unexpected(in_force.error());
    const auto& p = **in_force;
    auto m = load_member(member_id, kDirect);
    if (!m) return core::fail(core::ErrorCode::kNotFound, "no member " + member_id + " at HQ");
    if (!reset.tier.empty() && (!p.tiers || p.tiers->rank_of(reset.tier) < 0))
      return core::invalid("tier", reset.tier + " is not a tier of program " + p.id);
    std::int64_t cleared = 0;
    for (const auto& metric : reset.metrics) {
      if (!core::valid_id(metric))
        return core::invalid("metrics", metric + " is not a metric name");
      for (const auto& prefix : {metric + "@", "carry:" + metric + "@"})
        cleared += static_cast<std::int64_t>(std::erase_if(
            m->counters.raw(), [&](const auto& kv) { return kv.first.starts_with(prefix); }));
    }
    Json detail{{"member_id", member_id}, {"counters_cleared", cleared}};
    if (!reset.metrics.empty()) detail["metrics"] = reset.metrics;
    if (!reset.tier.empty()) {
      detail["tier_before"] = m->tier.empty() ? p.tiers->levels.front().id : m->tier;
      m->tier = reset.tier;
      m->pending_tier.clear();
      m->pending_tier_from.reset();
      m->grace_until.reset();
      m->tier_valid_until = reset.tier_until;
      detail["tier"] = reset.tier;
      if (reset.tier_until) detail["tier_until"] = core::format_local_date(*reset.tier_until);
    }
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, std::string("reset-member"), detail.dump() + ": " + reason, clock_()});
    save_member(*m, kDirect);
    return detail;
  });
}

core::Result<Json> HqLedger::set_attribute(const std::string& member_id,
                                           const std::string& attribute,
                                           std::optional<core::LocalDays> until,
                                           const std::string& reason, const std::string& actor) {
  if (!auditable(reason))
    return core::invalid("reason", "setting an attribute needs a reason that can be audited");
  if (!core::valid_id(attribute))
    return core::invalid("attribute", "'" + attribute + "' is not an attribute name");
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto m = load_member(member_id, kDirect);
    if (!m) return core::fail(core::ErrorCode::kNotFound, "no member " + member_id + " at HQ");
    Json detail{{"member_id", member_id}, {"attribute", attribute}};
    if (until) {
      m->attributes[attribute] = *until;
      detail["until"] = core::format_local_date(*until);
    } else if (m->attributes.erase(attribute) == 0) {
      return core::fail(core::ErrorCode::kFailedPrecondition,
                        "member " + member_id + " has no attribute " + attribute + " to remove");
    } else {
      detail["removed"] = true;
    }
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, std::string("member-attribute"), detail.dump() + ": " + reason, clock_()});
    save_member(*m, kDirect);
    return detail;
  });
}

core::Result<Json> HqLedger::set_blocked(const std::string& member_id, bool blocked,
                                         const std::string& reason, const std::string& actor) {
  if (!auditable(reason))
    return core::invalid("reason", "blocking needs a reason that can be audited");
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto now = db_.query("SELECT blocked FROM members WHERE id = ?1", {member_id});
    if (now.empty())
      return core::fail(core::ErrorCode::kNotFound, "no member " + member_id + " at HQ");
    if (!blocked && now[0].integer(0) == 0)
      return core::fail(core::ErrorCode::kFailedPrecondition,
                        "member " + member_id + " is not blocked; nothing to unblock");
    db_.exec("UPDATE members SET blocked = ?2 WHERE id = ?1", {member_id, std::int64_t{blocked}});
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, blocked ? "block" : "unblock", member_id + ": " + reason, clock_()});
    change(sync::BlockChange{member_id, blocked}, member_id, "", member_id);
    return Json{{"member_id", member_id}, {"blocked", blocked}};
  });
}

core::Result<Json> HqLedger::set_code_blocked(const std::string& code, bool blocked,
                                              const std::string& reason, const std::string& actor) {
  if (!auditable(reason))
    return core::invalid("reason", "blocking needs a reason that can be audited");
  const bool card = core::valid_card_number(code);
  if (!card && !(code.starts_with("LM1:") && code.size() > 4))
    return core::invalid("code",
                         "must be a member card number (16 digits with a valid check digit) or a "
                         "static QR code (LM1:MEMBER); app codes expire by themselves");
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto rows = card ? db_.query("SELECT id FROM members WHERE card_number = ?1", {code})
                     : db_.query("SELECT id FROM members WHERE id = ?1", {code.substr(4)});
    if (rows.empty())
      return core::fail(core::ErrorCode::kNotFound,
                        "no member at HQ has the code " + code + "; check it was read right");
    const auto member = rows[0].text(0);
    if (blocked) {
      db_.exec(
          "INSERT INTO blocked_codes(code, member_id, reason, blocked_at) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT(code) DO UPDATE SET reason = ?3",
          {code, member, reason, clock_()});
    } else if (db_.exec("DELETE FROM blocked_codes WHERE code = ?1", {code}) == 0) {
      return core::fail(core::ErrorCode::kNotFound, "the code " + code + " is not blocked");
    }
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, blocked ? "block-code" : "unblock-code",
              code + " (member " + member + "): " + reason, clock_()});
    const sync::CodeChange c{code, member, blocked};
    change(c, code, "", member);
    return sync::to_json(c);
  });
}

core::Result<Json> HqLedger::allocate_stock(const std::string& store, const std::string& terminal,
                                            const std::string& reward_id, std::int64_t quantity,
                                            const std::string& actor,
                                            const std::string& delivery_id) {
  if (store.empty()) return core::invalid("store_id", "name the store that receives the stock");
  if (terminal.empty())
    return core::invalid("terminal_id", "name the terminal of the store's redemption counter");
  if (quantity <= 0 || quantity > 1'000'000)
    return core::invalid("quantity", "must be a whole number from 1 to 1000000");
  if (!delivery_id.empty() && !core::valid_id(delivery_id))
    return core::invalid("delivery_id",
                         "must be 1 to 64 letters, digits, '-', '_' or '.' (the delivery "
                         "note's number)");
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    Json answer{{"store_id", store},
                {"terminal_id", terminal},
                {"reward_id", reward_id},
                {"added", quantity}};
    if (!delivery_id.empty()) {
      answer["delivery_id"] = delivery_id;
      auto had = db_.query(
          "SELECT store_id, terminal_id, reward_id, quantity FROM deliveries "
          "WHERE delivery_id = ?1",
          {delivery_id});
      if (!had.empty()) {
        const auto& h = had[0];
        if (h.text(0) != store || h.text(1) != terminal || h.text(2) != reward_id ||
            h.integer(3) != quantity)
          return core::fail(core::ErrorCode::kConflict,
                            "delivery " + delivery_id + " was already recorded as " +
                                std::to_string(h.integer(3)) + " of " + h.text(2) + " for " +
                                h.text(0) + "/" + h.text(1) +
                                "; give this delivery its own number");
        answer["duplicate"] = true;  // a retry: allocated once, when first sent
        return answer;
      }
      db_.exec(
          "INSERT INTO deliveries(delivery_id, store_id, terminal_id, reward_id, quantity, "
          "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
          {delivery_id, store, terminal, reward_id, quantity, clock_()});
    }
    const auto reg =
        db_.query("SELECT revoked FROM terminals WHERE store_id = ?1 AND terminal_id = ?2",
                  {store, terminal});
    if (reg.empty())
      return core::fail(core::ErrorCode::kNotFound,
                        "no terminal " + store + "/" + terminal + " is registered at HQ");
    if (reg[0].integer(0) != 0)
      return core::fail(core::ErrorCode::kFailedPrecondition,
                        "terminal " + store + "/" + terminal +
                            " is revoked; allocate to the store's counter that replaced it");
    // The reward must be in the catalog of the version in force.
    auto latest = program_in_force();
    if (!latest) return std::unexpected(latest.error());
    const auto& program = *latest;
    const bool known = std::any_of(program->rewards.begin(), program->rewards.end(),
                                   [&](const core::Reward& r) { return r.id == reward_id; });
    if (!known)
      return core::invalid("reward_id", "no reward " + reward_id + " in the catalog of program " +
                                            program->id + " v" + std::to_string(program->version));
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, "stock",
              store + "/" + terminal + ": " + std::to_string(quantity) + " more of " + reward_id +
                  (delivery_id.empty() ? "" : " (delivery " + delivery_id + ")"),
              clock_()});
    // The store's feed carries it; only the named terminal (the counter
    // that holds the goods) adds it, so the tills do not count it again.
    change(sync::StockChange{reward_id, quantity, terminal}, reward_id, store);
    return answer;
  });
}

core::Result<Json> HqLedger::expire(const std::string& today_text) {
  const auto today = core::parse_local_date(today_text);
  if (!today) return core::invalid("date", "must be YYYY-MM-DD");
  if (auto ok = day_has_come(*today, today_text); !ok) return std::unexpected(ok.error());
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    auto latest = program_in_force();
    if (!latest) return std::unexpected(latest.error());
    const auto& program = *latest;
    std::int64_t members = 0, points = 0;
    // Each run is audited and its id makes its entries unique, so running the
    // same date again (after late uploads) expires only what is new.
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {std::string("scheduler"), std::string("expire"), today_text, clock_()});
    const auto run = db_.query("SELECT MAX(id) FROM audit")[0].integer(0);
    for (const auto& row : db_.query("SELECT id FROM members ORDER BY id")) {
      auto m = load_member(row.text(0), kDirect);
      const auto txn = "HQ-EXP-" + std::to_string(run) + "-" + m->id;
      auto entries = core::expire_lots(*program, *m, *today, txn);
      if (entries.empty()) continue;
      post(entries, kDirect);
      save_member(*m, kDirect);
      ++members;
      for (const auto& e : entries) points += e.amount;
    }
    return Json{{"date", today_text}, {"members", members}, {"points_expired", points}};
  });
}

}  // namespace loyalty::hq

namespace loyalty::hq {

core::Result<HqLedger::Answer> HqLedger::once(const std::string& key,
                                              const std::string& fingerprint,
                                              const std::function<Answer()>& write) {
  std::lock_guard lock(mutex_);
  std::optional<Answer> undone;  // a refusal: rolled back, handed back as it is
  auto r = in_transaction(db_, [&]() -> core::Result<Answer> {
    auto seen = db_.query(
        "SELECT fingerprint, status, answer FROM admin_requests WHERE idem_key = ?1", {key});
    if (!seen.empty()) {
      if (seen[0].text(0) != fingerprint)
        return core::fail(core::ErrorCode::kConflict,
                          "Idempotency-Key " + key +
                              " was used for another request (another endpoint or body); "
                              "use a new key for a new request");
      return Answer{static_cast<int>(seen[0].integer(1)), seen[0].text(2), true};
    }
    Answer a = write();
    if (a.status < 200 || a.status > 299) {
      undone = std::move(a);
      return core::fail(core::ErrorCode::kFailedPrecondition, "not done");
    }
    db_.exec(
        "INSERT INTO admin_requests(idem_key, fingerprint, status, answer, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)",
        {key, fingerprint, std::int64_t{a.status}, a.body, clock_()});
    return a;
  });
  if (!r && undone) return std::move(*undone);
  return r;
}

}  // namespace loyalty::hq
