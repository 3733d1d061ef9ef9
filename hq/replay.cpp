#include "hq/replay.h"

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
#include "platform/crypto.h"
#include "platform/log.h"

namespace loyalty::hq {

using namespace detail;

namespace {

// The receipt change of purchase `r` (whose text is `text`) as sold: returns
// taken at its store before this upload arrive as records of their own and
// are counted from those (track_return), like returns anywhere else.
std::string receipt_as_sold(const sync::TxnRecord& r, const std::string& text) {
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
  const auto basis_text = as_sold ? sync::member_text(text, "return_basis") : std::nullopt;
  if (basis_text)
    return R"({"member_id":)" + Json(r.member_id).dump() + R"(,"return_basis":)" +
           std::string(*basis_text) + R"(,"txn_id":)" + Json(r.txn_id).dump() + "}";
  Json basis = b;
  if (basis.contains("returned_qty") && basis["returned_qty"].is_array())
    for (auto& q : basis["returned_qty"]) q = 0;
  basis["points_reversed"] = 0;
  basis["points_restored"] = 0;
  if (basis.contains("sv_restored")) basis["sv_restored"] = 0;
  if (basis.contains("sv_bonus_restored")) basis["sv_bonus_restored"] = 0;
  return Json{{"txn_id", r.txn_id}, {"member_id", r.member_id}, {"return_basis", basis}}.dump();
}

}  // namespace

PreparedRecord prepare_record(const sync::TxnRecord& r, const core::Program* program) {
  PreparedRecord out;
  out.text = record_text(r);
  out.hash = platform::sha256_hex(out.text);
  if (r.kind == sync::TxnKind::kPurchase && r.return_basis.is_object())
    out.receipt = receipt_as_sold(r, out.text);
  // Returns and voids are replayed through their purchase when applied.
  if (r.kind == sync::TxnKind::kReturn || r.kind == sync::TxnKind::kVoid) return out;
  const auto mismatch = [&](std::string detail) {
    out.replay.emplace(core::FlagKind::kReplayMismatch, std::move(detail));
    return out;
  };
  if (program == nullptr) {
    out.replay.emplace(core::FlagKind::kProgramUnknown,
                       "program " + r.program_id + " v" + std::to_string(r.program_version) +
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

}  // namespace loyalty::hq
