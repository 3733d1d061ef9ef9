#include "core/ledger.h"

#include <algorithm>
#include <cassert>

#include "core/engine_internal.h"
#include "core/tiers.h"

namespace loyalty::core {

std::string member_account(const std::string& member_id) {
  return "member:" + member_id;
}
std::string program_account(const std::string& program_id, const char* what) {
  return "program:" + program_id + ":" + what;
}

namespace {

class Poster {
 public:
  Poster(std::string txn, std::vector<Entry>& out) : txn_(std::move(txn)), out_(out) {}
  void post(std::string debit, std::string credit, std::int64_t amount, std::string unit,
            std::string lot, std::string memo) {
    if (amount == 0) return;
    assert(amount > 0);
    out_.push_back({txn_ + "/" + std::to_string(out_.size() + 1), txn_, std::move(debit),
                    std::move(credit), amount, std::move(unit), std::move(lot), std::move(memo)});
  }

 private:
  std::string txn_;
  std::vector<Entry>& out_;
};

// Live lots, earliest-expiring first (never-expiring last), then oldest.
std::vector<Lot*> spend_order(MemberState& m, LocalDays today) {
  std::vector<Lot*> lots;
  for (auto& lot : m.lots) {
    if (lot.live_on(today)) lots.push_back(&lot);
  }
  std::stable_sort(lots.begin(), lots.end(), [](const Lot* a, const Lot* b) {
    if (a->expires_on != b->expires_on) {
      if (!a->expires_on) return false;
      if (!b->expires_on) return true;
      return *a->expires_on < *b->expires_on;
    }
    return a->earned_on < b->earned_on;
  });
  return lots;
}

Lot* find_lot(MemberState& m, const std::string& id) {
  for (auto& lot : m.lots) {
    if (lot.id == id) return &lot;
  }
  return nullptr;
}

void grant(const Program& p, MemberState& m, Poster& poster, std::int64_t points, LocalDays today,
           const std::string& lot_id, Committed& c, const std::string& memo) {
  if (points <= 0) return;
  const auto account = member_account(m.id);
  const auto repay = std::min(points, m.debt);
  if (repay > 0) {
    poster.post(program_account(p.id, "issued"), account, repay, "pts", "",
                memo + " (repays debt)");
    m.debt -= repay;
  }
  if (points > repay) {
    // Points that expire on the same day are one lot: a member who buys
    // daily keeps a lot per expiry date, not one per purchase, so the state
    // (and every record and feed change carrying it) stays small. A return
    // takes its points back from that lot.
    const auto expires = expiry_of(p.expiry, today);
    auto same = std::ranges::find_if(
        m.lots, [&](const Lot& l) { return l.expires_on == expires && l.points > 0; });
    if (same == m.lots.end()) {
      m.lots.push_back({lot_id, today, expires, 0});
      same = m.lots.end() - 1;
    }
    same->points += points - repay;
    poster.post(program_account(p.id, "issued"), account, points - repay, "pts", same->id, memo);
    c.earned_lot = same->id;
  }
}

std::string pass_code(const std::string& txn, std::size_t line) {
  return txn + "/p" + std::to_string(line + 1);
}

// What a member holds in the units the ledger posts: points (every lot,
// live or not, minus debt) and stored value.
struct Holdings {
  std::int64_t points = 0, sv_base = 0, sv_bonus = 0;
};

Holdings holdings_of(const MemberState& m) {
  Holdings h{-m.debt, m.sv_base, m.sv_bonus};
  for (const auto& lot : m.lots) h.points += lot.points;
  return h;
}

// What `entries` move into `account` in `unit` (credits minus debits).
std::int64_t moved_to(const std::vector<Entry>& entries, const std::string& account,
                      const std::string& unit) {
  std::int64_t net = 0;
  for (const auto& e : entries) {
    if (e.unit != unit) continue;
    if (e.credit == account) net += e.amount;
    if (e.debit == account) net -= e.amount;
  }
  return net;
}

// Always on, at every place a member's state and its entries are written
// together (DESIGN.md, reliability): each entry moves a positive amount
// between two accounts, and what the entries move to and from the member is
// exactly what their lots minus debt and stored value moved. A break is a
// bug that would give wrong balances: kDataLoss, and the caller stops.
Status check_posting(const MemberState& after, const Holdings& before,
                     const std::vector<Entry>& entries, const std::string& currency) {
  const auto broken = [&](const std::string& what) {
    return fail(ErrorCode::kDataLoss,
                "ledger invariant broken for member " + after.id + ": " + what);
  };
  for (const auto& e : entries)
    if (e.amount <= 0 || e.debit == e.credit)
      return broken("entry " + e.id + " moves " + std::to_string(e.amount) + " from " + e.debit +
                    " to " + e.credit);
  const auto now = holdings_of(after);
  const auto points = moved_to(entries, member_account(after.id), "pts");
  if (now.points - before.points != points)
    return broken("the entries move " + std::to_string(points) + " points but lots minus debt " +
                  "moved " + std::to_string(now.points - before.points));
  if (now.sv_base - before.sv_base != moved_to(entries, "sv:" + after.id, currency) ||
      now.sv_bonus - before.sv_bonus != moved_to(entries, "sv-bonus:" + after.id, currency))
    return broken("the stored value moved otherwise than its entries");
  return {};
}

void apply_metrics(MemberState& m, const Outcome& o, LocalDays today, int sign) {
  for (const auto& d : o.metrics) {
    if (d.on == Recipient::kMember) m.counters.add(d.metric, today, sign * d.delta);
  }
}

}  // namespace

Result<Committed> commit(const Program& p, MemberState& m, const Outcome& o) {
  const LocalDays today = day_of(o.request.at);
  const auto& txn = o.request.txn_id;
  if (txn.empty()) return invalid("txn_id", "every transaction needs its terminal-generated id");
  if (o.points_redeemed > 0 && o.points_redeemed > m.available(today))
    return fail(ErrorCode::kFailedPrecondition,
                "the member no longer has " + std::to_string(o.points_redeemed) + " points");
  for (const auto& code : o.vouchers_used) {
    if (std::none_of(m.vouchers.begin(), m.vouchers.end(),
                     [&](const HeldVoucher& v) { return v.code == code; }))
      return fail(ErrorCode::kFailedPrecondition, "voucher " + code + " was used meanwhile");
  }
  const auto before = holdings_of(m);
  Committed c;
  c.outcome = o;
  c.returned_qty.assign(o.lines.size(), 0);
  Poster poster(txn, c.entries);
  const auto account = member_account(m.id);

  std::int64_t to_spend = o.points_redeemed;
  for (Lot* lot : spend_order(m, today)) {
    if (to_spend == 0) break;
    const auto take = std::min(lot->points, to_spend);
    lot->points -= take;
    to_spend -= take;
    c.draws.push_back({lot->id, take});
    poster.post(account, program_account(p.id, "redeemed"), take, "pts", lot->id,
                "points as payment");
  }
  assert(to_spend == 0);
  grant(p, m, poster, o.points_earned, today, txn + "/lot", c, "earned");
  if (o.referrer_points > 0 && m.referrer)
    poster.post(program_account(p.id, "issued"), member_account(m.referrer->id), o.referrer_points,
                "pts", txn + "/ref-lot", "referral reward");

  const auto& cur = p.currency.code;
  poster.post("store:sv-cash", "sv:" + m.id, o.sv_base_added, cur, "", "top-up");
  poster.post(program_account(p.id, "sv-bonus"), "sv-bonus:" + m.id, o.sv_bonus_added, cur, "",
              "top-up bonus");
  poster.post("sv:" + m.id, "store:sv-spent", o.sv_base_used, cur, "", "paid with stored value");
  poster.post("sv-bonus:" + m.id, "store:sv-spent", o.sv_bonus_used, cur, "",
              "paid with bonus stored value");
  m.sv_base += o.sv_base_added - o.sv_base_used;
  m.sv_bonus += o.sv_bonus_added - o.sv_bonus_used;

  for (const auto& code : o.vouchers_used) {
    std::erase_if(m.vouchers, [&](const HeldVoucher& v) { return v.code == code; });
  }
  for (std::size_t i = 0; i < o.vouchers_issued.size(); ++i) {
    const auto& v = o.vouchers_issued[i];
    if (v.to != Recipient::kMember) continue;
    const auto* t = p.find_voucher(v.template_id);
    m.vouchers.push_back({txn + "/v" + std::to_string(i + 1), v.template_id,
                          today + date::days{t ? t->valid_days : 30}});
  }
  for (const auto& s : o.passes_sold)
    m.passes.push_back({s.pass_id, s.valid_from, s.valid_to, pass_code(txn, s.line)});
  if (o.pass_deferral) {
    const auto& d = *o.pass_deferral;
    const auto it = std::find(m.passes.begin(), m.passes.end(), d.before);
    if (it == m.passes.end())
      return fail(ErrorCode::kFailedPrecondition, "the pass to defer changed meanwhile");
    m.passes.erase(it);
    m.passes.insert(m.passes.end(), d.after.begin(), d.after.end());
  }
  apply_metrics(m, o, today, +1);
  if (o.request.trigger == Trigger::kPurchase) {
    if (!m.first_purchase_on) m.first_purchase_on = today;
    m.last_purchase_on = today;
    m.streak_days = o.streak_after;
  }
  if (!o.tier_after.empty()) {
    if (o.tier_from && *o.tier_from > today) {
      m.pending_tier = o.tier_after;
      m.pending_tier_from = o.tier_from;
    } else {
      m.tier = o.tier_after;
    }
    m.tier_valid_until = o.tier_valid_until;
  }
  m.counters.prune();
  if (auto ok = check_posting(m, before, c.entries, cur); !ok) return std::unexpected(ok.error());
  return c;
}

namespace {

// A cancelled order never counts: when the sale being returned lifted the
// member's tier and the member, without what this return takes back, no
// longer qualifies for it, the tier goes back to what the sale found (or
// what the member still qualifies for, if higher). An accelerated upgrade
// (a basket that fast-tracks a level) goes back only with the whole order.
void revert_tier_upgrade(const Program& p, const MemberState& m, const Committed& original,
                         Outcome& out) {
  const auto& orig = original.outcome;
  if (!p.tiers || orig.tier_after.empty()) return;
  if (m.tier != orig.tier_after && m.pending_tier != orig.tier_after) return;
  if (orig.tier_valid_until && !out.full_return) return;
  const auto& t = *p.tiers;
  const LocalDays today = day_of(out.request.at);
  MemberState after = m;
  for (const auto& d : out.metrics)
    if (d.on == Recipient::kMember) after.counters.add(d.metric, today, d.delta);
  const int target = std::max(std::max(0, t.rank_of(orig.tier)), qualified_rank(p, after, today));
  if (target >= t.rank_of(orig.tier_after)) return;
  out.tier_after = t.levels[static_cast<std::size_t>(target)].id;
  out.tier_from = today;
  out.notes.push_back("Tier back to " + t.levels[static_cast<std::size_t>(target)].name + ": " +
                      orig.request.txn_id + ", which reached " +
                      t.levels[static_cast<std::size_t>(t.rank_of(orig.tier_after))].name +
                      ", was taken back");
}

}  // namespace

Result<Outcome> evaluate_return(const Program& p, const MemberState& m, const Committed& original,
                                const std::vector<ReturnLine>& lines, const Request& request) {
  const auto& orig = original.outcome;
  if (orig.request.trigger != Trigger::kPurchase)
    return invalid("return_of", "only purchases can be returned");
  if (lines.empty()) return invalid("lines", "name at least one line to return");
  Outcome out;
  out.program_id = p.id;
  out.program_version = p.version;
  out.request = request;
  out.request.trigger = Trigger::kReturn;
  out.return_of = orig.request.txn_id;
  out.tier = m.tier;
  out.returned_qty.assign(orig.lines.size(), 0);
  for (std::size_t k = 0; k < lines.size(); ++k) {
    const auto path = "lines[" + std::to_string(k) + "]";
    const auto& rl = lines[k];
    if (rl.line >= orig.lines.size())
      return invalid(path + ".line",
                     "the original transaction has no line " + std::to_string(rl.line));
    const auto bought = orig.request.basket.lines[rl.line].quantity;
    const auto left = bought - original.returned_qty[rl.line] - out.returned_qty[rl.line];
    if (rl.quantity < 1) return invalid(path + ".quantity", "must be at least 1");
    if (rl.quantity > left)
      return invalid(path + ".quantity",
                     "only " + std::to_string(left) + " of this line can still be returned");
    out.returned_qty[rl.line] += rl.quantity;
  }
  // A pass is returned whole, and taken from the member; the uses made of
  // it stay made (what to refund for them is the store's decision).
  for (const auto& s : orig.passes_sold) {
    const auto now = out.returned_qty[s.line];
    if (now == 0) continue;
    if (original.returned_qty[s.line] + now != orig.request.basket.lines[s.line].quantity)
      return invalid("lines", "a pass is returned whole: return all " +
                                  std::to_string(orig.request.basket.lines[s.line].quantity) +
                                  " of line " + std::to_string(s.line));
    out.passes_returned.push_back(pass_code(orig.request.txn_id, s.line));
  }
  // Cumulative proportions, so that returning everything in parts reverses
  // exactly what was earned and spent.
  const auto share = [](std::int64_t total, std::int64_t before, std::int64_t now,
                        std::int64_t qty) {
    return narrow(static_cast<i128>(total) * (before + now) / qty -
                  static_cast<i128>(total) * before / qty);
  };
  const auto redeemed_by_line = [&] {
    std::vector<std::int64_t> w;
    for (const auto& l : orig.lines) w.push_back(l.points_value);
    return detail::spread(orig.points_redeemed, w);
  }();
  // Stored value paid, spread over the lines by what each cost in money.
  const auto sv_used = orig.sv_base_used + orig.sv_bonus_used;
  const auto sv_by_line = [&] {
    std::vector<std::int64_t> w;
    for (const auto& l : orig.lines)
      w.push_back(std::max<std::int64_t>(0, l.net() - l.points_value));
    return detail::spread(sv_used, w);
  }();
  bool full = true;
  std::int64_t paid_back = 0, spend_back = 0, items = 0;
  for (std::size_t i = 0; i < orig.lines.size(); ++i) {
    const auto qty = orig.request.basket.lines[i].quantity;
    const auto before = original.returned_qty[i];
    const auto now = out.returned_qty[i];
    const auto& l = orig.lines[i];
    out.points_reversed += share(l.points, before, now, qty);
    out.points_restored += share(redeemed_by_line[i], before, now, qty);
    const auto line_paid_back = share(l.net() - l.points_value, before, now, qty);
    paid_back += line_paid_back;
    out.sv_returned += share(sv_by_line[i], before, now, qty);
    if (counts_as_sale(p, orig.request.basket.lines[i])) {
      spend_back += line_paid_back;
      items += now;
    }
    if (before + now < qty) full = false;
  }
  out.full_return = full;
  if (full) {
    // Transaction-level awards (and any rounding left) go back with the
    // last returned unit.
    out.points_reversed = orig.points_earned - original.points_reversed;
    out.points_restored = orig.points_redeemed - original.points_restored;
    out.sv_returned = sv_used - original.sv_restored;
    for (const auto& d : orig.metrics) {
      if (d.on == Recipient::kMember && d.metric != "spend" && d.metric != "items" &&
          d.metric != "points" && d.metric != "bonus_points")
        out.metrics.push_back({d.metric, -d.delta, Recipient::kMember});
    }
  }
  out.metrics.push_back({"spend", -spend_back, Recipient::kMember});
  out.metrics.push_back({"items", -items, Recipient::kMember});
  out.metrics.push_back({"points", -out.points_reversed, Recipient::kMember});
  revert_tier_upgrade(p, m, original, out);
  // Never more back to stored value than this return pays back at all
  // (per-unit rounding of the two shares could otherwise leave cash -1).
  out.sv_returned =
      std::clamp<std::int64_t>(out.sv_returned, 0, std::max<std::int64_t>(0, paid_back));
  // Bonus stored value goes back in the share it was spent, counted over
  // all returns so that the last one leaves nothing behind.
  if (sv_used > 0)
    out.sv_bonus_returned = narrow(static_cast<i128>(orig.sv_bonus_used) *
                                   (original.sv_restored + out.sv_returned) / sv_used) -
                            original.sv_bonus_restored;
  out.amount_due = -(paid_back - out.sv_returned);
  out.receipt.push_back("Return of " + out.return_of);
  out.receipt.push_back("Refund: " + format_amount(paid_back - out.sv_returned, p.currency));
  if (out.sv_returned > 0)
    out.receipt.push_back("Stored value given back: " + format_amount(out.sv_returned, p.currency));
  out.receipt.push_back("Points taken back: " + std::to_string(out.points_reversed));
  if (out.points_restored > 0)
    out.receipt.push_back("Points given back: " + std::to_string(out.points_restored));
  if (!out.tier_after.empty()) out.receipt.push_back(out.notes.back());
  return out;
}

Result<Committed> commit_return(const Program& p, MemberState& m, Committed& original,
                                const Outcome& ret) {
  const LocalDays today = day_of(ret.request.at);
  if (ret.request.txn_id.empty())
    return invalid("txn_id", "every transaction needs its terminal-generated id");
  const auto before = holdings_of(m);
  Committed c;
  c.outcome = ret;
  Poster poster(ret.request.txn_id, c.entries);
  const auto account = member_account(m.id);
  // Reverse earned points from the original lot; what was spent already
  // becomes debt.
  if (ret.points_reversed > 0) {
    std::int64_t from_lot = 0;
    if (Lot* lot = find_lot(m, original.earned_lot)) {
      from_lot = std::min(lot->points, ret.points_reversed);
      lot->points -= from_lot;
    }
    m.debt += ret.points_reversed - from_lot;
    poster.post(account, program_account(p.id, "issued"), ret.points_reversed, "pts",
                original.earned_lot,
                "return reverses earned points" +
                    std::string(ret.points_reversed > from_lot ? " (part becomes debt)" : ""));
  }
  // Restore spent points to the lots they came from, last drawn first.
  std::int64_t restore = ret.points_restored;
  for (auto it = original.draws.rbegin(); it != original.draws.rend() && restore > 0; ++it) {
    Lot* lot = find_lot(m, it->lot);
    if (lot == nullptr) continue;
    const auto give = std::min(restore, it->points);
    restore -= give;
    lot->points += give;
    poster.post(program_account(p.id, "redeemed"), account, give, "pts", lot->id,
                "return restores spent points");
    if (lot->expires_on && today >= *lot->expires_on) {
      poster.post(account, program_account(p.id, "expired"), give, "pts", lot->id,
                  "restored to an expired lot");
      lot->points -= give;
    }
  }
  if (restore > 0) {
    grant(p, m, poster, restore, today, ret.request.txn_id + "/restore-lot", c,
          "return restores spent points");
  }
  // Stored value the sale spent goes back to the member.
  const auto& cur = p.currency.code;
  const auto base_back = ret.sv_returned - ret.sv_bonus_returned;
  poster.post("store:sv-spent", "sv:" + m.id, base_back, cur, "", "return gives back stored value");
  poster.post("store:sv-spent", "sv-bonus:" + m.id, ret.sv_bonus_returned, cur, "",
              "return gives back bonus stored value");
  m.sv_base += base_back;
  m.sv_bonus += ret.sv_bonus_returned;
  apply_metrics(m, ret, today, +1);
  for (const auto& code : ret.passes_returned)
    std::erase_if(m.passes, [&](const HeldPass& h) { return h.code == code; });
  if (!ret.tier_after.empty()) {  // the upgrade the returned sale caused, undone
    m.tier = ret.tier_after;
    m.pending_tier.clear();
    m.pending_tier_from.reset();
    m.tier_valid_until.reset();
  }
  if (ret.full_return) {
    for (std::size_t i = 0; i < original.outcome.vouchers_issued.size(); ++i) {
      const auto code = original.outcome.request.txn_id + "/v" + std::to_string(i + 1);
      std::erase_if(m.vouchers, [&](const HeldVoucher& v) { return v.code == code; });
    }
  }
  for (std::size_t i = 0; i < ret.returned_qty.size(); ++i)
    original.returned_qty[i] += ret.returned_qty[i];
  original.points_reversed += ret.points_reversed;
  original.points_restored += ret.points_restored;
  original.sv_restored += ret.sv_returned;
  original.sv_bonus_restored += ret.sv_bonus_returned;
  m.counters.prune();
  if (auto ok = check_posting(m, before, c.entries, cur); !ok) return std::unexpected(ok.error());
  return c;
}

std::vector<Entry> expire_lots(const Program& p, MemberState& m, LocalDays today,
                               const std::string& txn_id) {
  std::vector<Entry> entries;
  Poster poster(txn_id, entries);
  for (auto& lot : m.lots) {
    if (lot.points > 0 && lot.expires_on && today >= *lot.expires_on) {
      poster.post(member_account(m.id), program_account(p.id, "expired"), lot.points, "pts", lot.id,
                  "expired");
      lot.points = 0;
    }
  }
  std::erase_if(m.lots, [](const Lot& l) { return l.points == 0; });
  return entries;
}

}  // namespace loyalty::core
