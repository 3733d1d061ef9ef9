#include "terminal/api.h"

#include <openssl/crypto.h>
#include <boost/asio/post.hpp>

#include "platform/log.h"
#include "terminal/counter_assets.h"

namespace loyalty::terminal {

namespace http = platform::http;
using platform::HttpResponse;

namespace {

HttpResponse problem_of(const ApiError& e) {
  return platform::problem_response(kProblemBase, static_cast<http::status>(e.status), e.type,
                                    e.title, e.detail, e.field, e.extra);
}

HttpResponse reply_of(const ApiResult& r) {
  if (!r) return problem_of(r.error());
  auto res = platform::json_response(static_cast<http::status>(r->status), r->body, r->text);
  if (r->replayed) res.set("Idempotent-Replayed", "true");
  return res;
}

ApiError simple(int status, std::string type, std::string title, std::string detail,
                std::string field = {}) {
  return ApiError{status,           std::move(type), std::move(title), std::move(detail),
                  std::move(field), nullptr};
}

bool token_matches(std::string_view given, const std::string& token) {
  return given.size() == token.size() &&
         CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

std::vector<std::string> split_path(std::string_view target) {
  const auto q = target.find('?');
  if (q != std::string_view::npos) target = target.substr(0, q);
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < target.size()) {
    const auto j = target.find('/', i);
    const auto end = j == std::string_view::npos ? target.size() : j;
    if (end > i) parts.emplace_back(target.substr(i, end - i));
    i = end + 1;
  }
  return parts;
}

bool token_ok(const platform::HttpRequest& req, const std::string& token) {
  const auto auth = req[http::field::authorization];
  return auth.size() >= 7 && auth.substr(0, 7) == "Bearer " &&
         token_matches(std::string_view(auth.data() + 7, auth.size() - 7), token);
}

// Whether a request is `method` on `path` ("*" matches any one segment).
struct Matcher {
  http::verb method;
  const std::vector<std::string>& parts;
  bool operator()(http::verb v, std::initializer_list<const char*> path) const {
    if (method != v || parts.size() != path.size()) return false;
    std::size_t i = 0;
    for (const char* p : path) {
      if (std::string_view(p) != "*" && parts[i] != p) return false;
      ++i;
    }
    return true;
  }
};

bool key_ok(std::string_view k) {
  return !k.empty() && k.size() <= 128 &&
         std::all_of(k.begin(), k.end(), [](char c) { return c > 32 && c < 127; });
}

}  // namespace

LocalApi::LocalApi(Checkout& checkout, std::string token, std::string token_file,
                   std::size_t max_inflight, std::size_t threads)
    : checkout_(checkout),
      token_(std::move(token)),
      token_file_(std::move(token_file)),
      max_inflight_(max_inflight),
      pool_(threads) {}

LocalApi::~LocalApi() {
  pool_.join();
}

void LocalApi::join() {
  pool_.join();
}

bool LocalApi::authorized(const platform::HttpRequest& req) const {
  return token_ok(req, token_) ||
         (counter_ != nullptr && counter_->has_session(req[http::field::cookie]));
}

void LocalApi::handle(platform::HttpRequest&& req, platform::Responder respond) {
  if (++inflight_ > max_inflight_) {
    --inflight_;
    return respond(problem_of(
        simple(503, "busy", "Terminal busy", "too many requests in progress; retry in a moment")));
  }
  auto work = [this, req = std::move(req), respond = std::move(respond)]() {
    HttpResponse res;
    try {
      res = route(req);
    } catch (const core::DataLoss& e) {
      platform::fail_stop(e.what());
    } catch (const std::exception& e) {
      platform::log_error(std::string("request failed: ") + e.what());
      res = problem_of(simple(500, "internal", "Internal error",
                              "the daemon hit a bug; nothing was recorded; see its log"));
    }
    --inflight_;
    respond(std::move(res));
  };
  // Reads (quotes, lookups, status) take a fraction of a millisecond and run
  // right here: handing them to another thread would cost more than they do.
  // Writes wait for fsync, so they go to the pool and never hold up the
  // connections of other lanes.
  const bool read_only = req.method() == http::verb::get || req.target() == "/v1/quote";
  if (read_only) return work();
  boost::asio::post(pool_, std::move(work));
}

HttpResponse LocalApi::route(const platform::HttpRequest& req) {
  const auto target = std::string_view(req.target().data(), req.target().size());
  const auto parts = split_path(target);
  const Matcher is{req.method(), parts};
  if (!parts.empty() && parts[0] == "counter") return route_counter(req, target, parts);
  if (is(http::verb::get, {"v1", "health"}))
    return platform::json_response(http::status::ok, Json{{"status", "ok"}});

  if (!token_ok(req, token_)) {
    platform::log_warn("refused a request without the right token: " + std::string(target));
    return problem_of(simple(401, "unauthorized", "Missing or wrong token",
                             "send Authorization: Bearer <token>; the token is in " + token_file_));
  }
  if (is(http::verb::get, {"metrics"})) {
    HttpResponse res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = checkout_.metrics_text();
    res.prepare_payload();
    return res;
  }
  return route_v1(req, target, parts, nullptr);
}

HttpResponse LocalApi::route_v1(const platform::HttpRequest& req, std::string_view target,
                                const std::vector<std::string>& parts,
                                const CounterSession* staff) {
  const Matcher is{req.method(), parts};
  // At the counter page, taking goods or money back and setting stock
  // are a supervisor's.
  if (staff != nullptr && !staff->supervisor() &&
      (is(http::verb::post, {"v1", "returns"}) ||
       is(http::verb::post, {"v1", "transactions", "*", "void"}) ||
       is(http::verb::put, {"v1", "rewards", "*", "stock"})))
    return problem_of(simple(403, "supervisor-only", "A supervisor's task",
                             "returns, voids and stock counts need a supervisor to sign in"));
  if (is(http::verb::get, {"v1", "status"})) {
    auto st = checkout_.status();
    if (st.contains("error"))
      return problem_of(
          simple(503, "storage-failure", "Status unavailable",
                 "the terminal's database could not be read: " + st["error"].get<std::string>()));
    return platform::json_response(http::status::ok, st);
  }
  if (is(http::verb::post, {"v1", "sync"})) {
    if (!sync_now_)
      return problem_of(simple(409, "standalone", "No HQ to sync with",
                               "this terminal runs standalone (no hq.bundle in its config)"));
    sync_now_();
    return platform::json_response(http::status::accepted, Json{{"sync", "requested"}});
  }
  if (is(http::verb::get, {"v1", "outbox"}))
    return reply_of(checkout_.outbox(platform::query_int(target, "limit", 100, 10000)));
  if (is(http::verb::get, {"v1", "rewards"})) return reply_of(checkout_.rewards());
  if (is(http::verb::get, {"v1", "program"})) return reply_of(checkout_.program_summary());
  if (is(http::verb::get, {"v1", "transactions", "*"}))
    return reply_of(checkout_.transaction(parts[2]));
  if (is(http::verb::get, {"v1", "members", "*"})) return reply_of(checkout_.member(parts[2]));

  const bool known_post =
      is(http::verb::post, {"v1", "members", "scan"}) || is(http::verb::post, {"v1", "members"}) ||
      is(http::verb::post, {"v1", "quote"}) || is(http::verb::post, {"v1", "transactions"}) ||
      is(http::verb::post, {"v1", "transactions", "*", "void"}) ||
      is(http::verb::post, {"v1", "returns"}) || is(http::verb::post, {"v1", "redeem"}) ||
      is(http::verb::put, {"v1", "rewards", "*", "stock"});
  if (!known_post)
    return problem_of(simple(404, "not-found", "No such endpoint",
                             std::string(req.method_string()) + " " + std::string(target) +
                                 " is not part of the API; see docs/api/terminal.yaml"));
  Json body = Json::parse(req.body(), nullptr, false);
  if (body.is_discarded() &&
      !(is(http::verb::post, {"v1", "transactions", "*", "void"}) && req.body().empty()))
    return problem_of(simple(400, "malformed-json", "Body is not JSON",
                             "the request body is not valid JSON; nothing was recorded"));
  if (is(http::verb::post, {"v1", "members", "scan"})) return reply_of(checkout_.scan(body));
  if (is(http::verb::post, {"v1", "quote"})) return reply_of(checkout_.quote(body));
  if (is(http::verb::put, {"v1", "rewards", "*", "stock"}))
    return reply_of(checkout_.set_stock(parts[2], body));

  // Everything below writes: it needs the POS's Idempotency-Key.
  const auto key_field = req["Idempotency-Key"];
  const std::string key(key_field.data(), key_field.size());
  if (!key_ok(key))
    return problem_of(simple(400, "idempotency-key-missing", "Idempotency-Key needed",
                             "send an Idempotency-Key header (1 to 128 printable characters, "
                             "unique per sale) so a retry cannot count twice",
                             "Idempotency-Key"));
  // Who makes it: the signed-in staff at the counter page, or the cashier
  // the POS names.
  std::string who = staff != nullptr ? staff->staff_id : std::string();
  if (staff == nullptr) {
    const auto cashier = req["X-Cashier"];
    who.assign(cashier.data(), cashier.size());
    if (!who.empty() && !core::valid_id(who))
      return problem_of(simple(400, "invalid-request", "X-Cashier is not an id",
                               "X-Cashier names the cashier: 1 to 64 letters, digits, '-', '_' "
                               "or '.'; nothing was recorded",
                               "X-Cashier"));
  }
  if (is(http::verb::post, {"v1", "members"})) return reply_of(checkout_.enroll(body, key, who));
  if (is(http::verb::post, {"v1", "transactions"}))
    return reply_of(checkout_.commit(body, key, who));
  if (is(http::verb::post, {"v1", "returns"}))
    return reply_of(checkout_.return_lines(body, key, who));
  if (is(http::verb::post, {"v1", "transactions", "*", "void"}))
    return reply_of(checkout_.void_transaction(parts[2], key, who));
  // POST /v1/redeem: a catalog reward at the counter.
  if (!body.is_object())
    return problem_of(simple(400, "invalid-request", "Body must be a JSON object",
                             "send {\"member_id\", \"reward\"}", ""));
  if (!body.contains("reward"))
    return problem_of(simple(422, "invalid-request", "Reward missing",
                             "send {\"member_id\", \"reward\"}", "reward"));
  Json event = body;
  event["event"] = "redeem";
  return reply_of(checkout_.commit(event, key, who));
}

namespace {

std::string_view content_type_of(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// The page's files: each with an ETag, so a kiosk reloading the page gets
// 304s, and headers that keep anything but this daemon's own files out.
HttpResponse asset_response(const platform::HttpRequest& req, const Asset& a) {
  const bool same = req[http::field::if_none_match] == a.etag;
  HttpResponse res{same ? http::status::not_modified : http::status::ok, 11};
  res.set(http::field::content_type, content_type_of(a.name));
  res.set(http::field::etag, a.etag);
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Content-Security-Policy",
          "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
          "frame-ancestors 'none'; form-action 'self'");
  if (!same && req.method() != http::verb::head) res.body() = std::string(a.body);
  res.prepare_payload();
  return res;
}

std::string session_cookie(const std::string& value, bool secure, bool clear) {
  return std::string(CounterAuth::kCookie) + "=" + value +
         "; Path=/counter; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "") +
         (clear ? "; Max-Age=0" : "");
}

Json session_json(const CounterSession& s) {
  return Json{{"staff", {{"staff_id", s.staff_id}, {"name", s.name}, {"role", s.role}}},
              {"csrf", s.csrf}};
}

HttpResponse refusal_response(const SignInRefusal& r) {
  using Why = SignInRefusal::Why;
  switch (r.why) {
    case Why::kWrong:
      return problem_of(ApiError{401, "sign-in-failed", "Wrong staff number or PIN",
                                 "check the staff number and PIN and try again", "pin",
                                 Json{{"failures_left", r.failures_left}}});
    case Why::kLocked:
    case Why::kThrottled: {
      auto res = problem_of(ApiError{
          429, r.why == Why::kLocked ? "staff-locked" : "sign-in-paused",
          r.why == Why::kLocked ? "Locked after wrong PINs" : "Too many wrong sign-ins",
          r.why == Why::kLocked
              ? "too many wrong PINs for this staff number; try again later or ask HQ for a new PIN"
              : "too many wrong sign-ins at this terminal; wait before trying again",
          "", Json{{"retry_after_s", r.retry_after_s}}});
      res.set(http::field::retry_after, std::to_string(r.retry_after_s));
      return res;
    }
    case Why::kDisabled:
      return problem_of(simple(403, "staff-disabled", "Account disabled",
                               "HQ disabled this staff account; ask HQ to enable it"));
    case Why::kStorage: break;
  }
  return problem_of(simple(503, "storage-failure", "Sign-in unavailable",
                           "the terminal's database could not be read: " + r.detail));
}

}  // namespace

HttpResponse LocalApi::route_counter(const platform::HttpRequest& req, std::string_view target,
                                     const std::vector<std::string>& parts) {
  if (counter_ == nullptr)
    return problem_of(simple(404, "not-found", "No counter page",
                             "this loyaltyd serves no counter page (counter.enabled = false)"));
  const Matcher is{req.method(), parts};
  if (parts.size() >= 2 && parts[1] == "api") {
    const auto cookie = req[http::field::cookie];
    if (is(http::verb::post, {"counter", "api", "session"})) {
      const Json body = Json::parse(req.body(), nullptr, false);
      if (!body.is_object() || !body.contains("staff_id") || !body["staff_id"].is_string() ||
          !body.contains("pin") || !body["pin"].is_string())
        return problem_of(simple(400, "invalid-request", "Staff number and PIN needed",
                                 "send {\"staff_id\", \"pin\"} as strings"));
      auto s =
          counter_->sign_in(body["staff_id"].get<std::string>(), body["pin"].get<std::string>());
      if (!s) return refusal_response(s.error());
      auto res = platform::json_response(http::status::created, session_json(*s));
      res.set(http::field::set_cookie, session_cookie(s->id, secure_cookie_, false));
      res.set(http::field::cache_control, "no-store");
      return res;
    }
    const auto session = counter_->session(cookie);
    if (!session)
      return problem_of(simple(401, "signed-out", "Signed out",
                               "sign in with your staff number and PIN (a session ends after "
                               "a while unused)"));
    // Writes carry the token the page got at sign-in: another site's page
    // cannot make the browser send it (SameSite=Strict keeps the cookie
    // home too).
    const auto csrf = req["X-CSRF-Token"];
    if (req.method() != http::verb::get &&
        !token_matches(std::string_view(csrf.data(), csrf.size()), session->csrf))
      return problem_of(
          simple(403, "csrf", "Page out of date", "reload the counter page and try again"));
    if (is(http::verb::get, {"counter", "api", "session"}))
      return platform::json_response(http::status::ok, session_json(*session));
    if (is(http::verb::delete_, {"counter", "api", "session"})) {
      counter_->sign_out(cookie);
      HttpResponse res{http::status::no_content, 11};
      res.set(http::field::set_cookie, session_cookie("", secure_cookie_, true));
      return res;
    }
    const std::vector<std::string> rest(parts.begin() + 2, parts.end());
    if (rest.empty() || rest[0] != "v1")
      return problem_of(simple(404, "not-found", "No such endpoint",
                               std::string(target) + " is not part of the counter's API"));
    return route_v1(req, target.substr(std::string_view("/counter/api").size()), rest, &*session);
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    return problem_of(simple(405, "method-not-allowed", "Not allowed",
                             "the counter page's files are read with GET"));
  if (parts.size() == 1 && !target.starts_with("/counter/")) {
    HttpResponse res{http::status::permanent_redirect, 11};
    res.set(http::field::location, "/counter/");
    return res;
  }
  const std::string name = parts.size() == 1 ? "index.html" : parts.size() == 2 ? parts[1] : "";
  for (const auto& a : counter_assets())
    if (a.name == name) return asset_response(req, a);
  return problem_of(simple(404, "not-found", "No such page",
                           std::string(target) + " is not part of the counter page"));
}

}  // namespace loyalty::terminal
