// An async HTTP/1.1 server on Boost.Beast: one session per connection kept
// alive by shared_from_this, a deadline before every read and write, a body
// limit, a deadline on each handler's answer, and connection slots that an
// unauthenticated or idle client cannot hold against an authenticated one
// (platform/admission.h). The handler is called on the I/O thread and may
// answer later from any thread through its Responder.
//
// Thread-safety: run the io_context on one thread; stop() must be called on
// that thread (post it there).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/json_reader.h"
#include "core/result.h"
#include "platform/admission.h"

namespace loyalty::platform {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest&&, Responder)>;

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0 picks a free port
  std::size_t body_limit = 256 * 1024;
  // An authenticated client's wait for its next request (keep-alive) and
  // whole request; any request's body.
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds write_timeout{10'000};
  std::chrono::milliseconds handler_timeout{5'000};
  // An unauthenticated connection's TLS handshake plus request head, from
  // the moment it is accepted (nginx's client_header_timeout, Envoy's
  // request_headers_timeout): a client that drips bytes is cut off here.
  std::chrono::milliseconds head_timeout{5'000};
  AdmissionLimits admission;
  std::string problem_base = "urn:loyalty:problem:";
  // Whether a request head carries credentials (a bearer token, a session):
  // its connection then moves to the trusted slots. Asked before the body is
  // read; the handler still checks the request itself.
  std::function<bool(const HttpRequest&)> authorize;
  // HTTPS when set; the handler then finds the verified client certificate's
  // common name and SHA-256 fingerprint in X-Peer-CN and X-Peer-Fingerprint.
  // A connection with a verified client certificate is trusted from its
  // handshake on.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

// RFC 9457 problem details. `type` is a stable slug appended to the server's
// problem_base; `field` names the offending input, if any.
HttpResponse problem_response(const std::string& base, http::status status, const std::string& type,
                              const std::string& title, const std::string& detail,
                              const std::string& field = {}, const core::Json& extra = nullptr);
// `text`, when not empty, is `body` already serialised.
HttpResponse json_response(http::status status, const core::Json& body,
                           const std::string& text = {});

// The integer query parameter `name` of a request target ("/x?limit=5"),
// clamped to `max`; `dflt` when absent or not a number.
std::int64_t query_int(std::string_view target, std::string_view name, std::int64_t dflt,
                       std::int64_t max = std::int64_t{1} << 60);

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, Handler handler);
  ~HttpServer();
  [[nodiscard]] core::Status start();
  std::uint16_t port() const { return port_; }
  // Stops accepting; requests that arrive later on kept-alive connections
  // are answered 503 shutting-down and their connections closed.
  void stop();
  std::size_t open_connections() const { return *open_; }
  AdmissionCounts admission() const { return admission_->counts(); }

 private:
  void do_accept();
  // After a failed accept (out of file descriptors): wait, then go on.
  void accept_later();

  boost::asio::io_context& io_;
  HttpServerOptions options_;
  Handler handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<Admission> admission_;
  std::unique_ptr<boost::asio::steady_timer> accept_pause_;
  std::shared_ptr<std::atomic<std::size_t>> open_;
  std::shared_ptr<std::atomic<bool>> stopping_;
  std::uint16_t port_ = 0;
};

}  // namespace loyalty::platform
