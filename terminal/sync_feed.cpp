// The terminal's side of HQ's change feed (docs/sync.md, "Change feed"):
// pulling pages, installing signed programs, and applying every other
// change to the cache.
//
// Invariants it keeps:
// - A program is installed only when HQ's key verifies its signature; a bad
//   one is logged and the version in force stays.
// - A page's changes and the new cursor are written in one transaction: a
//   crash applies the whole page again or none of it.
// - A member's state here is HQ's plus this till's sales HQ has not
//   acknowledged yet (detail::local_view), never HQ's alone.
// - A kind this terminal does not know is skipped and its cursor moves;
//   a known kind without a handler does not compile (std::visit).
#include <set>

#include "core/io_json.h"
#include "platform/crypto.h"
#include "platform/log.h"
#include "sync/feed.h"
#include "terminal/staff.h"
#include "terminal/sync_agent.h"
#include "terminal/sync_records.h"

namespace loyalty::terminal {

using platform::Db;

namespace {

// Feed pages (of up to 500 changes) applied in one round.
constexpr int kPagesPerRound = 4;

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
// Spelled out for clang 16 (the fuzz build), which lacks aggregate CTAD.
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

void SyncAgent::install_program(const sync::ProgramChange& p) {
  const auto sig = platform::base64url_decode(p.signature);
  if (!hq_key_ || !sig || !hq_key_->verify(p.body, *sig)) {
    platform::log_error("refused program " + p.id + " v" + std::to_string(p.version) +
                        ": its signature is not HQ's; the version in force stays");
    return;
  }
  if (auto ok = checkout_.install_program(p.body, p.effective_from); !ok)
    platform::log_error("program from HQ not installed: " + ok.error().message);
}

bool SyncAgent::apply_member(Db& db, const sync::MemberChange& c) {
  auto hq = core::member_from_json(c.state);
  if (!hq) return false;
  const auto view = detail::local_view(db, *hq);
  const auto now = clock_();
  if (!find_member(db, MemberKey::kId, hq->id)) {
    MemberRow row;
    row.id = hq->id;
    row.state = view;
    insert_member(db, row, now);
  } else {
    save_member_state(db, hq->id, core::member_to_json(view).dump(), now);
  }
  set_hq_state(db, hq->id, c.state.dump());
  if (c.card_number) set_member_field(db, hq->id, MemberField::kCardNumber, *c.card_number);
  if (c.phone) set_member_field(db, hq->id, MemberField::kPhone, *c.phone);
  if (c.name) set_member_field(db, hq->id, MemberField::kName, *c.name);
  if (c.blocked) set_member_blocked(db, hq->id, *c.blocked);
  return true;
}

bool SyncAgent::apply_receipt(Db& db, const sync::ReceiptChange& c) {
  const auto basis = c.return_basis.dump();
  const auto mine = find_txn(db, c.txn_id);
  if (!mine) {
    put_remote_receipt(db, c.txn_id, c.member_id, basis);
    return true;
  }
  // The same id at HQ is another sale unless HQ has acknowledged ours and it
  // is the same member's: a database restored from an older backup sold
  // under an id HQ already had, and HQ refused that sale. The till keeps the
  // receipt as it sold it.
  if (mine->member_id != c.member_id || !acked_by_hq(db, c.txn_id)) return false;
  // This store's own sale: HQ's view counts what was taken back at every
  // store. It replaces ours unless a return of it made here has not reached
  // HQ yet (a later change will bring it).
  if (pending_returns_of(db, c.txn_id) == 0) update_return_basis(db, c.txn_id, basis);
  return true;
}

bool SyncAgent::apply_change(Db& db, const sync::Change& ch) {
  return std::visit(
      Overloaded{// Installed before the page is applied (install_program).
                 [](const sync::ProgramChange&) { return false; },
                 [&](const sync::MemberChange& c) { return apply_member(db, c); },
                 [&](const sync::BlockChange& c) {
                   set_member_blocked(db, c.member_id, c.blocked);
                   return true;
                 },
                 [&](const sync::CodeChange& c) {
                   set_code_blocked(db, c.code, c.member_id, c.blocked);
                   return true;
                 },
                 [&](const sync::FlagChange& c) {
                   add_hq_flag(db, c.txn_id, c.member_id, c.kind, c.detail, clock_());
                   return true;
                 },
                 [&](const sync::FlagResolvedChange& c) {
                   // Someone at HQ looked into it: the member's summary drops it.
                   drop_hq_flag(db, c.txn_id, c.kind);
                   return true;
                 },
                 [&](const sync::StockChange& c) {
                   // A delivery for this store's counter terminal only; the others
                   // skip it. Added to what is left here.
                   if (c.reward_id.empty() || c.add <= 0 || c.terminal_id != bundle_.terminal_id)
                     return false;
                   set_reward_stock(db, c.reward_id,
                                    reward_stock(db, c.reward_id).value_or(0) + c.add);
                   return true;
                 },
                 [&](const sync::ReceiptChange& c) { return apply_receipt(db, c); },
                 [&](const sync::StaffChange& c) {
                   if (c.role != "clerk" && c.role != "supervisor") return false;
                   put_staff(db, StaffRow{c.staff_id, c.name, c.role, c.pin_hash, c.active});
                   return true;
                 },
                 // A newer HQ's kind: skipped, its cursor moves on.
                 [](const sync::UnknownChange&) { return false; }},
      ch.data);
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
    for (const auto& ch : page->changes)
      if (const auto* p = std::get_if<sync::ProgramChange>(&ch.data)) install_program(*p);
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

core::Status SyncAgent::lookup_member(const std::string& by, const std::string& value,
                                      std::chrono::milliseconds timeout) {
  auto res = ask("/v1/sync/member-lookups", Json{{by, value}}, timeout);
  if (!res) return std::unexpected(res.error());
  // The same shape and checks as a feed page; the feed's cursor stays.
  auto page = sync::parse_feed_page(res->body, 0);
  if (!page) return std::unexpected(page.error());
  if (page->changes.empty() ||
      !std::holds_alternative<sync::MemberChange>(page->changes.front().data))
    return core::fail(core::ErrorCode::kUnavailable, "HQ's lookup answer has no member");
  auto ok = store_.write<int>([&](Db& db) -> core::Result<int> {
    int n = 0;
    for (const auto& ch : page->changes)
      if (apply_change(db, ch)) ++n;
    return n;
  });
  if (!ok) return std::unexpected(ok.error());
  platform::log_info("member " + page->changes.front().key + " fetched from HQ (" +
                     std::to_string(*ok) + " changes)");
  return {};
}

}  // namespace loyalty::terminal
