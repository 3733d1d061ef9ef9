#include "platform/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>

namespace loyalty::platform {

namespace beast = boost::beast;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout) {}

HttpClient::~HttpClient() = default;

core::Status HttpClient::connect() {
  beast::error_code ec;
  const auto addr = asio::ip::make_address(host_, ec);
  if (ec) return core::invalid("host", "not an IP address: " + host_);
  stream_.emplace(io_);
  stream_->expires_after(timeout_);
  stream_->async_connect(tcp::endpoint(addr, port_), [&](beast::error_code e) { ec = e; });
  io_.restart();
  io_.run();
  if (ec) {
    stream_.reset();
    return core::fail(
        core::ErrorCode::kUnavailable,
        "cannot connect to " + host_ + ":" + std::to_string(port_) + ": " + ec.message());
  }
  return {};
}

core::Result<ClientResponse> HttpClient::attempt(const http::request<http::string_body>& req) {
  beast::error_code ec;
  stream_->expires_after(timeout_);
  http::async_write(*stream_, req, [&](beast::error_code e, std::size_t) { ec = e; });
  io_.restart();
  io_.run();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (!ec) {
    stream_->expires_after(timeout_);
    http::async_read(*stream_, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    io_.restart();
    io_.run();
  }
  if (ec) {
    stream_.reset();
    return core::fail(core::ErrorCode::kUnavailable,
                      ec == beast::error::timeout ? "no answer in time" : ec.message());
  }
  auto res = parser.release();
  ClientResponse out;
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers[name] = std::string(f.value());
  }
  if (!res.keep_alive()) stream_.reset();
  return out;
}

core::Result<ClientResponse> HttpClient::request(
    http::verb method, const std::string& target, const std::string& body,
    const std::map<std::string, std::string>& headers) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "loyalty-client");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == http::verb::post || method == http::verb::put) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  const bool reused = stream_.has_value();
  if (!stream_)
    if (auto s = connect(); !s) return std::unexpected(s.error());
  auto res = attempt(req);
  // A kept-alive connection the server has since closed fails on first use;
  // try once on a fresh one. Only when reused, so a real failure is not sent
  // twice.
  if (!res && reused) {
    if (auto s = connect(); !s) return std::unexpected(s.error());
    res = attempt(req);
  }
  return res;
}

}  // namespace loyalty::platform
