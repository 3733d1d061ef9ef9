#include "core/io_json.h"

namespace loyalty::core {

namespace {

Status to_status(Problems& problems, const char* what) {
  if (problems.empty()) return {};
  Error e{ErrorCode::kInvalidArgument, "", problems};
  e.message = std::string(what) + ": ";
  for (std::size_t i = 0; i < problems.size() && i < 5; ++i)
    e.message += (i ? "; " : "") + problems[i].to_string();
  return std::unexpected(std::move(e));
}

void read_counters(ObjectReader& r, const std::string& key, Counters& out) {
  const Json* c = r.get(key);
  if (c == nullptr) return;
  if (!c->is_object()) return r.problem(key, "must be an object of \"metric@period\" to integer");
  for (const auto& [k, v] : c->items()) {
    if (!v.is_number_integer() || k.find('@') == std::string::npos)
      r.problems().push_back(
          {join_path(r.path(key), k), "must be an integer under a key \"metric@period\""});
    else
      out.add_key(k, v.get<std::int64_t>());
  }
}

template <typename F>
void each(ObjectReader& r, const std::string& key, F&& f) {
  const Json* v = r.get(key);
  if (v == nullptr) return;
  if (!v->is_array()) return r.problem(key, "must be an array");
  for (std::size_t i = 0; i < v->size(); ++i) f((*v)[i], index_path(r.path(key), i));
}

}  // namespace

Result<MemberState> member_from_json(const Json& j) {
  Problems problems;
  MemberState m;
  {
    ObjectReader r(j, "member", problems);
    if (!r.ok()) return invalid("member", "must be a JSON object");
    m.id = r.id("id", true).value_or("");
    m.tier = r.id("tier").value_or("");
    m.enrolled_on = r.date("enrolled_on");
    if (auto b = r.date("birthday"))
      m.birth_month = static_cast<unsigned>(date::year_month_day{*b}.month());
    if (auto bm = r.integer("birth_month", false, 1, 12))
      m.birth_month = static_cast<unsigned>(*bm);
    m.referred_by = r.id("referred_by").value_or("");
    if (const Json* a = r.get("attributes")) {
      if (!a->is_object()) {
        r.problem("attributes", "must be an object of attribute name to its last day");
      } else {
        for (const auto& [name, until] : a->items()) {
          const auto day =
              until.is_string() ? parse_local_date(until.get<std::string>()) : std::nullopt;
          if (!valid_id(name) || !day)
            r.problem("attributes", name + " needs a name and a date YYYY-MM-DD");
          else
            m.attributes[name] = *day;
        }
      }
    }
    each(r, "lots", [&](const Json& v, const std::string& path) {
      ObjectReader lr(v, path, problems);
      Lot lot;
      lot.id = lr.string("id", true).value_or("");
      if (auto d = lr.date("earned_on", true)) lot.earned_on = *d;
      lot.expires_on = lr.date("expires_on");
      lot.points = lr.integer("points", true).value_or(0);
      m.lots.push_back(lot);
    });
    m.debt = r.integer("debt").value_or(0);
    read_counters(r, "counters", m.counters);
    m.first_purchase_on = r.date("first_purchase_on");
    m.last_purchase_on = r.date("last_purchase_on");
    m.streak_days = static_cast<int>(
        r.integer("streak_days", false, 0, 100000).value_or(m.last_purchase_on ? 1 : 0));
    if (const Json* sv = r.get("stored_value")) {
      ObjectReader sr(*sv, r.path("stored_value"), problems);
      // Negative after the same value was spent at two offline stores (HQ
      // flags it `stored-value-overdrawn`): the member owes it.
      constexpr auto kMax = INT64_C(1'000'000'000'000'000);
      m.sv_base = sr.integer("base", false, -kMax, kMax).value_or(0);
      m.sv_bonus = sr.integer("bonus", false, -kMax, kMax).value_or(0);
    }
    each(r, "vouchers", [&](const Json& v, const std::string& path) {
      ObjectReader vr(v, path, problems);
      HeldVoucher h;
      h.code = vr.string("code", true).value_or("");
      h.template_id = vr.id("template", true).value_or("");
      h.expires_on = vr.date("expires_on");
      m.vouchers.push_back(h);
    });
    each(r, "passes", [&](const Json& v, const std::string& path) {
      ObjectReader pr(v, path, problems);
      HeldPass h;
      h.pass_id = pr.id("pass", true).value_or("");
      if (auto d = pr.date("valid_from", true)) h.valid_from = *d;
      if (auto d = pr.date("valid_to", true)) h.valid_to = *d;
      h.code = pr.string("code").value_or("");
      m.passes.push_back(h);
    });
    if (const Json* ref = r.get("referrer")) {
      ObjectReader rr(*ref, r.path("referrer"), problems);
      ReferrerView view;
      view.id = rr.id("id", true).value_or("");
      view.tier = rr.id("tier").value_or("");
      read_counters(rr, "counters", view.counters);
      m.referrer = view;
      if (m.referred_by.empty()) m.referred_by = view.id;
    }
    m.pending_tier = r.id("pending_tier").value_or("");
    m.pending_tier_from = r.date("pending_tier_from");
    m.tier_valid_until = r.date("tier_valid_until");
    m.grace_until = r.date("grace_until");
  }
  if (auto s = to_status(problems, "member"); !s) return std::unexpected(s.error());
  return m;
}

Json member_to_json(const MemberState& m) {
  Json j{{"id", m.id}};
  if (!m.tier.empty()) j["tier"] = m.tier;
  if (!m.pending_tier.empty()) {
    j["pending_tier"] = m.pending_tier;
    j["pending_tier_from"] = format_local_date(*m.pending_tier_from);
  }
  if (m.enrolled_on) j["enrolled_on"] = format_local_date(*m.enrolled_on);
  if (!m.referred_by.empty()) j["referred_by"] = m.referred_by;
  j["lots"] = Json::array();
  for (const auto& l : m.lots) {
    Json lj{{"id", l.id}, {"earned_on", format_local_date(l.earned_on)}, {"points", l.points}};
    if (l.expires_on) lj["expires_on"] = format_local_date(*l.expires_on);
    j["lots"].push_back(lj);
  }
  j["debt"] = m.debt;
  j["counters"] = m.counters.raw();
  if (m.first_purchase_on) j["first_purchase_on"] = format_local_date(*m.first_purchase_on);
  if (m.last_purchase_on) j["last_purchase_on"] = format_local_date(*m.last_purchase_on);
  j["streak_days"] = m.streak_days;
  j["stored_value"] = {{"base", m.sv_base}, {"bonus", m.sv_bonus}};
  j["vouchers"] = Json::array();
  for (const auto& v : m.vouchers) {
    Json vj{{"code", v.code}, {"template", v.template_id}};
    if (v.expires_on) vj["expires_on"] = format_local_date(*v.expires_on);
    j["vouchers"].push_back(vj);
  }
  if (!m.passes.empty()) {
    j["passes"] = Json::array();
    for (const auto& p : m.passes) {
      Json pj{{"pass", p.pass_id},
              {"valid_from", format_local_date(p.valid_from)},
              {"valid_to", format_local_date(p.valid_to)}};
      if (!p.code.empty()) pj["code"] = p.code;
      j["passes"].push_back(pj);
    }
  }
  if (m.birth_month) j["birth_month"] = *m.birth_month;
  if (!m.attributes.empty()) {
    Json a = Json::object();
    for (const auto& [name, until] : m.attributes) a[name] = format_local_date(until);
    j["attributes"] = a;
  }
  if (m.referrer) {
    Json rj{{"id", m.referrer->id}, {"counters", m.referrer->counters.raw()}};
    if (!m.referrer->tier.empty()) rj["tier"] = m.referrer->tier;
    j["referrer"] = rj;
  }
  if (m.grace_until) j["grace_until"] = format_local_date(*m.grace_until);
  if (m.tier_valid_until) j["tier_valid_until"] = format_local_date(*m.tier_valid_until);
  return j;
}

Status request_from_json(const Json& j, Request& req) {
  Problems problems;
  {
    ObjectReader r(j, "", problems);
    if (!r.ok()) return invalid("", "the basket or event must be a JSON object");
    auto ev = r.choice("event", {"purchase", "enrollment", "review", "referral", "check_in",
                                 "survey", "activity", "top_up", "birthday", "period_end", "redeem",
                                 "defer_pass", "daily", "tier_up", "freeze_tier"});
    req.trigger = ev ? *parse_trigger(*ev) : Trigger::kPurchase;
    if (req.trigger == Trigger::kActivity) {
      const auto activity = r.string("activity", true);
      if (activity && activity->empty()) r.problem("activity", "must name the activity");
      req.activity = activity.value_or("");
      req.activity_amount = r.integer("amount", false, 1).value_or(0);
    }
    if (req.trigger == Trigger::kTopUp)
      req.top_up_amount = r.integer("amount", true, 1).value_or(0);
    if (req.trigger == Trigger::kRedeem) req.reward_id = r.id("reward", true).value_or("");
    if (req.trigger == Trigger::kTierUp) req.tier_before = r.id("from_tier", true).value_or("");
    if (req.trigger == Trigger::kFreezeTier)
      req.freeze_months = static_cast<int>(r.integer("months", true, 1, 24).value_or(0));
    if (req.trigger == Trigger::kDeferPass) {
      req.pass_id = r.id("pass", true).value_or("");
      req.defer_days = static_cast<int>(r.integer("days", true, 1, 366).value_or(0));
    }
    if (req.trigger == Trigger::kPurchase) {
      auto& b = req.basket;
      b.currency = r.string("currency", true).value_or("");
      const Json* lines = r.get("lines", true);
      if (lines != nullptr && !lines->is_array()) r.problem("lines", "must be an array of lines");
      if (lines != nullptr && lines->is_array()) {
        for (std::size_t i = 0; i < lines->size(); ++i) {
          ObjectReader lr((*lines)[i], index_path("lines", i), problems);
          Line l;
          l.sku = lr.string("sku", true).value_or("");
          l.name = lr.string("name").value_or("");
          l.categories = lr.strings("categories");
          l.tags = lr.strings("tags");
          // Whole numbers; their ranges are the engine's to check (a
          // negative quantity is told to use the return request).
          l.quantity = lr.integer("quantity", true, INT64_C(-1'000'000'000), INT64_C(1'000'000'000))
                           .value_or(0);
          l.unit_price =
              lr.integer("unit_price", true, INT64_C(-1'000'000'000'000'000)).value_or(0);
          b.lines.push_back(std::move(l));
        }
      }
      if (const Json* rp = r.get("redeem_points"); rp != nullptr && rp->is_string()) {
        if (*rp == "max")
          b.redeem_max = true;
        else
          r.problem("redeem_points", "must be a number of points or \"max\"");
      } else {
        b.redeem_points =
            r.integer("redeem_points", false, INT64_C(-1'000'000'000'000'000)).value_or(0);
      }
      b.voucher_codes = r.strings("vouchers");
      b.paid_with = r.strings("paid_with");
      b.stored_value =
          r.integer("stored_value", false, INT64_C(-1'000'000'000'000'000)).value_or(0);
      each(r, "passes", [&](const Json& v, const std::string& path) {
        ObjectReader pr(v, path, problems);
        PassUse u;
        u.pass_id = pr.id("pass", true).value_or("");
        u.line = static_cast<std::size_t>(pr.integer("line", true, 0, 499).value_or(0));
        b.passes.push_back(u);
      });
    }
  }
  return to_status(problems, "request");
}

Json outcome_totals_to_json(const Outcome& o) {
  return {{"list", o.list_total},
          {"discount", o.discount_total},
          {"points_earned", o.points_earned},
          {"bonus_points", o.bonus_points},
          {"referrer_points", o.referrer_points},
          {"points_redeemed", o.points_redeemed},
          {"points_value", o.points_value},
          {"stored_value_used", o.sv_base_used + o.sv_bonus_used},
          {"amount_due", o.amount_due}};
}

Json outcome_to_json(const Outcome& o, const Program& p) {
  Json j{{"program", o.program_id},
         {"program_version", o.program_version},
         {"txn_id", o.request.txn_id},
         {"trigger", to_string(o.request.trigger)},
         {"local_time", format_local_datetime(o.request.at)},
         {"time_zone", o.request.zone},
         {"currency", p.currency.code},
         {"tier", o.tier}};
  j["lines"] = Json::array();
  for (std::size_t i = 0; i < o.lines.size(); ++i) {
    const auto& l = o.lines[i];
    j["lines"].push_back({{"sku", o.request.basket.lines[i].sku},
                          {"list", l.list},
                          {"discount", l.discount},
                          {"points_value", l.points_value},
                          {"earn_basis", l.earn_basis},
                          {"points", l.points}});
  }
  j["discounts"] = Json::array();
  for (const auto& d : o.discounts)
    j["discounts"].push_back({{"source", d.source}, {"name", d.name}, {"amount", d.amount}});
  j["awards"] = Json::array();
  for (const auto& a : o.awards)
    j["awards"].push_back({{"rule", a.rule_id},
                           {"points", a.points},
                           {"bonus", a.bonus},
                           {"to", a.to == Recipient::kReferrer ? "referrer" : "member"},
                           {"reason", a.reason}});
  j["totals"] = outcome_totals_to_json(o);
  if (o.earn_expires_on) j["points_expire_on"] = format_local_date(*o.earn_expires_on);
  j["vouchers_used"] = o.vouchers_used;
  j["vouchers_issued"] = Json::array();
  for (const auto& v : o.vouchers_issued)
    j["vouchers_issued"].push_back({{"template", v.template_id},
                                    {"to", v.to == Recipient::kReferrer ? "referrer" : "member"},
                                    {"reason", v.reason}});
  j["stamps"] = Json::array();
  for (const auto& s : o.stamps)
    j["stamps"].push_back(
        {{"card", s.card}, {"added", s.added}, {"after", s.after}, {"rewards", s.rewards}});
  j["passes_used"] = o.passes_used;
  // Only when there are: other outcomes keep their bytes.
  if (!o.passes_sold.empty()) {
    j["passes_sold"] = Json::array();
    for (const auto& s : o.passes_sold)
      j["passes_sold"].push_back({{"pass", s.pass_id},
                                  {"line", s.line},
                                  {"valid_from", format_local_date(s.valid_from)},
                                  {"valid_to", format_local_date(s.valid_to)}});
  }
  if (o.pass_deferral) {
    const auto& d = *o.pass_deferral;
    Json parts = Json::array();
    for (const auto& h : d.after)
      parts.push_back({{"valid_from", format_local_date(h.valid_from)},
                       {"valid_to", format_local_date(h.valid_to)}});
    j["pass_deferral"] = {{"pass", d.before.pass_id}, {"days", d.days}, {"valid", parts}};
  }
  if (!o.passes_returned.empty()) j["passes_returned"] = o.passes_returned;
  if (!o.tier_after.empty()) {
    j["tier_change"] = {{"to", o.tier_after}, {"from_date", format_local_date(*o.tier_from)}};
    if (o.tier_valid_until)
      j["tier_change"]["valid_until"] = format_local_date(*o.tier_valid_until);
  }
  if (!o.return_of.empty()) {
    j["return_of"] = o.return_of;
    j["points_reversed"] = o.points_reversed;
    j["points_restored"] = o.points_restored;
    j["stored_value_returned"] = o.sv_returned;
  }
  j["notes"] = o.notes;
  j["receipt"] = o.receipt;
  return j;
}

Json entries_to_json(const std::vector<Entry>& entries) {
  Json a = Json::array();
  for (const auto& e : entries)
    a.push_back({{"id", e.id},
                 {"debit", e.debit},
                 {"credit", e.credit},
                 {"amount", e.amount},
                 {"unit", e.unit},
                 {"lot", e.lot},
                 {"memo", e.memo}});
  return a;
}

}  // namespace loyalty::core
