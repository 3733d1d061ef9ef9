#include "terminal/sync_agent.h"

#include <random>
#include <set>

#include "core/io_json.h"
#include "core/member_delta.h"
#include "platform/cli.h"
#include "platform/http_client.h"
#include "platform/log.h"
#include "platform/tls.h"
#include "sync/feed.h"
#include "sync/protocol.h"

namespace loyalty::terminal {

using platform::Db;

core::Result<HqBundle> load_bundle(const std::string& path) {
  auto text = platform::read_text_file(path, 1 << 20);
  if (!text) return std::unexpected(text.error());
  const Json j = Json::parse(*text, nullptr, false);
  HqBundle b;
  try {
    const std::string url = j.at("hq_url");
    const auto scheme = url.find("https://");
    const auto colon = url.rfind(':');
    if (scheme != 0 || colon == std::string::npos || colon < 8)
      return core::invalid(path + ".hq_url", "must be https://HOST:PORT");
    b.host = url.substr(8, colon - 8);
    const auto port = platform::whole_number(url.substr(colon + 1));
    if (!port || *port < 1 || *port > 65535)
      return core::invalid(path + ".hq_url", "the port must be a number from 1 to 65535");
    b.port = static_cast<std::uint16_t>(*port);
    b.server_name = j.at("server_name");
    b.store_id = j.at("store_id");
    b.terminal_id = j.at("terminal_id");
    b.ca_pem = j.at("ca_pem");
    b.cert_pem = j.at("cert_pem");
    b.key_pem = j.at("key_pem");
    b.hq_public_key_pem = j.at("hq_public_key_pem");
  } catch (const std::exception& e) {
    return core::invalid(path, std::string("not a provisioning bundle: ") + e.what());
  }
  if (auto t = platform::client_tls(b.ca_pem, b.cert_pem, b.key_pem); !t)
    return core::invalid(path, t.error().message);
  return b;
}

SyncAgent::SyncAgent(Store& store, Checkout& checkout, HqBundle bundle, Clock clock)
    : store_(store), checkout_(checkout), bundle_(std::move(bundle)), clock_(std::move(clock)) {
  if (auto k = platform::SigningKey::from_pem(bundle_.hq_public_key_pem)) hq_key_ = std::move(*k);
  if (auto t = platform::client_tls(bundle_.ca_pem, bundle_.cert_pem, bundle_.key_pem))
    tls_ = std::move(*t);
}

SyncAgent::~SyncAgent() {
  stop();
}

void SyncAgent::start() {
  thread_ = std::thread([this] { run(); });
}

void SyncAgent::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SyncAgent::poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  cv_.notify_all();
}

void SyncAgent::sync_now() {
  {
    std::lock_guard lock(mutex_);
    forced_ = true;
  }
  cv_.notify_all();
}

void SyncAgent::set_online(bool online) {
  const auto now = clock_();
  (void)store_.write<bool>([&](Db& db) -> core::Result<bool> {
    const bool was = sync_get(db, "online").value_or("0") == "1";
    sync_set(db, "online", online ? "1" : "0");
    if (online) {
      sync_set(db, "last_sync_at", std::to_string(now));
      const auto skew = sync_get(db, "hq_clock_skew");
      checkout_.note_contact(db, now, skew ? std::stoll(*skew) : 0);
      platform::Stmt clear(db,
                           "DELETE FROM sync_state WHERE key IN ('hq_refused_terminal', "
                           "'clock_error')");
      clear.exec();
    } else if (was || !sync_get(db, "offline_since")) {
      sync_set(db, "offline_since", std::to_string(now));
    }
    return true;
  });
}

namespace {

// Feed pages (of up to 500 changes) applied in one round.
constexpr int kPagesPerRound = 4;
// An upload batch's records, estimated from what is stored: a quarter of
// HQ's body limit (16 MiB), so an estimate off by far still fits.
constexpr std::size_t kBatchBytes = 4u << 20;
constexpr std::size_t kBatchRecords = 500;

// The engine input of a stored POS request: the basket, or the event
// without the member id.
Json engine_request(const Json& body) {
  if (body.contains("basket")) return body["basket"];
  Json j = body;
  j.erase("member_id");
  return j;
}

std::optional<sync::TxnRecord> record_of(Db& db, const TxnRow& t) {
  sync::TxnRecord r;
  r.txn_id = t.txn_id;
  r.seq = t.seq;
  r.kind = t.kind;
  r.member_id = t.member_id;
  r.committed_at = t.committed_at;
  r.business_day = t.business_day;
  r.local_time = t.local_time;
  r.zone = t.zone;
  r.program_id = t.program_id;
  r.program_version = t.program_version;
  r.request = engine_request(Json::parse(t.request));
  r.member_before = Json::parse(t.member_before);
  const Json response = Json::parse(t.response);
  r.totals = response.at("outcome").at("totals");
  platform::Stmt s(
      db,
      "SELECT id, debit, credit, amount, unit, lot, memo FROM entries WHERE txn_id = ?1 "
      "ORDER BY rowid");
  s.bind(1, t.txn_id);
  while (s.step())
    r.entries.push_back(
        {s.text(0), t.txn_id, s.text(1), s.text(2), s.integer(3), s.text(4), s.text(5), s.text(6)});
  if (t.delta) {
    auto d = core::delta_from_json(Json::parse(*t.delta));
    if (!d) return std::nullopt;
    r.delta = std::move(*d);
  }
  r.points_expire_on = t.points_expire_on;
  r.return_of = t.return_of;
  if (t.return_basis && t.kind == "purchase") r.return_basis = Json::parse(*t.return_basis);
  if (t.kind == "enrollment") {
    if (auto m = find_member(db, MemberKey::kId, t.member_id)) {
      r.identity = Json::object();
      if (!m->card_number.empty()) r.identity["card_number"] = m->card_number;
      if (!m->phone.empty()) r.identity["phone"] = m->phone;
      if (!m->name.empty()) r.identity["name"] = m->name;
    }
  }
  return r;
}

// The member as this till shows them: HQ's state plus what HQ has not
// acknowledged yet (and has not refused), in sequence order.
core::MemberState local_view(Db& db, const core::MemberState& hq) {
  core::MemberState view = hq;
  platform::Stmt s(db,
                   "SELECT t.txn_id FROM transactions t JOIN outbox o ON o.txn_id = "
                   "t.txn_id WHERE o.acked_at IS NULL AND o.refused IS NULL AND t.member_id = ?1 "
                   "ORDER BY o.seq");
  s.bind(1, hq.id);
  std::vector<std::string> pending;
  while (s.step()) pending.push_back(s.text(0));
  for (const auto& id : pending) {
    auto t = find_txn(db, id);
    auto rec = t ? record_of(db, *t) : std::nullopt;
    if (!rec) continue;
    const auto day = core::parse_local_date(rec->business_day).value();
    std::optional<core::LocalDays> exp;
    if (rec->points_expire_on) exp = core::parse_local_date(*rec->points_expire_on);
    (void)core::apply_point_entries(view, rec->entries, day, exp);
    (void)core::apply_delta(view, rec->delta);
  }
  return view;
}

}  // namespace

void SyncAgent::note_access(const platform::ClientResponse& res) {
  if (res.status != 403) return;
  const Json body = Json::parse(res.body, nullptr, false);
  const auto type = body.is_object() ? body.value("type", "") : "";
  if (!type.ends_with("/" + std::string(sync::kProblemTerminalRefused))) return;
  const auto detail = body.is_object() && body.contains("detail") && body["detail"].is_string()
                          ? body["detail"].get<std::string>()
                          : std::string("HQ refuses this terminal");
  (void)store_.write<bool>([&](Db& db) -> core::Result<bool> {
    sync_set(db, "hq_refused_terminal", detail.substr(0, 300));
    return true;
  });
  platform::log_error("HQ refuses this terminal (" + detail.substr(0, 300) +
                      "): revoked or not registered; sales are kept here, redemptions stop, "
                      "provision it again (docs/operations.md)");
}

core::Result<sync::BatchAnswer> SyncAgent::send_batch(HqLink& link, const sync::Batch& batch) {
  auto res = link.request(platform::http::verb::post, "/v1/sync/batches",
                          sync::batch_to_json(batch).dump());
  if (!res || res->status != 200) batch_limit_ = kProbeRecords;
  if (!res) return std::unexpected(res.error());
  note_access(*res);
  if (res->status != 200)
    return core::fail(
        core::ErrorCode::kUnavailable,
        "HQ refused the batch (" + std::to_string(res->status) + "): " + res->body.substr(0, 300));
  auto answer = sync::parse_batch_answer(res->body);
  if (!answer) return std::unexpected(answer.error());
  if (auto ok = catch_up_numbering(*answer); !ok) return std::unexpected(ok.error());
  return answer;
}

core::Status SyncAgent::catch_up_numbering(const sync::BatchAnswer& answer) {
  if (!answer.next_seq && !answer.last_receipt) return {};  // an HQ older than this
  if (answer.last_receipt) checkout_.raise_receipts_to(*answer.last_receipt);
  // Almost always this database is ahead of HQ: a read, not a write per batch.
  const auto behind = store_.read<bool>([&](Db& db) -> core::Result<bool> {
    return (answer.next_seq &&
            *answer.next_seq - 1 > std::stoll(meta_get(db, "last_seq").value_or("0"))) ||
           (answer.last_receipt && *answer.last_receipt > last_receipt(db));
  });
  if (!behind) return std::unexpected(behind.error());
  if (!*behind) return {};
  const auto now = clock_();
  auto note = store_.write<std::string>([&](Db& db) -> core::Result<std::string> {
    const auto seq = std::stoll(meta_get(db, "last_seq").value_or("0"));
    const auto receipt = last_receipt(db);
    std::string what;
    if (answer.next_seq && *answer.next_seq - 1 > seq) {
      meta_set(db, "last_seq", std::to_string(*answer.next_seq - 1));
      what += "sequence " + std::to_string(seq) + " -> " + std::to_string(*answer.next_seq - 1);
    }
    if (answer.last_receipt && *answer.last_receipt > receipt) {
      note_receipt(db, *answer.last_receipt);
      what += std::string(what.empty() ? "" : ", ") + "receipt " + std::to_string(receipt) +
              " -> " + std::to_string(*answer.last_receipt);
    }
    if (!what.empty())
      sync_set(db, "numbering_caught_up", Json{{"at", now}, {"detail", what}}.dump());
    return what;
  });
  if (!note) return std::unexpected(note.error());
  if (!note->empty())
    platform::log_error(
        "this terminal's database is behind HQ, which already has later transactions from it "
        "(restored from an older backup?): numbering continues after HQ's (" +
        *note + ")");
  return {};
}

core::Status SyncAgent::resequence(const std::vector<std::string>& txn_ids) {
  auto ok = store_.write<bool>([&](Db& db) -> core::Result<bool> {
    platform::Stmt o(db, "UPDATE outbox SET seq = ?2 WHERE txn_id = ?1 AND acked_at IS NULL");
    platform::Stmt t(db, "UPDATE transactions SET seq = ?2 WHERE txn_id = ?1");
    for (const auto& id : txn_ids) {
      const auto seq = next_seq(db);
      o.bind(1, id).bind(2, seq);
      o.exec();
      t.bind(1, id).bind(2, seq);
      t.exec();
    }
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  platform::log_warn("HQ holds other transactions under the sequence numbers of " +
                     std::to_string(txn_ids.size()) +
                     " sale(s) made here; they upload again under new ones");
  return {};
}

core::Status SyncAgent::note_refused(const std::map<std::string, std::string>& refused) {
  if (refused.empty()) return {};
  const auto now = clock_();
  auto ok = store_.write<bool>([&](Db& db) -> core::Result<bool> {
    platform::Stmt u(db, "UPDATE outbox SET refused = ?2 WHERE txn_id = ?1 AND acked_at IS NULL");
    std::set<std::string> members;
    for (const auto& [id, reason] : refused) {
      u.bind(1, id).bind(2, reason);
      u.exec();
      if (auto t = find_txn(db, id)) members.insert(t->member_id);
    }
    // What HQ refused leaves the member's view here: HQ's balance stands
    // until a person settles the sale at HQ (an adjustment reaches this
    // till through the feed like any other change).
    for (const auto& id : members) {
      platform::Stmt h(db, "SELECT hq_state FROM members WHERE id = ?1 AND hq_state IS NOT NULL");
      h.bind(1, id);
      if (!h.step()) continue;
      auto hq = core::member_from_json(Json::parse(h.text(0), nullptr, false));
      if (!hq) continue;
      save_member_state(db, id, core::member_to_json(local_view(db, *hq)).dump(), now);
    }
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  for (const auto& [id, reason] : refused)
    platform::log_error("HQ refused " + id + ": " + reason +
                        ". Kept here, no longer uploaded; settle it at HQ (docs/operations.md, "
                        "\"Back up and restore\")");
  return {};
}

core::Status SyncAgent::note_skew(std::int64_t skew) {
  // Every round answers with it: written and warned about when it changes,
  // not at each idle round.
  if (skew == noted_skew_) return {};
  // HQ's measure of this terminal's clock: shown in status, warned about.
  if (skew > sync::kClockToleranceSeconds || skew < -sync::kClockToleranceSeconds)
    platform::log_warn("this terminal's clock is " + std::to_string(skew) +
                       " s off HQ's; check its time synchronisation (NTP)");
  auto ok = store_.write<bool>([&](Db& db) -> core::Result<bool> {
    sync_set(db, "hq_clock_skew", std::to_string(skew));
    return true;
  });
  if (!ok) return std::unexpected(ok.error());
  noted_skew_ = skew;
  return {};
}

core::Result<int> SyncAgent::upload(HqLink& link) {
  int acked = 0, moves = 0;
  // An empty batch: where HQ's numbering of this terminal stands, and HQ's
  // measure of its clock. Sent before the first upload since start (so a
  // database restored from an older backup does not hand out receipt
  // numbers HQ already has), and in a round with nothing to upload (so HQ's
  // last_seen and both sides' clock skew stay current while idle).
  bool spoke = false;
  const auto hello = [&]() -> core::Status {
    auto answer = send_batch(link, {bundle_.store_id, bundle_.terminal_id, clock_(), {}});
    if (!answer) return std::unexpected(answer.error());
    numbering_known_ = spoke = true;
    return note_skew(answer->clock_skew_seconds);
  };
  if (!numbering_known_)
    if (auto ok = hello(); !ok) return std::unexpected(ok.error());
  for (;;) {
    {
      // A long drain must not hold up a shutdown: stop between batches.
      std::lock_guard lock(mutex_);
      if (stopping_) return acked;
    }
    auto batch = store_.read<sync::Batch>([&](Db& db) -> core::Result<sync::Batch> {
      sync::Batch b{bundle_.store_id, bundle_.terminal_id, clock_(), {}};
      platform::Stmt s(db,
                       "SELECT txn_id FROM outbox WHERE acked_at IS NULL AND refused IS NULL "
                       "ORDER BY seq LIMIT ?1");
      s.bind(1, static_cast<std::int64_t>(batch_limit_));
      std::vector<std::string> ids;
      while (s.step()) ids.push_back(s.text(0));
      std::size_t bytes = 0;
      for (const auto& id : ids) {
        auto t = find_txn(db, id);
        auto r = t ? record_of(db, *t) : std::nullopt;
        if (!r) return core::fail(core::ErrorCode::kInternal, "cannot build the record of " + id);
        // Batches are bounded by size too: a member with many lots makes
        // big records, and a batch over HQ's body limit would be refused
        // on every retry (the outbox would never drain).
        bytes += t->member_before.size() + t->request.size() + (t->delta ? t->delta->size() : 0) +
                 (t->return_basis ? t->return_basis->size() : 0) + 2048;
        if (!b.records.empty() && bytes > kBatchBytes) break;
        b.records.push_back(std::move(*r));
      }
      return b;
    });
    if (!batch) return std::unexpected(batch.error());
    if (batch->records.empty()) {
      if (!spoke)
        if (auto ok = hello(); !ok) return std::unexpected(ok.error());
      return acked;
    }
    spoke = true;
    auto answer = send_batch(link, *batch);
    if (!answer) return std::unexpected(answer.error());
    batch_limit_ = kBatchRecords;
    // Only what this batch sent can be acknowledged by its answer.
    std::set<std::string> sent;
    for (const auto& r : batch->records) sent.insert(r.txn_id);
    std::vector<std::string> done, moved;
    std::map<std::string, std::string> refused;
    int duplicates = 0;
    for (const auto& r : answer->results) {
      if (!sent.contains(r.txn_id)) {
        platform::log_error("HQ answered for " + r.txn_id + ", which the batch did not carry");
      } else if (r.status == sync::BatchStatus::kAccepted ||
                 r.status == sync::BatchStatus::kDuplicate) {
        done.push_back(r.txn_id);
        duplicates += r.status == sync::BatchStatus::kDuplicate ? 1 : 0;
      } else if (r.status == sync::BatchStatus::kRejected) {
        moved.push_back(r.txn_id);  // in sequence order, as HQ answers
      } else if (r.status == sync::BatchStatus::kConflict) {
        const auto why = r.detail.find("reason");
        refused[r.txn_id] = why != r.detail.end() && why->is_string()
                                ? why->get<std::string>().substr(0, 1000)
                                : "its id names another transaction at HQ";
      } else {
        platform::log_error("HQ did not take " + r.txn_id + ": " + r.detail.dump());
      }
    }
    if (duplicates > 0)
      platform::log_info("HQ already had " + std::to_string(duplicates) +
                         " transaction(s) of the batch (an earlier answer was lost); counted once");
    if (!moved.empty()) {
      // Once after a restore; again and again would be a fault at HQ.
      if (++moves > 3)
        return core::fail(core::ErrorCode::kUnavailable,
                          "HQ keeps rejecting the sequence numbers of " + moved.front());
      if (auto ok = resequence(moved); !ok) return std::unexpected(ok.error());
    }
    if (auto ok = note_refused(refused); !ok) return std::unexpected(ok.error());
    if (done.empty() && moved.empty() && refused.empty())
      return core::fail(core::ErrorCode::kUnavailable, "HQ took nothing from the batch");
    if (auto s = note_skew(answer->clock_skew_seconds); !s) return std::unexpected(s.error());
    const auto now = clock_();
    auto ok = store_.write<bool>([&](Db& db) -> core::Result<bool> {
      platform::Stmt u(db,
                       "UPDATE outbox SET acked_at = ?2 WHERE txn_id = ?1 AND acked_at IS NULL");
      for (const auto& id : done) {
        u.bind(1, id).bind(2, now);
        u.exec();
      }
      return true;
    });
    if (!ok) return std::unexpected(ok.error());
    acked += static_cast<int>(done.size());
  }
}

bool SyncAgent::apply_change(Db& db, const sync::Change& ch) {
  const auto& kind = ch.kind;
  const auto& d = ch.data;
  if (kind == "member") {
    auto hq = core::member_from_json(d.at("state"));
    if (!hq) return false;
    const auto view = local_view(db, *hq);
    const auto now = clock_();
    if (!find_member(db, MemberKey::kId, hq->id)) {
      MemberRow row;
      row.id = hq->id;
      row.state = view;
      insert_member(db, row, now);
    } else {
      save_member_state(db, hq->id, core::member_to_json(view).dump(), now);
    }
    platform::Stmt h(db, "UPDATE members SET hq_state = ?2 WHERE id = ?1");
    h.bind(1, hq->id).bind(2, d.at("state").dump());
    h.exec();
    // How the member is found at the till. OR IGNORE: a number
    // already taken here must not stop the feed.
    for (const char* col : {"card_number", "phone", "name"}) {
      if (!d.contains(col) || !d[col].is_string()) continue;
      platform::Stmt u(db,
                       std::string("UPDATE OR IGNORE members SET ") + col + " = ?2 WHERE id = ?1");
      u.bind(1, hq->id).bind(2, d[col].get<std::string>());
      u.exec();
    }
    if (d.contains("blocked") && d["blocked"].is_boolean()) {
      platform::Stmt b(db, "UPDATE members SET blocked = ?2 WHERE id = ?1");
      b.bind(1, hq->id).bind(2, std::int64_t{d["blocked"].get<bool>()});
      b.exec();
    }
    return true;
  } else if (kind == "block") {
    platform::Stmt b(db, "UPDATE members SET blocked = ?2 WHERE id = ?1");
    b.bind(1, d.value("member_id", "")).bind(2, std::int64_t{d.value("blocked", true)});
    b.exec();
    return true;
  } else if (kind == "code") {
    if (d.value("blocked", true)) {
      platform::Stmt b(db, "INSERT OR REPLACE INTO blocked_codes(code, member_id) VALUES (?1, ?2)");
      b.bind(1, d.value("code", "")).bind(2, d.value("member_id", ""));
      b.exec();
    } else {
      platform::Stmt b(db, "DELETE FROM blocked_codes WHERE code = ?1");
      b.bind(1, d.value("code", ""));
      b.exec();
    }
    return true;
  } else if (kind == "flag") {
    platform::Stmt f(db,
                     "INSERT INTO hq_flags(txn_id, member_id, kind, detail, received_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)");
    f.bind(1, d.value("txn_id", ""))
        .bind(2, d.value("member_id", ""))
        .bind(3, d.value("kind", ""))
        .bind(4, d.value("detail", ""))
        .bind(5, clock_());
    f.exec();
    return true;
  } else if (kind == "flag-resolved") {
    // Someone at HQ looked into it: the member's summary drops it.
    platform::Stmt f(db, "DELETE FROM hq_flags WHERE txn_id = ?1 AND kind = ?2");
    f.bind(1, d.value("txn_id", "")).bind(2, d.value("kind", ""));
    f.exec();
    return true;
  } else if (kind == "stock") {
    // A delivery for this store's counter: added to what is left here.
    const auto reward = d.value("reward_id", "");
    const auto add = d.value("add", std::int64_t{0});
    // For the store's counter terminal only; the others skip it.
    if (reward.empty() || add <= 0 || d.value("terminal_id", "") != bundle_.terminal_id)
      return false;
    set_reward_stock(db, reward, reward_stock(db, reward).value_or(0) + add);
    return true;
  } else if (kind == "receipt") {
    const auto id = d.value("txn_id", "");
    const auto basis = d.value("return_basis", Json::object()).dump();
    if (auto mine = find_txn(db, id)) {
      // The same id at HQ is another sale unless HQ has acknowledged ours
      // and it is the same member's: a database restored from an older
      // backup sold under an id HQ already had, and HQ refused that sale.
      // The till keeps the receipt as it sold it.
      platform::Stmt a(db, "SELECT acked_at IS NOT NULL FROM outbox WHERE txn_id = ?1");
      a.bind(1, id);
      if (mine->member_id != d.value("member_id", "") || !a.step() || a.integer(0) == 0)
        return false;
      // This store's own sale: HQ's view counts what was taken back
      // at every store. It replaces ours unless a return of it made
      // here has not reached HQ yet (a later change will bring it).
      platform::Stmt p(db,
                       "SELECT COUNT(*) FROM transactions t JOIN outbox o ON o.txn_id = "
                       "t.txn_id WHERE t.return_of = ?1 AND o.acked_at IS NULL AND o.refused "
                       "IS NULL");
      p.bind(1, id);
      p.step();
      if (p.integer(0) == 0) update_return_basis(db, id, basis);
    } else {
      platform::Stmt r(db,
                       "INSERT OR REPLACE INTO remote_receipts(txn_id, member_id, "
                       "return_basis) VALUES (?1, ?2, ?3)");
      r.bind(1, id).bind(2, d.value("member_id", "")).bind(3, basis);
      r.exec();
    }
    return true;
  }
  return false;  // a program (installed before), or a kind this terminal does not know
}

core::Result<int> SyncAgent::pull(HqLink& link) {
  int applied = 0;
  feed_behind_ = false;
  for (int pages = 0;; ++pages) {
    // A long catch-up is split over rounds, so uploads go on in between.
    if (pages == kPagesPerRound) {
      feed_behind_ = true;
      return applied;
    }
    auto cursor = store_.read<std::int64_t>([](Db& db) -> core::Result<std::int64_t> {
      return std::stoll(sync_get(db, "feed_cursor").value_or("0"));
    });
    if (!cursor) return std::unexpected(cursor.error());
    auto res = link.request(platform::http::verb::get,
                            "/v1/sync/changes?after=" + std::to_string(*cursor) + "&limit=500", {});
    if (!res) return std::unexpected(res.error());
    note_access(*res);
    if (res->status != 200)
      return core::fail(core::ErrorCode::kUnavailable, "HQ's change feed answered " +
                                                           std::to_string(res->status) + ": " +
                                                           res->body.substr(0, 300));
    auto page = sync::parse_feed_page(res->body, *cursor);
    if (!page) return std::unexpected(page.error());
    // Programs first, each verified against HQ's key; a bad one is refused
    // and reported, and the version in force stays.
    for (const auto& ch : page->changes) {
      if (ch.kind != "program") continue;
      const auto& d = ch.data;
      const auto body = d.value("body", "");
      const auto sig = platform::base64url_decode(d.value("signature", ""));
      if (!hq_key_ || !sig || !hq_key_->verify(body, *sig)) {
        platform::log_error("refused program " + d.value("id", "?") + " v" +
                            std::to_string(d.value("version", 0)) +
                            ": its signature is not HQ's; the version in force stays");
        continue;
      }
      if (auto ok = checkout_.install_program(body, d.value("effective_from", std::int64_t{0}));
          !ok)
        platform::log_error("program from HQ not installed: " + ok.error().message);
    }
    const auto next = page->next_cursor;
    auto ok = store_.write<int>([&](Db& db) -> core::Result<int> {
      int n = 0;
      for (const auto& ch : page->changes)
        if (apply_change(db, ch)) ++n;
      sync_set(db, "feed_cursor", std::to_string(next));
      // HQ has more after this page: status says the store is catching up
      // (a new terminal loading the members, one back after days offline).
      sync_set(db, "feed_more", page->more ? "1" : "0");
      return n;
    });
    if (!ok) return std::unexpected(ok.error());
    applied += *ok;
    if (!page->more) return applied;
  }
}

core::Status SyncAgent::sync_once() {
  if (!tls_)
    return core::fail(core::ErrorCode::kInvalidArgument, "the bundle's credentials do not load");
  // One connection per round, kept alive from the upload to the feed.
  platform::HttpClient client(bundle_.host, bundle_.port, tls_, bundle_.server_name,
                              std::chrono::seconds(20));
  struct Https final : HqLink {
    explicit Https(platform::HttpClient& c) : client(c) {}
    core::Result<platform::ClientResponse> request(platform::http::verb method,
                                                   const std::string& target,
                                                   const std::string& body) override {
      return client.request(method, target, body);
    }
    platform::HttpClient& client;
  } https(client);
  auto ok = sync_round(https);
  if (!ok && client.certificate_time_problem())
    note_clock_error(*client.certificate_time_problem());
  return ok;
}

void SyncAgent::note_clock_error(const std::string& problem) {
  // HQ cannot measure a clock it never hears from: the terminal says it.
  const auto now = clock_();
  const auto text = "cannot reach HQ: " + problem + " (this terminal's clock says " +
                    platform::utc_text(now) + "); set the clock right (NTP)";
  platform::log_warn(text);
  (void)store_.write<bool>([&](Db& db) -> core::Result<bool> {
    sync_set(db, "clock_error", text);
    return true;
  });
}

core::Result<platform::ClientResponse> SyncAgent::ask(const std::string& target, const Json& body,
                                                      std::chrono::milliseconds timeout) {
  if (!tls_)
    return core::fail(core::ErrorCode::kUnavailable, "the bundle's credentials do not load");
  // Connect with the handshake, write, read: each bounded, together about
  // `timeout`.
  platform::HttpClient client(bundle_.host, bundle_.port, tls_, bundle_.server_name, timeout / 3);
  auto res = client.request(platform::http::verb::post, target, body.dump());
  if (!res) return std::unexpected(res.error());
  if (res->status == 404)
    return core::fail(core::ErrorCode::kNotFound, "HQ has no record of the member");
  if (res->status != 200)
    return core::fail(core::ErrorCode::kUnavailable,
                      "HQ answered " + target + " with HTTP " + std::to_string(res->status));
  return res;
}

core::Result<LiveMember> SyncAgent::live_member(const std::string& member_id,
                                                std::chrono::milliseconds timeout) {
  auto res = ask("/v1/sync/live-checks", Json{{"member_id", member_id}}, timeout);
  if (!res) return std::unexpected(res.error());
  return sync::parse_live_check(res->body, member_id);
}

core::Status SyncAgent::lookup_member(const std::string& by, const std::string& value,
                                      std::chrono::milliseconds timeout) {
  auto res = ask("/v1/sync/member-lookups", Json{{by, value}}, timeout);
  if (!res) return std::unexpected(res.error());
  // The same shape and checks as a feed page; the feed's cursor stays.
  auto page = sync::parse_feed_page(res->body, 0);
  if (!page) return std::unexpected(page.error());
  if (page->changes.empty() || page->changes.front().kind != "member")
    return core::fail(core::ErrorCode::kUnavailable, "HQ's lookup answer has no member");
  auto ok = store_.write<int>([&](Db& db) -> core::Result<int> {
    int n = 0;
    for (const auto& ch : page->changes)
      if (ch.kind != "program" && apply_change(db, ch)) ++n;
    return n;
  });
  if (!ok) return std::unexpected(ok.error());
  platform::log_info("member " + page->changes.front().key + " fetched from HQ (" +
                     std::to_string(*ok) + " changes)");
  return {};
}

core::Status SyncAgent::sync_round(HqLink& link) {
  auto up = upload(link);
  if (!up) {
    set_online(false);
    return std::unexpected(up.error());
  }
  auto down = pull(link);
  if (!down) {
    set_online(false);
    return std::unexpected(down.error());
  }
  set_online(true);
  return {};
}

void SyncAgent::run() {
  std::mt19937 rng(std::random_device{}());
  std::chrono::milliseconds backoff(500);
  // A restart resumes what was known: online if a round succeeded within
  // the freshness window (measured on the monotonic clock, so a restarted
  // process still knows how long ago that was), offline otherwise.
  for (;;) {
    core::Status ok;
    try {
      ok = sync_once();
    } catch (const core::DataLoss& e) {
      platform::fail_stop(e.what());
    } catch (const std::exception& e) {
      // A hostile or broken answer from HQ must not take the store down.
      set_online(false);
      ok = core::fail(core::ErrorCode::kInternal, std::string("sync round failed: ") + e.what());
    }
    std::chrono::milliseconds wait = interval_;
    if (ok) {
      backoff = std::chrono::milliseconds(500);
      if (feed_behind_) wait = std::chrono::milliseconds(0);  // more of the feed waits
    } else {
      platform::log_warn("sync with HQ failed: " + ok.error().message);
      // Exponential backoff with full jitter, capped at a minute.
      wait = std::chrono::milliseconds(
          std::uniform_int_distribution<long>(backoff.count() / 2, backoff.count())(rng));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(60'000));
    }
    std::unique_lock lock(mutex_);
    const bool failed = !ok;
    cv_.wait_for(lock, wait, [&] { return stopping_ || forced_ || (poked_ && !failed); });
    if (stopping_) return;
    if (forced_) backoff = std::chrono::milliseconds(500);
    poked_ = forced_ = false;
  }
}

}  // namespace loyalty::terminal
