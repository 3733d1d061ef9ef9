#include "core/member_delta.h"

#include <algorithm>

#include "core/io_json.h"

namespace loyalty::core {

namespace {

// The scalar fields of member_to_json that a transaction may change.
const char* const kProfileKeys[] = {
    "tier",        "pending_tier",      "pending_tier_from", "enrolled_on",
    "referred_by", "first_purchase_on", "last_purchase_on",  "streak_days",
    "grace_until", "tier_valid_until",  "birth_month"};

}  // namespace

bool MemberDelta::empty() const {
  return counters.empty() && vouchers_added.empty() && vouchers_used.empty() &&
         passes_added.empty() && passes_removed.empty() && sv_base == 0 && sv_bonus == 0 &&
         profile.empty();
}

MemberDelta diff_member(const MemberState& before, const MemberState& after) {
  MemberDelta d;
  for (const auto& [k, v] : after.counters.raw()) {
    const auto it = before.counters.raw().find(k);
    const auto was = it == before.counters.raw().end() ? 0 : it->second;
    if (v != was) d.counters[k] = v - was;
  }
  // A key the commit pruned is not a change: the receiver prunes it too.
  const auto newest = after.counters.newest_day();
  for (const auto& [k, v] : before.counters.raw())
    if (!after.counters.raw().contains(k) && v != 0 && (!newest || Counters::retained(k, *newest)))
      d.counters[k] = -v;
  const auto has = [](const std::vector<HeldVoucher>& vs, const std::string& code) {
    return std::any_of(vs.begin(), vs.end(), [&](const HeldVoucher& v) { return v.code == code; });
  };
  for (const auto& v : after.vouchers)
    if (!has(before.vouchers, v.code)) d.vouchers_added.push_back(v);
  for (const auto& v : before.vouchers)
    if (!has(after.vouchers, v.code)) d.vouchers_used.push_back(v.code);
  const auto holds = [](const std::vector<HeldPass>& ps, const HeldPass& p) {
    return std::find(ps.begin(), ps.end(), p) != ps.end();
  };
  for (const auto& p : after.passes)
    if (!holds(before.passes, p)) d.passes_added.push_back(p);
  for (const auto& p : before.passes)
    if (!holds(after.passes, p)) d.passes_removed.push_back(p);
  d.sv_base = after.sv_base - before.sv_base;
  d.sv_bonus = after.sv_bonus - before.sv_bonus;
  const Json b = member_to_json(before), a = member_to_json(after);
  for (const char* key : kProfileKeys) {
    const Json& bv = b.contains(key) ? b[key] : Json();
    const Json& av = a.contains(key) ? a[key] : Json();
    if (bv != av) d.profile[key] = av;
  }
  return d;
}

Json delta_to_json(const MemberDelta& d) {
  // A metric added on a day changes its day, week, month, quarter,
  // half-year, year and lifetime keys by the same amount: sent as one
  // {"metric", "day", "delta"} instead of seven keys (a sale's record is a
  // third smaller). What does not fit that shape stays a key.
  std::map<std::string, std::int64_t> rest = d.counters;
  Json days = Json::array();
  for (const auto& [key, value] : d.counters) {
    const auto at = key.rfind("@D");
    if (at == std::string::npos || !rest.contains(key)) continue;
    const auto day = parse_local_date(std::string_view(key).substr(at + 2));
    if (!day) continue;
    Counters all;
    all.add(key.substr(0, at), *day, 1);
    const bool whole = std::all_of(all.raw().begin(), all.raw().end(), [&](const auto& kv) {
      auto it = rest.find(kv.first);
      return it != rest.end() && it->second == value;
    });
    if (!whole) continue;
    for (const auto& kv : all.raw()) rest.erase(kv.first);
    days.push_back(
        {{"metric", key.substr(0, at)}, {"day", format_local_date(*day)}, {"delta", value}});
  }
  Json j{{"counters", rest}, {"sv_base", d.sv_base}, {"sv_bonus", d.sv_bonus}};
  if (!days.empty()) j["counter_days"] = days;
  j["vouchers_added"] = Json::array();
  for (const auto& v : d.vouchers_added) {
    Json vj{{"code", v.code}, {"template", v.template_id}};
    if (v.expires_on) vj["expires_on"] = format_local_date(*v.expires_on);
    j["vouchers_added"].push_back(vj);
  }
  j["vouchers_used"] = d.vouchers_used;
  const auto pass_json = [](const HeldPass& p) {
    Json pj{{"pass", p.pass_id},
            {"valid_from", format_local_date(p.valid_from)},
            {"valid_to", format_local_date(p.valid_to)}};
    if (!p.code.empty()) pj["code"] = p.code;
    return pj;
  };
  j["passes_added"] = Json::array();
  for (const auto& p : d.passes_added) j["passes_added"].push_back(pass_json(p));
  // Only when some were: the records of every other transaction keep their bytes.
  if (!d.passes_removed.empty()) {
    j["passes_removed"] = Json::array();
    for (const auto& p : d.passes_removed) j["passes_removed"].push_back(pass_json(p));
  }
  j["profile"] = d.profile;
  return j;
}

Result<MemberDelta> delta_from_json(const Json& j) {
  if (!j.is_object()) return invalid("delta", "must be a JSON object");
  MemberDelta d;
  // Whole numbers only: a float converted to an integer may not fit (the
  // fuzzer sent 6.8e56).
  auto whole = [](const Json& v, const std::string& path) -> Result<std::int64_t> {
    if (!v.is_number_integer()) return invalid(path, "must be a whole number");
    return v.get<std::int64_t>();
  };
  // A counter moves by at most this in one transaction (ten trillion yuan
  // in fen): sums of such deltas cannot overflow.
  constexpr std::int64_t kMaxCounterDelta = 1'000'000'000'000'000;
  auto counter = [&](const Json& v, const std::string& path) -> Result<std::int64_t> {
    auto n = whole(v, path);
    if (n && (*n > kMaxCounterDelta || *n < -kMaxCounterDelta))
      return invalid(path, "is beyond what one transaction can change a counter by");
    return n;
  };
  try {
    for (const auto& [k, v] : j.at("counters").items()) {
      auto n = counter(v, "delta.counters." + k);
      if (!n) return std::unexpected(n.error());
      d.counters[k] = *n;
    }
    if (j.contains("counter_days")) {
      const Json& days = j.at("counter_days");
      if (!days.is_array()) return invalid("delta.counter_days", "must be an array");
      Counters sum;
      for (std::size_t i = 0; i < days.size(); ++i) {
        const auto path = index_path("delta.counter_days", i);
        const Json& e = days[i];
        if (!e.is_object() || !e.contains("metric") || !e["metric"].is_string() ||
            e["metric"].get<std::string>().empty() || !e.contains("day") || !e["day"].is_string())
          return invalid(path, "must be {\"metric\", \"day\", \"delta\"}");
        const auto day = parse_local_date(e["day"].get<std::string>());
        if (!day) return invalid(path + ".day", "must be a date YYYY-MM-DD");
        auto n = counter(e.contains("delta") ? e["delta"] : Json(), path + ".delta");
        if (!n) return std::unexpected(n.error());
        sum.add(e["metric"].get<std::string>(), *day, *n);
      }
      for (const auto& [k, v] : sum.raw()) {
        auto& c = d.counters[k];
        c += v;
        if (c == 0) d.counters.erase(k);
      }
    }
    for (const auto& [key, field] :
         {std::pair{"sv_base", &d.sv_base}, std::pair{"sv_bonus", &d.sv_bonus}}) {
      auto n = whole(j.at(key), std::string("delta.") + key);
      if (!n) return std::unexpected(n.error());
      *field = *n;
    }
    // Vouchers, passes and profile reuse the member reader's validation;
    // most transactions add none, which needs no reading.
    const Json& vouchers = j.at("vouchers_added");
    const Json& passes = j.at("passes_added");
    const bool none =
        vouchers.is_array() && vouchers.empty() && passes.is_array() && passes.empty();
    if (!none) {
      auto m = member_from_json(Json{{"id", "delta"}, {"vouchers", vouchers}, {"passes", passes}});
      if (!m) return std::unexpected(m.error());
      d.vouchers_added = std::move(m->vouchers);
      d.passes_added = std::move(m->passes);
    }
    if (j.contains("passes_removed")) {
      auto m = member_from_json(Json{{"id", "delta"}, {"passes", j.at("passes_removed")}});
      if (!m) return std::unexpected(m.error());
      d.passes_removed = std::move(m->passes);
    }
    d.vouchers_used = j.at("vouchers_used").get<std::vector<std::string>>();
    d.profile = j.at("profile");
    if (!d.profile.is_object()) return invalid("delta.profile", "must be an object");
    for (const auto& [k, v] : d.profile.items()) {
      if (std::find_if(std::begin(kProfileKeys), std::end(kProfileKeys),
                       [&](const char* p) { return k == p; }) == std::end(kProfileKeys))
        return invalid("delta.profile." + k, "is not a member field a transaction changes");
    }
  } catch (const Json::exception& e) {
    return invalid("delta", std::string("malformed: ") + e.what());
  }
  return d;
}

const char* to_string(FlagKind k) {
  switch (k) {
    case FlagKind::kPointsOverdrawn: return "points-overdrawn";
    case FlagKind::kStoredValueOverdrawn: return "stored-value-overdrawn";
    case FlagKind::kVoucherReused: return "voucher-reused";
    case FlagKind::kVoucherRevoked: return "voucher-revoked";
    case FlagKind::kReplayMismatch: return "replay-mismatch";
    case FlagKind::kProgramUnknown: return "program-unknown";
    case FlagKind::kClockAhead: return "clock-ahead";
    case FlagKind::kClockBehind: return "clock-behind";
    case FlagKind::kRefused: return "refused";
    case FlagKind::kReturnedTwice: return "returned-twice";
    case FlagKind::kDuplicateCard: return "duplicate-card";
    case FlagKind::kDuplicatePhone: return "duplicate-phone";
    case FlagKind::kReferralUnpaid: return "referral-unpaid";
  }
  return "unknown";
}

std::vector<Conflict> apply_delta(MemberState& m, const MemberDelta& d) {
  std::vector<Conflict> out;
  for (const auto& [k, v] : d.counters) m.counters.add_key(k, v);
  for (const auto& code : d.vouchers_used) {
    const auto before = m.vouchers.size();
    std::erase_if(m.vouchers, [&](const HeldVoucher& v) { return v.code == code; });
    if (m.vouchers.size() == before)
      out.push_back({FlagKind::kVoucherReused,
                     "voucher " + code + " was used here after it was used or revoked elsewhere",
                     code});
  }
  for (const auto& v : d.vouchers_added) m.vouchers.push_back(v);
  for (const auto& p : d.passes_removed)
    if (const auto it = std::find(m.passes.begin(), m.passes.end(), p); it != m.passes.end())
      m.passes.erase(it);
  for (const auto& p : d.passes_added) m.passes.push_back(p);
  m.sv_base += d.sv_base;
  m.sv_bonus += d.sv_bonus;
  if (m.sv_base < 0 || m.sv_bonus < 0)
    out.push_back({FlagKind::kStoredValueOverdrawn,
                   "stored value went negative (base " + std::to_string(m.sv_base) + ", bonus " +
                       std::to_string(m.sv_bonus) + "): spent at two offline stores",
                   ""});
  if (!d.profile.empty()) {
    Json j = member_to_json(m);
    for (const auto& [k, v] : d.profile.items()) {
      if (v.is_null()) {
        j.erase(k);
      } else {
        j[k] = v;
      }
    }
    // A profile from member_to_json always reads back; keep the old state
    // if it somehow does not.
    if (auto merged = member_from_json(j)) m = std::move(*merged);
  }
  return out;
}

std::int64_t member_points_delta(const std::string& member_id, const std::vector<Entry>& entries) {
  const auto account = member_account(member_id);
  std::int64_t delta = 0;
  for (const auto& e : entries) {
    if (e.unit != "pts") continue;
    if (e.credit == account) delta += e.amount;
    if (e.debit == account) delta -= e.amount;
  }
  return delta;
}

std::vector<Conflict> apply_point_entries(MemberState& m, const std::vector<Entry>& entries,
                                          LocalDays day, std::optional<LocalDays> expires_on) {
  std::vector<Conflict> out;
  const auto account = member_account(m.id);
  const auto find = [&](const std::string& id) -> Lot* {
    for (auto& l : m.lots)
      if (l.id == id) return &l;
    return nullptr;
  };
  for (const auto& e : entries) {
    if (e.unit != "pts") continue;
    if (e.credit == account) {
      auto amount = e.amount;
      if (e.lot.empty()) {  // repays debt
        const auto repay = std::min(amount, m.debt);
        m.debt -= repay;
        amount -= repay;
        if (amount == 0) continue;
      }
      const auto lot_id = e.lot.empty() ? e.id : e.lot;
      if (Lot* lot = find(lot_id)) {
        lot->points += amount;
      } else {
        m.lots.push_back({lot_id, day, expires_on, amount});
      }
    } else if (e.debit == account) {
      auto need = e.amount;
      if (Lot* lot = find(e.lot)) {
        const auto take = std::min(need, lot->points);
        lot->points -= take;
        need -= take;
      }
      // The named lot is short (spent at another store meanwhile): take
      // from the member's other live lots, earliest-expiring first.
      std::vector<Lot*> order;
      for (auto& l : m.lots)
        if (l.points > 0) order.push_back(&l);
      std::stable_sort(order.begin(), order.end(), [](const Lot* a, const Lot* b) {
        return a->expires_on.value_or(LocalDays::max()) < b->expires_on.value_or(LocalDays::max());
      });
      for (Lot* l : order) {
        if (need == 0) break;
        const auto take = std::min(need, l->points);
        l->points -= take;
        need -= take;
      }
      if (need > 0) {
        m.debt += need;
        out.push_back({FlagKind::kPointsOverdrawn,
                       std::to_string(need) + " points of " + e.id +
                           " were not there: spent at another store too; "
                           "recorded as debt",
                       ""});
      }
    }
  }
  std::erase_if(m.lots, [](const Lot& l) { return l.points == 0; });
  return out;
}

}  // namespace loyalty::core
