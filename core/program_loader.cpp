// Top-level program document: everything but the rules (loader_rules.cpp).
#include "core/program_loader.h"

#include <set>

namespace loyalty::core {

namespace {

const Decimal4 kZero{};
const Decimal4 kHundred = Decimal4::from_int(100);
const std::vector<std::string> kPeriods{"transaction", "day",       "week", "month",
                                        "quarter",     "half_year", "year", "lifetime"};

template <typename F>
void each_in_array(ObjectReader& r, const std::string& key, F&& f) {
  const Json* v = r.get(key);
  if (v == nullptr) return;
  if (!v->is_array()) {
    r.problem(key, "must be an array");
    return;
  }
  for (std::size_t i = 0; i < v->size(); ++i) f((*v)[i], index_path(r.path(key), i));
}

void read_earning(ObjectReader& top, Earning& e, References& refs) {
  const Json* v = top.get("earning", true);
  if (v == nullptr) return;
  ObjectReader r(*v, "earning", top.problems());
  if (!r.ok()) return;
  if (const Json* b = r.get("basis", true)) {
    ObjectReader basis(*b, r.path("basis"), r.problems());
    e.after_discounts = basis.boolean("after_discounts", true).value_or(true);
    e.after_redemptions = basis.boolean("after_redemptions", true).value_or(true);
  }
  if (auto s = r.choice("rounding", {"floor", "half_up", "ceil"}, true))
    e.rounding = *parse_rounding(*s);
  const auto scope =
      r.choice("rounding_scope", {"line", "transaction", "total"}, true).value_or("transaction");
  e.rounding_scope = scope == "line"    ? Earning::RoundingScope::kLine
                     : scope == "total" ? Earning::RoundingScope::kTotal
                                        : Earning::RoundingScope::kRule;
  auto m = r.choice("multipliers", {"multiply", "add", "best"}, true).value_or("multiply");
  e.combine = m == "add" ? Combine::kAdd : m == "best" ? Combine::kBest : Combine::kMultiply;
  e.exclude = read_selector(r, "exclude");
  each_in_array(r, "caps", [&](const Json& c, const std::string& path) {
    ObjectReader cr(c, path, r.problems());
    if (!cr.ok()) return;
    EarnCap cap;
    if (auto p = cr.choice("period", kPeriods, true)) cap.period = *parse_period(*p);
    cap.max_points = cr.integer("max_points", true, 1).value_or(0);
    cap.bonus_only = cr.choice("applies_to", {"total", "bonus"}, true).value_or("total") == "bonus";
    cap.tiers = cr.strings("tiers");
    for (std::size_t i = 0; i < cap.tiers.size(); ++i)
      refs.add(index_path(cr.path("tiers"), i), "tier", cap.tiers[i]);
    e.caps.push_back(cap);
  });
}

void read_counting(ObjectReader& top, Counting& c) {
  const Json* v = top.get("metrics");
  if (v == nullptr) return;
  ObjectReader r(*v, "metrics", top.problems());
  if (!r.ok()) return;
  c.not_sales = read_selector(r, "not_sales");
  c.orders_paid = r.choice("orders", {"every", "paid"}).value_or("every") == "paid";
}

void read_expiry(ObjectReader& top, Expiry& e) {
  const Json* v = top.get("expiry", true);
  if (v == nullptr) return;
  ObjectReader r(*v, "expiry", top.problems());
  auto p = r.choice("policy", {"never", "rolling_months", "end_of_month_after", "year_end"}, true);
  if (!p) return;
  if (*p == "never") e.policy = ExpiryPolicy::kNever;
  if (*p == "year_end") e.policy = ExpiryPolicy::kYearEnd;
  if (*p == "rolling_months" || *p == "end_of_month_after") {
    e.policy =
        *p == "rolling_months" ? ExpiryPolicy::kRollingMonths : ExpiryPolicy::kEndOfMonthAfter;
    e.months = static_cast<int>(r.integer("months", true, 1, 120).value_or(12));
  } else if (r.has("months")) {
    r.problem("months", "only applies to rolling_months and end_of_month_after");
  }
}

void read_tiers(ObjectReader& top, std::optional<TierPolicy>& out, References& refs) {
  const Json* v = top.get("tiers");
  if (v == nullptr) return;
  ObjectReader r(*v, "tiers", top.problems());
  if (!r.ok()) return;
  TierPolicy t;
  std::set<std::string> ids;
  each_in_array(r, "levels", [&](const Json& l, const std::string& path) {
    ObjectReader lr(l, path, r.problems());
    if (!lr.ok()) return;
    TierLevel level;
    level.id = lr.id("id", true).value_or("");
    if (!level.id.empty() && !ids.insert(level.id).second)
      lr.problem("id", "duplicates an earlier level");
    level.name = lr.string("name", true).value_or(level.id);
    if (const Json* q = lr.get("qualify"))
      level.qualify = read_condition(*q, lr.path("qualify"), r.problems(), refs);
    if (t.levels.empty() && level.qualify)
      lr.problem("qualify", "the first level is the entry level and has no qualify");
    if (!t.levels.empty() && !level.qualify)
      lr.problem("qualify", "is required on every level above the first");
    t.levels.push_back(std::move(level));
  });
  if (t.levels.empty()) r.problem("levels", "needs at least one level");
  if (const Json* w = r.get("window", true)) {
    ObjectReader wr(*w, r.path("window"), r.problems());
    auto months = wr.integer("rolling_months", false, 1, 60);
    auto cal = wr.choice("calendar", {"month", "quarter", "half_year", "year"});
    if (months.has_value() == cal.has_value())
      wr.problem("", "needs exactly one of rolling_months or calendar");
    t.rolling_months = static_cast<int>(months.value_or(0));
    if (cal) t.calendar_window = *parse_period(*cal);
  }
  t.upgrade_next_day =
      r.choice("upgrade", {"immediate", "next_day"}, true).value_or("immediate") == "next_day";
  t.max_drop_levels = static_cast<int>(r.integer("max_drop_levels", false, 1, 10).value_or(1));
  if (const Json* g = r.get("grace")) {
    ObjectReader gr(*g, r.path("grace"), r.problems());
    t.grace_days = static_cast<int>(gr.integer("days", true, 1, 366).value_or(0));
    t.grace_fraction =
        gr.decimal("fraction", true, kZero, Decimal4::from_int(1), true).value_or(kZero);
    t.grace_levels = gr.strings("levels", true);
    for (std::size_t i = 0; i < t.grace_levels.size(); ++i)
      refs.add(index_path(gr.path("levels"), i), "tier", t.grace_levels[i]);
  }
  if (const Json* f = r.get("freeze")) {
    ObjectReader fr(*f, r.path("freeze"), r.problems());
    t.freeze_max_times = static_cast<int>(fr.integer("max_times", true, 1, 100).value_or(0));
    t.freeze_max_months = static_cast<int>(fr.integer("max_months", true, 1, 24).value_or(0));
  }
  t.carry_over_percent = r.decimal("carry_over_percent", false, kZero, kHundred).value_or(kZero);
  each_in_array(r, "derived_metrics", [&](const Json& d, const std::string& path) {
    ObjectReader dr(d, path, r.problems());
    DerivedMetric m;
    m.name = dr.id("name", true).value_or("");
    each_in_array(dr, "terms", [&](const Json& term, const std::string& tpath) {
      ObjectReader tr(term, tpath, r.problems());
      MetricTerm mt;
      mt.metric = tr.id("metric", true).value_or("");
      mt.weight = tr.decimal("weight", true, kZero, Decimal4::from_int(1000)).value_or(kZero);
      mt.per = tr.integer("per", false, 1).value_or(1);
      m.terms.push_back(mt);
    });
    if (m.terms.empty()) dr.problem("terms", "needs at least one term");
    t.derived.push_back(std::move(m));
  });
  each_in_array(r, "accelerators", [&](const Json& a, const std::string& path) {
    ObjectReader ar(a, path, r.problems());
    Accelerator acc;
    if (const Json* w = ar.get("when", true))
      acc.when = read_condition(*w, ar.path("when"), r.problems(), refs);
    if (auto to = ar.id("to", true)) refs.add(ar.path("to"), "tier", acc.to = *to);
    acc.valid_months = static_cast<int>(ar.integer("valid_months", false, 1, 120).value_or(12));
    t.accelerators.push_back(std::move(acc));
  });
  out = std::move(t);
}

void read_calendars(ObjectReader& top, Program& p) {
  const Json* v = top.get("calendars");
  if (v == nullptr) return;
  if (!v->is_object()) {
    top.problem("calendars", "must be an object of calendar name to list of days");
    return;
  }
  for (const auto& [name, days] : v->items()) {
    const auto path = join_path("calendars", name);
    auto& list = p.calendars[name];
    if (!days.is_array()) {
      top.problems().push_back({path, "must be an array of dates or {from, to} ranges"});
      continue;
    }
    for (std::size_t i = 0; i < days.size(); ++i) {
      const auto at = index_path(path, i);
      if (days[i].is_string()) {
        auto d = parse_local_date(days[i].get<std::string>());
        if (!d)
          top.problems().push_back({at, "must be a date YYYY-MM-DD"});
        else
          list.emplace_back(*d, *d);
      } else {
        ObjectReader r(days[i], at, top.problems());
        auto from = r.date("from", true);
        auto to = r.date("to", true);
        if (from && to && *to < *from)
          r.problem("to", "must not be before from");
        else if (from && to)
          list.emplace_back(*from, *to);
      }
    }
  }
}

void read_catalogs(ObjectReader& top, Program& p, References& refs) {
  std::set<std::string> voucher_ids;
  each_in_array(top, "vouchers", [&](const Json& v, const std::string& path) {
    ObjectReader r(v, path, top.problems());
    if (!r.ok()) return;
    VoucherTemplate t;
    t.id = r.id("id", true).value_or("");
    if (!voucher_ids.insert(t.id).second) r.problem("id", "duplicates an earlier voucher");
    t.name = r.string("name", true).value_or(t.id);
    auto kind = r.choice("kind", {"amount", "percent", "free_item", "item_price", "stamp"}, true)
                    .value_or("amount");
    t.kind = kind == "percent"      ? VoucherKind::kPercent
             : kind == "free_item"  ? VoucherKind::kFreeItem
             : kind == "item_price" ? VoucherKind::kItemPrice
             : kind == "stamp"      ? VoucherKind::kStamp
                                    : VoucherKind::kAmount;
    if (t.kind == VoucherKind::kStamp) {
      if (auto card = r.id("card", true)) refs.add(r.path("card"), "card", t.card = *card);
    }
    if (t.kind == VoucherKind::kAmount) t.value = r.integer("value", true, 1).value_or(0);
    if (t.kind == VoucherKind::kItemPrice) t.value = r.integer("price", true, 0).value_or(0);
    if (t.kind == VoucherKind::kPercent)
      t.percent = r.decimal("percent", true, kZero, kHundred, true).value_or(kZero);
    t.min_spend = r.integer("min_spend").value_or(0);
    t.applies_to = read_selector(r, "applies_to");
    t.valid_days = static_cast<int>(r.integer("valid_days", false, 1, 3660).value_or(30));
    t.max_share_percent = r.decimal("max_share_percent", false, kZero, kHundred, true);
    t.exclude = read_selector(r, "exclude");
    if (r.has("weekdays")) {
      Problems scratch;
      Json cond = Json::object({{"day_of_week", *r.get("weekdays")}});
      Condition c = read_condition(cond, path, scratch, refs);
      for (auto& pr : scratch) r.problems().push_back({r.path("weekdays"), pr.message});
      t.weekdays = c.numbers;
    }
    if (auto cal = r.id("calendar")) refs.add(r.path("calendar"), "calendar", t.calendar = *cal);
    p.vouchers.push_back(std::move(t));
  });
  if (const Json* v = top.get("redemption")) {
    ObjectReader r(*v, "redemption", top.problems());
    if (const Json* pt = r.get("points_as_tender")) {
      ObjectReader tr(*pt, r.path("points_as_tender"), r.problems());
      PointsTender t;
      t.points = tr.integer("points", true, 1).value_or(100);
      t.value = tr.integer("value", true, 1).value_or(100);
      t.min_points = tr.integer("min_points").value_or(0);
      t.step = tr.integer("step", false, 1).value_or(1);
      t.max_share_percent = tr.decimal("max_share_percent", false, kZero, kHundred, true);
      t.applies_to = read_selector(tr, "applies_to");
      p.points_tender = t;
    }
  }
  each_in_array(top, "rewards", [&](const Json& v, const std::string& path) {
    ObjectReader r(v, path, top.problems());
    Reward w;
    w.id = r.id("id", true).value_or("");
    w.name = r.string("name", true).value_or(w.id);
    w.points = r.integer("points", true, 1).value_or(0);
    w.cash = r.integer("cash").value_or(0);
    if (auto t = r.id("min_tier")) refs.add(r.path("min_tier"), "tier", w.min_tier = *t);
    if (auto vt = r.id("voucher")) refs.add(r.path("voucher"), "voucher", w.voucher = *vt);
    if (auto cal = r.id("calendar")) refs.add(r.path("calendar"), "calendar", w.calendar = *cal);
    p.rewards.push_back(std::move(w));
  });
  each_in_array(top, "stamp_cards", [&](const Json& v, const std::string& path) {
    ObjectReader r(v, path, top.problems());
    StampCard c;
    c.id = r.id("id", true).value_or("");
    c.name = r.string("name", true).value_or(c.id);
    c.stamps_required = static_cast<int>(r.integer("stamps_required", true, 1, 1000).value_or(1));
    if (auto vt = r.id("reward_voucher", true))
      refs.add(r.path("reward_voucher"), "voucher", c.reward_voucher = *vt);
    if (auto reset = r.choice(
            "reset", {"never", "day", "week", "month", "quarter", "half_year", "year"}, true))
      c.reset = *reset == "never" ? Period::kLifetime : *parse_period(*reset);
    c.max_per_day = static_cast<int>(r.integer("max_per_day", false, 1, 1000).value_or(0));
    p.stamp_cards.push_back(std::move(c));
  });
  each_in_array(top, "passes", [&](const Json& v, const std::string& path) {
    ObjectReader r(v, path, top.problems());
    Pass s;
    s.id = r.id("id", true).value_or("");
    s.name = r.string("name", true).value_or(s.id);
    s.price = r.integer("price", true).value_or(0);
    s.sku = r.string("sku").value_or("");
    if (r.has("sku") && s.sku.empty()) r.problem("sku", "must name the SKU that sells the pass");
    s.valid_months = static_cast<int>(r.integer("valid_months", false, 1, 24).value_or(1));
    s.covers = read_selector(r, "covers");
    if (!s.covers.present) r.problem("covers", "is required (which items the pass pays for)");
    Problems scratch;
    if (r.has("weekdays")) {
      Json cond = Json::object({{"day_of_week", *r.get("weekdays")}});
      Condition c = read_condition(cond, path, scratch, refs);
      for (auto& pr : scratch) r.problems().push_back({r.path("weekdays"), pr.message});
      s.weekdays = c.numbers;
    }
    s.max_per_day = static_cast<int>(r.integer("max_per_day", false, 1, 100).value_or(1));
    s.max_per_month = static_cast<int>(r.integer("max_per_month", false, 1, 1000).value_or(0));
    s.deferrals_per_month =
        static_cast<int>(r.integer("deferrals_per_month", false, 0, 31).value_or(0));
    s.max_deferral_days =
        static_cast<int>(r.integer("max_deferral_days", false, 0, 31).value_or(0));
    p.passes.push_back(std::move(s));
  });
}

void read_eligibility(ObjectReader& top, Program& p, References& refs) {
  each_in_array(top, "eligibility", [&](const Json& v, const std::string& path) {
    ObjectReader r(v, path, top.problems());
    if (!r.ok()) return;
    Eligibility e;
    e.id = r.id("id", true).value_or("");
    e.name = r.string("name", true).value_or(e.id);
    e.items = read_selector(r, "items");
    if (!e.items.present) r.problem("items", "is required (which items are restricted)");
    if (auto t = r.id("min_tier", true)) refs.add(r.path("min_tier"), "tier", e.min_tier = *t);
    for (auto [key, field] : {std::pair{"from", &e.from}, std::pair{"until", &e.until}}) {
      if (auto s = r.string(key)) {
        if (auto t = parse_local_datetime(*s))
          *field = *t;
        else
          r.problem(key, "must be a local time YYYY-MM-DDTHH:MM:SS");
      }
    }
    if (e.from && e.until && *e.until <= *e.from) r.problem("until", "must be after from");
    p.eligibility.push_back(std::move(e));
  });
}

void read_misc(ObjectReader& top, Program& p) {
  if (const Json* v = top.get("streaks")) {
    ObjectReader r(*v, "streaks", top.problems());
    p.streaks = r.boolean("enabled", true).value_or(false);
  }
  if (const Json* v = top.get("stored_value")) {
    ObjectReader r(*v, "stored_value", top.problems());
    p.stored_value_bonus_restricted_to = read_selector(r, "bonus_restricted_to");
  }
  if (const Json* v = top.get("referral")) {
    ObjectReader r(*v, "referral", top.problems());
    p.referral_window_days = static_cast<int>(r.integer("window_days", true, 1, 3660).value_or(0));
  }
  if (const Json* v = top.get("offline")) {
    ObjectReader r(*v, "offline", top.problems());
    p.offline.max_points_per_member_per_day =
        r.integer("max_points_per_member_per_day").value_or(0);
    p.offline.max_points_per_terminal_per_day =
        r.integer("max_points_per_terminal_per_day").value_or(0);
    p.offline.max_hours_since_sync =
        r.integer("max_hours_since_sync", false, 0, 24 * 366).value_or(0);
  }
}

void check_references(const Program& p, const References& refs, Problems& problems) {
  for (const auto& ref : refs.refs) {
    bool found = false;
    std::string where;
    if (ref.kind == "tier") {
      found = p.tiers && p.tiers->rank_of(ref.id) >= 0;
      where = "tiers.levels";
    } else if (ref.kind == "voucher") {
      found = p.find_voucher(ref.id) != nullptr;
      where = "vouchers";
    } else if (ref.kind == "card") {
      found = p.find_card(ref.id) != nullptr;
      where = "stamp_cards";
    } else if (ref.kind == "pass") {
      found = p.find_pass(ref.id) != nullptr;
      where = "passes";
    } else if (ref.kind == "calendar") {
      found = p.calendars.contains(ref.id);
      where = "calendars";
    }
    if (!found)
      problems.push_back(
          {ref.path, "names " + ref.kind + " '" + ref.id + "', which is not defined in " + where});
  }
  for (const auto& rule : p.rules) {
    for (const auto& e : rule.effects) {
      const bool needs_purchase =
          e.kind == EffectKind::kEarnPerAmount || e.kind == EffectKind::kMultiplier ||
          e.kind == EffectKind::kDiscountPercent || e.kind == EffectKind::kDiscountAmount ||
          e.kind == EffectKind::kNthItemDiscount || e.kind == EffectKind::kBundlePrice;
      // An activity earns per amount on the amount its event carries.
      const bool per_amount_activity =
          e.kind == EffectKind::kEarnPerAmount && rule.trigger == Trigger::kActivity;
      if (needs_purchase && rule.trigger != Trigger::kPurchase && !per_amount_activity)
        problems.push_back(
            {"rules[" + std::to_string(rule.index) + "].effects",
             std::string(to_string(e.kind)) + (e.kind == EffectKind::kEarnPerAmount
                                                   ? " only works with trigger purchase or activity"
                                                   : " only works with trigger purchase")});
      if (rule.trigger == Trigger::kTierUp && e.kind != EffectKind::kIssueVoucher &&
          e.kind != EffectKind::kAddStamp && e.kind != EffectKind::kCounter)
        problems.push_back({"rules[" + std::to_string(rule.index) + "].effects",
                            std::string(to_string(e.kind)) +
                                " does not work with trigger tier_up (vouchers, stamps and "
                                "counters do)"});
      if (e.kind == EffectKind::kStoredValueBonus && rule.trigger != Trigger::kTopUp)
        problems.push_back({"rules[" + std::to_string(rule.index) + "].effects",
                            "stored_value_bonus only works with trigger top_up"});
    }
  }
}

}  // namespace

Result<Program> load_program_text(std::string_view text) {
  auto doc = Json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) return invalid("", "is not valid JSON");
  return load_program(doc);
}

Result<Program> load_program(const Json& document) {
  Problems problems;
  Program p;
  References refs;
  {
    ObjectReader top(document, "", problems);
    if (!top.ok()) return invalid("", "a program must be a JSON object");
    if (auto s = top.integer("schema", true, 1, 1)) (void)s;
    p.id = top.id("program", true).value_or("");
    p.version = top.integer("version", true, 1).value_or(0);
    p.name = top.string("name", true).value_or("");
    if (auto c = top.string("currency", true)) {
      if (auto cur = find_currency(*c))
        p.currency = *cur;
      else
        top.problem("currency", "must be an ISO 4217 code such as CNY or USD");
    }
    p.decisions = top.strings("decisions");
    read_earning(top, p.earning, refs);
    read_counting(top, p.counting);
    read_expiry(top, p.expiry);
    read_tiers(top, p.tiers, refs);
    read_rules(top, p.rules, refs);
    read_calendars(top, p);
    read_catalogs(top, p, refs);
    read_eligibility(top, p, refs);
    read_misc(top, p);
  }
  check_references(p, refs, problems);
  if (!problems.empty()) {
    Error e{ErrorCode::kInvalidArgument, "", problems};
    e.message = std::to_string(problems.size()) + " problem(s) in program: ";
    for (std::size_t i = 0; i < problems.size() && i < 5; ++i)
      e.message += (i ? "; " : "") + problems[i].to_string();
    return std::unexpected(std::move(e));
  }
  return p;
}

}  // namespace loyalty::core
