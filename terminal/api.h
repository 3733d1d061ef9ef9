// loyaltyd's local HTTP API (docs/api/terminal.yaml): routing, the bearer
// token, JSON parsing, Idempotency-Key, and bounded work dispatch: reads
// (quotes, lookups, status) run on the I/O thread, writes on a thread pool
// where they wait for their group commit.
//
// Thread-safety: handle() is called on the I/O thread; the in-flight count
// is atomic.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <string>

#include "platform/http_server.h"
#include "terminal/checkout.h"
#include "terminal/staff.h"

namespace loyalty::terminal {

inline constexpr const char* kProblemBase = "https://loyalty.invalid/problems/";

class LocalApi {
 public:
  LocalApi(Checkout& checkout, std::string token, std::string token_file, std::size_t max_inflight,
           std::size_t threads);
  ~LocalApi();
  void handle(platform::HttpRequest&& req, platform::Responder respond);
  // Whether a request head carries this terminal's token (its connection is
  // then served ahead of unauthenticated ones).
  bool authorized(const platform::HttpRequest& req) const;
  std::size_t inflight() const { return inflight_; }
  // Waits for the queued work to finish.
  void join();
  // What POST /v1/sync calls; unset (standalone) it answers 409.
  void set_sync_now(std::function<void()> f) { sync_now_ = std::move(f); }
  // Serves the counter page at /counter/ with these sign-ins (unset: 404).
  // `secure` marks its cookie Secure (the page served over TLS).
  void set_counter(CounterAuth* auth, bool secure) {
    counter_ = auth;
    secure_cookie_ = secure;
  }

 private:
  platform::HttpResponse route(const platform::HttpRequest& req);
  // /v1/...: `parts` from "v1" on; `staff` set for the counter page.
  platform::HttpResponse route_v1(const platform::HttpRequest& req, std::string_view target,
                                  const std::vector<std::string>& parts,
                                  const CounterSession* staff);
  // /counter/...: the page's files, its sign-in, and /counter/api/v1/...
  platform::HttpResponse route_counter(const platform::HttpRequest& req, std::string_view target,
                                       const std::vector<std::string>& parts);

  Checkout& checkout_;
  std::string token_;
  std::string token_file_;
  std::size_t max_inflight_;
  std::atomic<std::size_t> inflight_{0};
  boost::asio::thread_pool pool_;
  std::function<void()> sync_now_;
  CounterAuth* counter_ = nullptr;
  bool secure_cookie_ = false;
};

}  // namespace loyalty::terminal
