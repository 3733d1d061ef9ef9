#include "platform/admission.h"

#include <cassert>

namespace loyalty::platform {

Admission::Admission(AdmissionLimits limits) : limits_(limits) {
  assert(limits_.unproven_max > 0 && limits_.unproven_per_peer > 0 && limits_.trusted_max > 0);
}

void Admission::unqueue(Conn& c) {
  if (c.state == State::kTrusted) {
    trusted_.erase(c.all_pos);
    if (c.busy) --busy_;
    return;
  }
  unproven_.of(c.state).erase(c.all_pos);
  auto peer = by_peer_.find(c.peer);
  assert(peer != by_peer_.end());
  peer->second.of(c.state).erase(c.peer_pos);
  if (peer->second.size() == 0) by_peer_.erase(peer);
}

Admission::Evict Admission::drop(Id id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return {};
  unqueue(it->second);
  Evict evict = std::move(it->second.evict);
  conns_.erase(it);
  return evict;
}

Admission::Id Admission::admit(const std::string& peer, Evict evict) {
  std::vector<Evict> victims;
  Id id = 0;
  {
    std::lock_guard lock(mutex_);
    // Room from the same peer first: one address flooding displaces only
    // its own connections.
    if (auto p = by_peer_.find(peer);
        p != by_peer_.end() && p->second.size() >= limits_.unproven_per_peer)
      victims.push_back(drop(p->second.oldest()));
    while (unproven_.size() >= limits_.unproven_max) victims.push_back(drop(unproven_.oldest()));
    displaced_ += victims.size();
    id = next_id_++;
    Conn& c = conns_[id];
    c.peer = peer;
    c.evict = std::move(evict);
    unproven_.silent.push_back(id);
    c.all_pos = std::prev(unproven_.silent.end());
    auto& mine = by_peer_[peer].silent;
    mine.push_back(id);
    c.peer_pos = std::prev(mine.end());
  }
  for (auto& v : victims)
    if (v) v();
  return id;
}

void Admission::heard(Id id) {
  std::lock_guard lock(mutex_);
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.state != State::kSilent) return;
  Conn& c = it->second;
  unqueue(c);
  c.state = State::kHeard;
  unproven_.heard.push_back(id);
  c.all_pos = std::prev(unproven_.heard.end());
  auto& mine = by_peer_[c.peer].heard;
  mine.push_back(id);
  c.peer_pos = std::prev(mine.end());
}

bool Admission::promote(Id id, const std::string& identity) {
  Evict victim;
  {
    std::lock_guard lock(mutex_);
    auto it = conns_.find(id);
    if (it == conns_.end()) return false;  // evicted meanwhile
    if (it->second.state == State::kTrusted) return true;
    // Room among the same identity's connections first, then in the pool:
    // the oldest idle one gives up its slot.
    std::size_t same = 0;
    if (!identity.empty())
      for (const auto t : trusted_)
        if (conns_.at(t).identity == identity) ++same;
    const bool per_identity = !identity.empty() && same >= limits_.trusted_per_identity;
    if (per_identity || trusted_.size() >= limits_.trusted_max) {
      auto idle = trusted_.begin();
      while (idle != trusted_.end() &&
             (conns_.at(*idle).busy || (per_identity && conns_.at(*idle).identity != identity)))
        ++idle;
      if (idle == trusted_.end()) {
        ++refused_;
        return false;
      }
      victim = drop(*idle);
      ++displaced_;
    }
    Conn& c = it->second;
    unqueue(c);
    c.identity = identity;
    c.state = State::kTrusted;
    trusted_.push_back(id);
    c.all_pos = std::prev(trusted_.end());
  }
  if (victim) victim();
  return true;
}

bool Admission::set_busy(Id id, bool busy) {
  std::lock_guard lock(mutex_);
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.state != State::kTrusted) return false;
  if (it->second.busy != busy) {
    it->second.busy = busy;
    busy ? ++busy_ : --busy_;
  }
  return true;
}

void Admission::release(Id id) {
  std::lock_guard lock(mutex_);
  (void)drop(id);
}

AdmissionCounts Admission::counts() const {
  std::lock_guard lock(mutex_);
  return {unproven_.silent.size(),
          unproven_.heard.size(),
          trusted_.size(),
          busy_,
          displaced_,
          refused_};
}

}  // namespace loyalty::platform
