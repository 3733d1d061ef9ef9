// HqLedger::report: per-store, per-day sales and points, and the seeds'
// program metrics, computed from the ledger's transactions and members.
#include <map>
#include <set>

#include "core/io_json.h"
#include "core/ledger.h"
#include "hq/ledger.h"

namespace loyalty::hq {

core::Result<Json> HqLedger::report(const std::string& from, const std::string& to) {
  if (!core::parse_local_date(from)) return core::invalid("from", "must be a date, YYYY-MM-DD");
  if (!core::parse_local_date(to)) return core::invalid("to", "must be a date, YYYY-MM-DD");
  if (to < from) return core::invalid("to", "must not be before from (" + from + ")");
  std::lock_guard lock(mutex_);
  try {
    struct Day {
      std::int64_t transactions = 0, sales = 0, points_earned = 0, points_redeemed = 0;
      std::int64_t points_reversed = 0, points_restored = 0;  // by returns and voids
      std::set<std::string> members;
    };
    std::map<std::pair<std::string, std::string>, Day> days;
    std::map<std::string, std::int64_t> purchases_by_member;
    std::int64_t sales = 0, earned = 0, redeemed = 0;
    for (const auto& row : db_.query(
             "SELECT store_id, business_day, member_id, kind, points_earned, points_redeemed, "
             "record FROM transactions WHERE business_day >= ?1 AND business_day <= ?2 "
             "AND store_id <> 'HQ'",
             {from, to})) {
      auto& d = days[{row.text(0), row.text(1)}];
      ++d.transactions;
      d.members.insert(row.text(2));
      d.points_earned += row.integer(4);
      d.points_redeemed += row.integer(5);
      earned += row.integer(4);
      redeemed += row.integer(5);
      // Sales: what the goods went for after discounts and points paid,
      // whatever the tender (cash, card or stored value); returns and
      // voids take back what they refund.
      if (row.text(3) == "purchase") {
        const auto rec = Json::parse(row.text(6));
        const auto& t = rec["totals"];
        const auto sold =
            t.value("amount_due", std::int64_t{0}) + t.value("stored_value_used", std::int64_t{0});
        d.sales += sold;
        sales += sold;
        ++purchases_by_member[row.text(2)];
      } else if (row.text(3) == "return" || row.text(3) == "void") {
        const auto rec = Json::parse(row.text(6));
        const auto due = rec["totals"].value("amount_due", std::int64_t{0});  // negative
        d.sales += due;
        sales += due;
        // The member's points it moves (earned ones taken back, redeemed
        // ones given back), and the stored value it gives back, which is
        // a refund too (amount_due is the cash part only).
        const auto account = core::member_account(row.text(2));
        for (const auto& e : rec.value("entries", Json::array())) {
          const auto amount = e.value("amount", std::int64_t{0});
          const auto credit = e.value("credit", "");
          if (e.value("unit", "") != "pts") {
            if (credit == "sv:" + row.text(2) || credit == "sv-bonus:" + row.text(2)) {
              d.sales -= amount;
              sales -= amount;
            }
            continue;
          }
          if (e.value("debit", "") == account) d.points_reversed += amount;
          if (credit == account) d.points_restored += amount;
        }
      }
    }
    Json per_day = Json::array();
    for (const auto& [key, d] : days)
      per_day.push_back({{"store_id", key.first},
                         {"business_day", key.second},
                         {"transactions", d.transactions},
                         {"members", static_cast<std::int64_t>(d.members.size())},
                         {"sales", d.sales},
                         {"points_earned", d.points_earned},
                         {"points_redeemed", d.points_redeemed},
                         {"points_taken_back", d.points_reversed},
                         {"points_given_back", d.points_restored}});
    std::int64_t repeaters = 0;
    for (const auto& [m, n] : purchases_by_member) repeaters += n >= 2 ? 1 : 0;
    // Referral conversion: referred members (enrolled in the period) who
    // went on to buy.
    std::int64_t referred = 0, converted = 0;
    for (const auto& row : db_.query("SELECT id, state FROM members")) {
      const auto st = Json::parse(row.text(1));
      if (!st.contains("referred_by")) continue;
      const auto enrolled = st.value("enrolled_on", std::string());
      if (enrolled < from || enrolled > to) continue;
      ++referred;
      if (purchases_by_member.contains(row.text(0))) ++converted;
    }
    const auto ratio = [](std::int64_t a, std::int64_t b) -> Json {
      return b == 0 ? Json(nullptr) : Json(static_cast<double>(a) / static_cast<double>(b));
    };
    // What a point costs: the program's points-as-payment rate when it has
    // one (value of `points` points in minor units).
    Json cost = nullptr;
    if (auto p = program_in_force(); p && (*p)->points_tender && sales > 0)
      cost = static_cast<double>(earned) * static_cast<double>((*p)->points_tender->value) /
             static_cast<double>((*p)->points_tender->points) / static_cast<double>(sales);
    const auto active = static_cast<std::int64_t>(purchases_by_member.size());
    return Json{{"from", from},
                {"to", to},
                {"per_store_day", per_day},
                {"metrics",
                 {{"sales", sales},
                  {"active_members", active},
                  {"repurchase_rate", ratio(repeaters, active)},
                  {"referred_members", referred},
                  {"referral_conversion", ratio(converted, referred)},
                  {"points_earned", earned},
                  {"points_redeemed", redeemed},
                  {"redemption_rate", ratio(redeemed, earned)},
                  {"points_cost_share_of_sales", cost}}}};
  } catch (const SqlError& e) {
    return core::fail(core::ErrorCode::kUnavailable, std::string("HQ database: ") + e.what());
  }
}

}  // namespace loyalty::hq
