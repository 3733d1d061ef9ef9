// Returns (line-level, by receipt id) and same-day voids.
#include "core/io_json.h"
#include "core/ledger.h"
#include "core/member_delta.h"
#include "core/return_basis.h"
#include "terminal/checkout.h"
#include "terminal/checkout_util.h"

namespace loyalty::terminal {

using detail::problem;
using platform::Db;

namespace {

struct ReturnInput {
  std::string receipt_id;
  std::vector<core::ReturnLine> lines;
  bool all = false;
};

std::expected<ReturnInput, ApiError> read_return(const Json& body) {
  core::Problems problems;
  ReturnInput in;
  {
    core::ObjectReader r(body, "", problems);
    if (!r.ok())
      return std::unexpected(
          problem(400, "invalid-request", "Body must be a JSON object",
                  "send {\"receipt_id\", \"lines\": [{\"line\", \"quantity\"}]}"));
    in.receipt_id = r.string("receipt_id", true).value_or("");
    const Json* lines = r.get("lines", true);
    if (lines != nullptr && (!lines->is_array() || lines->empty()))
      r.problem("lines", "must list at least one {\"line\", \"quantity\"}");
    if (lines != nullptr && lines->is_array()) {
      for (std::size_t i = 0; i < lines->size(); ++i) {
        core::ObjectReader lr((*lines)[i], core::index_path("lines", i), problems);
        core::ReturnLine rl;
        rl.line = static_cast<std::size_t>(lr.integer("line", true, 0, 499).value_or(0));
        rl.quantity = lr.integer("quantity", true, 1, 1'000'000).value_or(1);
        in.lines.push_back(rl);
      }
    }
  }
  if (!problems.empty())
    return std::unexpected(detail::from_error(
        core::Error{core::ErrorCode::kInvalidArgument, problems.front().to_string(), problems}));
  return in;
}

}  // namespace

ApiResult Checkout::return_lines(const Json& body, const std::string& idem_key,
                                 const std::string& staff_id) {
  auto in = read_return(body);
  if (!in) return std::unexpected(in.error());
  return reverse(in->receipt_id, in->lines, false, body, idem_key, staff_id);
}

ApiResult Checkout::void_transaction(const std::string& txn_id, const std::string& idem_key,
                                     const std::string& staff_id) {
  return reverse(txn_id, {}, true, Json{{"void", txn_id}}, idem_key, staff_id);
}

ApiResult Checkout::reverse(const std::string& receipt_id, std::vector<core::ReturnLine> lines,
                            bool is_void, const Json& body, const std::string& idem_key,
                            const std::string& staff_id) {
  const auto now = clock_();
  auto program = program_at(now);
  if (!program)
    return std::unexpected(problem(503, "no-program", "No program installed",
                                   "this terminal has no loyalty program yet"));
  auto local = core::to_local(std::chrono::sys_seconds(std::chrono::seconds(now)), settings_.zone);
  if (!local) return std::unexpected(detail::from_error(local.error()));
  const auto day = core::format_local_date(core::day_of(*local));
  const auto hash = detail::body_hash(is_void ? "void" : "return", body);
  std::optional<ApiError> refusal;
  const auto refuse = [&](ApiError e) {
    refusal = std::move(e);
    return core::fail(core::ErrorCode::kFailedPrecondition, "refused");
  };
  auto r = store_.write<Reply>([&](Db& db) -> core::Result<Reply> {
    if (auto prior = find_txn_by_key(db, idem_key)) {
      if (prior->body_hash != hash)
        return refuse(problem(409, "idempotency-conflict", "Idempotency-Key already used",
                              "this Idempotency-Key was used for a different request",
                              "Idempotency-Key"));
      counters_.replays++;
      return Reply{nullptr, 200, true, prior->response};
    }
    auto orig = find_txn(db, receipt_id);
    bool remote = false;
    if (!orig && !is_void) {
      // A receipt from another store, as HQ's feed delivered it.
      platform::Stmt rr(db,
                        "SELECT member_id, return_basis FROM remote_receipts WHERE txn_id = ?1");
      rr.bind(1, receipt_id);
      if (rr.step()) {
        orig.emplace();
        orig->txn_id = receipt_id;
        orig->kind = "purchase";
        orig->member_id = rr.text(0);
        orig->return_basis = rr.text(1);
        remote = true;
      }
    }
    if (!orig)
      return refuse(problem(404, "receipt-not-found", "Receipt not found",
                            "no receipt " + receipt_id +
                                " at this terminal or in what HQ has sent it; a receipt from "
                                "another store can be returned here once HQ's feed has brought it",
                            is_void ? "" : "receipt_id"));
    if (!orig->return_basis)
      return refuse(problem(
          409, "not-returnable", "Not a purchase",
          "only purchases can be returned or voided; " + receipt_id + " is of kind " + orig->kind,
          "receipt_id"));
    if (orig->voided_by)
      return refuse(problem(409, "already-voided", "Already voided",
                            receipt_id + " was voided by " + *orig->voided_by, "receipt_id"));
    if (!remote) {
      // A sale HQ refused (its id names another sale there) cannot be
      // taken back: HQ would apply the return to that other sale.
      platform::Stmt rf(db, "SELECT 1 FROM outbox WHERE txn_id = ?1 AND refused IS NOT NULL");
      rf.bind(1, receipt_id);
      if (rf.step())
        return refuse(problem(409, "sale-refused-by-hq", "Sale not at HQ",
                              receipt_id +
                                  " was made on a database restored from an older backup and HQ "
                                  "refused it; it cannot be returned or voided here, refer the "
                                  "member to customer service",
                              "receipt_id"));
    }
    auto basis = core::return_basis_from_json(Json::parse(*orig->return_basis));
    if (!basis) return std::unexpected(basis.error());
    if (is_void) {
      if (orig->business_day != day)
        return refuse(
            problem(409, "void-not-allowed", "Void is for the same day",
                    receipt_id + " was made on " + orig->business_day + "; use a return instead"));
      bool all_back = !basis->returned_qty.empty();
      for (std::size_t i = 0; i < basis->returned_qty.size(); ++i)
        all_back =
            all_back && basis->returned_qty[i] >= basis->outcome.request.basket.lines[i].quantity;
      if (all_back)
        return refuse(problem(409, "void-not-allowed", "Returned in full",
                              receipt_id + " has been returned in full already; nothing is left "
                                           "to void"));
      for (std::size_t i = 0; i < basis->returned_qty.size(); ++i) {
        if (basis->returned_qty[i] != 0)
          return refuse(problem(409, "void-not-allowed", "Partly returned",
                                receipt_id + " has returns already; return the rest instead"));
        lines.push_back({i, basis->outcome.request.basket.lines[i].quantity});
      }
    }
    auto m = find_member(db, MemberKey::kId, orig->member_id);
    if (!m)
      return refuse(problem(404, "unknown-member", "Unknown member",
                            "the receipt's member is not at this terminal"));
    const auto seq = next_seq(db);
    const auto receipt = ++next_receipt_;
    note_receipt(db, receipt);
    core::Request req;
    req.at = *local;
    req.zone = settings_.zone;
    req.txn_id = new_txn_id(receipt);
    auto out = core::evaluate_return(*program, m->state, *basis, lines, req);
    if (!out) return std::unexpected(out.error());
    const Json before = core::member_to_json(m->state);
    const core::MemberState before_state = m->state;
    auto committed = core::commit_return(*program, m->state, *basis, *out);
    if (!committed) return std::unexpected(committed.error());
    save_member_state(db, m->id, core::member_to_json(m->state).dump(), now);
    if (remote) {
      platform::Stmt u(db, "UPDATE remote_receipts SET return_basis = ?2 WHERE txn_id = ?1");
      u.bind(1, orig->txn_id).bind(2, core::return_basis_to_json(*basis).dump());
      u.exec();
    } else {
      update_return_basis(db, orig->txn_id, core::return_basis_to_json(*basis).dump());
    }
    if (is_void) mark_voided(db, orig->txn_id, req.txn_id);
    TxnRow t;
    t.txn_id = req.txn_id;
    t.seq = seq;
    t.idem_key = idem_key;
    t.body_hash = hash;
    t.kind = is_void ? "void" : "return";
    t.staff_id = staff_id;
    t.member_id = m->id;
    t.business_day = day;
    t.local_time = core::format_local_datetime(*local);
    t.zone = settings_.zone;
    t.committed_at = now;
    t.program_id = program->id;
    t.program_version = program->version;
    t.points_earned = 0;
    t.points_redeemed = 0;
    t.offline = offline(db);
    t.request = body.dump();
    t.member_before = before.dump();
    t.return_of = orig->txn_id;
    t.delta = core::delta_to_json(core::diff_member(before_state, m->state)).dump();
    Json j{{"receipt_id", t.txn_id},
           {"status", "committed"},
           {"return_of", orig->txn_id},
           {"offline", t.offline},
           {"outcome", core::outcome_to_json(*out, *program)},
           {"entries", core::entries_to_json(committed->entries)}};
    return record(db, t, std::move(j), *m, *program, committed->entries);
  });
  if (refusal) return std::unexpected(*refusal);
  if (!r) return std::unexpected(detail::from_error(r.error()));
  if (!r->replayed) {
    (is_void ? counters_.voids : counters_.returns)++;
    if (on_commit_) on_commit_();
  }
  return *r;
}

}  // namespace loyalty::terminal
