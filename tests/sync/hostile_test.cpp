// Hostile clients against the real daemons: a thousand idle or byte-dripping
// connections to loyaltyd and a thousand to loyalty-hq, reconnecting as soon
// as they are closed, while a POS commits and the terminal syncs. Loopback
// only; it stops by itself after about 20 seconds.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>

#include "tests/sync/sync_fixture.h"

using namespace loyalty;
using namespace loyalty::test;

namespace {

// Holds `count` connections to 127.0.0.1:`port` open, half of them silent,
// half sending `drip` one byte every two seconds, and opens a new one as soon
// as the server closes one.
class Attackers {
 public:
  Attackers(int port, int count, std::string drip)
      : port_(port), count_(count), drip_(std::move(drip)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Attackers() {
    stop_ = true;
    thread_.join();
  }
  std::uint64_t connects() const { return connects_; }
  std::uint64_t closed_by_server() const { return closed_; }

 private:
  struct Conn {
    int fd = -1;
    bool dripping = false;
    std::size_t sent = 0;
  };

  int open_one() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port_));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    ++connects_;
    return fd;
  }

  void run() {
    std::vector<Conn> conns(static_cast<std::size_t>(count_));
    for (std::size_t i = 0; i < conns.size(); ++i) conns[i].dripping = i % 2 == 1;
    auto next_drip = std::chrono::steady_clock::now();
    std::vector<pollfd> fds;
    char sink[4096];
    while (!stop_) {
      fds.clear();
      for (auto& c : conns) {
        if (c.fd < 0) {
          c.fd = open_one();
          c.sent = 0;
        }
        fds.push_back({c.fd, POLLIN | POLLRDHUP, 0});
      }
      ::poll(fds.data(), fds.size(), 20);
      for (std::size_t i = 0; i < conns.size(); ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        // Whatever the server says (a 408, a TLS alert) is read and dropped;
        // a close is answered with a new connection.
        const auto n = ::recv(fds[i].fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
            (fds[i].revents & (POLLHUP | POLLERR | POLLRDHUP)) != 0) {
          ::close(conns[i].fd);
          conns[i].fd = -1;
          ++closed_;
        }
      }
      if (std::chrono::steady_clock::now() >= next_drip) {
        next_drip += std::chrono::seconds(2);
        for (auto& c : conns)
          if (c.fd >= 0 && c.dripping) {
            const char byte = drip_[c.sent % drip_.size()];
            if (::send(c.fd, &byte, 1, MSG_NOSIGNAL) == 1) ++c.sent;
          }
      }
    }
    for (auto& c : conns)
      if (c.fd >= 0) ::close(c.fd);
  }

  int port_, count_;
  std::string drip_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> connects_{0}, closed_{0};
  std::thread thread_;
};

void raise_fd_limit() {
  rlimit lim{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
  INFO("the test needs 4096 file descriptors; the hard limit is " << lim.rlim_cur);
  REQUIRE(lim.rlim_cur >= 4096);
}

}  // namespace

TEST_CASE("a thousand idle or dripping connections each to loyaltyd and HQ stop no sale or sync",
          "[slow][sync][hostile]") {
  raise_fd_limit();
  SyncWorld w("hostile");
  auto d = w.terminal("S001");
  w.hq.start(w.port);
  REQUIRE(d->start());
  REQUIRE(eventually([&] { return d->get("/v1/status").body["online"] == true; }));

  // A request head that never ends, for loyaltyd; a TLS handshake record
  // announcing 512 bytes that never all come, for HQ.
  Attackers at_till(d->port(), 1000, "POST /v1/transactions HTTP/1.1\r\nX-Slow: ");
  Attackers at_hq(w.port, 1000, std::string("\x16\x03\x01\x02\x00", 5) + "0123456789abcdef");
  std::this_thread::sleep_for(std::chrono::seconds(2));  // let them fill every slot

  // The POS: a new connection per commit, as a POS that does not keep
  // connections alive makes them; each must be answered within 2 s.
  std::atomic<bool> done{false};
  std::vector<double> seconds;
  std::vector<int> statuses;
  std::thread pos([&] {
    for (int i = 0; !done; ++i) {
      platform::HttpClient client("127.0.0.1", d->port(), std::chrono::seconds(5));
      const auto t0 = std::chrono::steady_clock::now();
      auto r = client.request(platform::http::verb::post, "/v1/transactions",
                              latte_sale("M-A", 1).dump(),
                              {{"Authorization", "Bearer " + d->token()},
                               {"Idempotency-Key", "hostile-" + std::to_string(i)}});
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      statuses.push_back(r ? r->status : 0);
      if (!r) WARN("commit " << i << ": " << r.error().message);
      if (r && r->status != 201) WARN("commit " << i << ": " << r->status << " " << r->body);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  // The terminal: a sync round asked for every few seconds must complete.
  int rounds = 0, rounds_done = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(18);
  while (std::chrono::steady_clock::now() < until) {
    const auto before = d->get("/v1/status").body["last_sync_at"];
    REQUIRE(d->post("/v1/sync", Json::object()).status == 202);
    ++rounds;
    if (eventually([&] { return d->get("/v1/status").body["last_sync_at"] != before; }, 10))
      ++rounds_done;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  done = true;
  pos.join();
  const auto till_connects = at_till.connects(), hq_connects = at_hq.connects();

  double slowest = 0;
  int answered = 0;
  std::map<int, int> by_status;  // 0: no answer at all
  for (std::size_t i = 0; i < seconds.size(); ++i) {
    slowest = std::max(slowest, seconds[i]);
    if (statuses[i] == 201) ++answered;
    ++by_status[statuses[i]];
  }
  for (const auto& [status, n] : by_status) WARN("HTTP " << status << ": " << n << " commits");
  WARN("commits " << answered << "/" << seconds.size() << ", slowest " << slowest
                  << " s; sync rounds " << rounds_done << "/" << rounds
                  << "; attacker connections opened: " << till_connects << " to loyaltyd, "
                  << hq_connects << " to HQ");
  // The attack was real: both daemons had a thousand strangers at once and
  // closed them (deadlines, displacement), and they kept coming back.
  CHECK(till_connects >= 2000);
  CHECK(hq_connects >= 2000);
  REQUIRE(seconds.size() >= 30);
  CHECK(answered == static_cast<int>(seconds.size()));
  CHECK(slowest < 2.0);
  CHECK(rounds >= 5);
  CHECK(rounds_done == rounds);
  // Every sale reached HQ while the strangers were still there.
  CHECK(eventually([&] { return d->get("/v1/status").body["outbox"]["depth"] == 0; }, 10));
}
