#include "core/return_basis.h"

namespace loyalty::core {

Json return_basis_to_json(const Committed& c) {
  const auto& o = c.outcome;
  Json lines = Json::array();
  for (std::size_t i = 0; i < o.lines.size(); ++i) {
    const auto& in = o.request.basket.lines[i];
    const auto& r = o.lines[i];
    lines.push_back({{"sku", in.sku},
                     {"quantity", in.quantity},
                     {"unit_price", in.unit_price},
                     {"discount", r.discount},
                     {"points_value", r.points_value},
                     {"earn_basis", r.earn_basis},
                     {"points", r.points}});
  }
  Json metrics = Json::array();
  for (const auto& m : o.metrics)
    if (m.on == Recipient::kMember) metrics.push_back({{"metric", m.metric}, {"delta", m.delta}});
  Json draws = Json::array();
  for (const auto& d : c.draws) draws.push_back({{"lot", d.lot}, {"points", d.points}});
  Json j{{"txn_id", o.request.txn_id},
         {"currency", o.request.basket.currency},
         {"lines", lines},
         {"points_earned", o.points_earned},
         {"points_redeemed", o.points_redeemed},
         {"metrics", metrics},
         {"vouchers_issued", o.vouchers_issued.size()},
         {"earned_lot", c.earned_lot},
         {"draws", draws},
         {"returned_qty", c.returned_qty},
         {"points_reversed", c.points_reversed},
         {"points_restored", c.points_restored}};
  // Only a sale that changed the tier carries it, so that a return can put
  // it back; only one that sold passes carries them.
  if (!o.tier_after.empty()) {
    j["tier"] = o.tier;
    j["tier_after"] = o.tier_after;
    if (o.tier_valid_until) j["tier_valid_until"] = format_local_date(*o.tier_valid_until);
  }
  if (!o.passes_sold.empty()) {
    Json sold = Json::array();
    for (const auto& s : o.passes_sold)
      sold.push_back({{"pass", s.pass_id},
                      {"line", s.line},
                      {"valid_from", format_local_date(s.valid_from)},
                      {"valid_to", format_local_date(s.valid_to)}});
    j["passes_sold"] = sold;
  }
  // Only a sale paid (partly) with stored value carries these: what it
  // spent, and what returns gave back so far.
  if (o.sv_base_used + o.sv_bonus_used > 0) {
    j["sv_base_used"] = o.sv_base_used;
    j["sv_bonus_used"] = o.sv_bonus_used;
    j["sv_restored"] = c.sv_restored;
    j["sv_bonus_restored"] = c.sv_bonus_restored;
  }
  return j;
}

namespace {

template <typename F>
void each_object(ObjectReader& r, const std::string& key, Problems& problems, F&& f) {
  const Json* arr = r.get(key, true);
  if (arr == nullptr) return;
  if (!arr->is_array()) {
    r.problem(key, "must be an array");
    return;
  }
  for (std::size_t i = 0; i < arr->size(); ++i) {
    ObjectReader item((*arr)[i], index_path(r.path(key), i), problems);
    f(item);
  }
}

}  // namespace

Result<Committed> return_basis_from_json(const Json& j) {
  Problems problems;
  Committed c;
  auto& o = c.outcome;
  {
    ObjectReader r(j, "return_basis", problems);
    if (!r.ok()) return invalid("return_basis", "must be a JSON object");
    o.request.trigger = Trigger::kPurchase;
    o.request.txn_id = r.string("txn_id", true).value_or("");
    o.request.basket.currency = r.string("currency", true).value_or("");
    each_object(r, "lines", problems, [&](ObjectReader& lr) {
      Line in;
      in.sku = lr.string("sku", true).value_or("");
      in.quantity = lr.integer("quantity", true, 1).value_or(1);
      in.unit_price = lr.integer("unit_price", true).value_or(0);
      LineResult res;
      res.list = in.quantity * in.unit_price;
      res.discount = lr.integer("discount", true).value_or(0);
      res.points_value = lr.integer("points_value", true, 0).value_or(0);
      res.earn_basis = lr.integer("earn_basis", true).value_or(0);
      res.points = lr.integer("points", true).value_or(0);
      o.request.basket.lines.push_back(std::move(in));
      o.lines.push_back(res);
    });
    o.points_earned = r.integer("points_earned", true, 0).value_or(0);
    o.points_redeemed = r.integer("points_redeemed", true, 0).value_or(0);
    each_object(r, "metrics", problems, [&](ObjectReader& mr) {
      // Negative too: a sale that filled a stamp card takes the card's
      // stamps off.
      constexpr auto kMax = INT64_C(1'000'000'000'000'000);
      o.metrics.push_back({mr.string("metric", true).value_or(""),
                           mr.integer("delta", true, -kMax, kMax).value_or(0), Recipient::kMember});
    });
    const auto issued = r.integer("vouchers_issued", true, 0, 1000).value_or(0);
    o.vouchers_issued.resize(static_cast<std::size_t>(issued));
    c.earned_lot = r.string("earned_lot", true).value_or("");
    each_object(r, "draws", problems, [&](ObjectReader& dr) {
      c.draws.push_back(
          {dr.string("lot", true).value_or(""), dr.integer("points", true, 1).value_or(0)});
    });
    const Json* rq = r.get("returned_qty", true);
    if (rq != nullptr) {
      if (!rq->is_array() || rq->size() != o.lines.size()) {
        r.problem("returned_qty", "must hold one quantity per line");
      } else {
        for (const auto& q : *rq) {
          if (!q.is_number_integer()) {
            r.problem("returned_qty", "must hold integers");
            break;
          }
          c.returned_qty.push_back(q.get<std::int64_t>());
        }
      }
    }
    c.points_reversed = r.integer("points_reversed", true, 0).value_or(0);
    c.points_restored = r.integer("points_restored", true, 0).value_or(0);
    o.sv_base_used = r.integer("sv_base_used", false, 0).value_or(0);
    o.sv_bonus_used = r.integer("sv_bonus_used", false, 0).value_or(0);
    c.sv_restored = r.integer("sv_restored", false, 0).value_or(0);
    c.sv_bonus_restored = r.integer("sv_bonus_restored", false, 0).value_or(0);
    o.tier = r.id("tier").value_or("");
    o.tier_after = r.id("tier_after").value_or("");
    o.tier_valid_until = r.date("tier_valid_until");
    if (r.has("passes_sold"))
      each_object(r, "passes_sold", problems, [&](ObjectReader& pr) {
        PassSale s;
        s.pass_id = pr.id("pass", true).value_or("");
        s.line = static_cast<std::size_t>(pr.integer("line", true, 0, 499).value_or(0));
        if (auto d = pr.date("valid_from", true)) s.valid_from = *d;
        if (auto d = pr.date("valid_to", true)) s.valid_to = *d;
        if (s.line >= o.lines.size()) pr.problem("line", "is not a line of the sale");
        o.passes_sold.push_back(s);
      });
    if (c.sv_restored > o.sv_base_used + o.sv_bonus_used || c.sv_bonus_restored > c.sv_restored)
      r.problem("sv_restored", "more stored value given back than the sale spent");
  }
  if (!problems.empty()) {
    Error e{ErrorCode::kInvalidArgument, problems.front().to_string(), problems};
    return std::unexpected(e);
  }
  return c;
}

}  // namespace loyalty::core
