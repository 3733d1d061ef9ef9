// loyaltyd's side of sync (docs/sync.md): uploads the outbox to HQ in
// sequence order over mutual TLS, marks what HQ acknowledged, pulls the
// change feed and applies it with its cursor, and keeps the connectivity
// state that status and the offline allowances read. Never on the path of a
// quote or a commit: it runs on its own thread and only takes the store's
// locks like any other writer.
//
// Thread-safety: start()/stop()/poke() from any thread; sync_once() from one
// thread at a time.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "platform/crypto.h"
#include "platform/http_client.h"
#include "terminal/checkout.h"
#include "terminal/store.h"

namespace loyalty::terminal {

// The provisioning bundle `loyalty-hq terminals add` writes.
struct HqBundle {
  std::string host;
  std::uint16_t port = 0;
  std::string server_name;
  std::string store_id, terminal_id;
  std::string ca_pem, cert_pem, key_pem, hq_public_key_pem;
};
[[nodiscard]] core::Result<HqBundle> load_bundle(const std::string& path);

class SyncAgent {
 public:
  using Clock = std::function<std::int64_t()>;
  SyncAgent(Store& store, Checkout& checkout, HqBundle bundle, Clock clock);
  ~SyncAgent();
  void start();
  void stop();
  // A commit happened: upload soon rather than at the next tick.
  void poke();
  // A round now, even while backing off after failures (an operator's
  // `loyaltyctl sync` once HQ is known to be back). Pokes alone do not cut a
  // backoff short: an outage must not turn every sale into a connection try.
  void sync_now();
  // One round: upload everything pending, then pull the whole feed.
  [[nodiscard]] core::Status sync_once();

 private:
  core::Result<int> upload(platform::HttpClient& client);
  core::Result<int> pull(platform::HttpClient& client);
  void set_online(bool online);
  void run();

  Store& store_;
  Checkout& checkout_;
  HqBundle bundle_;
  Clock clock_;
  std::optional<platform::SigningKey> hq_key_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // built once from the bundle
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false, poked_ = false, forced_ = false;
  bool feed_behind_ = false;  // the last round left feed pages for the next (sync thread only)
  std::thread thread_;
};

}  // namespace loyalty::terminal
