// A small HTTP/1.1 client with a deadline on every operation (connect, write,
// read), keeping its connection alive between requests. Used by loyaltyctl,
// the tests and the benchmarks to talk to loyaltyd on loopback.
//
// Thread-safety: one client per thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "core/result.h"

namespace loyalty::platform {

namespace http = boost::beast::http;

struct ClientResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

class HttpClient {
 public:
  HttpClient(std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // HTTPS: verifies the server's certificate against `tls`'s CA and its
  // name against `server_name` (sent as SNI too); presents the context's
  // client certificate, if any.
  HttpClient(std::string host, std::uint16_t port, std::shared_ptr<boost::asio::ssl::context> tls,
             std::string server_name, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();

  // Fails with kUnavailable when the server cannot be reached or does not
  // answer in time.
  [[nodiscard]] core::Result<ClientResponse> request(
      http::verb method, const std::string& target, const std::string& body = {},
      const std::map<std::string, std::string>& headers = {});
  // Set when the last TLS handshake failed because the server's certificate
  // is not yet valid or has expired by this machine's clock: almost always a
  // clock that is wrong by days, which the caller should report as such.
  const std::optional<std::string>& certificate_time_problem() const { return time_problem_; }

 private:
  core::Result<ClientResponse> attempt(const http::request<http::string_body>& req);
  core::Status connect();

  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  template <typename S>
  core::Result<ClientResponse> exchange(S& stream, const http::request<http::string_body>& req);
  void drop();

  boost::asio::io_context io_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::string server_name_;
  std::optional<boost::beast::tcp_stream> stream_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_stream_;
  std::optional<std::string> time_problem_;
};

}  // namespace loyalty::platform
