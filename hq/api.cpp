#include "hq/api.h"

#include <openssl/crypto.h>

#include <algorithm>

#include <boost/asio/post.hpp>

#include "hq/json_fast.h"
#include "platform/cli.h"
#include "platform/crypto.h"
#include "platform/log.h"

namespace loyalty::hq {

namespace http = platform::http;
using platform::HttpResponse;

namespace {

HttpResponse problem(int status, const std::string& type, const std::string& title,
                     const std::string& detail, const std::string& field = {},
                     const Json& extra = nullptr) {
  return platform::problem_response(kHqProblemBase, static_cast<http::status>(status), type, title,
                                    detail, field, extra);
}

HttpResponse from_error(const core::Error& e) {
  Json problems = Json::array();
  for (const auto& p : e.problems) problems.push_back({{"path", p.path}, {"message", p.message}});
  const std::string field = e.problems.empty() ? "" : e.problems.front().path;
  switch (e.code) {
    case core::ErrorCode::kInvalidArgument:
      return problem(422, "invalid", "Invalid request", e.message, field,
                     Json{{"problems", problems}});
    case core::ErrorCode::kNotFound: return problem(404, "not-found", "Not found", e.message);
    case core::ErrorCode::kConflict: return problem(409, "conflict", "Conflict", e.message);
    case core::ErrorCode::kFailedPrecondition: return problem(403, "refused", "Refused", e.message);
    case core::ErrorCode::kUnavailable:
      platform::log_error(e.message);
      return problem(503, "unavailable", "HQ storage unavailable",
                     "nothing was recorded; retry later");
    case core::ErrorCode::kInternal: break;
    case core::ErrorCode::kDataLoss: platform::fail_stop(e.message);
  }
  return problem(500, "internal", "Internal error", e.message);
}

HttpResponse reply(const core::Result<Json>& r) {
  if (!r) return from_error(r.error());
  return platform::json_response(http::status::ok, *r);
}

enum class Want { kString, kBool, kInteger };

// The first of `fields` that `body` has with another JSON type than the one
// wanted, as a 422 naming it; nullopt when every present one fits (missing
// ones are for the caller to require).
std::optional<HttpResponse> mistyped(const Json& body,
                                     std::initializer_list<std::pair<const char*, Want>> fields) {
  for (const auto& [name, want] : fields) {
    const auto it = body.find(name);
    if (it == body.end()) continue;
    const bool fits = want == Want::kString ? it->is_string()
                      : want == Want::kBool
                          ? it->is_boolean()
                          : it->is_number_integer() &&
                                (!it->is_number_unsigned() ||
                                 it->get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX));
    if (!fits)
      return problem(422, "invalid", "Wrong type",
                     std::string(name) + " must be " +
                         (want == Want::kString ? "a string"
                          : want == Want::kBool ? "true or false"
                                                : "a whole number"),
                     name);
  }
  return std::nullopt;
}

std::string path_of(const platform::HttpRequest& req) {
  std::string t(req.target());
  return t.substr(0, t.find('?'));
}

void dispatch(boost::asio::thread_pool& pool, platform::HttpRequest&& req,
              platform::Responder respond,
              std::function<HttpResponse(const platform::HttpRequest&)> route) {
  boost::asio::post(
      pool, [req = std::move(req), respond = std::move(respond), route = std::move(route)] {
        HttpResponse res;
        try {
          res = route(req);
        } catch (const core::DataLoss& e) {
          platform::fail_stop(e.what());
        } catch (const std::exception& e) {
          platform::log_error(std::string("request failed: ") + e.what());
          res = problem(500, "internal", "Internal error", "HQ hit a bug; nothing was recorded");
        }
        respond(std::move(res));
      });
}

}  // namespace

HqApi::HqApi(HqLedger& ledger, platform::SigningKey signing_key, std::string admin_token)
    : ledger_(ledger), key_(std::move(signing_key)), admin_token_(std::move(admin_token)) {}

HqApi::~HqApi() {
  pool_.join();
}

void HqApi::terminal(platform::HttpRequest&& req, platform::Responder respond) {
  dispatch(pool_, std::move(req), std::move(respond),
           [this](const platform::HttpRequest& r) { return route_terminal(r); });
}

void HqApi::admin(platform::HttpRequest&& req, platform::Responder respond) {
  dispatch(pool_, std::move(req), std::move(respond),
           [this](const platform::HttpRequest& r) { return route_admin(r); });
}

HttpResponse HqApi::route_terminal(const platform::HttpRequest& req) {
  // The TLS layer verified the certificate against HQ's CA; the registry
  // decides whether that terminal may still write.
  const std::string cn(req["X-Peer-CN"]);
  const std::string fingerprint(req["X-Peer-Fingerprint"]);
  const auto slash = cn.find('/');
  if (slash == std::string::npos)
    return problem(403, "terminal-identity", "Not a terminal certificate",
                   "the client certificate does not name a STORE/TERMINAL");
  const auto store = cn.substr(0, slash), terminal = cn.substr(slash + 1);
  if (auto ok = ledger_.check_terminal(store, terminal, fingerprint); !ok) {
    // HQ's database failing is not a refusal of the terminal.
    if (ok.error().code == core::ErrorCode::kUnavailable) return from_error(ok.error());
    platform::log_warn("refused terminal " + cn + ": " + ok.error().message);
    return problem(403, std::string(sync::kProblemTerminalRefused), "Terminal refused",
                   ok.error().message);
  }
  const auto path = path_of(req);
  if (req.method() == http::verb::post && path == "/v1/sync/batches") {
    auto batch = sync::batch_from_text(req.body(), parse_json);
    if (!batch) {  // not an object of records: the whole body tells what is wrong
      Json body = Json::parse(req.body(), nullptr, false);
      if (body.is_discarded())
        return problem(400, "malformed-json", "Body is not JSON", "the batch is not valid JSON");
      batch = sync::batch_from_json(std::move(body));
    }
    if (!*batch) return from_error(batch->error());
    auto answer = ledger_.ingest(store, terminal, **batch);
    if (!answer) return from_error(answer.error());
    return platform::json_response(http::status::ok, sync::to_json(*answer));
  }
  if (req.method() == http::verb::get && path == "/v1/sync/changes")
    return reply(ledger_.changes(platform::query_int(req.target(), "after", 0),
                                 platform::query_int(req.target(), "limit", 500), store));
  if (req.method() == http::verb::post && path == "/v1/sync/live-checks") {
    // A read, posted so that any member id travels as JSON, not in a URL.
    const Json body = Json::parse(req.body(), nullptr, false);
    if (body.is_discarded())
      return problem(400, "malformed-json", "Body is not JSON", "the check is not valid JSON");
    const auto id = body.is_object() ? body.find("member_id") : body.end();
    if (id == body.end() || !id->is_string() || id->get<std::string>().empty())
      return problem(422, "invalid", "Invalid request", "member_id (a string) is required",
                     "member_id");
    return reply(ledger_.live_member(id->get<std::string>(), store, terminal));
  }
  if (req.method() == http::verb::post && path == "/v1/sync/member-lookups") {
    // A member this store does not hold, by exactly one of its keys.
    const Json body = Json::parse(req.body(), nullptr, false);
    if (body.is_discarded())
      return problem(400, "malformed-json", "Body is not JSON", "the lookup is not valid JSON");
    const bool one_key = body.is_object() && body.size() == 1 && body.begin()->is_string() &&
                         !body.begin()->get<std::string>().empty();
    if (!one_key)
      return problem(422, "invalid", "Invalid request",
                     "send exactly one of member_id, card_number or phone, as a string");
    return reply(
        ledger_.lookup_member(body.begin().key(), body.begin()->get<std::string>(), store));
  }
  return problem(404, "not-found", "No such endpoint", path + " is not part of the sync API");
}

bool HqApi::admin_authorized(const platform::HttpRequest& req) const {
  const auto auth = req[http::field::authorization];
  const std::string want = "Bearer " + admin_token_;
  return auth.size() == want.size() && CRYPTO_memcmp(auth.data(), want.data(), want.size()) == 0;
}

HttpResponse HqApi::route_admin(const platform::HttpRequest& req) {
  if (!admin_authorized(req))
    return problem(401, "unauthorized", "Admin token required",
                   "send Authorization: Bearer <admin token> (terminal credentials do not work "
                   "here)");
  const auto path = path_of(req);
  const Json body = req.body().empty() ? Json::object() : Json::parse(req.body(), nullptr, false);
  if (body.is_discarded())
    return problem(400, "malformed-json", "Body is not JSON", "the request body is not valid JSON");
  if (!body.is_object())
    return problem(400, "malformed-json", "Body must be a JSON object",
                   "send the fields as one JSON object");
  if (req.method() != http::verb::post) return admin_route(req, path, body);
  const auto key = req["Idempotency-Key"];
  if (key.empty()) return admin_route(req, path, body);
  if (key.size() > 128 ||
      !std::all_of(key.begin(), key.end(), [](char ch) { return ch > 32 && ch < 127; }))
    return problem(400, "idempotency-key-invalid", "Idempotency-Key not usable",
                   "an Idempotency-Key is 1 to 128 printable characters without spaces",
                   "Idempotency-Key");
  // What the key stands for: a retry must be the same request.
  const auto fingerprint = platform::sha256_hex("POST " + path + "\n" + body.dump());
  HttpResponse fresh;
  auto answer = ledger_.once(std::string(key), fingerprint, [&] {
    fresh = admin_route(req, path, body);
    return HqLedger::Answer{static_cast<int>(fresh.result_int()), fresh.body()};
  });
  if (!answer) {
    if (answer.error().code == core::ErrorCode::kConflict)
      return problem(409, "idempotency-conflict", "Idempotency-Key already used",
                     answer.error().message, "Idempotency-Key");
    return from_error(answer.error());
  }
  if (!answer->replayed) return fresh;
  auto res =
      platform::json_response(static_cast<http::status>(answer->status), nullptr, answer->body);
  res.set("Idempotent-Replayed", "true");
  return res;
}

HttpResponse HqApi::admin_route(const platform::HttpRequest& req, const std::string& path,
                                const Json& body) {
  constexpr auto kStr = Want::kString;
  if (auto bad = mistyped(body, {{"reason", kStr},
                                 {"member_id", kStr},
                                 {"code", kStr},
                                 {"date", kStr},
                                 {"store_id", kStr},
                                 {"terminal_id", kStr},
                                 {"reward_id", kStr},
                                 {"delivery_id", kStr},
                                 {"blocked", Want::kBool},
                                 {"settle", Want::kBool},
                                 {"points", Want::kInteger},
                                 {"quantity", Want::kInteger},
                                 {"effective_from", Want::kInteger}}))
    return *bad;
  if (req.method() == http::verb::get && path == "/v1/admin/verify") return reply(ledger_.verify());
  if (req.method() == http::verb::get && path == "/v1/admin/flags")
    return reply(ledger_.flags(std::string(req.target()).find("open=true") != std::string::npos));
  if (req.method() == http::verb::post && path.starts_with("/v1/admin/flags/") &&
      path.ends_with("/resolve")) {
    const auto id_text = path.substr(16, path.size() - 16 - 8);
    const auto id = platform::whole_number(id_text);
    if (!id)
      return problem(404, "not-found", "No such flag", "a flag id is a number, not " + id_text);
    if (!body.contains("reason") || !body["reason"].is_string())
      return problem(422, "invalid", "Reason missing", "send {\"reason\": \"...\"}", "reason");
    return reply(ledger_.resolve_flag(*id, body["reason"].get<std::string>(), "admin-api",
                                      body.value("settle", false)));
  }
  if (req.method() == http::verb::get && path == "/v1/admin/terminals")
    return reply(ledger_.terminals());
  if (req.method() == http::verb::get && path == "/v1/admin/reports/liability")
    return reply(ledger_.liability());
  if (req.method() == http::verb::get && path == "/v1/admin/reports/sales") {
    const std::string t(req.target());
    const auto param = [&](const std::string& k) {
      const auto p = t.find(k + "=");
      return p == std::string::npos ? std::string() : t.substr(p + k.size() + 1, 10);
    };
    return reply(ledger_.report(param("from"), param("to")));
  }
  if (req.method() == http::verb::post && path == "/v1/admin/jobs") {
    if (!body.contains("date") || !body["date"].is_string())
      return problem(422, "invalid", "Date missing", "send {\"date\": \"YYYY-MM-DD\"}", "date");
    return reply(ledger_.run_jobs(body["date"].get<std::string>()));
  }
  if (req.method() == http::verb::get && path.starts_with("/v1/admin/members/"))
    return reply(ledger_.member(path.substr(18)));
  if (req.method() == http::verb::post && path == "/v1/admin/programs") {
    if (!body.contains("program") || !body["program"].is_object())
      return problem(422, "invalid", "Program missing",
                     "send {\"program\": {...}, "
                     "\"effective_from\": UNIX}",
                     "program");
    return reply(ledger_.publish_program(
        body["program"].dump(2), body.value("effective_from", std::int64_t{0}), key_, "admin-api"));
  }
  if (req.method() == http::verb::post && path == "/v1/admin/blocks") {
    if (!body.contains("member_id") || !body["member_id"].is_string())
      return problem(422, "invalid", "Member missing",
                     "send {\"member_id\", \"blocked\": true|false, \"reason\"}", "member_id");
    return reply(ledger_.set_blocked(body["member_id"].get<std::string>(),
                                     body.value("blocked", true), body.value("reason", ""),
                                     "admin-api"));
  }
  if (req.method() == http::verb::post && path == "/v1/admin/codes") {
    if (!body.contains("code") || !body["code"].is_string())
      return problem(422, "invalid", "Code missing",
                     "send {\"code\", \"blocked\": true|false, \"reason\"}", "code");
    return reply(ledger_.set_code_blocked(body["code"].get<std::string>(),
                                          body.value("blocked", true), body.value("reason", ""),
                                          "admin-api"));
  }
  if (req.method() == http::verb::post && path == "/v1/admin/member-attributes") {
    for (const char* k : {"member_id", "attribute", "reason"})
      if (!body.contains(k) || !body[k].is_string())
        return problem(422, "invalid", "Attribute incomplete",
                       "send {\"member_id\", \"attribute\", \"until\": DAY or null, \"reason\"}",
                       k);
    std::optional<core::LocalDays> until;
    if (body.contains("until") && body["until"].is_string())
      until = core::parse_local_date(body["until"].get<std::string>());
    if (!body.contains("until") || (!body["until"].is_null() && !until))
      return problem(422, "invalid", "Attribute incomplete",
                     "until must be a date YYYY-MM-DD, or null to remove the attribute", "until");
    return reply(ledger_.set_attribute(body["member_id"].get<std::string>(),
                                       body["attribute"].get<std::string>(), until,
                                       body["reason"].get<std::string>(), "admin-api"));
  }
  if (req.method() == http::verb::post && path == "/v1/admin/member-resets") {
    hq::HqLedger::MemberReset reset;
    const auto bad = [&](const char* field, const std::string& why) {
      return problem(422, "invalid", "Reset incomplete", why, field);
    };
    if (!body.contains("member_id") || !body["member_id"].is_string())
      return bad("member_id", "send {\"member_id\", \"tier\" and/or \"metrics\", \"reason\"}");
    if (!body.contains("reason") || !body["reason"].is_string())
      return bad("reason", "a reset needs a reason (a string) for the audit");
    if (body.contains("tier")) {
      if (!body["tier"].is_string()) return bad("tier", "must be a tier id");
      reset.tier = body["tier"].get<std::string>();
    }
    if (body.contains("until")) {
      reset.tier_until = body["until"].is_string()
                             ? core::parse_local_date(body["until"].get<std::string>())
                             : std::nullopt;
      if (!reset.tier_until) return bad("until", "must be a date YYYY-MM-DD");
    }
    if (body.contains("metrics")) {
      if (!body["metrics"].is_array()) return bad("metrics", "must be an array of metric names");
      for (const auto& m : body["metrics"]) {
        if (!m.is_string()) return bad("metrics", "must be an array of metric names");
        reset.metrics.push_back(m.get<std::string>());
      }
    }
    return reply(ledger_.reset_member(body["member_id"].get<std::string>(), reset,
                                      body["reason"].get<std::string>(), "admin-api"));
  }
  if (req.method() == http::verb::post && path == "/v1/admin/voucher-revocations") {
    for (const char* k : {"member_id", "code", "reason"})
      if (!body.contains(k) || !body[k].is_string())
        return problem(422, "invalid", "Revocation incomplete",
                       "send {\"member_id\", \"code\", \"reason\"}, all strings", k);
    return reply(ledger_.revoke_voucher(body["member_id"].get<std::string>(),
                                        body["code"].get<std::string>(),
                                        body["reason"].get<std::string>(), "admin-api"));
  }
  if (req.method() == http::verb::post && path == "/v1/admin/stock") {
    if (!body.contains("quantity") || !body["quantity"].is_number_integer())
      return problem(422, "invalid", "Allocation incomplete",
                     "send {\"store_id\", \"terminal_id\", \"reward_id\", \"quantity\"}",
                     "quantity");
    return reply(ledger_.allocate_stock(
        body.value("store_id", ""), body.value("terminal_id", ""), body.value("reward_id", ""),
        body["quantity"].get<std::int64_t>(), "admin-api", body.value("delivery_id", "")));
  }
  if (req.method() == http::verb::post && path == "/v1/admin/adjustments") {
    if (!body.contains("member_id") || !body.contains("points") ||
        !body["points"].is_number_integer())
      return problem(422, "invalid", "Adjustment incomplete",
                     "send {\"member_id\", \"points\", \"reason\"}", "points");
    return reply(ledger_.adjust(body.value("member_id", ""), body["points"].get<std::int64_t>(),
                                body.value("reason", ""), "admin-api"));
  }
  return problem(404, "not-found", "No such endpoint", path + " is not part of the admin API");
}

}  // namespace loyalty::hq
