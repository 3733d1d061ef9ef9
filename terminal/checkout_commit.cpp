// Commit, void and return: the write path of the checkout service.
#include <algorithm>

#include "core/io_json.h"
#include "core/ledger.h"
#include "core/member_delta.h"
#include "core/return_basis.h"
#include "sync/protocol.h"
#include "terminal/checkout.h"
#include "terminal/checkout_util.h"

namespace loyalty::terminal {

using detail::problem;
using platform::Db;

namespace {

// A refusal decided inside a write transaction: the transaction rolls back
// and the caller answers with the stored problem.
struct Refusal {
  std::optional<ApiError> error;
  core::Result<Reply> refuse(ApiError e) {
    error = std::move(e);
    return core::fail(core::ErrorCode::kFailedPrecondition, "refused");
  }
};

// Standalone, this till is the whole ledger: what a sale gives the member's
// referrer (points, vouchers, counted uses) is given here, in the same
// write, since no HQ will. Synced tills leave it to HQ, which gives it to the
// referrer it has and sends it to every store.
void give_referrer_rewards(Db& db, const core::Program& p, const std::string& referrer_id,
                           const core::Outcome& o, const std::vector<core::Entry>& entries,
                           std::int64_t now) {
  if (referrer_id.empty()) return;
  auto r = find_member(db, MemberKey::kId, referrer_id);
  if (!r) return;
  const auto before = r->state_text;
  const auto day = core::day_of(o.request.at);
  for (const auto& d : o.metrics)
    if (d.on == core::Recipient::kReferrer) r->state.counters.add(d.metric, day, d.delta);
  int k = 0;
  for (const auto& v : o.vouchers_issued) {
    if (v.to != core::Recipient::kReferrer) continue;
    const auto* t = p.find_voucher(v.template_id);
    r->state.vouchers.push_back({o.request.txn_id + "/r" + std::to_string(++k), v.template_id,
                                 day + date::days{t ? t->valid_days : 30}});
  }
  (void)core::apply_point_entries(r->state, entries, day, core::expiry_of(p.expiry, day));
  r->state.counters.prune();
  const auto after = core::member_to_json(r->state).dump();
  if (after != before) save_member_state(db, r->id, after, now);
}

ApiError unknown_member(const std::string& id) {
  return problem(404, "unknown-member", "Unknown member",
                 "no member " + id + " at this terminal; scan the code again or enroll them",
                 "member_id");
}

// Looks up an earlier use of the key: the same body returns the original
// answer, another body is a conflict.
std::optional<core::Result<Reply>> replay(Db& db, const std::string& key, const std::string& hash,
                                          Refusal& refusal, CheckoutCounters& counters) {
  auto prior = find_txn_by_key(db, key);
  if (!prior) return std::nullopt;
  if (prior->body_hash != hash) {
    counters.conflicts++;
    return refusal.refuse(
        problem(409, "idempotency-conflict", "Idempotency-Key already used",
                "this Idempotency-Key was used for a different request (receipt " + prior->txn_id +
                    "); use a new key for a new sale",
                "Idempotency-Key"));
  }
  counters.replays++;
  return Reply{nullptr, 200, true, prior->response};
}

}  // namespace

std::optional<ApiError> Checkout::prepare(const Json& body, CommitCtx& c, bool internal) {
  auto member_id = detail::read_member_id(body);
  if (!member_id) return member_id.error();
  auto req = detail::read_request(body, internal);
  if (!req) return req.error();
  c.member_id = *member_id;
  c.req = std::move(*req);
  c.now = clock_();
  c.program = program_at(c.now);
  if (!c.program)
    return problem(503, "no-program", "No program installed",
                   "this terminal has no loyalty program yet; sell without loyalty and check "
                   "its provisioning");
  auto local =
      core::to_local(std::chrono::sys_seconds(std::chrono::seconds(c.now)), settings_.zone);
  if (!local) return detail::from_error(local.error());
  c.req.at = *local;
  c.req.zone = settings_.zone;
  c.day = core::format_local_date(core::day_of(*local));
  c.body = &body;
  return std::nullopt;
}

core::Result<Checkout::Worked> Checkout::work_out(const core::Program& program, const MemberRow& m,
                                                  const core::Request& req) {
  Worked w;
  w.state_text = m.state_text;
  const core::CounterReads reads;  // what the engine reads of the member's counters
  auto outcome = core::evaluate(program, m.state, req);
  if (!outcome) return std::unexpected(outcome.error());
  w.after = m.state;
  auto committed = core::commit(program, w.after, *outcome);
  if (!committed) return std::unexpected(committed.error());
  // The member as the engine saw it, for HQ's replay. A member HQ has
  // goes with only the counters the engine read (a record of about half
  // the size); one HQ may not have yet goes whole, as HQ starts from it.
  w.before_text = m.known_at_hq
                      ? core::member_to_json(core::with_counters(m.state, reads.keys())).dump()
                  : m.state.referrer ? core::member_to_json(m.state).dump()
                                     : m.state_text;
  // The referrer's view was for the engine; the member is saved without it
  // (the referrer's rewards reach them through HQ).
  w.after.referrer.reset();
  w.after_text = core::member_to_json(w.after).dump();
  w.outcome_json = core::outcome_to_json(*outcome, program);
  w.entries_json = core::entries_to_json(committed->entries);
  if (req.trigger == core::Trigger::kPurchase)
    w.return_basis = core::return_basis_to_json(*committed).dump();
  w.outcome = std::move(*outcome);
  w.committed = std::move(*committed);
  return w;
}

std::optional<Checkout::Worked> Checkout::work_out_early(const CommitCtx& c) {
  auto m =
      store_.read<std::optional<MemberRow>>([&](Db& db) -> core::Result<std::optional<MemberRow>> {
        if (find_txn_by_key(db, c.idem_key)) return std::nullopt;  // a replay: nothing to do
        auto found = find_member(db, MemberKey::kId, c.member_id);
        if (found) attach_referrer(db, found->state, core::day_of(c.req.at), settings_.standalone);
        return found;
      });
  if (!m || !*m || (*m)->blocked) return std::nullopt;
  auto w = work_out(*c.program, **m, c.req);
  if (!w) return std::nullopt;  // the write path reports the problem
  return std::move(*w);
}

core::Result<Reply> Checkout::commit_in(Db& db, CommitCtx& c, std::optional<ApiError>& refusal,
                                        std::optional<Worked> early) {
  Refusal r;
  const auto refuse = [&](ApiError e) {
    refusal = std::move(e);
    return core::fail(core::ErrorCode::kFailedPrecondition, "refused");
  };
  if (auto prior = replay(db, c.idem_key, c.hash, r, counters_)) {
    if (r.error) return refuse(*r.error);
    return *prior;
  }
  auto m = find_member(db, MemberKey::kId, c.member_id);
  if (!m) return refuse(unknown_member(c.member_id));
  attach_referrer(db, m->state, core::day_of(c.req.at), settings_.standalone);
  if (m->blocked)
    return refuse(problem(403, "member-blocked", "Member blocked",
                          "this membership is blocked; the sale can go ahead without loyalty, "
                          "refer the member to customer service",
                          "member_id"));
  const auto& program = *c.program;
  if (c.req.txn_id.empty()) c.req.txn_id = new_txn_id(++next_receipt_);
  // The work done before the write holds only if the member has not changed
  // since (another lane may have served them in between); else do it again.
  if (!early || early->state_text != m->state_text) {
    auto w = work_out(program, *m, c.req);
    if (!w) return std::unexpected(w.error());
    early = std::move(*w);
  }
  Worked& w = *early;
  const char* redeem_field =
      c.req.trigger == core::Trigger::kRedeem ? "reward" : "basket.redeem_points";
  // A large redemption HQ answered for is decided by HQ's balance; one HQ
  // did not answer for falls to the offline allowances, as if offline.
  const bool live_answered = c.live && c.live->has_value();
  const bool live_unanswered = c.live && !live_answered;
  if (live_unanswered) counters_.live_unanswered++;
  const auto allowance = allowance_clock(db, c.now);
  const bool is_offline = offline(db);  // once: the check and the record agree
  if (auto no = live_answered ? check_live(db, **c.live, m->id, w.outcome.points_redeemed,
                                           core::day_of(c.req.at), redeem_field)
                              : check_offline_allowance(
                                    db, program, m->id, w.outcome.points_redeemed, allowance, c.now,
                                    redeem_field, is_offline || live_unanswered))
    return refuse(*no);
  if (c.req.trigger == core::Trigger::kRedeem) {
    const auto stock = reward_stock(db, c.req.reward_id);
    if (stock && *stock <= 0)
      return refuse(problem(409, "out-of-stock", "Reward out of stock",
                            "this store has none of this reward left; offer another", "reward"));
    if (stock) set_reward_stock(db, c.req.reward_id, *stock - 1);
  }
  Json j{{"receipt_id", c.req.txn_id},
         {"status", "committed"},
         {"offline", is_offline},
         {"outcome", std::move(w.outcome_json)},
         {"entries", std::move(w.entries_json)}};
  if (c.live)
    j["live_check"] = live_answered
                          ? Json{{"status", "confirmed"}}
                          : Json{{"status", "unanswered"}, {"reason", c.live->error().message}};
  save_member_state(db, m->id, w.after_text, c.now);
  if (settings_.standalone)
    give_referrer_rewards(db, program, m->state.referred_by, w.outcome, w.committed.entries, c.now);
  TxnRow t;
  t.txn_id = c.req.txn_id;
  t.seq = next_seq(db);
  t.idem_key = c.idem_key;
  t.body_hash = c.hash;
  t.kind = c.kind;
  t.staff_id = c.staff_id;
  t.member_id = m->id;
  t.business_day = c.day;
  t.allowance_day = allowance.day;
  t.local_time = core::format_local_datetime(c.req.at);
  t.zone = settings_.zone;
  t.committed_at = c.now;
  t.program_id = program.id;
  t.program_version = program.version;
  t.points_earned = w.outcome.points_earned;
  t.points_redeemed = w.outcome.points_redeemed;
  // Unconfirmed by HQ: counts against the offline allowances like one.
  t.offline = is_offline || live_unanswered;
  t.request = c.body->dump();
  t.member_before = std::move(w.before_text);
  if (!w.return_basis.empty()) t.return_basis = std::move(w.return_basis);
  t.delta = core::delta_to_json(core::diff_member(m->state, w.after)).dump();
  if (w.outcome.earn_expires_on)
    t.points_expire_on = core::format_local_date(*w.outcome.earn_expires_on);
  note_receipt(db, sync::receipt_number(c.req.txn_id));
  m->state = std::move(w.after);
  return record(db, t, std::move(j), *m, program, w.committed.entries);
}

Reply Checkout::record(Db& db, TxnRow& t, Json answer, const MemberRow& m, const core::Program& p,
                       const std::vector<core::Entry>& entries) {
  answer["member"] =
      member_summary(db, m, p, t.committed_at, core::member_points_delta(m.id, entries));
  // The receipt moves to the top, completed with the member's lines.
  Json receipt = std::move(answer["outcome"]["receipt"]);
  answer["outcome"].erase("receipt");
  for (const auto& line : answer["member"]["receipt_lines"]) receipt.push_back(line);
  answer["member"].erase("receipt_lines");
  answer["receipt"] = std::move(receipt);
  t.response = answer.dump();
  insert_txn(db, t, entries);
  return Reply{std::move(answer), 201, false, t.response};
}

ApiResult Checkout::commit_request(const Json& body, const std::string& idem_key,
                                   const std::string& kind, const std::string& scope,
                                   const std::string& staff_id) {
  CommitCtx c;
  if (auto e = prepare(body, c)) return std::unexpected(*e);
  c.idem_key = idem_key;
  c.staff_id = staff_id;
  c.kind = kind;
  c.hash = detail::body_hash(scope, body);
  // The engine's work happens here, outside the write queue, so lanes
  // evaluate in parallel and the batch leader only writes.
  c.req.txn_id = new_txn_id(++next_receipt_);
  auto early = work_out_early(c);
  // Asked before the write, so no other commit waits on HQ's answer.
  if (early && live_check_ && settings_.live_check_points > 0 &&
      early->outcome.points_redeemed >= settings_.live_check_points)
    c.live = live_check_(c.member_id);
  std::optional<ApiError> refusal;
  auto r = store_.write<Reply>([&](Db& db) { return commit_in(db, c, refusal, std::move(early)); });
  if (refusal) return std::unexpected(*refusal);
  if (!r) {
    if (r.error().code == core::ErrorCode::kUnavailable) counters_.errors++;
    return std::unexpected(detail::from_error(r.error()));
  }
  if (!r->replayed) {
    counters_.commits++;
    if (on_commit_) on_commit_();
  }
  return *r;
}

}  // namespace loyalty::terminal
