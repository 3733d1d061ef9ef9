#include "platform/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>

namespace loyalty::platform {

namespace beast = boost::beast;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout) {}

HttpClient::HttpClient(std::string host, std::uint16_t port,
                       std::shared_ptr<asio::ssl::context> tls, std::string server_name,
                       std::chrono::milliseconds timeout)
    : host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      tls_(std::move(tls)),
      server_name_(std::move(server_name)) {}

HttpClient::~HttpClient() = default;

void HttpClient::drop() {
  stream_.reset();
  tls_stream_.reset();
}

core::Status HttpClient::connect() {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host_, ec);
  if (ec) {
    // A host name: resolve it with the same deadline as everything else.
    tcp::resolver resolver(io_);
    tcp::resolver::results_type results;
    resolver.async_resolve(host_, std::to_string(port_),
                           [&](beast::error_code e, tcp::resolver::results_type r) {
                             ec = e;
                             results = std::move(r);
                           });
    io_.restart();
    if (io_.run_for(timeout_) == 0 || !io_.stopped()) {
      resolver.cancel();
      io_.run();
      return core::fail(core::ErrorCode::kUnavailable, "cannot resolve " + host_ + " in time");
    }
    if (ec || results.empty())
      return core::fail(core::ErrorCode::kUnavailable,
                        "cannot resolve " + host_ + ": " + ec.message());
    addr = results.begin()->endpoint().address();
  }
  drop();
  beast::tcp_stream* tcp_layer = nullptr;
  if (tls_) {
    tls_stream_.emplace(io_, *tls_);
    tcp_layer = &beast::get_lowest_layer(*tls_stream_);
  } else {
    stream_.emplace(io_);
    tcp_layer = &*stream_;
  }
  tcp_layer->expires_after(timeout_);
  tcp_layer->async_connect(tcp::endpoint(addr, port_), [&](beast::error_code e) { ec = e; });
  io_.restart();
  io_.run();
  if (!ec) tcp_layer->socket().set_option(tcp::no_delay(true), ec);
  if (!ec && tls_) {
    // SNI and host-name verification: the certificate must name the HQ we
    // meant to reach, not merely be signed by our CA.
    SSL_set_tlsext_host_name(tls_stream_->native_handle(), server_name_.c_str());
    tls_stream_->set_verify_callback(asio::ssl::host_name_verification(server_name_));
    tcp_layer->expires_after(timeout_);
    tls_stream_->async_handshake(asio::ssl::stream_base::client,
                                 [&](beast::error_code e) { ec = e; });
    io_.restart();
    io_.run();
    time_problem_.reset();
    if (ec) {
      const auto verify = SSL_get_verify_result(tls_stream_->native_handle());
      if (verify == X509_V_ERR_CERT_NOT_YET_VALID)
        time_problem_ =
            "the server's certificate is not valid yet by this machine's clock: "
            "the clock is probably behind by days";
      else if (verify == X509_V_ERR_CERT_HAS_EXPIRED)
        time_problem_ =
            "the server's certificate has expired by this machine's clock: the "
            "clock is probably ahead, or the certificate is out of date";
      if (time_problem_) {
        drop();
        return core::fail(
            core::ErrorCode::kUnavailable,
            "cannot connect to " + host_ + ":" + std::to_string(port_) + ": " + *time_problem_);
      }
    }
  }
  if (ec) {
    drop();
    return core::fail(
        core::ErrorCode::kUnavailable,
        "cannot connect to " + host_ + ":" + std::to_string(port_) + ": " + ec.message());
  }
  return {};
}

core::Result<ClientResponse> HttpClient::attempt(const http::request<http::string_body>& req) {
  return tls_ ? exchange(*tls_stream_, req) : exchange(*stream_, req);
}

template <typename S>
core::Result<ClientResponse> HttpClient::exchange(S& stream,
                                                  const http::request<http::string_body>& req) {
  beast::error_code ec;
  beast::get_lowest_layer(stream).expires_after(timeout_);
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  io_.restart();
  io_.run();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (!ec) {
    beast::get_lowest_layer(stream).expires_after(timeout_);
    http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    io_.restart();
    io_.run();
  }
  if (ec) {
    drop();
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
  if (!res.keep_alive()) drop();
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
  const bool reused = stream_.has_value() || tls_stream_.has_value();
  if (!reused)
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
