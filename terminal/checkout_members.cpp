// Members: scanning codes, enrolling at the till, the member summary.
#include <algorithm>

#include "core/io_json.h"
#include "core/tiers.h"
#include "terminal/checkout.h"
#include "terminal/checkout_util.h"
#include "terminal/member_codes.h"

namespace loyalty::terminal {

using detail::problem;
using platform::Db;

namespace {

bool valid_phone(const std::string& p) {
  return p.size() >= 6 && p.size() <= 20 &&
         std::all_of(p.begin(), p.end(), [](char c) { return (c >= '0' && c <= '9') || c == '+'; });
}

std::string tier_name(const core::Program& p, const std::string& id) {
  if (p.tiers)
    for (const auto& l : p.tiers->levels)
      if (l.id == id) return l.name;
  return id;
}

}  // namespace

Json Checkout::member_summary(Db& db, const MemberRow& m, const core::Program& p, std::int64_t now,
                              std::int64_t uncounted) {
  auto local = core::to_local(std::chrono::sys_seconds(std::chrono::seconds(now)), settings_.zone);
  const auto today = local ? core::day_of(*local) : core::LocalDays{};
  const auto& s = m.state;
  auto tier = s.tier_on(today);
  // An empty tier is the program's entry level; show it by name.
  if (tier.empty() && p.tiers && !p.tiers->levels.empty()) tier = p.tiers->levels.front().id;
  const auto available = s.available(today);
  const auto unsynced = settings_.standalone ? 0 : unsynced_points(db, m.id) + uncounted;
  Json j{{"member_id", m.id},
         {"card_number", m.card_number},
         {"phone", detail::masked_phone(m.phone)},
         {"name", m.name},
         {"blocked", m.blocked},
         {"tier", {{"id", tier}, {"name", tier_name(p, tier)}}}};
  // Verified attributes still in force (a student card checked at HQ).
  Json attributes = Json::object();
  for (const auto& [name, until] : s.attributes)
    if (today <= until) attributes[name] = core::format_local_date(until);
  j["attributes"] = attributes;
  Json expiring = Json::array();
  std::vector<core::Lot> lots = s.lots;
  std::sort(lots.begin(), lots.end(), [](const core::Lot& a, const core::Lot& b) {
    return a.expires_on.value_or(core::LocalDays::max()) <
           b.expires_on.value_or(core::LocalDays::max());
  });
  for (const auto& l : lots)
    if (l.live_on(today) && l.expires_on && expiring.size() < 3)
      expiring.push_back(
          {{"points", l.points}, {"expires_on", core::format_local_date(*l.expires_on)}});
  j["points"] = {{"available", available},
                 {"pending_sync", unsynced},
                 {"confirmed_by_hq", available - unsynced},
                 {"debt", s.debt},
                 {"expiring", expiring}};
  Json stamps = Json::array();
  for (const auto& card : p.stamp_cards)
    stamps.push_back({{"card", card.id},
                      {"name", card.name},
                      {"stamps", s.counters.get("stamps:" + card.id, card.reset, today)},
                      {"required", card.stamps_required}});
  j["stamps"] = stamps;
  Json vouchers = Json::array();
  for (const auto& v : s.vouchers) {
    if (v.expires_on && today >= *v.expires_on) continue;
    const auto* t = p.find_voucher(v.template_id);
    Json vj{{"code", v.code}, {"template", v.template_id}, {"name", t ? t->name : v.template_id}};
    if (v.expires_on) vj["expires_on"] = core::format_local_date(*v.expires_on);
    vouchers.push_back(vj);
  }
  j["vouchers"] = vouchers;
  Json passes = Json::array();
  for (const auto& ps : s.passes)
    if (today <= ps.valid_to)
      passes.push_back({{"pass", ps.pass_id},
                        {"valid_from", core::format_local_date(ps.valid_from)},
                        {"valid_to", core::format_local_date(ps.valid_to)}});
  j["passes"] = passes;
  j["stored_value"] = {{"base", s.sv_base}, {"bonus", s.sv_bonus}, {"currency", p.currency.code}};
  Json lines = Json::array();
  if (unsynced != 0)
    lines.push_back("Balance " + std::to_string(available) + " includes " +
                    std::to_string(unsynced) + " points pending sync with HQ");
  if (auto progress = core::tier_progress(p, s, today)) {
    Json goals = Json::array();
    std::string text;
    for (const auto& g : progress->goals) {
      goals.push_back({{"metric", g.metric}, {"current", g.current}, {"target", g.target}});
      if (!text.empty()) text += progress->any ? " or " : " and ";
      text += g.metric + " " + std::to_string(g.current) + "/" + std::to_string(g.target);
    }
    j["next_tier"] = {{"id", progress->next_tier},
                      {"name", progress->next_name},
                      {"any", progress->any},
                      {"goals", goals}};
    if (!text.empty()) lines.push_back("Next tier " + progress->next_name + ": " + text);
  }
  Json flags = Json::array();
  platform::Stmt f(db,
                   "SELECT txn_id, kind, detail FROM hq_flags WHERE member_id = ?1 ORDER BY id");
  f.bind(1, m.id);
  while (f.step())
    flags.push_back({{"receipt_id", f.text(0)}, {"kind", f.text(1)}, {"detail", f.text(2)}});
  j["hq_flags"] = flags;
  // Offline, redemptions come out of the day's allowances: what this member
  // may still redeem here today, so the counter can say it up front.
  if (!settings_.standalone && offline(db)) {
    const auto left = offline_left(db, p, m.id, allowance_clock(db, now).day);
    j["offline_allowance"] = {{"points_left_today", std::min(left.member_left, left.terminal_left)},
                              {"per_member", left.per_member},
                              {"per_terminal", left.per_terminal}};
  }
  if (!flags.empty())
    lines.push_back("HQ flagged " + std::to_string(flags.size()) +
                    " transaction(s) of this member for review");
  j["receipt_lines"] = lines;
  return j;
}

ApiResult Checkout::scan(const Json& body) {
  counters_.scans++;
  if (!body.is_object())
    return std::unexpected(problem(400, "invalid-request", "Body must be a JSON object",
                                   "send {\"code\": ...} or {\"phone\": ...}"));
  const auto now = clock_();
  auto program = program_at(now);
  if (!program)
    return std::unexpected(problem(503, "no-program", "No program installed",
                                   "this terminal has no loyalty program yet"));
  MemberKey key = MemberKey::kId;
  std::string value;
  std::optional<ScannedCode> code;
  if (body.contains("phone") && body["phone"].is_string()) {
    key = MemberKey::kPhone;
    value = body["phone"].get<std::string>();
    if (!valid_phone(value))
      return std::unexpected(problem(422, "invalid-request", "Not a phone number",
                                     "a phone number has 6 to 20 digits", "phone"));
  } else if (body.contains("code") && body["code"].is_string()) {
    auto parsed =
        parse_member_code(body["code"].get<std::string>(), hq_key_ ? &*hq_key_ : nullptr, now);
    if (!parsed) {
      const auto& e = parsed.error();
      const int status = e.type == "member-code-unverifiable" ? 503 : 422;
      return std::unexpected(problem(status, e.type, "Member code not accepted", e.detail, "code"));
    }
    code = *parsed;
    key = code->kind == CodeKind::kCard ? MemberKey::kCard : MemberKey::kId;
    value = code->value;
  } else if (body.contains("phone") || body.contains("code")) {
    // Numbers lose leading zeros and digits past 2^53 in JSON: both are text.
    const char* field = body.contains("phone") ? "phone" : "code";
    return std::unexpected(problem(422, "invalid-request", "Code is text",
                                   std::string(field) + " must be a string, as scanned or typed",
                                   field));
  } else {
    return std::unexpected(problem(422, "invalid-request", "No code",
                                   "send the scanned code as \"code\", or a \"phone\"", "code"));
  }
  std::optional<ApiError> refusal;
  auto lookup = [&](Db& db) -> core::Result<Reply> {
    auto m = find_member(db, key, value);
    if (!m) {
      refusal = problem(404, "unknown-member", "Unknown member",
                        "no member with this " +
                            std::string(key == MemberKey::kPhone ? "phone number" : "code") +
                            " at this terminal; enroll them, or if they joined elsewhere, "
                            "they appear after the next sync",
                        key == MemberKey::kPhone ? "phone" : "code");
      return core::fail(core::ErrorCode::kNotFound, "member");
    }
    if (code && code->kind != CodeKind::kDynamicQr &&
        code_blocked(db, code->kind == CodeKind::kCard ? code->value : "LM1:" + code->value)) {
      refusal = problem(403, "member-code-blocked", "Member code blocked",
                        "headquarters blocked this " +
                            std::string(code->kind == CodeKind::kCard ? "card" : "QR code") +
                            " (reported lost or misused); ask the member to show the code in "
                            "their app or their phone number, or sell without loyalty",
                        "code");
      return core::fail(core::ErrorCode::kFailedPrecondition, "blocked code");
    }
    if (code && code->kind == CodeKind::kDynamicQr &&
        !use_code_nonce(db, code->nonce, code->expires_at, now)) {
      refusal = problem(409, "member-code-replayed", "Member code already used",
                        "this app code was already scanned; ask the member to refresh it", "code");
      return core::fail(core::ErrorCode::kFailedPrecondition, "replayed");
    }
    return Reply{member_summary(db, *m, *program, now), 200, false, {}};
  };
  // Dynamic codes write their nonce, so they take the write path.
  const auto find = [&] {
    return code && code->kind == CodeKind::kDynamicQr ? store_.write<Reply>(lookup)
                                                      : store_.read<Reply>(lookup);
  };
  auto r = find();
  // Nobody here: a member who joined or shops elsewhere. HQ may have them
  // (it sends members only to the stores that hold them, with
  // --member-feed visited); once fetched, the scan goes on as usual.
  if (refusal && refusal->type == "unknown-member" && member_lookup_) {
    const char* by = key == MemberKey::kPhone  ? "phone"
                     : key == MemberKey::kCard ? "card_number"
                                               : "member_id";
    if (auto fetched = member_lookup_(by, value)) {
      refusal.reset();
      r = find();
    } else {
      refusal->detail += fetched.error().code == core::ErrorCode::kNotFound
                             ? " (HQ has no member with it either)"
                             : " (HQ could not be asked: " + fetched.error().message + ")";
    }
  }
  if (refusal) return std::unexpected(*refusal);
  if (!r) return std::unexpected(detail::from_error(r.error()));
  r->body.erase("receipt_lines");
  return *r;
}

ApiResult Checkout::member(const std::string& member_id) {
  const auto now = clock_();
  auto program = program_at(now);
  if (!program)
    return std::unexpected(problem(503, "no-program", "No program installed",
                                   "this terminal has no loyalty program yet"));
  auto r = store_.read<std::optional<Json>>([&](Db& db) -> core::Result<std::optional<Json>> {
    auto m = find_member(db, MemberKey::kId, member_id);
    if (!m) return std::nullopt;
    auto j = member_summary(db, *m, *program, now);
    j.erase("receipt_lines");
    return j;
  });
  if (!r) return std::unexpected(detail::from_error(r.error()));
  if (!*r)
    return std::unexpected(problem(404, "unknown-member", "Unknown member",
                                   "no member " + member_id + " at this terminal", "member_id"));
  return Reply{std::move(**r), 200, false, {}};
}

ApiResult Checkout::enroll(const Json& body, const std::string& idem_key,
                           const std::string& staff_id) {
  if (!body.is_object())
    return std::unexpected(problem(400, "invalid-request", "Body must be a JSON object",
                                   "send {\"phone\": ..., \"birthday\": ...}"));
  core::Problems problems;
  std::string phone, name;
  std::optional<core::LocalDays> birthday;
  std::string referred_by;
  {
    core::ObjectReader r(body, "", problems);
    phone = r.string("phone", true).value_or("");
    name = r.string("name").value_or("");
    birthday = r.date("birthday");
    referred_by = r.string("referred_by").value_or("");
  }
  if (!valid_phone(phone)) problems.push_back({"phone", "a phone number has 6 to 20 digits"});
  if (!problems.empty())
    return std::unexpected(detail::from_error(
        core::Error{core::ErrorCode::kInvalidArgument, problems.front().to_string(), problems}));
  const auto now = clock_();
  auto local = core::to_local(std::chrono::sys_seconds(std::chrono::seconds(now)), settings_.zone);
  if (!local) return std::unexpected(detail::from_error(local.error()));
  const auto hash = detail::body_hash("enroll", body);
  std::optional<ApiError> refusal;
  // The member row and the enrollment event (welcome points, vouchers) are
  // written in one transaction: both exist or neither does, and a retried
  // enrollment with the same key replays the event.
  auto r = store_.write<Reply>([&](Db& db) -> core::Result<Reply> {
    if (auto prior = find_txn_by_key(db, idem_key)) {
      if (prior->body_hash != hash) {
        refusal =
            problem(409, "idempotency-conflict", "Idempotency-Key already used",
                    "this Idempotency-Key was used for a different request", "Idempotency-Key");
        return core::fail(core::ErrorCode::kConflict, "conflict");
      }
      counters_.replays++;
      return Reply{nullptr, 200, true, prior->response};
    }
    if (find_member(db, MemberKey::kPhone, phone)) {
      refusal = problem(409, "phone-taken", "Phone already enrolled",
                        "a member with this phone number exists; scan by phone instead", "phone");
      return core::fail(core::ErrorCode::kConflict, "phone");
    }
    MemberRow m;
    m.id = settings_.store_id + "-" + settings_.terminal_id + "-M" + platform::random_hex(5);
    m.card_number = make_card_number();
    m.phone = phone;
    m.name = name;
    m.state.id = m.id;
    m.state.enrolled_on = core::day_of(*local);
    if (birthday)
      m.state.birth_month = static_cast<unsigned>(date::year_month_day{*birthday}.month());
    if (!referred_by.empty()) {
      const auto referrer = find_member(db, MemberKey::kId, referred_by);
      if (!referrer) {
        refusal = problem(422, "unknown-referrer", "Unknown referrer",
                          "no member " + referred_by + " to credit the referral to", "referred_by");
        return core::fail(core::ErrorCode::kNotFound, "referrer");
      }
      if (referrer->blocked) {
        refusal = problem(422, "unknown-referrer", "Referrer blocked",
                          "member " + referred_by +
                              " is blocked and cannot be credited with a referral; enroll "
                              "without it",
                          "referred_by");
        return core::fail(core::ErrorCode::kNotFound, "referrer");
      }
      m.state.referred_by = referred_by;
    }
    insert_member(db, m, now);
    const Json event{{"member_id", m.id}, {"event", "enrollment"}};
    CommitCtx c;
    if (auto e = prepare(event, c, true)) {
      refusal = *e;
      return core::fail(core::ErrorCode::kFailedPrecondition, "refused");
    }
    c.idem_key = idem_key;
    c.kind = "enrollment";
    c.hash = hash;
    c.staff_id = staff_id;
    auto done = commit_in(db, c, refusal);
    if (!done) return done;
    return done;
  });
  if (refusal) return std::unexpected(*refusal);
  if (!r) return std::unexpected(detail::from_error(r.error()));
  if (!r->replayed) counters_.enrollments++;
  return *r;
}

core::Result<int> Checkout::import_members(const Json& members) {
  if (!members.is_array()) return core::invalid("members", "must be a JSON array");
  std::vector<MemberRow> rows;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto& v = members[i];
    const auto path = core::index_path("members", i);
    if (!v.is_object() || !v.contains("state"))
      return core::invalid(path, "must be {\"card_number\", \"phone\", \"name\", \"state\"}");
    auto st = core::member_from_json(v["state"]);
    if (!st) return core::invalid(path + ".state", st.error().message);
    MemberRow m;
    m.id = st->id;
    m.card_number = v.value("card_number", "");
    m.phone = v.value("phone", "");
    m.name = v.value("name", "");
    if (!m.card_number.empty() && !parse_member_code(m.card_number, nullptr, 0))
      return core::invalid(path + ".card_number", "not a valid 16-digit card number");
    m.state = std::move(*st);
    rows.push_back(std::move(m));
  }
  const auto now = clock_();
  return store_.write<int>([&](Db& db) -> core::Result<int> {
    int added = 0;
    for (const auto& m : rows) {
      if (find_member(db, MemberKey::kId, m.id)) continue;
      insert_member(db, m, now);
      ++added;
    }
    return added;
  });
}

}  // namespace loyalty::terminal
