// loyalty-hq's HTTP APIs. The terminal API (HTTPS, mutual TLS) takes
// batches and serves the change feed; each request is checked against the
// terminal registry by its certificate's name and fingerprint. The admin
// API (loopback, bearer token) publishes programs, adjusts balances, runs
// expiry and reports.
//
// Thread-safety: handlers run on a small pool; HqLedger serialises.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <string>

#include "hq/ledger.h"
#include "platform/http_server.h"

namespace loyalty::hq {

inline constexpr const char* kHqProblemBase = "https://loyalty.invalid/problems/hq/";

class HqApi {
 public:
  HqApi(HqLedger& ledger, platform::SigningKey signing_key, std::string admin_token);
  ~HqApi();
  void terminal(platform::HttpRequest&& req, platform::Responder respond);
  void admin(platform::HttpRequest&& req, platform::Responder respond);
  // Whether a request head carries the admin token.
  bool admin_authorized(const platform::HttpRequest& req) const;
  void join() { pool_.join(); }

 private:
  platform::HttpResponse route_terminal(const platform::HttpRequest& req);
  platform::HttpResponse route_admin(const platform::HttpRequest& req);
  // An authenticated admin request with its parsed body; route_admin runs
  // writes sent with an Idempotency-Key through HqLedger::once.
  platform::HttpResponse admin_route(const platform::HttpRequest& req, const std::string& path,
                                     const Json& body);

  HqLedger& ledger_;
  platform::SigningKey key_;
  std::string admin_token_;
  boost::asio::thread_pool pool_{4};
};

}  // namespace loyalty::hq
