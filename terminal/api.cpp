#include "terminal/api.h"

#include <openssl/crypto.h>
#include <boost/asio/post.hpp>

#include "platform/log.h"

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
  const auto auth = req[http::field::authorization];
  return auth.size() >= 7 && auth.substr(0, 7) == "Bearer " &&
         token_matches(std::string_view(auth.data() + 7, auth.size() - 7), token_);
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
  const auto method = req.method();
  const auto is = [&](http::verb v, std::initializer_list<const char*> path) {
    if (method != v || parts.size() != path.size()) return false;
    std::size_t i = 0;
    for (const char* p : path) {
      if (std::string_view(p) != "*" && parts[i] != p) return false;
      ++i;
    }
    return true;
  };
  if (is(http::verb::get, {"v1", "health"}))
    return platform::json_response(http::status::ok, Json{{"status", "ok"}});

  if (!authorized(req)) {
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
  if (is(http::verb::post, {"v1", "members"})) return reply_of(checkout_.enroll(body, key));
  if (is(http::verb::post, {"v1", "transactions"})) return reply_of(checkout_.commit(body, key));
  if (is(http::verb::post, {"v1", "returns"})) return reply_of(checkout_.return_lines(body, key));
  if (is(http::verb::post, {"v1", "transactions", "*", "void"}))
    return reply_of(checkout_.void_transaction(parts[2], key));
  // POST /v1/redeem: a catalog reward at the counter.
  if (!body.is_object())
    return problem_of(simple(400, "invalid-request", "Body must be a JSON object",
                             "send {\"member_id\", \"reward\"}", ""));
  if (!body.contains("reward"))
    return problem_of(simple(422, "invalid-request", "Reward missing",
                             "send {\"member_id\", \"reward\"}", "reward"));
  Json event = body;
  event["event"] = "redeem";
  return reply_of(checkout_.commit(event, key));
}

}  // namespace loyalty::terminal
