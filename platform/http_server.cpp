#include "platform/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
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
          std::shared_ptr<Admission> admission, std::shared_ptr<std::atomic<std::size_t>> open,
          std::shared_ptr<std::atomic<bool>> stopping, Args&&... stream_args)
      : stream_(std::forward<Args>(stream_args)...),
        options_(options),
        handler_(handler),
        admission_(std::move(admission)),
        open_(std::move(open)),
        stopping_(std::move(stopping)),
        timer_(stream_.get_executor()),
        silence_(stream_.get_executor()) {}
  ~Session() {
    admission_->release(id_);
    --*open_;
  }

  // Takes a slot (displacing others if the pool is full) and waits for the
  // client's first bytes.
  void start(const std::string& peer) {
    address_ = peer;
    std::weak_ptr<Session> weak = shared_from_this();
    id_ = admission_->admit(peer, [weak, executor = stream_.get_executor()] {
      asio::post(executor, [weak] {
        if (auto self = weak.lock()) self->evicted();
      });
    });
    head_deadline_ = std::chrono::steady_clock::now() + options_.head_timeout;
    // Its first bytes are usually there already (the listener defers
    // accepting until they are): no wait, no time as a silent connection.
    beast::error_code ec;
    if (socket().available(ec) > 0 && !ec) return on_first({});
    silence_.expires_at(head_deadline_);
    silence_.async_wait([self = shared_from_this()](beast::error_code tec) {
      if (!tec) self->abort();  // not one byte in time
    });
    socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code wec) {
      self->on_first(wec);
    });
  }

 private:
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

  tcp::socket& socket() { return beast::get_lowest_layer(stream_).socket(); }

  void on_first(beast::error_code ec) {
    silence_.cancel();
    if (ec || gone_) return abort();
    admission_->heard(id_);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_at(head_deadline_);
      stream_.async_handshake(
          asio::ssl::stream_base::server,
          [self = shared_from_this()](beast::error_code hec) { self->on_handshake(hec); });
    } else {
      do_read();
    }
  }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      if (!gone_) log_warn(handshake_failure(ec));
      return;  // the socket closes with the session
    }
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      peer_ = peer_of(stream_);
      // A client certificate that verified against our CA proves the peer;
      // its slots are counted by certificate.
      if (!peer_.fingerprint.empty() && SSL_get_verify_result(stream_.native_handle()) == X509_V_OK)
        prove(peer_.fingerprint);
    }
    do_read();
  }

  std::string handshake_failure(const beast::error_code& ec) const {
    // The client's alert that it refused our certificate as expired or
    // "bad" (what OpenSSL sends for one not valid yet): with our CA's own
    // certificates that is a client clock wrong by days.
    if (ec.category() == asio::error::get_ssl_category()) {
      const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
      if (reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED ||
          reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE)
        return "TLS handshake from " + address_ + " failed: the client refused our certificate (" +
               ec.message() +
               "); if it is a terminal, its clock is probably wrong by months (certificates "
               "are valid from 60 days before they were issued)";
    }
    return "TLS handshake from " + address_ + " refused: " + ec.message();
  }

  // The client showed credentials: a trusted slot, or "busy" if none is free.
  void prove(const std::string& identity = {}) {
    trusted_ = true;
    if (!admission_->promote(id_, identity)) refuse_ = true;
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    if (trusted_) {
      beast::get_lowest_layer(stream_).expires_after(options_.read_timeout);
    } else {
      if (served_ > 0) head_deadline_ = std::chrono::steady_clock::now() + options_.head_timeout;
      beast::get_lowest_layer(stream_).expires_at(head_deadline_);
    }
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read(ec);
    if (!trusted_ && options_.authorize && options_.authorize(parser_->get())) prove();
    in_request_ = true;
    // Displaced while this request was on its way (an idle kept-alive slot
    // given to a newcomer): it is answered all the same, then closed.
    if (trusted_ && !refuse_ && !admission_->set_busy(id_, true)) keep_alive_ = false;
    if (parser_->is_done()) return on_read({});
    beast::get_lowest_layer(stream_).expires_after(options_.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code rec, std::size_t) { self->on_read(rec); });
  }

  void on_read(beast::error_code ec) {
    if (gone_ || ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == asio::ssl::error::stream_truncated)
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
    if (refuse_) {
      // Every trusted slot is serving a request: a reason rather than a
      // reset, so the client knows nothing was done. The request was read
      // whole first, so closing sends no RST over an answer in flight.
      keep_alive_ = false;
      return send(problem_response(
          options_.problem_base, http::status::service_unavailable, "busy", "Too many connections",
          "every connection slot is serving a request; nothing was done; retry in a moment"));
    }
    if (*stopping_) {
      keep_alive_ = false;
      return send(problem_response(options_.problem_base, http::status::service_unavailable,
                                   "shutting-down", "Shutting down",
                                   "the daemon is stopping; retry in a few seconds"));
    }
    dispatch(parser_->release());
  }

  void dispatch(HttpRequest req) {
    ++served_;
    keep_alive_ = keep_alive_ && req.keep_alive();
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
    } catch (const core::DataLoss& e) {
      fail_stop(e.what());
    } catch (const std::exception& e) {
      log_error(std::string("handler threw: ") + e.what());
      if (!answered->exchange(true))
        send(problem_response(options_.problem_base, http::status::internal_server_error,
                              "internal", "Internal error", "the daemon hit a bug; see its log"));
    }
  }

  void send(HttpResponse res) {
    if (gone_) return;
    res.keep_alive(keep_alive_);
    res_ = std::make_shared<HttpResponse>(std::move(res));
    beast::get_lowest_layer(stream_).expires_after(options_.write_timeout);
    http::async_write(stream_, *res_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->res_.reset();
                        self->in_request_ = false;
                        if (self->trusted_ && !self->admission_->set_busy(self->id_, false))
                          self->keep_alive_ = false;  // displaced: its slot is gone
                        if (ec || !self->keep_alive_ || self->gone_) return self->close();
                        self->do_read();
                      });
  }

  // Lost its slot to a newer connection: close now; whatever it was
  // waiting for ends with operation_aborted. A request already read is
  // answered first (closing under it would leave its client guessing
  // whether it was done); the connection closes after the answer.
  void evicted() {
    if (gone_) return;
    if (in_request_) {
      keep_alive_ = false;
      return;
    }
    abort();
  }

  void abort() {
    gone_ = true;
    silence_.cancel();
    timer_.cancel();
    beast::error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

  void close() {
    if (gone_) return;
    gone_ = true;
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
  std::string address_;  // the client's IP address
  const HttpServerOptions& options_;
  const Handler& handler_;
  std::shared_ptr<Admission> admission_;
  Admission::Id id_ = 0;
  std::shared_ptr<std::atomic<std::size_t>> open_;
  std::shared_ptr<std::atomic<bool>> stopping_;
  asio::steady_timer timer_;    // the handler's deadline
  asio::steady_timer silence_;  // the wait for the first byte
  std::chrono::steady_clock::time_point head_deadline_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpResponse> res_;
  std::shared_ptr<std::atomic<bool>> answered_;
  bool keep_alive_ = true;
  bool in_request_ = false;  // from its head read until its answer is written
  bool trusted_ = false;     // proved itself (holds a trusted slot unless refuse_)
  bool refuse_ = false;      // proved itself but every trusted slot is busy
  bool gone_ = false;        // closed or closing
  std::uint64_t served_ = 0;
};

// The file-descriptor limit is what bounds how many connections the process
// can hold; systemd's default soft limit (1024) is far below the hard one.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler)
    : io_(io),
      options_(std::move(options)),
      handler_(std::move(handler)),
      acceptor_(io),
      admission_(std::make_shared<Admission>(options_.admission)),
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
  // The kernel hands over a connection only once its client has sent
  // something (nginx's `listen ... deferred`): a client that connects and
  // says nothing waits in the kernel, not in one of our slots, until the
  // head deadline has passed.
  const int defer_seconds = static_cast<int>(std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(options_.head_timeout).count()));
  if (::setsockopt(acceptor_.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds,
                   sizeof defer_seconds) != 0)
    log_warn("TCP_DEFER_ACCEPT not available; silent clients take connection slots");
  raise_fd_limit();
  do_accept();
  return {};
}

void HttpServer::stop() {
  *stopping_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
  if (accept_pause_) accept_pause_->cancel();
}

void HttpServer::do_accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors (or memory): retrying at once would spin.
      log_warn("accept failed: " + ec.message());
      return accept_later();
    }
    ++*open_;
    // Answers are written as soon as they are ready; Nagle's algorithm
    // would hold a short response back waiting for an ACK.
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const auto remote = socket.remote_endpoint(ignored);
    const std::string peer = ignored ? std::string("?") : remote.address().to_string();
    if (options_.tls) {
      std::make_shared<Session<TlsStream>>(options_, handler_, admission_, open_, stopping_,
                                           std::move(socket), *options_.tls)
          ->start(peer);
    } else {
      std::make_shared<Session<PlainStream>>(options_, handler_, admission_, open_, stopping_,
                                             std::move(socket))
          ->start(peer);
    }
    if (acceptor_.is_open()) do_accept();
  });
}

void HttpServer::accept_later() {
  if (!accept_pause_) accept_pause_ = std::make_unique<asio::steady_timer>(io_);
  accept_pause_->expires_after(std::chrono::milliseconds(50));
  accept_pause_->async_wait([this](beast::error_code ec) {
    if (!ec && acceptor_.is_open()) do_accept();
  });
}

}  // namespace loyalty::platform
