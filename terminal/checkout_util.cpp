#include "terminal/checkout_util.h"

#include <set>

#include "core/io_json.h"
#include "platform/crypto.h"
#include "platform/log.h"

namespace loyalty::terminal::detail {

ApiError problem(int status, std::string type, std::string title, std::string detail,
                 std::string field, Json extra) {
  return ApiError{status,           std::move(type), std::move(title), std::move(detail),
                  std::move(field), std::move(extra)};
}

ApiError from_error(const core::Error& e) {
  const std::string field = e.problems.empty() ? "" : e.problems.front().path;
  Json problems = Json::array();
  for (const auto& p : e.problems) problems.push_back({{"path", p.path}, {"message", p.message}});
  Json extra{{"problems", problems}};
  if (e.code == core::ErrorCode::kDataLoss) platform::fail_stop(e.message);
  if (e.code == core::ErrorCode::kUnavailable) return storage_problem(e);
  // Another currency than the program's (not a missing or malformed one).
  if (!e.problems.empty() && e.problems.front().kind == core::ProblemKind::kWrongCurrency)
    return problem(422, "wrong-currency", "Wrong currency", e.message, field, extra);
  if (e.code == core::ErrorCode::kFailedPrecondition &&
      (field == "basket.redeem_points" || field == "reward"))
    return problem(422, "insufficient-points", "Not enough points or not eligible", e.message,
                   field, extra);
  if (e.code == core::ErrorCode::kFailedPrecondition)
    return problem(409, "not-allowed-now", "Not possible right now", e.message, field, extra);
  if (e.code == core::ErrorCode::kNotFound)
    return problem(404, "not-found", "Not found", e.message, field, extra);
  return problem(422, "invalid-request", "The request has problems", e.message, field, extra);
}

std::expected<std::string, ApiError> read_member_id(const Json& body) {
  if (!body.is_object())
    return std::unexpected(
        problem(400, "invalid-request", "Body must be a JSON object", "send a JSON object", ""));
  const auto it = body.find("member_id");
  if (it != body.end() && !it->is_string())
    return std::unexpected(problem(422, "invalid-request", "Member id is text",
                                   "member_id must be a string: the id the scan answered with",
                                   "member_id"));
  if (it == body.end() || it->get<std::string>().empty())
    return std::unexpected(problem(422, "invalid-request", "Member missing",
                                   "member_id is required: scan the member's code first",
                                   "member_id"));
  return it->get<std::string>();
}

std::expected<core::Request, ApiError> read_request(const Json& body, bool internal) {
  core::Request req;
  Json inner;
  std::string prefix;
  if (body.contains("basket")) {
    if (body.contains("event"))
      return std::unexpected(problem(422, "invalid-request", "Basket and event together",
                                     "send either a basket or an event, not both", "event"));
    for (auto it = body.begin(); it != body.end(); ++it)
      if (it.key() != "member_id" && it.key() != "basket")
        return std::unexpected(problem(
            422, "invalid-request", "Unknown field",
            "a sale has only member_id and basket; '" + it.key() + "' is not expected", it.key()));
    inner = body["basket"];
    prefix = "basket";
    if (inner.is_object() && inner.contains("event"))
      return std::unexpected(problem(422, "invalid-request", "Event inside a basket",
                                     "a basket is a sale; send store events as {\"member_id\", "
                                     "\"event\"} without a basket",
                                     "basket.event"));
  } else if (body.contains("event")) {
    inner = body;
    inner.erase("member_id");
    // Enrollment, birthdays and period ends are raised by loyaltyd itself
    // and by HQ's scheduled jobs; a POS must not award them.
    static const std::set<std::string> kStoreEvents = {"check_in", "survey",     "review",
                                                       "activity", "referral",   "top_up",
                                                       "redeem",   "defer_pass", "freeze_tier"};
    if (!internal &&
        (!inner["event"].is_string() || !kStoreEvents.contains(inner["event"].get<std::string>())))
      return std::unexpected(problem(
          422, "invalid-request", "Not a store event",
          "event must be one of check_in, survey, review, activity, referral, top_up, redeem, "
          "defer_pass, freeze_tier",
          "event"));
  } else {
    return std::unexpected(problem(422, "invalid-request", "Nothing to do",
                                   "send a basket (a sale) or an event (check_in, review, ...)",
                                   "basket"));
  }
  if (auto s = core::request_from_json(inner, req); !s) {
    auto e = s.error();
    for (auto& p : e.problems) p.path = core::join_path(prefix, p.path);
    if (!e.problems.empty()) e.message = e.problems.front().to_string();
    return std::unexpected(from_error(e));
  }
  return req;
}

std::string body_hash(const std::string& scope, const Json& body) {
  return platform::sha256_hex(scope + "\n" + body.dump());
}

std::string masked_phone(const std::string& phone) {
  if (phone.size() < 7) return phone.empty() ? "" : "****";
  return phone.substr(0, 3) + std::string(phone.size() - 7, '*') + phone.substr(phone.size() - 4);
}

}  // namespace loyalty::terminal::detail
