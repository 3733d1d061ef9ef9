// A small HTTP/1.1 client with a deadline on every operation (connect, write,
// read), keeping its connection alive between requests. Used by loyaltyctl,
// the tests and the benchmarks to talk to loyaltyd on loopback.
//
// Thread-safety: one client per thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
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
  ~HttpClient();

  // Fails with kUnavailable when the server cannot be reached or does not
  // answer in time.
  [[nodiscard]] core::Result<ClientResponse> request(
      http::verb method, const std::string& target, const std::string& body = {},
      const std::map<std::string, std::string>& headers = {});

 private:
  core::Result<ClientResponse> attempt(const http::request<http::string_body>& req);
  core::Status connect();

  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
};

}  // namespace loyalty::platform
