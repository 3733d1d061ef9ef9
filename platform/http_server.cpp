#include "platform/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include <boost/beast/ssl.hpp>

#include "platform/crypto.h"
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

std::int64_t query_int(std::string_view target, std::string_view name, std::int64_t dflt,
                       std::int64_t max) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return dflt;
  const std::string needle = std::string(name) + "=";
  auto pos = target.find(needle, q);
  if (pos == std::string_view::npos) return dflt;
  pos += needle.size();
  std::int64_t v = 0;
  bool any = false;
  while (pos < target.size() && target[pos] >= '0' && target[pos] <= '9' && v < max) {
    v = v * 10 + (target[pos++] - '0');
    any = true;
  }
  return any ? std::min(v, max) : dflt;
}

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Who is on the other end of a TLS connection, from its verified
// certificate. Handlers read it from headers the server sets itself (any a
// client sent under those names are removed first).
struct Peer {
  std::string common_name;
  std::string fingerprint;
};

Peer peer_of(TlsStream& s) {
  Peer p;
  X509* cert = SSL_get1_peer_certificate(s.native_handle());
  if (cert == nullptr) return p;
  char cn[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  p.common_name = cn;
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert, &der);
  if (n > 0) {
    p.fingerprint = sha256_hex(
        std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n)));
    OPENSSL_free(der);
  }
  X509_free(cert);
  return p;
}

template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <typename... Args>
  Session(const HttpServerOptions& options, const Handler& handler,
          std::shared_ptr<std::atomic<std::size_t>> open,
          std::shared_ptr<std::atomic<bool>> stopping, Args&&... stream_args)
      : stream_(std::forward<Args>(stream_args)...),
        options_(options),
        handler_(handler),
        open_(std::move(open)),
        stopping_(std::move(stopping)),
        timer_(stream_.get_executor()) {}
  ~Session() { --*open_; }

  void start(bool refuse) {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(options_.read_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this(), refuse](beast::error_code ec) {
                                if (ec) {
                                  log_warn("TLS handshake refused: " + ec.message());
                                  return;  // the socket closes with the session
                                }
                                self->peer_ = peer_of(self->stream_);
                                self->begin(refuse);
                              });
    } else {
      begin(refuse);
    }
  }

 private:
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

  void begin(bool refuse) {
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
    beast::get_lowest_layer(stream_).expires_after(options_.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::eof ||
        ec == asio::ssl::error::stream_truncated)
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
    req.erase("X-Peer-CN");
    req.erase("X-Peer-Fingerprint");
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      req.set("X-Peer-CN", peer_.common_name);
      req.set("X-Peer-Fingerprint", peer_.fingerprint);
    }
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
    beast::get_lowest_layer(stream_).expires_after(options_.write_timeout);
    http::async_write(stream_, *res_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->res_.reset();
                        if (ec || !self->keep_alive_) return self->close();
                        self->do_read();
                      });
  }

  void close() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      // A TLS close_notify, with a deadline: a peer that vanished must not
      // hold the session. (Peers that skip close_notify show up as
      // stream_truncated on our reads, which is harmless after a full
      // HTTP message: https://github.com/boostorg/beast/issues/38.)
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
        beast::get_lowest_layer(self->stream_).close();
      });
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      stream_.close();
    }
  }

  Stream stream_;
  Peer peer_;
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
      if (options_.tls) {
        std::make_shared<Session<TlsStream>>(options_, handler_, open_, stopping_,
                                             std::move(socket), *options_.tls)
            ->start(refuse);
      } else {
        std::make_shared<Session<PlainStream>>(options_, handler_, open_, stopping_,
                                               std::move(socket))
            ->start(refuse);
      }
    }
    if (acceptor_.is_open()) do_accept();
  });
}

}  // namespace loyalty::platform
