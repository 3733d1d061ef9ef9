// Reading conditions, effects and rules (docs/programs.md, "rules").
#include <algorithm>
#include <array>

#include "core/program_loader.h"

namespace loyalty::core {

namespace {

constexpr std::array<const char*, 7> kWeekdays{"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
constexpr int kMaxConditionDepth = 16;

Threshold read_threshold(ObjectReader& r, bool allow_reaches, bool required = true) {
  Threshold t;
  t.at_least = r.integer("at_least", false, INT64_C(-1'000'000'000'000'000));
  t.at_most = r.integer("at_most", false, INT64_C(-1'000'000'000'000'000));
  if (allow_reaches) t.reaches = r.integer("reaches", false, 1);
  if (required && !t.at_least && !t.at_most && !t.reaches) {
    r.problem("",
              allow_reaches ? "needs at_least, at_most or reaches" : "needs at_least or at_most");
  }
  return t;
}

Threshold threshold_at(const Json& v, const std::string& path, Problems& p, bool allow_reaches) {
  ObjectReader r(v, path, p);
  return r.ok() ? read_threshold(r, allow_reaches) : Threshold{};
}

}  // namespace

Selector read_selector_value(const Json& v, const std::string& path, Problems& problems) {
  Selector s;
  ObjectReader r(v, path, problems);
  if (!r.ok()) return s;
  s.present = true;
  s.skus = r.strings("skus");
  s.categories = r.strings("categories");
  s.tags = r.strings("tags");
  s.min_unit_price = r.integer("min_unit_price");
  return s;
}

Selector read_selector(ObjectReader& r, const std::string& key) {
  const Json* v = r.get(key);
  if (v == nullptr) return Selector{};
  return read_selector_value(*v, r.path(key), r.problems());
}

Condition read_condition(const Json& v, const std::string& path, Problems& p, References& refs,
                         int depth) {
  Condition c;
  if (depth > kMaxConditionDepth) {
    p.push_back({path, "conditions nest deeper than 16 levels"});
    return c;
  }
  if (!v.is_object() || v.size() != 1) {
    p.push_back({path,
                 "must be an object with exactly one condition key (all, any, not, "
                 "day_of_week, time_window, date_range, day_of_month, calendar, tier, "
                 "tier_at_least, basket_amount, item_count, contains, first_purchase, "
                 "days_since_last_purchase, tenure_days, birthday_month, "
                 "enrolled_within_days, referred, metric, streak_reaches, activity, "
                 "top_up_amount)"});
    return c;
  }
  // Copy the key and bind the value through a named iterator: items() is a
  // temporary proxy, and a reference into it would dangle.
  const auto first = v.begin();
  const std::string key = first.key();
  const Json& value = first.value();
  const std::string at = join_path(path, key);
  auto list_children = [&](ConditionKind kind) {
    c.kind = kind;
    if (!value.is_array() || value.empty()) {
      p.push_back({at, "must be a non-empty array of conditions"});
      return;
    }
    for (std::size_t i = 0; i < value.size(); ++i)
      c.children.push_back(read_condition(value[i], index_path(at, i), p, refs, depth + 1));
  };
  auto flag = [&](ConditionKind kind) {
    c.kind = kind;
    if (!value.is_boolean())
      p.push_back({at, "must be true or false"});
    else
      c.flag = value.get<bool>();
  };
  auto small_int = [&](ConditionKind kind) {
    c.kind = kind;
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0 ||
        value.get<std::int64_t>() > 100000) {
      p.push_back({at, "must be an integer from 0 to 100000"});
    } else {
      c.threshold.at_least = value.get<std::int64_t>();
    }
  };
  if (key == "all") {
    list_children(ConditionKind::kAll);
  } else if (key == "any") {
    list_children(ConditionKind::kAny);
  } else if (key == "not") {
    c.kind = ConditionKind::kNot;
    c.children.push_back(read_condition(value, at, p, refs, depth + 1));
  } else if (key == "day_of_week") {
    c.kind = ConditionKind::kDayOfWeek;
    if (!value.is_array() || value.empty())
      p.push_back({at, "must be a non-empty array of mon..sun"});
    else
      for (std::size_t i = 0; i < value.size(); ++i) {
        auto it = value[i].is_string()
                      ? std::find(kWeekdays.begin(), kWeekdays.end(), value[i].get<std::string>())
                      : kWeekdays.end();
        if (it == kWeekdays.end())
          p.push_back({index_path(at, i), "must be one of mon, tue, wed, thu, fri, sat, sun"});
        else
          c.numbers.push_back(static_cast<int>(it - kWeekdays.begin()));
      }
  } else if (key == "time_window") {
    c.kind = ConditionKind::kTimeWindow;
    ObjectReader r(value, at, p);
    auto from = r.string("from", true);
    auto to = r.string("to", true);
    std::optional<int> fm, tm;
    if (from) fm = parse_clock_minutes(*from);
    if (to) tm = parse_clock_minutes(*to);
    if (from && !fm) r.problem("from", "must be a clock time HH:MM");
    if (to && !tm) r.problem("to", "must be a clock time HH:MM");
    if (fm && tm && *fm >= *tm)
      r.problem("to", "must be later than from (windows do not cross midnight; use any of two)");
    c.from_minutes = fm.value_or(0);
    c.to_minutes = tm.value_or(0);
  } else if (key == "date_range") {
    c.kind = ConditionKind::kDateRange;
    ObjectReader r(value, at, p);
    auto from = r.date("from", true);
    auto to = r.date("to", true);
    if (from && to && *to < *from) r.problem("to", "must not be before from");
    if (from) c.from_day = *from;
    if (to) c.to_day = *to;
  } else if (key == "day_of_month") {
    c.kind = ConditionKind::kDayOfMonth;
    if (!value.is_array() || value.empty())
      p.push_back({at, "must be a non-empty array of days 1..31"});
    else
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_number_integer() || value[i].get<int>() < 1 || value[i].get<int>() > 31)
          p.push_back({index_path(at, i), "must be a day of month 1..31"});
        else
          c.numbers.push_back(value[i].get<int>());
      }
  } else if (key == "calendar") {
    c.kind = ConditionKind::kCalendar;
    if (!value.is_string())
      p.push_back({at, "must be the name of a calendar"});
    else
      refs.add(at, "calendar", c.name = value.get<std::string>());
  } else if (key == "tier" || key == "activity" || key == "referrer_tier" || key == "paid_with" ||
             key == "attribute") {
    c.kind = key == "tier"            ? ConditionKind::kTier
             : key == "referrer_tier" ? ConditionKind::kReferrerTier
             : key == "paid_with"     ? ConditionKind::kPaidWith
             : key == "attribute"     ? ConditionKind::kAttribute
                                      : ConditionKind::kActivity;
    if (!value.is_array() || value.empty())
      p.push_back({at, "must be a non-empty array of names"});
    else
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string()) {
          p.push_back({index_path(at, i), "must be a string"});
          continue;
        }
        c.names.push_back(value[i].get<std::string>());
        if (key == "tier" || key == "referrer_tier")
          refs.add(index_path(at, i), "tier", c.names.back());
      }
  } else if (key == "tier_at_least") {
    c.kind = ConditionKind::kTierAtLeast;
    if (!value.is_string())
      p.push_back({at, "must be a tier id"});
    else
      refs.add(at, "tier", c.name = value.get<std::string>());
  } else if (key == "basket_amount" || key == "item_count") {
    c.kind = key == "basket_amount" ? ConditionKind::kBasketAmount : ConditionKind::kItemCount;
    ObjectReader r(value, at, p);
    if (r.ok()) {
      c.threshold = read_threshold(r, false);
      c.selector = read_selector(r, "of");
      if (key == "basket_amount")
        c.net = r.choice("measure", {"net", "list"}).value_or("net") == "net";
    }
  } else if (key == "new_subscriber") {
    // "new_subscriber": "<pass id>": the member has never held that pass.
    c.kind = ConditionKind::kNewSubscriber;
    if (!value.is_string() || !valid_id(value.get<std::string>()))
      p.push_back({at, "must name a pass"});
    else
      refs.add(at, "pass", c.name = value.get<std::string>());
  } else if (key == "anniversary" || key == "years_since") {
    // {"of": "enrollment" | "first_purchase", "years": {"at_least": 1}} and
    // {"of": ..., "at_least": 3}.
    c.kind = key == "anniversary" ? ConditionKind::kAnniversary : ConditionKind::kYearsSince;
    ObjectReader r(value, at, p);
    if (r.ok()) {
      c.name = r.choice("of", {"enrollment", "first_purchase"}, true).value_or("enrollment");
      if (key == "anniversary") {
        c.threshold.at_least = 1;
        if (const Json* y = r.get("years")) {
          ObjectReader yr(*y, r.path("years"), p);
          if (yr.ok()) c.threshold = read_threshold(yr, false);
        }
      } else {
        c.threshold = read_threshold(r, false);
      }
    }
  } else if (key == "pass_days_left") {
    c.kind = ConditionKind::kPassDaysLeft;
    ObjectReader r(value, at, p);
    if (r.ok()) {
      if (auto id = r.id("pass", true)) refs.add(r.path("pass"), "pass", c.name = *id);
      c.threshold = read_threshold(r, false);
    }
  } else if (key == "contains") {
    c.kind = ConditionKind::kContains;
    c.selector = read_selector_value(value, at, p);
  } else if (key == "first_purchase") {
    flag(ConditionKind::kFirstPurchase);
  } else if (key == "birthday_month") {
    flag(ConditionKind::kBirthdayMonth);
  } else if (key == "referred") {
    flag(ConditionKind::kReferred);
  } else if (key == "days_since_last_purchase" || key == "tenure_days" || key == "top_up_amount") {
    c.kind = key == "tenure_days"     ? ConditionKind::kTenureDays
             : key == "top_up_amount" ? ConditionKind::kTopUpAmount
                                      : ConditionKind::kDaysSinceLastPurchase;
    c.threshold = threshold_at(value, at, p, false);
  } else if (key == "enrolled_within_days") {
    small_int(ConditionKind::kEnrolledWithinDays);
  } else if (key == "streak_reaches") {
    small_int(ConditionKind::kStreakReaches);
  } else if (key == "stamps") {
    c.kind = ConditionKind::kStamps;
    ObjectReader r(value, at, p);
    if (r.ok()) {
      if (auto card = r.id("card", true)) refs.add(r.path("card"), "card", c.name = *card);
      c.threshold = read_threshold(r, true);
    }
  } else if (key == "metric") {
    c.kind = ConditionKind::kMetric;
    ObjectReader r(value, at, p);
    if (r.ok()) {
      c.name = r.id("name", true).value_or("");
      if (auto per = r.choice("period",
                              {"day", "week", "month", "quarter", "half_year", "year", "lifetime"}))
        c.period = parse_period(*per);
      if (auto lt = r.id("less_than")) c.less_than = *lt;
      c.threshold = read_threshold(r, true, c.less_than.empty());
      if (auto d = r.id("divide_by")) {
        c.divide_by = *d;
        if (c.threshold.reaches)
          p.push_back({at + ".metric.divide_by", "cannot be used with reaches"});
      }
      if (auto n = r.integer("consecutive", false, 1, 24)) {
        c.consecutive = static_cast<int>(*n);
        if (c.consecutive > 1 && !c.threshold.at_least)
          p.push_back({at + ".metric.consecutive", "needs at_least"});
      }
    }
  } else {
    p.push_back({at, "unknown condition"});
  }
  return c;
}

namespace {

Effect read_effect(const Json& v, const std::string& path, Problems& p, References& refs) {
  Effect e;
  ObjectReader r(v, path, p);
  if (!r.ok()) return e;
  auto type = r.choice("type",
                       {"earn_per_amount", "multiplier", "fixed_points", "discount_percent",
                        "discount_amount", "nth_item_discount", "bundle_price", "issue_voucher",
                        "add_stamp", "counter", "stored_value_bonus"},
                       true);
  if (!type) return e;
  const auto& t = *type;
  const Decimal4 zero{}, hundred = Decimal4::from_int(100);
  auto read_to = [&] {
    e.to = r.choice("to", {"member", "referrer"}).value_or("member") == "referrer"
               ? Recipient::kReferrer
               : Recipient::kMember;
  };
  if (t == "earn_per_amount") {
    e.kind = EffectKind::kEarnPerAmount;
    e.points = r.integer("points", true, 1).value_or(1);
    e.per = r.integer("per", true, 1).value_or(1);
    e.on = read_selector(r, "on");
  } else if (t == "multiplier") {
    e.kind = EffectKind::kMultiplier;
    e.factor = r.decimal("factor", true, zero, Decimal4::from_int(100), true)
                   .value_or(Decimal4::from_int(1));
    e.on = read_selector(r, "on");
  } else if (t == "fixed_points") {
    e.kind = EffectKind::kFixedPoints;
    e.points = r.integer("points", true, 1).value_or(0);
    read_to();
  } else if (t == "discount_percent" || t == "nth_item_discount") {
    e.kind = t == "discount_percent" ? EffectKind::kDiscountPercent : EffectKind::kNthItemDiscount;
    // An nth-item discount is a percentage or a fixed amount off the unit.
    const bool fixed = t == "nth_item_discount" && r.has("amount");
    if (fixed)
      e.amount = r.integer("amount", true, 1).value_or(0);
    else
      e.percent = r.decimal("percent", true, zero, hundred, true).value_or(zero);
    if (fixed && r.has("percent")) r.problem("amount", "give percent or amount, not both");
    e.on = read_selector(r, "on");
    e.exclude = read_selector(r, "exclude");
    if (t == "nth_item_discount") {
      e.n = static_cast<int>(r.integer("n", true, 1, 100).value_or(1));
      e.repeat = r.boolean("repeat").value_or(false);
      e.onward = r.boolean("onward").value_or(false);
      if (e.repeat && e.onward) r.problem("onward", "give repeat or onward, not both");
      e.cap = r.integer("cap", false, 1);
    } else {
      e.cap = r.integer("cap", false, 1);
    }
  } else if (t == "bundle_price") {
    // {"n": 4, "price": 8800, "on": {...}}: four units for 88.00.
    e.kind = EffectKind::kBundlePrice;
    e.n = static_cast<int>(r.integer("n", true, 2, 100).value_or(2));
    e.amount = r.integer("price", true, 0).value_or(0);
    e.on = read_selector(r, "on");
    e.exclude = read_selector(r, "exclude");
    e.repeat = r.boolean("repeat").value_or(false);
  } else if (t == "discount_amount") {
    e.kind = EffectKind::kDiscountAmount;
    e.amount = r.integer("amount", true, 1).value_or(0);
    e.on = read_selector(r, "on");
    e.exclude = read_selector(r, "exclude");
  } else if (t == "issue_voucher") {
    e.kind = EffectKind::kIssueVoucher;
    if (auto id = r.id("voucher", true)) refs.add(r.path("voucher"), "voucher", e.target = *id);
    e.count = r.integer("count", false, 1, 100).value_or(1);
    read_to();
  } else if (t == "add_stamp") {
    e.kind = EffectKind::kAddStamp;
    if (auto id = r.id("card", true)) refs.add(r.path("card"), "card", e.target = *id);
    e.count = r.integer("count", false, 1, 100).value_or(1);
  } else if (t == "counter") {
    e.kind = EffectKind::kCounter;
    e.target = r.id("counter", true).value_or("");
    auto add = r.integer("add", false, -1'000'000'000, 1'000'000'000);
    if (const Json* s = r.get("add_units_of"))
      e.add_units_of = read_selector_value(*s, r.path("add_units_of"), p);
    e.add_per_amount = r.integer("add_per_amount", false, 1).value_or(0);
    if (e.add_per_amount > 0) e.on = read_selector(r, "on");
    const int given = add.has_value() + e.add_units_of.has_value() + (e.add_per_amount > 0);
    if (given != 1) r.problem("add", "give exactly one of add, add_units_of or add_per_amount");
    e.amount = add.value_or(0);
    read_to();  // "referrer": the referrer's counter (referrals made count for their tier)
  } else if (t == "stored_value_bonus") {
    e.kind = EffectKind::kStoredValueBonus;
    e.amount = r.integer("amount", true, 1).value_or(0);
  }
  return e;
}

std::optional<RuleLimit> read_limit(ObjectReader& rule, References& refs) {
  const Json* v = rule.get("limit");
  if (v == nullptr) return std::nullopt;
  RuleLimit l;
  ObjectReader r(*v, rule.path("limit"), rule.problems());
  if (!r.ok()) return std::nullopt;
  if (auto per = r.choice(
          "period",
          {"transaction", "day", "week", "month", "quarter", "half_year", "year", "lifetime"},
          true))
    l.period = *parse_period(*per);
  l.max_times = r.integer("max_times", false, 1);
  l.max_points = r.integer("max_points", false, 1);
  if (const Json* by = r.get("max_times_by_tier")) {
    if (!by->is_object())
      r.problem("max_times_by_tier", "must be an object of tier id to count");
    else
      for (const auto& [tier, n] : by->items()) {
        const auto at = join_path(r.path("max_times_by_tier"), tier);
        if (!n.is_number_integer() || n.get<std::int64_t>() < 0)
          r.problems().push_back({at, "must be a non-negative integer"});
        else
          l.max_times_by_tier[tier] = n.get<std::int64_t>();
        refs.add(at, "tier", tier);
      }
  }
  l.on_referrer = r.choice("subject", {"member", "referrer"}).value_or("member") == "referrer";
  if (!l.max_times && !l.max_points) r.problem("", "needs max_times or max_points");
  return l;
}

}  // namespace

void read_rules(ObjectReader& top, std::vector<Rule>& rules, References& refs) {
  const Json* v = top.get("rules", true);
  if (v == nullptr) return;
  if (!v->is_array()) {
    top.problem("rules", "must be an array of rules");
    return;
  }
  std::set<std::string> ids;
  for (std::size_t i = 0; i < v->size(); ++i) {
    const auto path = index_path("rules", i);
    ObjectReader r((*v)[i], path, top.problems());
    if (!r.ok()) continue;
    Rule rule;
    rule.index = i;
    rule.id = r.id("id", true).value_or("");
    if (!rule.id.empty() && !ids.insert(rule.id).second)
      r.problem("id", "duplicates an earlier rule id");
    rule.name = r.string("name", true).value_or(rule.id);
    if (auto t =
            r.choice("trigger",
                     {"purchase", "return", "enrollment", "review", "referral", "check_in",
                      "survey", "activity", "top_up", "birthday", "period_end", "daily", "tier_up"},
                     true))
      rule.trigger = *parse_trigger(*t);
    if (const Json* w = r.get("when"))
      rule.when = read_condition(*w, r.path("when"), r.problems(), refs);
    const Json* effects = r.get("effects", true);
    if (effects != nullptr && (!effects->is_array() || effects->empty())) {
      r.problem("effects", "must be a non-empty array of effects");
    } else if (effects != nullptr) {
      for (std::size_t k = 0; k < effects->size(); ++k)
        rule.effects.push_back(
            read_effect((*effects)[k], index_path(r.path("effects"), k), r.problems(), refs));
    }
    rule.limit = read_limit(r, refs);
    rule.group = r.string("group").value_or("");
    rule.priority = r.integer("priority", false, -1000000, 1000000).value_or(0);
    rules.push_back(std::move(rule));
  }
  std::stable_sort(rules.begin(), rules.end(),
                   [](const Rule& a, const Rule& b) { return a.priority > b.priority; });
}

}  // namespace loyalty::core
