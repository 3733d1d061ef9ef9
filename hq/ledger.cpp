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
#include "platform/log.h"

namespace loyalty::hq {

namespace {

core::Result<Json> refused(core::ErrorCode code, std::string message) {
  return std::unexpected(core::Error::make(code, std::move(message)));
}

// The record as HQ stores and hashes it: the text it arrived as.
std::string record_text(const sync::TxnRecord& r) {
  return r.text.empty() ? sync::record_to_json(r).dump() : r.text;
}

// The member as the terminal saw it; record_from_json has already read it.
std::optional<core::MemberState> before_of(const sync::TxnRecord& r) {
  if (r.before) return r.before;
  auto m = core::member_from_json(r.member_before);
  if (!m) return std::nullopt;
  return std::move(*m);
}

}  // namespace

HqLedger::HqLedger(SqlConn& db, Clock clock) : db_(db), clock_(std::move(clock)) {}

core::Status HqLedger::add_terminal(const std::string& store, const std::string& terminal,
                                    const std::string& fingerprint) {
  std::lock_guard lock(mutex_);
  auto r = in_transaction(db_, [&]() -> core::Result<bool> {
    auto rows = db_.query("SELECT revoked FROM terminals WHERE store_id = ?1 AND terminal_id = ?2",
                          {store, terminal});
    if (!rows.empty())
      return core::fail(core::ErrorCode::kConflict,
                        "terminal " + store + "/" + terminal + " already exists");
    db_.exec(
        "INSERT INTO terminals(store_id, terminal_id, cert_fingerprint, created_at) "
        "VALUES (?1, ?2, ?3, ?4)",
        {store, terminal, fingerprint, clock_()});
    return true;
  });
  if (!r) return std::unexpected(r.error());
  return {};
}

core::Status HqLedger::revoke_terminal(const std::string& store, const std::string& terminal) {
  std::lock_guard lock(mutex_);
  auto r = in_transaction(db_, [&]() -> core::Result<bool> {
    if (db_.exec("UPDATE terminals SET revoked = 1 WHERE store_id = ?1 AND terminal_id = ?2",
                 {store, terminal}) != 1)
      return core::fail(core::ErrorCode::kNotFound, "no terminal " + store + "/" + terminal);
    return true;
  });
  if (!r) return std::unexpected(r.error());
  return {};
}

core::Status HqLedger::check_terminal(const std::string& store, const std::string& terminal,
                                      const std::string& fingerprint) {
  std::lock_guard lock(mutex_);
  try {
    auto rows = db_.query(
        "SELECT revoked, cert_fingerprint FROM terminals WHERE store_id = ?1 AND terminal_id = ?2",
        {store, terminal});
    if (rows.empty())
      return core::fail(core::ErrorCode::kNotFound,
                        "terminal " + store + "/" + terminal + " is not registered at HQ");
    if (rows[0].integer(0) != 0)
      return core::fail(core::ErrorCode::kFailedPrecondition,
                        "terminal " + store + "/" + terminal + " has been revoked");
    if (!fingerprint.empty() && rows[0].text(1) != fingerprint)
      return core::fail(
          core::ErrorCode::kFailedPrecondition,
          "terminal " + store + "/" + terminal + " presented a certificate HQ did not issue to it");
  } catch (const SqlError& e) {
    return core::fail(core::ErrorCode::kUnavailable, e.what());
  }
  return {};
}

namespace {

// Rows for `ids` from `select` ("SELECT ... FROM t WHERE key IN"), 100 ids a
// query, always with 100 parameters (the last id pads), so that it is one
// prepared statement whatever the batch's size.
std::vector<SqlRow> query_ids(SqlConn& db, const std::string& select,
                              const std::vector<std::string>& ids) {
  constexpr std::size_t kChunk = 100;
  std::string sql = select + " (";
  for (std::size_t k = 1; k <= kChunk; ++k) sql += (k > 1 ? ", ?" : "?") + std::to_string(k);
  sql += ")";
  std::vector<SqlRow> out;
  for (std::size_t at = 0; at < ids.size(); at += kChunk) {
    SqlParams params;
    for (std::size_t k = 0; k < kChunk; ++k)
      params.emplace_back(ids[std::min(at + k, ids.size() - 1)]);
    for (auto& row : db.query(sql, params)) out.push_back(std::move(row));
  }
  return out;
}

constexpr const char* kMemberRowColumns = "version, card_number, phone, name, blocked";

// A MemberRow from columns `first`.. of `row` (kMemberRowColumns).
MemberRow member_row(const SqlRow& row, std::size_t first) {
  MemberRow m;
  m.version = row.integer(first);
  if (!row.is_null(first + 1)) m.card_number = row.text(first + 1);
  if (!row.is_null(first + 2)) m.phone = row.text(first + 2);
  m.name = row.text(first + 3);
  m.blocked = row.integer(first + 4) != 0;
  return m;
}

// A member change for the feed: the state plus the card, phone and name
// terminals look members up by.
Json member_change_data(const std::string& id, Json state, const MemberRow& row) {
  Json p{{"id", id}, {"name", row.name}, {"blocked", row.blocked}, {"state", std::move(state)}};
  if (row.card_number) p["card_number"] = *row.card_number;
  if (row.phone) p["phone"] = *row.phone;
  return p;
}

}  // namespace

void HqLedger::prefetch_members(const sync::Batch& batch) {
  std::vector<std::string> ids;
  for (const auto& r : batch.records)
    if (batch_->rows.try_emplace(r.member_id, std::nullopt).second) ids.push_back(r.member_id);
  for (const auto& row : query_ids(
           db_, std::string("SELECT id, ") + kMemberRowColumns + " FROM members WHERE id IN", ids))
    batch_->rows[row.text(0)] = member_row(row, 1);
}

const core::MemberState* HqLedger::cached_member(const std::string& id,
                                                 std::int64_t version) const {
  const auto it = member_cache_.find(id);
  return it != member_cache_.end() && it->second.version == version ? &it->second.state : nullptr;
}

std::optional<core::MemberState> HqLedger::load_member(const std::string& id) {
  if (batch_ != nullptr) {
    if (auto it = batch_->touched.find(id); it != batch_->touched.end()) return it->second;
    if (auto row = batch_->rows.find(id); row != batch_->rows.end()) {
      // Not touched by this batch, so still as the batch found it.
      if (!row->second) return std::nullopt;
      if (const auto* m = cached_member(id, row->second->version)) return *m;
    }
  }
  auto rows = db_.query(
      std::string("SELECT state, ") + kMemberRowColumns + " FROM members WHERE id = ?1", {id});
  if (rows.empty()) {
    if (batch_ != nullptr) batch_->rows.emplace(id, std::nullopt);
    return std::nullopt;
  }
  const auto found = member_row(rows[0], 1);
  if (batch_ != nullptr) {
    batch_->rows.emplace(id, found);
    if (const auto* m = cached_member(id, found.version)) return *m;
  }
  auto m = core::member_from_json(Json::parse(rows[0].text(0)));
  // HQ writes every state itself; one it cannot read means a broken file
  // or a bug, and going on would give wrong balances.
  if (!m) throw core::DataLoss("member " + id + " has an unreadable state: " + m.error().message);
  // Version 0 is a row an enrollment in this very batch created.
  if (batch_ != nullptr && found.version > 0) pending_[id] = {found.version, *m};
  return std::move(*m);
}

void HqLedger::save_member(const core::MemberState& m) {
  if (batch_ != nullptr) {
    batch_->touched[m.id] = m;
    return;
  }
  (void)write_member(m);
}

std::int64_t HqLedger::write_member(const core::MemberState& m) {
  const auto text = core::member_to_json(m).dump();
  std::int64_t version = 1;
  if (batch_ != nullptr) {
    // An ingest holds the write lock and knows each row's version.
    const auto row = batch_->rows.find(m.id);
    if (row != batch_->rows.end() && row->second) {
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
  change_text("member", m.id, std::string(kMemberFromRow), "", m.id);
  return version;
}

void HqLedger::change(const std::string& kind, const std::string& key, const Json& payload,
                      const std::string& store, const std::string& member) {
  change_text(kind, key, payload.dump(), store, member);
}

void HqLedger::change_text(const std::string& kind, const std::string& key,
                           const std::string& payload, const std::string& store,
                           const std::string& member) {
  const auto or_null = [](const std::string& v) {
    return v.empty() ? SqlParam{nullptr} : SqlParam{v};
  };
  db_.defer(
      "INSERT INTO changes(kind, key, payload, created_at, store_id, member_id) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      {kind, key, payload, clock_(), or_null(store), or_null(member)});
}

void HqLedger::flag(const std::string& txn, const std::string& member, const std::string& kind,
                    const std::string& detail, Json& flags_out) {
  db_.defer(
      "INSERT INTO flags(txn_id, member_id, kind, detail, created_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5)",
      {txn, member, kind, detail, clock_()});
  flags_out.push_back({{"kind", kind}, {"detail", detail}});
  // Every store shows a member's open flags when they are next served.
  change("flag", txn,
         Json{{"txn_id", txn}, {"member_id", member}, {"kind", kind}, {"detail", detail}}, "",
         member);
}

void HqLedger::post(const std::vector<core::Entry>& entries) {
  // Balances per (account, unit): one upsert per account touched, by the
  // call or, during an ingest, by the whole batch.
  AccountDeltas mine;
  auto& deltas = batch_ != nullptr ? batch_->balances : mine;
  for (const auto& e : entries) {
    db_.defer(
        "INSERT INTO entries(id, txn_id, debit, credit, amount, unit, lot, memo) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        {e.id, e.txn_id, e.debit, e.credit, e.amount, e.unit, e.lot, e.memo});
    deltas[{e.debit, e.unit}] -= e.amount;
    deltas[{e.credit, e.unit}] += e.amount;
  }
  if (batch_ == nullptr) post_balances(mine);
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

HqLedger::Prepared HqLedger::prepare(const sync::TxnRecord& r, const core::Program* program) {
  Prepared out;
  out.text = record_text(r);
  out.hash = platform::sha256_hex(out.text);
  if (r.kind == "purchase" && r.return_basis.is_object()) {
    // The receipt as sold: returns taken at its store before this upload
    // arrive as records of their own and are counted from those
    // (track_return), like returns anywhere else.
    const auto& b = r.return_basis;
    const auto zero = [&](const char* k) {
      const auto it = b.find(k);
      return it != b.end() && it->is_number_integer() && it->get<std::int64_t>() == 0;
    };
    bool as_sold = zero("points_reversed") && zero("points_restored") &&
                   (!b.contains("sv_restored") || zero("sv_restored"));
    if (const auto q = b.find("returned_qty"); q != b.end() && q->is_array())
      for (const auto& n : *q) as_sold = as_sold && n.is_number_integer() && n == 0;
    // A terminal uploads a purchase as sold, so its own text usually is the
    // receipt's; copying and re-serialising the document is the exception.
    const auto text = as_sold ? sync::member_text(out.text, "return_basis") : std::nullopt;
    if (text) {
      out.receipt = R"({"member_id":)" + Json(r.member_id).dump() + R"(,"return_basis":)" +
                    std::string(*text) + R"(,"txn_id":)" + Json(r.txn_id).dump() + "}";
    } else {
      Json basis = b;
      if (basis.contains("returned_qty") && basis["returned_qty"].is_array())
        for (auto& q : basis["returned_qty"]) q = 0;
      basis["points_reversed"] = 0;
      basis["points_restored"] = 0;
      if (basis.contains("sv_restored")) basis["sv_restored"] = 0;
      if (basis.contains("sv_bonus_restored")) basis["sv_bonus_restored"] = 0;
      out.receipt =
          Json{{"txn_id", r.txn_id}, {"member_id", r.member_id}, {"return_basis", basis}}.dump();
    }
  }
  if (r.kind == "return" || r.kind == "void") return out;  // replayed through their purchase
  const auto mismatch = [&](std::string detail) {
    out.replay.emplace("replay-mismatch", std::move(detail));
    return out;
  };
  if (program == nullptr) {
    out.replay.emplace("program-unknown", "program " + r.program_id + " v" +
                                              std::to_string(r.program_version) +
                                              " was not published by HQ; the transaction could "
                                              "not be replayed");
    return out;
  }
  // record_from_json has read the member; otherwise it is read here.
  std::optional<core::MemberState> read;
  if (!r.before) read = before_of(r);
  const core::MemberState* member = r.before ? &*r.before : read ? &*read : nullptr;
  core::Request req;
  auto parsed = core::request_from_json(r.request, req);
  const auto at = core::parse_local_datetime(r.local_time);
  if (member == nullptr || !parsed || !at) return mismatch("the recorded inputs do not parse");
  req.at = *at;
  req.zone = r.zone;
  req.txn_id = r.txn_id;
  auto outcome = core::evaluate(*program, *member, req);
  if (!outcome)
    return mismatch("HQ's engine refuses the recorded inputs: " + outcome.error().message);
  if (member->referrer) {
    for (const auto& v : outcome->vouchers_issued)
      if (v.to == core::Recipient::kReferrer) {
        const auto* t = program->find_voucher(v.template_id);
        out.referrer_vouchers.emplace_back(v.template_id, t ? t->valid_days : 30);
      }
    for (const auto& m : outcome->metrics)
      if (m.on == core::Recipient::kReferrer) out.referrer_metrics.push_back(m);
    if (!out.referrer_vouchers.empty() || !out.referrer_metrics.empty())
      out.referrer = member->referrer->id;
  }
  const Json mine = core::outcome_totals_to_json(*outcome);
  std::string diffs;
  for (const char* k : {"points_earned", "points_redeemed", "discount", "amount_due"}) {
    if (!r.totals.contains(k) || r.totals[k] != mine[k])
      diffs += std::string(diffs.empty() ? "" : ", ") + k + " " +
               (r.totals.contains(k) ? r.totals[k].dump() : "missing") + " (HQ: " + mine[k].dump() +
               ")";
  }
  if (!diffs.empty()) return mismatch("the terminal's numbers differ from HQ's replay: " + diffs);
  return out;
}

void HqLedger::track_return(const sync::TxnRecord& r, const core::MemberState& member,
                            Json& flags_out) {
  if ((r.kind != "return" && r.kind != "void") || !r.return_of) return;
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
  if (r.kind == "void") {  // everything the receipt sold
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
    flag(r.txn_id, r.member_id, "returned-twice",
         receipt + " was already taken back elsewhere (" + out.error().message + "); this " +
             r.kind + " at another store while offline stays booked",
         flags_out);
    return;
  }
  if (!core::commit_return(*program, scratch, *basis, *out)) return;
  payload["return_basis"] = core::return_basis_to_json(*basis);
  change("receipt", receipt, payload, "", r.member_id);
}

void HqLedger::record_identity(const sync::TxnRecord& r, Json& flags_out) {
  // The row exists from now on; its state is written when the batch ends.
  db_.exec(
      "INSERT INTO members(id, state, version) VALUES (?1, '{}', 0) ON CONFLICT(id) DO NOTHING",
      {r.member_id});
  if (batch_ != nullptr) {
    auto& row = batch_->rows[r.member_id];
    if (!row) row = MemberRow{};  // the row just inserted, version 0
  }
  if (r.identity.contains("name"))
    db_.exec("UPDATE members SET name = ?2 WHERE id = ?1 AND name = ''",
             {r.member_id, r.identity["name"].get<std::string>()});
  // A card or phone another member already has (the same person enrolled
  // at two offline stores) stays with the first; the second is flagged for
  // someone to merge.
  struct Key {
    const char* column;
    const char* kind;
    const char* label;
  };
  for (const Key k : {Key{"card_number", "duplicate-card", "card number "},
                      Key{"phone", "duplicate-phone", "phone "}}) {
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

core::MemberState HqLedger::first_sight(const sync::TxnRecord& r) {
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
    post({e});
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
    post(sv);
  }
  return std::move(*member);
}

date::days HqLedger::defend_dates(const sync::TxnRecord& r, std::int64_t now, core::LocalDays day,
                                  std::optional<core::LocalDays> expires, Json& flags_out) {
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
    flag(r.txn_id, r.member_id, "clock-ahead",
         "the till's clock dated this " + r.kind + " " + r.local_time + " (" + r.zone + "), " +
             std::to_string((r.committed_at - now) / 3600) +
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
  if (r.committed_at < batch_->registered_at - kClockToleranceSeconds)
    flag(r.txn_id, r.member_id, "clock-behind",
         "the till's clock dated this " + r.kind + " " + r.local_time + " (" + r.zone + "), " +
             std::to_string((batch_->registered_at - r.committed_at) / 3600) +
             " hours before its terminal was registered; its points are dated as recorded; "
             "check the till's time synchronisation (or it sold standalone before it was "
             "provisioned)",
         flags_out);
  return date::days{0};
}

void HqLedger::apply(const sync::TxnRecord& r, const Prepared& prep, const std::string& store,
                     const std::string& terminal, std::int64_t now, Json& flags_out) {
  db_.defer(
      "INSERT INTO transactions(txn_id, store_id, terminal_id, seq, member_id, kind, "
      "committed_at, business_day, program_id, program_version, points_earned, "
      "points_redeemed, record_hash, record, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
      "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
      {r.txn_id, store, terminal, r.seq, r.member_id, r.kind, r.committed_at, r.business_day,
       r.program_id, r.program_version, r.totals.value("points_earned", std::int64_t{0}),
       r.totals.value("points_redeemed", std::int64_t{0}), prep.hash, prep.text, now});
  // The batch's own copy of the member, changed in place and written once
  // at the batch's end.
  auto& touched = batch_->touched;
  auto found = touched.find(r.member_id);
  if (found == touched.end()) {
    auto loaded = load_member(r.member_id);
    if (!loaded) loaded = first_sight(r);
    found = touched.emplace(r.member_id, std::move(*loaded)).first;
  }
  core::MemberState& member = found->second;
  batch_->visitors.insert(r.member_id);
  post(r.entries);
  if (r.kind == "enrollment" && r.identity.is_object()) record_identity(r, flags_out);
  auto day = core::parse_local_date(r.business_day).value();
  std::optional<core::LocalDays> expires;
  if (r.points_expire_on) expires = core::parse_local_date(*r.points_expire_on);
  const auto shift = defend_dates(r, now, day, expires, flags_out);
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
    auto at = touched.find(id);
    if (at == touched.end()) {
      auto other = load_member(id);
      if (!other) {
        other.emplace();
        other->id = id;
      }
      at = touched.emplace(id, std::move(*other)).first;
    }
    auto c = core::apply_point_entries(at->second, r.entries, day, expires);
    conflicts.insert(conflicts.end(), c.begin(), c.end());
  }
  // A referral's vouchers and counted uses go to the referrer HQ has; every
  // store gets them with the referrer's next feed change.
  if (!prep.referrer.empty() && prep.referrer != r.member_id) {
    auto at = touched.find(prep.referrer);
    if (at == touched.end())
      if (auto other = load_member(prep.referrer))
        at = touched.emplace(prep.referrer, std::move(*other)).first;
    if (at != touched.end()) {
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
      flag(r.txn_id, r.member_id, "referral-unpaid",
           "the referrer " + prep.referrer + " is not at HQ yet (no store has uploaded them), so " +
               "their voucher(s) " + templates + " were not given; give them with issue-vouchers",
           flags_out);
    }
  }
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
  auto more = core::apply_delta(member, *delta);
  for (auto& c : more) {
    // A voucher HQ revoked, used at a store that had not heard yet: booked,
    // and flagged as what it is rather than as a voucher used twice.
    if (c.kind != "voucher-reused") continue;
    const auto revoked =
        db_.query("SELECT reason, actor FROM revoked_vouchers WHERE code = ?1", {c.subject});
    if (revoked.empty()) continue;
    c.kind = "voucher-revoked";
    c.detail = "voucher " + c.subject + " was revoked at HQ by " + revoked[0].text(1) + " (" +
               revoked[0].text(0) + ") before this use reached HQ; the sale stays booked";
  }
  conflicts.insert(conflicts.end(), more.begin(), more.end());
  for (const auto& c : conflicts) flag(r.txn_id, r.member_id, c.kind, c.detail, flags_out);
  if (!prep.receipt.empty()) change_text("receipt", r.txn_id, prep.receipt, "", r.member_id);
  if (prep.replay) flag(r.txn_id, r.member_id, prep.replay->first, prep.replay->second, flags_out);
  track_return(r, member, flags_out);
}

std::map<std::string, AcceptedTxn> HqLedger::accepted(const sync::Batch& batch) {
  std::vector<std::string> ids;
  for (const auto& r : batch.records) ids.push_back(r.txn_id);
  std::map<std::string, AcceptedTxn> seen;
  for (const auto& row : query_ids(db_,
                                   "SELECT txn_id, record_hash, committed_at, member_id, kind "
                                   "FROM transactions WHERE txn_id IN",
                                   ids))
    seen.emplace(row.text(0),
                 AcceptedTxn{row.text(1), row.integer(2), row.text(3), row.text(4), {}});
  if (seen.empty()) return seen;  // the usual batch: all new
  ids.clear();
  for (const auto& [id, a] : seen) ids.push_back(id);
  std::map<std::string, std::vector<std::string>> lines;
  for (const auto& row : query_ids(
           db_, "SELECT txn_id, id, debit, credit, amount, unit FROM entries WHERE txn_id IN", ids))
    lines[row.text(0)].push_back(
        entry_line(row.text(1), row.text(2), row.text(3), row.integer(4), row.text(5)));
  for (auto& [id, l] : lines) seen[id].entries = entries_key(std::move(l));
  return seen;
}

std::multimap<std::string, RefusedTxn> HqLedger::refusals(const std::string& store,
                                                          const std::string& terminal) {
  std::multimap<std::string, RefusedTxn> out;
  for (const auto& row :
       db_.query("SELECT txn_id, record_hash, reason FROM refused_txns WHERE store_id = ?1 AND "
                 "terminal_id = ?2",
                 {store, terminal}))
    out.emplace(row.text(0), RefusedTxn{row.text(1), row.text(2)});
  return out;
}

void HqLedger::refuse(const sync::TxnRecord& r, const Prepared& prep, const std::string& store,
                      const std::string& terminal, const std::string& reason, std::int64_t now) {
  // What it would have moved for the member: what settling it gives.
  const auto net = core::member_points_delta(r.member_id, r.entries);
  db_.defer(
      "INSERT INTO refused_txns(txn_id, record_hash, store_id, terminal_id, seq, kind, "
      "member_id, return_of, member_points, reason, record, received_at) VALUES (?1, ?2, ?3, "
      "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING",
      {r.txn_id, prep.hash, store, terminal, r.seq, r.kind, r.member_id,
       r.return_of ? SqlParam(*r.return_of) : SqlParam(nullptr), net, reason, prep.text, now});
  // Nothing of it is booked: someone settles it (an adjustment) and
  // resolves the flag; until then every store shows it on the member.
  Json unused = Json::array();
  flag(r.txn_id, r.member_id, "refused",
       r.kind + " " + r.txn_id + " from " + store + "/" + terminal +
           " was refused and is not booked (it would have moved " + (net > 0 ? "+" : "") +
           std::to_string(net) + " points for " + r.member_id + "): " + reason +
           ". Settle it: resolve this flag with --settle",
       unused);
}

std::int64_t HqLedger::last_receipt(const std::string& store, const std::string& terminal) {
  // Receipt numbers are handed out before the sequence (in commit order),
  // so concurrent lanes can swap neighbours: the newest few cover it.
  std::int64_t last = 0;
  for (const auto& row :
       db_.query("SELECT txn_id FROM transactions WHERE store_id = ?1 AND terminal_id = ?2 "
                 "ORDER BY seq DESC LIMIT 64",
                 {store, terminal}))
    last = std::max(last, sync::receipt_number(row.text(0)));
  return last;
}

core::Result<Json> HqLedger::ingest(const std::string& store, const std::string& terminal,
                                    const sync::Batch& batch) {
  if (batch.store_id != store || batch.terminal_id != terminal)
    return refused(core::ErrorCode::kFailedPrecondition,
                   "the batch names terminal " + batch.store_id + "/" + batch.terminal_id +
                       " but was sent by " + store + "/" + terminal);
  const auto prefix = sync::txn_prefix(store, terminal);
  for (std::size_t i = 0; i < batch.records.size(); ++i) {
    const auto& r = batch.records[i];
    bool own = r.txn_id.starts_with(prefix);
    for (const auto& e : r.entries) own = own && e.id.starts_with(r.txn_id + "/");
    if (!own)
      return refused(core::ErrorCode::kFailedPrecondition,
                     "transactions[" + std::to_string(i) + "]: " + r.txn_id +
                         " is not a transaction id of " + store + "/" + terminal);
  }
  // The programs the records name (cached after the first batch), then,
  // outside the lock, what each record alone decides.
  std::map<std::pair<std::string, std::int64_t>, std::shared_ptr<const core::Program>> programs;
  {
    std::lock_guard lock(mutex_);
    try {
      for (const auto& r : batch.records)
        if (r.kind != "return" && r.kind != "void")
          programs.try_emplace({r.program_id, r.program_version},
                               program(r.program_id, r.program_version));
    } catch (const SqlError& e) {
      return refused(core::ErrorCode::kUnavailable, std::string("HQ database: ") + e.what());
    }
  }
  std::vector<Prepared> prepared;
  prepared.reserve(batch.records.size());
  for (const auto& r : batch.records) {
    const auto p = programs.find({r.program_id, r.program_version});
    prepared.push_back(prepare(r, p == programs.end() ? nullptr : p->second.get()));
  }
  std::vector<std::size_t> order(batch.records.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return batch.records[a].seq < batch.records[b].seq;
  });

  std::lock_guard lock(mutex_);
  const auto now = clock_();
  pending_.clear();
  pending_visits_.clear();
  auto out = in_transaction(db_, [&]() -> core::Result<Json> {
    auto t = db_.query(
        "SELECT next_seq, revoked, created_at FROM terminals WHERE store_id = ?1 AND "
        "terminal_id = ?2",
        {store, terminal});
    if (t.empty() || t[0].integer(1) != 0)
      return refused(core::ErrorCode::kFailedPrecondition,
                     "terminal " + store + "/" + terminal + " may not write");
    ExactlyOnce once(t[0].integer(0), accepted(batch), refusals(store, terminal));
    Json results = Json::array();
    BatchWork work;
    work.registered_at = t[0].integer(2);
    batch_ = &work;
    struct ClearOnExit {
      BatchWork*& p;
      ~ClearOnExit() { p = nullptr; }
    } clear{batch_};
    auto receipt = last_receipt(store, terminal);
    prefetch_members(batch);
    for (const auto i : order) {
      const auto& r = batch.records[i];
      const auto v = once.judge(r, prepared[i].hash);
      Json res{{"txn_id", r.txn_id}, {"seq", r.seq}, {"status", sync::to_string(v.status)}};
      if (v.refuse_now) refuse(r, prepared[i], store, terminal, v.reason, now);
      if (!v.reason.empty()) res["reason"] = v.reason;
      if (v.status == sync::BatchStatus::kGap) res["expected_seq"] = v.expected_seq;
      if (v.changed) res["note"] = "resent with different content; the first version stands";
      if (v.status == sync::BatchStatus::kAccepted) {
        Json flags = Json::array();
        apply(r, prepared[i], store, terminal, now, flags);
        receipt = std::max(receipt, sync::receipt_number(r.txn_id));
        if (!flags.empty()) res["flags"] = flags;
      }
      results.push_back(res);
    }
    const auto next = once.next_seq();
    const auto gap = once.gap();
    // Each member and account the batch touched is written once.
    post_balances(work.balances);
    for (auto& [id, m] : work.touched) {
      // Once per member, not per record: a key prune drops stays dropped as
      // the newest day only moves on, so the state is the same.
      m.counters.prune();
      pending_[id] = {write_member(m), std::move(m)};
    }
    // The store holds each member it sold to (the member feed follows).
    for (const auto& id : work.visitors) {
      auto visit = id + "\n" + store;
      if (visits_.contains(visit)) continue;
      db_.defer(
          "INSERT INTO member_stores(member_id, store_id, since) VALUES (?1, ?2, ?3) "
          "ON CONFLICT DO NOTHING",
          {id, store, now});
      pending_visits_.push_back(std::move(visit));
    }
    db_.defer(
        "UPDATE terminals SET next_seq = ?3, last_seen = ?4, clock_skew = ?5 "
        "WHERE store_id = ?1 AND terminal_id = ?2",
        {store, terminal, next, now, batch.sent_at - now});
    const auto skew = batch.sent_at - now;
    note_clock(store + "/" + terminal, skew, now);
    Json answer{{"results", results},
                {"next_seq", next},
                {"last_receipt", receipt},
                {"clock_skew_seconds", skew}};
    if (gap) answer["gap"] = {{"expected_seq", *gap}};
    return answer;
  });
  // Committed: what this batch read and wrote is now the members' state.
  if (out) {
    if (member_cache_.size() + pending_.size() > kMemberCacheSize) member_cache_.clear();
    for (auto& [id, c] : pending_) member_cache_[id] = std::move(c);
    if (visits_.size() + pending_visits_.size() > kVisitsCacheSize) visits_.clear();
    for (auto& v : pending_visits_) visits_.insert(std::move(v));
  }
  pending_visits_.clear();
  pending_.clear();
  return out;
}

void HqLedger::note_clock(const std::string& terminal, std::int64_t skew, std::int64_t now) {
  // Once when it goes off, then hourly while it stays off (a terminal
  // uploads every few seconds), and once when it is right again.
  const bool off = skew > kClockToleranceSeconds || skew < -kClockToleranceSeconds;
  const auto it = clock_warned_.find(terminal);
  if (off && (it == clock_warned_.end() || now - it->second >= 3600)) {
    platform::log_warn("terminal " + terminal + "'s clock is " + std::to_string(skew) +
                       " s off HQ's; its sales are misdated until it is corrected");
    clock_warned_[terminal] = now;
  } else if (!off && it != clock_warned_.end()) {
    platform::log_info("terminal " + terminal + "'s clock is right again (" + std::to_string(skew) +
                       " s off HQ's)");
    clock_warned_.erase(it);
  }
}

void HqLedger::serve_feed_from(std::unique_ptr<SqlConn> reader) {
  std::lock_guard lock(feed_mutex_);
  feed_db_ = std::move(reader);
}

core::Result<Json> HqLedger::feed_read(const std::function<Json(SqlConn&)>& read) {
  std::unique_lock feed_lock(feed_mutex_);
  std::unique_lock ledger_lock(mutex_, std::defer_lock);
  if (!feed_db_) ledger_lock.lock();  // the ledger's own connection
  try {
    return read(feed_db_ ? *feed_db_ : db_);
  } catch (const SqlError& e) {
    return refused(core::ErrorCode::kUnavailable, e.what());
  }
}

core::Result<Json> HqLedger::live_member(const std::string& member_id, const std::string& store,
                                         const std::string& terminal) {
  bool found = false;
  auto out = feed_read([&](SqlConn& db) {
    const auto rows = db.query(
        "SELECT m.state, m.blocked, (SELECT t.next_seq FROM terminals t WHERE t.store_id = ?2 "
        "AND t.terminal_id = ?3) FROM members m WHERE m.id = ?1",
        {member_id, store, terminal});
    if (rows.empty()) return Json();
    found = true;
    const auto& row = rows[0];
    return Json{{"member_id", member_id},
                {"blocked", row.integer(1) != 0},
                {"applied_seq", row.is_null(2) ? 0 : row.integer(2) - 1},
                {"member", Json::parse(row.text(0))}};
  });
  if (out && !found)
    return core::fail(core::ErrorCode::kNotFound, "HQ has no member " + member_id + " yet");
  return out;
}

core::Result<Json> HqLedger::lookup_member(const std::string& by, const std::string& value,
                                           const std::string& store) {
  if (by != "member_id" && by != "card_number" && by != "phone")
    return core::invalid(by, "look a member up by member_id, card_number or phone");
  const std::string column = by == "member_id" ? "id" : by;
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    const auto rows = db_.query(std::string("SELECT id, state, ") + kMemberRowColumns +
                                    " FROM members WHERE " + column + " = ?1",
                                {value});
    if (rows.empty())
      return core::fail(core::ErrorCode::kNotFound, "HQ has no member with this " + by);
    const auto id = rows[0].text(0);
    // From now on the store holds the member: its feed carries their changes.
    db_.exec(
        "INSERT INTO member_stores(member_id, store_id, since) VALUES (?1, ?2, ?3) "
        "ON CONFLICT DO NOTHING",
        {id, store, clock_()});
    Json items = Json::array();
    const auto add = [&](const char* kind, const std::string& key, Json data) {
      items.push_back({{"cursor", static_cast<std::int64_t>(items.size()) + 1},
                       {"kind", kind},
                       {"key", key},
                       {"data", std::move(data)}});
    };
    add("member", id, member_change_data(id, Json::parse(rows[0].text(1)), member_row(rows[0], 2)));
    for (const auto& c : db_.query("SELECT code FROM blocked_codes WHERE member_id = ?1", {id}))
      add("code", c.text(0), Json{{"code", c.text(0)}, {"member_id", id}, {"blocked", true}});
    for (const auto& f : db_.query("SELECT txn_id, kind, detail FROM flags WHERE member_id = ?1 "
                                   "AND resolved_at IS NULL ORDER BY id",
                                   {id}))
      add("flag", f.text(0),
          Json{{"txn_id", f.text(0)},
               {"member_id", id},
               {"kind", f.text(1)},
               {"detail", f.text(2)}});
    // Each receipt's newest basis, newest receipts first, so a return of
    // a recent sale made elsewhere can be taken here.
    for (const auto& r :
         db_.query("SELECT c.key, c.payload FROM changes c WHERE c.member_id = ?1 AND c.kind = "
                   "'receipt' AND NOT EXISTS (SELECT 1 FROM changes n WHERE n.member_id = ?1 AND "
                   "n.kind = 'receipt' AND n.key = c.key AND n.cursor > c.cursor) "
                   "ORDER BY c.cursor DESC LIMIT 200",
                   {id}))
      add("receipt", r.text(0), Json::parse(r.text(1)));
    return Json{{"changes", items},
                {"next_cursor", static_cast<std::int64_t>(items.size())},
                {"more", false}};
  });
}

core::Result<Json> HqLedger::changes(std::int64_t cursor, std::int64_t limit,
                                     const std::string& store) {
  return feed_read([&](SqlConn& db) {
    limit = std::clamp<std::int64_t>(limit, 1, 1000);
    // Only each member's newest change is served, so its data is the
    // member's row read in the same statement (the ingest that wrote the
    // change wrote the row too).
    auto rows = db.query(
        std::string("SELECT c.cursor, c.kind, c.key, c.payload, m.state, m.") + kMemberRowColumns +
            " FROM changes c LEFT JOIN members m ON c.kind = 'member' "
            "AND c.payload = '' AND m.id = c.key WHERE c.cursor > ?1 "
            "AND (c.store_id IS NULL OR c.store_id = ?3) "
            "AND NOT (c.kind = 'member' AND EXISTS (SELECT 1 FROM changes n WHERE n.kind = "
            "'member' AND n.key = c.key AND n.cursor > c.cursor)) "
            // With --member-feed visited, what is about a member goes only
            // where the member is held.
            "AND (?4 = 0 OR c.member_id IS NULL OR EXISTS (SELECT 1 FROM member_stores s "
            "WHERE s.member_id = c.member_id AND s.store_id = ?3)) "
            "ORDER BY c.cursor LIMIT ?2",
        {cursor, limit + 1, store, std::int64_t{member_feed_ == MemberFeed::kVisited ? 1 : 0}});
    Json items = Json::array();
    std::int64_t last = cursor;
    for (std::size_t i = 0; i < rows.size() && static_cast<std::int64_t>(i) < limit; ++i) {
      const auto& row = rows[i];
      last = row.integer(0);
      Json data;
      if (row.text(3) != kMemberFromRow) {
        data = Json::parse(row.text(3));
      } else if (row.is_null(4)) {
        // HQ never deletes a member row; a change without one is a bug.
        throw SqlError("member change " + std::to_string(last) + " has no member " + row.text(2));
      } else {
        data = member_change_data(row.text(2), Json::parse(row.text(4)), member_row(row, 5));
      }
      items.push_back(
          {{"cursor", last}, {"kind", row.text(1)}, {"key", row.text(2)}, {"data", data}});
    }
    return Json{{"changes", items},
                {"next_cursor", last},
                {"more", static_cast<std::int64_t>(rows.size()) > limit}};
  });
}

}  // namespace loyalty::hq
