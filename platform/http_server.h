// An async HTTP/1.1 server on Boost.Beast: one session per connection kept
// alive by shared_from_this, a deadline before every read and write, a body
// limit, a cap on open connections and a deadline on each handler's answer.
// The handler is called on the I/O thread and may answer later from any
// thread through its Responder.
//
// Thread-safety: run the io_context on one thread; stop() must be called on
// that thread (post it there).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/json_reader.h"
#include "core/result.h"

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
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds write_timeout{10'000};
  std::chrono::milliseconds handler_timeout{5'000};
  std::size_t max_connections = 64;
  std::string problem_base = "urn:loyalty:problem:";
  // HTTPS when set; the handler then finds the verified client certificate's
  // common name and SHA-256 fingerprint in X-Peer-CN and X-Peer-Fingerprint.
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

 private:
  void do_accept();

  boost::asio::io_context& io_;
  HttpServerOptions options_;
  Handler handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<std::atomic<std::size_t>> open_;
  std::shared_ptr<std::atomic<bool>> stopping_;
  std::uint16_t port_ = 0;
};

}  // namespace loyalty::platform
