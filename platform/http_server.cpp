#include "platform/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include "platform/log.h"

namespace loyalty::platform {

namespace beast = boost::beast;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

HttpResponse problem_response(const std::string& base, http::status status, const std::string& type,
                              const std::string& title, const std::string& detail,
                              const std::string& field, const core::Json& extra) {
  core::Json j{{"type", base + type},
               {"title", title},
               {"status", static_cast<int>(status)},
               {"detail", detail}};
  if (!field.empty()) j["field"] = field;
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/problem+json");
  res.body() = j.dump();
  res.prepare_payload();
  return res;
}

HttpResponse json_response(http::status status, const core::Json& body, const std::string& text) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = text.empty() ? body.dump() : text;
  res.prepare_payload();
  return res;
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServerOptions& options, const Handler& handler,
          std::shared_ptr<std::atomic<std::size_t>> open,
          std::shared_ptr<std::atomic<bool>> stopping)
      : stream_(std::move(socket)),
        options_(options),
        handler_(handler),
        open_(std::move(open)),
        stopping_(std::move(stopping)),
        timer_(stream_.get_executor()) {}
  ~Session() { --*open_; }

  void start(bool refuse) {
    if (refuse) {
      // Over the connection cap: answer at once and close, so the client
      // gets a reason rather than a hang.
      keep_alive_ = false;
      send(problem_response(options_.problem_base, http::status::service_unavailable, "busy",
                            "Too many connections",
                            "the daemon is at its connection limit; retry in a moment"));
      return;
    }
    do_read();
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    stream_.expires_after(options_.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::eof)
      return close();
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return send(problem_response(
          options_.problem_base, http::status::payload_too_large, "body-too-large",
          "Request body too large",
          "the body is over the limit of " + std::to_string(options_.body_limit) + " bytes"));
    }
    if (ec) {
      keep_alive_ = false;
      return send(problem_response(options_.problem_base, http::status::bad_request,
                                   "malformed-http", "Malformed HTTP request", ec.message()));
    }
    if (*stopping_) {
      keep_alive_ = false;
      return send(problem_response(options_.problem_base, http::status::service_unavailable,
                                   "shutting-down", "Shutting down",
                                   "the daemon is stopping; retry in a few seconds"));
    }
    HttpRequest req = parser_->release();
    keep_alive_ = req.keep_alive();
    answered_ = std::make_shared<std::atomic<bool>>(false);
    auto answered = answered_;
    timer_.expires_after(options_.handler_timeout);
    timer_.async_wait([self = shared_from_this(), answered](beast::error_code tec) {
      if (tec || answered->exchange(true)) return;
      self->keep_alive_ = false;
      self->send(problem_response(
          self->options_.problem_base, http::status::service_unavailable, "timeout",
          "The operation took too long",
          "no answer within the deadline; if this was a commit, retry with the same "
          "Idempotency-Key to learn its outcome"));
    });
    auto executor = stream_.get_executor();
    Responder respond = [self = shared_from_this(), answered, executor](HttpResponse res) {
      if (answered->exchange(true)) return;
      asio::post(executor, [self, res = std::move(res)]() mutable {
        self->timer_.cancel();
        self->send(std::move(res));
      });
    };
    try {
      handler_(std::move(req), std::move(respond));
    } catch (const std::exception& e) {
      log_error(std::string("handler threw: ") + e.what());
      if (!answered->exchange(true))
        send(problem_response(options_.problem_base, http::status::internal_server_error,
                              "internal", "Internal error", "the daemon hit a bug; see its log"));
    }
  }

  void send(HttpResponse res) {
    res.keep_alive(keep_alive_);
    res_ = std::make_shared<HttpResponse>(std::move(res));
    stream_.expires_after(options_.write_timeout);
    http::async_write(stream_, *res_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->res_.reset();
                        if (ec || !self->keep_alive_) return self->close();
                        self->do_read();
                      });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  const HttpServerOptions& options_;
  const Handler& handler_;
  std::shared_ptr<std::atomic<std::size_t>> open_;
  std::shared_ptr<std::atomic<bool>> stopping_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpResponse> res_;
  std::shared_ptr<std::atomic<bool>> answered_;
  bool keep_alive_ = true;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler)
    : io_(io),
      options_(std::move(options)),
      handler_(std::move(handler)),
      acceptor_(io),
      open_(std::make_shared<std::atomic<std::size_t>>(0)),
      stopping_(std::make_shared<std::atomic<bool>>(false)) {}

HttpServer::~HttpServer() = default;

core::Status HttpServer::start() {
  beast::error_code ec;
  const auto addr = asio::ip::make_address(options_.address, ec);
  if (ec) return core::invalid("listen.address", "not an IP address: " + options_.address);
  const tcp::endpoint ep(addr, options_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return core::fail(core::ErrorCode::kUnavailable, "cannot listen on " + options_.address + ":" +
                                                         std::to_string(options_.port) + ": " +
                                                         ec.message());
  port_ = acceptor_.local_endpoint().port();
  do_accept();
  return {};
}

void HttpServer::stop() {
  *stopping_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
}

void HttpServer::do_accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      const bool refuse = ++*open_ > options_.max_connections;
      // Answers are written as soon as they are ready; Nagle's algorithm
      // would hold a short response back waiting for an ACK.
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), options_, handler_, open_, stopping_)
          ->start(refuse);
    }
    if (acceptor_.is_open()) do_accept();
  });
}

}  // namespace loyalty::platform
