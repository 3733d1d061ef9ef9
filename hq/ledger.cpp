#include "hq/ledger.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/engine.h"
#include "core/io_json.h"
#include "core/local_time.h"
#include "core/member_delta.h"
#include "core/program_loader.h"
#include "core/return_basis.h"
#include "hq/ledger_internal.h"
#include "platform/log.h"

namespace loyalty::hq {

using namespace detail;

HqLedger::HqLedger(SqlConn& db, Clock clock) : db_(db), clock_(std::move(clock)) {}

void HqLedger::prefetch_members(const sync::Batch& batch, BatchWork& work) {
  std::vector<std::string> ids;
  for (const auto& r : batch.records)
    if (work.rows.try_emplace(r.member_id, std::nullopt).second) ids.push_back(r.member_id);
  for (const auto& row : query_ids(
           db_, std::string("SELECT id, ") + kMemberRowColumns + " FROM members WHERE id IN", ids))
    work.rows[row.text(0)] = member_row(row, 1);
}

const core::MemberState* HqLedger::cached_member(const std::string& id,
                                                 std::int64_t version) const {
  const auto it = member_cache_.find(id);
  return it != member_cache_.end() && it->second.version == version ? &it->second.state : nullptr;
}

std::optional<core::MemberState> HqLedger::load_member(const std::string& id, BatchWork* batch) {
  if (batch != nullptr) {
    if (auto it = batch->touched.find(id); it != batch->touched.end()) return it->second;
    if (auto row = batch->rows.find(id); row != batch->rows.end()) {
      // Not touched by this batch, so still as the batch found it.
      if (!row->second) return std::nullopt;
      if (const auto* m = cached_member(id, row->second->version)) return *m;
    }
  }
  auto rows = db_.query(
      std::string("SELECT state, ") + kMemberRowColumns + " FROM members WHERE id = ?1", {id});
  if (rows.empty()) {
    if (batch != nullptr) batch->rows.emplace(id, std::nullopt);
    return std::nullopt;
  }
  const auto found = member_row(rows[0], 1);
  if (batch != nullptr) {
    batch->rows.emplace(id, found);
    if (const auto* m = cached_member(id, found.version)) return *m;
  }
  auto m = core::member_from_json(Json::parse(rows[0].text(0)));
  // HQ writes every state itself; one it cannot read means a broken file
  // or a bug, and going on would give wrong balances.
  if (!m) throw core::DataLoss("member " + id + " has an unreadable state: " + m.error().message);
  // Version 0 is a row an enrollment in this very batch created.
  if (batch != nullptr && found.version > 0) pending_[id] = {found.version, *m};
  return std::move(*m);
}

void HqLedger::save_member(const core::MemberState& m, BatchWork* batch) {
  if (batch != nullptr) {
    batch->touched[m.id] = m;
    return;
  }
  (void)write_member(m, kDirect);
}

std::int64_t HqLedger::write_member(const core::MemberState& m, BatchWork* batch) {
  const auto text = core::member_to_json(m).dump();
  std::int64_t version = 1;
  if (batch != nullptr) {
    // An ingest holds the write lock and knows each row's version.
    const auto row = batch->rows.find(m.id);
    if (row != batch->rows.end() && row->second) {
      version = row->second->version + 1;
      db_.defer("UPDATE members SET state = ?2, version = ?3 WHERE id = ?1", {m.id, text, version});
    } else {
      db_.defer("INSERT INTO members(id, state, version) VALUES (?1, ?2, 1)", {m.id, text});
    }
  } else {
    auto rows = db_.query(
        "UPDATE members SET state = ?2, version = version + 1 WHERE id = ?1 RETURNING version",
        {m.id, text});
    if (rows.empty()) {
      db_.exec("INSERT INTO members(id, state, version) VALUES (?1, ?2, 1)", {m.id, text});
    } else {
      version = rows[0].integer(0);
    }
  }
  change_text(sync::MemberChange::kKind, m.id, std::string(kMemberFromRow), "", m.id);
  return version;
}

void HqLedger::flag(const std::string& txn, const std::string& member, core::FlagKind flag_kind,
                    const std::string& detail, Flags& flags_out) {
  const std::string kind = core::to_string(flag_kind);
  db_.defer(
      "INSERT INTO flags(txn_id, member_id, kind, detail, created_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5)",
      {txn, member, kind, detail, clock_()});
  flags_out.push_back({kind, detail});
  // Every store shows a member's open flags when they are next served.
  change(sync::FlagChange{txn, member, kind, detail}, txn, "", member);
}

void HqLedger::post(const std::vector<core::Entry>& entries, BatchWork* batch) {
  // Balances per (account, unit): one upsert per account touched, by the
  // call or, during an ingest, by the whole batch.
  AccountDeltas mine;
  auto& deltas = batch != nullptr ? batch->balances : mine;
  for (const auto& e : entries) {
    db_.defer(
        "INSERT INTO entries(id, txn_id, debit, credit, amount, unit, lot, memo) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        {e.id, e.txn_id, e.debit, e.credit, e.amount, e.unit, e.lot, e.memo});
    deltas[{e.debit, e.unit}] -= e.amount;
    deltas[{e.credit, e.unit}] += e.amount;
  }
  if (batch == nullptr) post_balances(mine);
}

void HqLedger::post_balances(const AccountDeltas& deltas) {
  for (const auto& [key, amount] : deltas)
    db_.defer(
        "INSERT INTO accounts(account, unit, balance) VALUES (?1, ?2, ?3) "
        "ON CONFLICT(account, unit) DO UPDATE SET balance = accounts.balance + ?3",
        {key.first, key.second, amount});
}

std::shared_ptr<const core::Program> HqLedger::program(const std::string& id,
                                                       std::int64_t version) {
  const auto key = std::make_pair(id, version);
  if (auto it = programs_.find(key); it != programs_.end()) return it->second;
  auto rows =
      db_.query("SELECT body FROM programs WHERE program_id = ?1 AND version = ?2", {id, version});
  if (rows.empty()) return nullptr;
  auto p = core::load_program_text(rows[0].text(0));
  if (!p) return nullptr;
  // Published versions never change, so a loaded one stays valid.
  auto shared = std::make_shared<const core::Program>(std::move(*p));
  programs_[key] = shared;
  return shared;
}

core::Result<std::shared_ptr<const core::Program>> HqLedger::program_in_force() {
  auto rows = db_.query(
      "SELECT program_id, version FROM programs WHERE effective_from <= ?1 "
      "ORDER BY effective_from DESC, version DESC LIMIT 1",
      {clock_()});
  if (rows.empty())
    return core::fail(core::ErrorCode::kFailedPrecondition,
                      "no program is in force yet (publish one, or wait for its effective time)");
  auto p = program(rows[0].text(0), rows[0].integer(1));
  if (!p)
    return core::fail(core::ErrorCode::kUnavailable,
                      "the program in force, " + rows[0].text(0) + ", does not load");
  return p;
}

void HqLedger::track_return(const sync::TxnRecord& r, const core::MemberState& member,
                            Flags& flags_out) {
  if ((r.kind != sync::TxnKind::kReturn && r.kind != sync::TxnKind::kVoid) || !r.return_of) return;
  const auto& receipt = *r.return_of;
  auto rows = db_.query(
      "SELECT payload FROM changes WHERE kind = 'receipt' AND key = ?1 ORDER BY cursor DESC "
      "LIMIT 1",
      {receipt});
  if (rows.empty()) return;  // a purchase uploaded without its basis
  Json payload = Json::parse(rows[0].text(0));
  auto basis = core::return_basis_from_json(payload.value("return_basis", Json::object()));
  auto program = this->program(r.program_id, r.program_version);
  const auto at = core::parse_local_datetime(r.local_time);
  if (!basis || !program || !at) return;
  std::vector<core::ReturnLine> lines;
  if (r.kind == sync::TxnKind::kVoid) {  // everything the receipt sold
    const auto& bought = basis->outcome.request.basket.lines;
    for (std::size_t i = 0; i < bought.size(); ++i) lines.push_back({i, bought[i].quantity});
  } else if (r.request.contains("lines") && r.request["lines"].is_array()) {
    // Read without throwing: a malformed line must not roll back the whole
    // batch at every resend; the engine refuses it below and it is flagged.
    const auto field = [](const Json& l, const char* k) -> std::int64_t {
      const auto it = l.is_object() ? l.find(k) : l.end();
      return it != l.end() && it->is_number_integer() ? it->get<std::int64_t>() : -1;
    };
    for (const auto& l : r.request["lines"])
      lines.push_back({static_cast<std::size_t>(field(l, "line")), field(l, "quantity")});
  }
  core::Request req;
  req.at = *at;
  req.zone = r.zone;
  req.txn_id = r.txn_id;
  auto scratch = member;  // the points were booked from the record's entries
  auto out = core::evaluate_return(*program, scratch, *basis, lines, req);
  if (!out) {
    flag(r.txn_id, r.member_id, core::FlagKind::kReturnedTwice,
         receipt + " was already taken back elsewhere (" + out.error().message + "); this " +
             std::string(sync::to_string(r.kind)) + " at another store while offline stays booked",
         flags_out);
    return;
  }
  if (!core::commit_return(*program, scratch, *basis, *out)) return;
  change(sync::ReceiptChange{receipt, payload.value("member_id", r.member_id),
                             core::return_basis_to_json(*basis)},
         receipt, "", r.member_id);
}

void HqLedger::record_identity(const sync::TxnRecord& r, BatchWork& batch, Flags& flags_out) {
  // The row exists from now on; its state is written when the batch ends.
  db_.exec(
      "INSERT INTO members(id, state, version) VALUES (?1, '{}', 0) ON CONFLICT(id) DO NOTHING",
      {r.member_id});
  auto& row = batch.rows[r.member_id];
  if (!row) row = MemberRow{};  // the row just inserted, version 0
  if (r.identity.contains("name"))
    db_.exec("UPDATE members SET name = ?2 WHERE id = ?1 AND name = ''",
             {r.member_id, r.identity["name"].get<std::string>()});
  // A card or phone another member already has (the same person enrolled
  // at two offline stores) stays with the first; the second is flagged for
  // someone to merge.
  struct Key {
    const char* column;
    core::FlagKind kind;
    const char* label;
  };
  for (const Key k : {Key{"card_number", core::FlagKind::kDuplicateCard, "card number "},
                      Key{"phone", core::FlagKind::kDuplicatePhone, "phone "}}) {
    if (!r.identity.contains(k.column)) continue;
    const auto value = r.identity[k.column].get<std::string>();
    const std::string col = k.column;
    auto other = db_.query("SELECT id FROM members WHERE " + col + " = ?1 AND id <> ?2",
                           {value, r.member_id});
    if (!other.empty()) {
      const auto holder = other[0].text(0);
      flag(r.txn_id, r.member_id, k.kind,
           k.label + value + " already belongs to " + holder + "; it stays with " + holder +
               ", merge the two memberships if they are one person",
           flags_out);
      continue;
    }
    db_.exec("UPDATE members SET " + col + " = ?2 WHERE id = ?1 AND " + col + " IS NULL",
             {r.member_id, value});
  }
}

core::MemberState HqLedger::first_sight(const sync::TxnRecord& r, BatchWork& batch) {
  // First sight of a member (enrolled at a store, or seeded there): HQ
  // starts from the terminal's view and books its opening balance so the
  // ledger still explains every point.
  auto member = before_of(r);
  if (!member) throw SqlError("transaction " + r.txn_id + " has an unreadable member_before");
  member->id = r.member_id;
  member->referrer.reset();  // the till's view of the referrer, for its engine only
  std::int64_t opening = -member->debt;
  for (const auto& l : member->lots) opening += l.points;
  if (opening != 0) {
    const std::string id = "OPEN-" + r.member_id;
    core::Entry e{id + "/1",
                  id,
                  opening > 0 ? core::program_account(r.program_id, "issued")
                              : core::member_account(r.member_id),
                  opening > 0 ? core::member_account(r.member_id)
                              : core::program_account(r.program_id, "issued"),
                  opening > 0 ? opening : -opening,
                  "pts",
                  "",
                  "opening balance"};
    post({e}, &batch);
  }
  // Stored value the member brought (topped up before HQ knew them): base
  // value was paid in at a store, bonus value was the program's gift.
  if (member->sv_base != 0 || member->sv_bonus != 0) {
    const std::string id = "OPEN-" + r.member_id;
    const auto p = program(r.program_id, r.program_version);
    const std::string currency = p ? p->currency.code : "";
    std::vector<core::Entry> sv;
    const auto open = [&](std::int64_t amount, std::string from, std::string to, const char* n) {
      if (amount == 0) return;
      if (amount < 0) std::swap(from, to);
      sv.push_back({id + n, id, from, to, amount < 0 ? -amount : amount, currency, "",
                    "opening stored value"});
    };
    open(member->sv_base, "store:sv-cash", "sv:" + r.member_id, "/2");
    open(member->sv_bonus, core::program_account(r.program_id, "sv-bonus"),
         "sv-bonus:" + r.member_id, "/3");
    post(sv, &batch);
  }
  return std::move(*member);
}

date::days HqLedger::defend_dates(const sync::TxnRecord& r, std::int64_t now, core::LocalDays day,
                                  std::optional<core::LocalDays> expires, const BatchWork& batch,
                                  Flags& flags_out) {
  // HQ cannot vouch for a time after it received the record: the record is
  // a fact and is booked as sold (the replay reads its own time), but its
  // points are dated from HQ's date of receipt, so a till whose clock ran a
  // year ahead cannot make its lots live a year too long.
  if (r.committed_at > now + kClockToleranceSeconds) {
    const auto local = core::to_local(std::chrono::sys_seconds(std::chrono::seconds(now)), r.zone);
    if (!local) return date::days{0};  // a zone the engine accepted; cannot happen
    const auto shift = core::day_of(*local) - day;
    day += shift;
    if (expires) *expires += shift;
    flag(r.txn_id, r.member_id, core::FlagKind::kClockAhead,
         "the till's clock dated this " + std::string(sync::to_string(r.kind)) + " " +
             r.local_time + " (" + r.zone + "), " + std::to_string((r.committed_at - now) / 3600) +
             " hours after HQ received it; its points are dated " + core::format_local_date(day) +
             (expires ? ", expiring " + core::format_local_date(*expires) : std::string()) +
             ", and the vouchers and passes it gave moved as many days, by HQ's clock; check the "
             "till's time synchronisation",
         flags_out);
    return shift;
  }
  // Before its terminal was registered: a clock that is behind (a dead RTC
  // battery), or a till that sold standalone before it was provisioned.
  // Flagged for a person to tell which; the dates stay as recorded.
  if (r.committed_at < batch.registered_at - kClockToleranceSeconds)
    flag(r.txn_id, r.member_id, core::FlagKind::kClockBehind,
         "the till's clock dated this " + std::string(sync::to_string(r.kind)) + " " +
             r.local_time + " (" + r.zone + "), " +
             std::to_string((batch.registered_at - r.committed_at) / 3600) +
             " hours before its terminal was registered; its points are dated as recorded; "
             "check the till's time synchronisation (or it sold standalone before it was "
             "provisioned)",
         flags_out);
  return date::days{0};
}

core::MemberState& HqLedger::batch_member(const std::string& id, BatchWork& batch,
                                          const sync::TxnRecord* first_seen_in) {
  auto at = batch.touched.find(id);
  if (at != batch.touched.end()) return at->second;
  auto loaded = load_member(id, &batch);
  if (!loaded && first_seen_in != nullptr) loaded = first_sight(*first_seen_in, batch);
  if (!loaded) {
    loaded.emplace();
    loaded->id = id;
  }
  return batch.touched.emplace(id, std::move(*loaded)).first->second;
}

void HqLedger::pay_referrer(const sync::TxnRecord& r, const Prepared& prep, core::LocalDays day,
                            BatchWork& batch, Flags& flags_out) {
  if (prep.referrer.empty() || prep.referrer == r.member_id) return;
  auto at = batch.touched.find(prep.referrer);
  if (at == batch.touched.end())
    if (auto other = load_member(prep.referrer, &batch))
      at = batch.touched.emplace(prep.referrer, std::move(*other)).first;
  if (at != batch.touched.end()) {
    auto& referrer = at->second;
    for (const auto& m : prep.referrer_metrics) referrer.counters.add(m.metric, day, m.delta);
    for (std::size_t i = 0; i < prep.referrer_vouchers.size(); ++i)
      referrer.vouchers.push_back({r.txn_id + "/r" + std::to_string(i + 1),
                                   prep.referrer_vouchers[i].first,
                                   day + date::days(prep.referrer_vouchers[i].second)});
  } else if (!prep.referrer_vouchers.empty()) {
    std::string templates;
    for (const auto& [t, days] : prep.referrer_vouchers)
      templates += (templates.empty() ? "" : ", ") + t;
    flag(r.txn_id, r.member_id, core::FlagKind::kReferralUnpaid,
         "the referrer " + prep.referrer + " is not at HQ yet (no store has uploaded them), so " +
             "their voucher(s) " + templates + " were not given; give them with issue-vouchers",
         flags_out);
  }
}

std::vector<core::Conflict> HqLedger::merge_delta(const sync::TxnRecord& r,
                                                  core::MemberState& member, date::days shift) {
  // What the record gave with dates (vouchers, passes) moves with its points.
  const core::MemberDelta* delta = &r.delta;
  core::MemberDelta shifted;
  if (shift != date::days{0}) {
    shifted = r.delta;
    for (auto& v : shifted.vouchers_added)
      if (v.expires_on) *v.expires_on += shift;
    for (auto& pass : shifted.passes_added) {
      pass.valid_from += shift;
      pass.valid_to += shift;
    }
    delta = &shifted;
  }
  auto conflicts = core::apply_delta(member, *delta);
  for (auto& c : conflicts) {
    // A voucher HQ revoked, used at a store that had not heard yet: booked,
    // and flagged as what it is rather than as a voucher used twice.
    if (c.kind != core::FlagKind::kVoucherReused) continue;
    const auto revoked =
        db_.query("SELECT reason, actor FROM revoked_vouchers WHERE code = ?1", {c.subject});
    if (revoked.empty()) continue;
    c.kind = core::FlagKind::kVoucherRevoked;
    c.detail = "voucher " + c.subject + " was revoked at HQ by " + revoked[0].text(1) + " (" +
               revoked[0].text(0) + ") before this use reached HQ; the sale stays booked";
  }
  return conflicts;
}

void HqLedger::apply(const sync::TxnRecord& r, const Prepared& prep, const std::string& store,
                     const std::string& terminal, std::int64_t now, BatchWork& batch,
                     Flags& flags_out) {
  db_.defer(
      "INSERT INTO transactions(txn_id, store_id, terminal_id, seq, member_id, kind, "
      "committed_at, business_day, program_id, program_version, points_earned, "
      "points_redeemed, record_hash, record, received_at, staff_id) VALUES (?1, ?2, ?3, ?4, ?5, "
      "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
      {r.txn_id, store, terminal, r.seq, r.member_id, std::string(sync::to_string(r.kind)),
       r.committed_at, r.business_day, r.program_id, r.program_version,
       r.totals.value("points_earned", std::int64_t{0}),
       r.totals.value("points_redeemed", std::int64_t{0}), prep.hash, prep.text, now,
       r.staff_id.empty() ? SqlParam{nullptr} : SqlParam{r.staff_id}});
  // The batch's own copy of the member, changed in place and written once
  // at the batch's end.
  core::MemberState& member = batch_member(r.member_id, batch, &r);
  batch.visitors.insert(r.member_id);
  post(r.entries, &batch);
  if (r.kind == sync::TxnKind::kEnrollment && r.identity.is_object())
    record_identity(r, batch, flags_out);
  auto day = core::parse_local_date(r.business_day).value();
  std::optional<core::LocalDays> expires;
  if (r.points_expire_on) expires = core::parse_local_date(*r.points_expire_on);
  const auto shift = defend_dates(r, now, day, expires, batch, flags_out);
  day += shift;
  if (expires) *expires += shift;
  auto conflicts = core::apply_point_entries(member, r.entries, day, expires);
  // Points for another member (a referrer's bonus) go to that member's lots.
  std::set<std::string> others;
  for (const auto& e : r.entries)
    for (const auto* acct : {&e.debit, &e.credit})
      if (acct->starts_with("member:") && acct->substr(7) != r.member_id)
        others.insert(acct->substr(7));
  for (const auto& id : others) {
    auto c = core::apply_point_entries(batch_member(id, batch, nullptr), r.entries, day, expires);
    conflicts.insert(conflicts.end(), c.begin(), c.end());
  }
  // A referral's vouchers and counted uses go to the referrer HQ has; every
  // store gets them with the referrer's next feed change.
  pay_referrer(r, prep, day, batch, flags_out);
  auto more = merge_delta(r, member, shift);
  conflicts.insert(conflicts.end(), more.begin(), more.end());
  for (const auto& c : conflicts) flag(r.txn_id, r.member_id, c.kind, c.detail, flags_out);
  if (!prep.receipt.empty())
    change_text(sync::ReceiptChange::kKind, r.txn_id, prep.receipt, "", r.member_id);
  if (prep.replay) flag(r.txn_id, r.member_id, prep.replay->first, prep.replay->second, flags_out);
  track_return(r, member, flags_out);
}

}  // namespace loyalty::hq
