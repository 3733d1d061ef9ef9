// A TCP proxy on loopback for the sync tests: forwards bytes between a
// terminal and HQ and, on request, loses HQ's answer to the next large
// upload. It sees only TLS records, so "large" is counted in bytes: once a
// connection has carried more than `upload_bytes` from the client, the next
// bytes HQ sends back (its response, after it has committed) are dropped and
// both sides are cut.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace loyalty::test {

class TcpProxy {
 public:
  explicit TcpProxy(int upstream_port) : upstream_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 16) != 0)
      throw std::runtime_error("proxy: cannot listen");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TcpProxy() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::lock_guard lock(mutex_);
    for (auto& t : pumps_) t.join();
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // Loses the response to the next `n` uploads larger than `upload_bytes`.
  void lose_responses(int n, std::size_t upload_bytes) {
    upload_bytes_ = upload_bytes;
    to_lose_ = n;
  }
  int responses_lost() const { return lost_; }
  // From now on each chunk forwarded, either way, is with probability `p`
  // delayed (up to 300 ms), cut short (part of it forwarded, then both
  // sides closed) or reset (both sides closed at once); p = 0 stops it.
  void chaos(double p, std::uint64_t seed) {
    std::lock_guard lock(rng_mutex_);
    rng_.seed(seed);
    chaos_ = p;
  }
  int faults() const { return faults_; }
  // While set, nothing is forwarded either way: connections open but HQ
  // never answers (a network that black-holes traffic).
  void hang(bool on) { hang_ = on; }

 private:
  void accept_loop() {
    while (!stopping_) {
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(upstream_));
      if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(server);
        ::close(client);
        continue;
      }
      std::lock_guard lock(mutex_);
      pumps_.emplace_back([this, client, server] { pump(client, server); });
    }
  }

  enum class Fault { kNone, kDelay, kTruncate, kReset };
  // The fault for the next chunk; `delay` is set for kDelay.
  Fault next_fault(std::chrono::milliseconds& delay) {
    std::lock_guard lock(rng_mutex_);
    if (chaos_ <= 0 || std::uniform_real_distribution<double>(0, 1)(rng_) >= chaos_)
      return Fault::kNone;
    ++faults_;
    const int k = std::uniform_int_distribution<int>(0, 2)(rng_);
    delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 300)(rng_));
    return k == 0 ? Fault::kDelay : k == 1 ? Fault::kTruncate : Fault::kReset;
  }

  // Forwards `n` bytes unless chaos decides otherwise; false: cut.
  bool forward(int to, const char* data, std::size_t n) {
    std::chrono::milliseconds delay{};
    switch (next_fault(delay)) {
      case Fault::kDelay:
        std::this_thread::sleep_for(delay);
        return ::send(to, data, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
      case Fault::kReset: return false;
      case Fault::kTruncate: (void)!::send(to, data, n / 2, MSG_NOSIGNAL); return false;
      default: return ::send(to, data, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
    }
  }

  // Both directions of one connection, until either side closes.
  void pump(int client, int server) {
    std::vector<char> buf(64 * 1024);
    std::size_t uploaded = 0;
    bool cutting = false;  // HQ's answer is being dropped
    int quiet_ms = 0;
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    while (!stopping_) {
      if (hang_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      const int ready = ::poll(fds, 2, 100);
      if (ready < 0) break;
      if (ready == 0 && cutting && (quiet_ms += 100) >= 500) break;  // request complete
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        const auto n = ::read(client, buf.data(), buf.size());
        if (n <= 0 || !forward(server, buf.data(), static_cast<std::size_t>(n))) break;
        uploaded += static_cast<std::size_t>(n);
        quiet_ms = 0;
      }
      if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
        const auto n = ::read(server, buf.data(), buf.size());
        if (n <= 0) break;
        if (!cutting && uploaded > upload_bytes_ && to_lose_ > 0) {
          // HQ answers a large upload: from here on nothing reaches the
          // terminal, and once the terminal has sent all it had (HQ has the
          // whole request), both sides are cut.
          --to_lose_;
          ++lost_;
          cutting = true;
        }
        if (cutting) continue;
        if (!forward(client, buf.data(), static_cast<std::size_t>(n))) break;
        uploaded = 0;  // the next request starts counting afresh
      }
    }
    ::close(client);
    ::close(server);
  }

  int upstream_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> upload_bytes_{0};
  std::atomic<int> to_lose_{0};
  std::atomic<int> lost_{0};
  std::atomic<int> faults_{0};
  std::atomic<bool> hang_{false};
  double chaos_ = 0;
  std::mt19937_64 rng_;
  std::mutex rng_mutex_;
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> pumps_;
};

}  // namespace loyalty::test
