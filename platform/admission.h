// Which connections a server keeps when more arrive than it can serve: the
// policy behind HttpServer's connection slots, kept apart from sockets so it
// can be tested on its own.
//
// Modelled on nginx and Envoy (docs/reliability.md, "Hostile clients and
// clocks"):
// - A connection that has not shown credentials yet (a TLS client
//   certificate, a bearer token, a session) is *unproven* and sits in a
//   bounded pool of its own; it never takes a slot from an authenticated
//   client. When the pool is full, a newcomer displaces the oldest unproven
//   connection, and among those first one that has sent nothing at all
//   (nginx drains its "reusable" connections, those still waiting for their
//   first byte, oldest first, when it runs out of connections).
// - Each peer address may hold only so many unproven connections (nginx's
//   limit_conn); past that it displaces its own, never another peer's.
// - A connection that proves itself moves to the *trusted* pool. When that
//   is full, the oldest trusted connection idling between requests gives up
//   its slot; when every trusted connection is busy, the newcomer is told
//   "busy" (a 503 it can act on, never a reset).
// Deadlines (the TLS handshake, the request head, idle keep-alive) are the
// server's; this class only decides who stays.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace loyalty::platform {

struct AdmissionLimits {
  std::size_t unproven_max = 256;       // connections not yet authenticated, in all
  std::size_t unproven_per_peer = 256;  // ... from one peer address
  std::size_t trusted_max = 64;         // authenticated connections
  // ... of one identity (a client certificate): one stolen or revoked
  // certificate cannot take every slot of the terminals.
  std::size_t trusted_per_identity = 64;
};

struct AdmissionCounts {
  std::size_t silent = 0, heard = 0, trusted = 0, trusted_busy = 0;
  std::uint64_t displaced = 0;  // connections closed to make room, ever
  std::uint64_t refused = 0;    // authenticated clients told "busy", ever
};

class Admission {
 public:
  using Id = std::uint64_t;
  // Called (outside the lock) to close a connection that lost its slot.
  using Evict = std::function<void()>;

  explicit Admission(AdmissionLimits limits);

  // A new connection from `peer` (its address). It is admitted as unproven
  // and silent; the connections that make room for it are evicted.
  Id admit(const std::string& peer, Evict evict);
  // Its first bytes arrived: no longer among the first to go.
  void heard(Id id);
  // It showed credentials (`identity`: who, when the server knows; its
  // connections are capped at trusted_per_identity). False when every
  // trusted slot it could take is busy: answer it "busy" and close it.
  [[nodiscard]] bool promote(Id id, const std::string& identity = {});
  // A trusted connection starts (true) or finishes (false) a request; only
  // one between requests can be displaced. False when it no longer holds a
  // slot (displaced meanwhile): it should answer and close.
  bool set_busy(Id id, bool busy);
  // The connection closed (or was evicted): its slot is free.
  void release(Id id);

  AdmissionCounts counts() const;
  const AdmissionLimits& limits() const { return limits_; }

 private:
  enum class State { kSilent, kHeard, kTrusted };
  // Unproven connections, oldest first: those still silent, those heard.
  struct Queues {
    std::list<Id> silent, heard;
    std::size_t size() const { return silent.size() + heard.size(); }
    std::list<Id>& of(State s) { return s == State::kSilent ? silent : heard; }
    // The one to displace: the oldest silent one, else the oldest heard.
    Id oldest() const { return silent.empty() ? heard.front() : silent.front(); }
  };
  struct Conn {
    std::string peer;
    std::string identity;  // trusted: who
    State state = State::kSilent;
    bool busy = false;
    Evict evict;
    std::list<Id>::iterator all_pos, peer_pos;  // in the queues (trusted: trusted_)
  };
  // Removes `id` from every index and hands back its eviction callback.
  Evict drop(Id id);
  void unqueue(Conn& c);

  AdmissionLimits limits_;
  mutable std::mutex mutex_;
  Id next_id_ = 1;
  std::unordered_map<Id, Conn> conns_;
  Queues unproven_;
  std::map<std::string, Queues> by_peer_;
  std::list<Id> trusted_;  // in order of promotion
  std::size_t busy_ = 0;
  std::uint64_t displaced_ = 0, refused_ = 0;
};

}  // namespace loyalty::platform
