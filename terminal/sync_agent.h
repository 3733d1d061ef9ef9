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
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "platform/crypto.h"
#include "platform/http_client.h"
#include "sync/feed.h"
#include "sync/protocol.h"
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

// Where a sync round's requests go: HQ over mutual TLS in loyaltyd, a
// simulated network in the simulator (tests/sync/sim_terminal_test.cpp),
// which runs this same upload and feed code under its faults.
class HqLink {
 public:
  virtual ~HqLink() = default;
  // Fails with kUnavailable when HQ cannot be reached or does not answer.
  [[nodiscard]] virtual core::Result<platform::ClientResponse> request(platform::http::verb method,
                                                                       const std::string& target,
                                                                       const std::string& body) = 0;
};

class SyncAgent {
 public:
  using Clock = std::function<std::int64_t()>;
  SyncAgent(Store& store, Checkout& checkout, HqBundle bundle, Clock clock);
  ~SyncAgent();
  // Time between rounds while nothing happens (a commit starts one at once);
  // set before start().
  void set_interval(std::chrono::milliseconds interval) { interval_ = interval; }
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
  // Asks HQ for a member's balance now (a live check before a large
  // redemption), on a connection of its own with each step bounded by
  // about a third of `timeout`. kUnavailable when HQ does not answer in
  // time or answers with something unusable; kNotFound when HQ has no such
  // member yet. Safe from any thread.
  [[nodiscard]] core::Result<LiveMember> live_member(const std::string& member_id,
                                                     std::chrono::milliseconds timeout);
  // Asks HQ for a member this store does not hold (a first visit, with HQ
  // sending members only where they are held), by `by` ("member_id",
  // "card_number" or "phone"), and stores what HQ sends: the member, their
  // blocked codes, open flags and receipts. From then on the feed brings
  // their changes. Same deadline and errors as live_member.
  [[nodiscard]] core::Status lookup_member(const std::string& by, const std::string& value,
                                           std::chrono::milliseconds timeout);
  // The same round over `link`; status shows online only when it succeeds.
  [[nodiscard]] core::Status sync_round(HqLink& link);

 private:
  // Uploads (terminal/sync_upload.cpp): every pending record, batch by
  // batch; the number HQ acknowledged.
  core::Result<int> upload(HqLink& link);
  // The next batch of pending records, in sequence order, bounded.
  core::Result<sync::Batch> bundle_pending();
  // HQ's verdicts on a batch, sorted by what the terminal does with them.
  struct Verdicts {
    std::vector<std::string> done, moved;        // acknowledged; to renumber
    std::map<std::string, std::string> refused;  // id -> HQ's reason
    int duplicates = 0;
  };
  Verdicts sort_answer(const sync::Batch& batch, const sync::BatchAnswer& answer);
  core::Status mark_acked(const std::vector<std::string>& txn_ids);
  // Keeps HQ's measure of this terminal's clock (from any batch answer).
  core::Status note_skew(std::int64_t skew);
  // Sends `batch` and reads HQ's answer; numbering HQ is ahead of is
  // caught up with before anything else reads the answer.
  core::Result<sync::BatchAnswer> send_batch(HqLink& link, const sync::Batch& batch);
  // A database behind HQ's (restored from an older backup) numbers its
  // next sales after what HQ already has from this terminal.
  core::Status catch_up_numbering(const sync::BatchAnswer& answer);
  // Moves the transactions HQ rejected for a sequence number it holds under
  // another id to the end of the sequence, so they upload again.
  core::Status resequence(const std::vector<std::string>& txn_ids);
  // Marks the sales HQ refused as conflicts (id and HQ's reason): they stay
  // in the database, leave the outbox's pending work, and their members'
  // views here go back to HQ's plus what is still pending.
  core::Status note_refused(const std::map<std::string, std::string>& refused);
  core::Result<int> pull(HqLink& link);
  // HQ refuses this terminal itself (revoked, or not registered): kept in
  // sync_state until a round succeeds, so status and the offline
  // allowances can tell it from a network outage.
  void note_access(const platform::ClientResponse& res);
  // Applies one change of the feed (or of a lookup) other than a program
  // (terminal/sync_feed.cpp); false when it was skipped.
  bool apply_change(platform::Db& db, const sync::Change& ch);
  bool apply_member(platform::Db& db, const sync::MemberChange& c);
  bool apply_receipt(platform::Db& db, const sync::ReceiptChange& c);
  // Installs a program version from the feed once HQ's key verifies it.
  void install_program(const sync::ProgramChange& p);
  // POSTs `body` to HQ on a connection of its own, each step bounded by a
  // third of `timeout`.
  core::Result<platform::ClientResponse> ask(const std::string& target, const Json& body,
                                             std::chrono::milliseconds timeout);
  void set_online(bool online);
  // A handshake failed because HQ's certificate is outside its validity by
  // this terminal's clock: kept in sync_state (status, metrics) until a
  // round succeeds.
  void note_clock_error(const std::string& problem);
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
  // HQ's numbering of this terminal was read since start (sync thread only).
  bool numbering_known_ = false;
  std::optional<std::int64_t> noted_skew_;  // the skew last written, this run
  // Records in the next upload (sync thread only). After a failure, or at
  // start, one record probes the link: a terminal that cannot reach HQ does
  // not build a 500-record batch at every retry. Once HQ answers, the same
  // round goes on with full batches.
  static constexpr std::size_t kProbeRecords = 1;
  std::size_t batch_limit_ = kProbeRecords;
  std::chrono::milliseconds interval_{2000};
  std::thread thread_;
};

}  // namespace loyalty::terminal
