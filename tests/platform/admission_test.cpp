// Who keeps a connection slot when more clients arrive than a server can
// serve (platform/admission.h), without sockets.
#include <catch2/catch.hpp>

#include <set>

#include "platform/admission.h"

using loyalty::platform::Admission;
using loyalty::platform::AdmissionLimits;

namespace {

// Admits connections and remembers which were told to close.
struct Server {
  Admission admission;
  std::set<Admission::Id> closed;
  explicit Server(AdmissionLimits limits) : admission(limits) {}
  Admission::Id connect(const std::string& peer) {
    auto id = std::make_shared<Admission::Id>(0);
    *id = admission.admit(peer, [this, id] {
      closed.insert(*id);
      admission.release(*id);  // as the session does when it ends
    });
    return *id;
  }
  bool open(Admission::Id id) const { return !closed.contains(id); }
};

}  // namespace

TEST_CASE("strangers displace each other, never an authenticated client", "[admission]") {
  Server s({.unproven_max = 4, .unproven_per_peer = 4, .trusted_max = 2});
  const auto pos = s.connect("127.0.0.1");
  s.admission.heard(pos);
  REQUIRE(s.admission.promote(pos));
  s.admission.set_busy(pos, true);
  std::vector<Admission::Id> strangers;
  for (int i = 0; i < 100; ++i) strangers.push_back(s.connect("127.0.0.1"));
  CHECK(s.open(pos));
  // Only the four newest strangers are left.
  for (std::size_t i = 0; i < strangers.size(); ++i) CHECK(s.open(strangers[i]) == (i >= 96));
  const auto c = s.admission.counts();
  CHECK(c.silent == 4);
  CHECK(c.trusted == 1);
  CHECK(c.displaced == 96);
}

TEST_CASE("a connection that sent nothing goes before one that is talking", "[admission]") {
  Server s({.unproven_max = 3, .unproven_per_peer = 3, .trusted_max = 2});
  const auto talking = s.connect("10.0.0.1");  // the oldest, but mid-handshake
  s.admission.heard(talking);
  const auto idle1 = s.connect("10.0.0.2");
  const auto idle2 = s.connect("10.0.0.3");
  const auto fresh = s.connect("10.0.0.4");
  CHECK(s.open(talking));
  CHECK_FALSE(s.open(idle1));
  CHECK(s.open(idle2));
  CHECK(s.open(fresh));
  // With nobody silent left, the oldest talker goes.
  s.admission.heard(idle2);
  s.admission.heard(fresh);
  s.connect("10.0.0.5");
  CHECK_FALSE(s.open(talking));
}

TEST_CASE("one address flooding displaces only its own connections", "[admission]") {
  Server s({.unproven_max = 100, .unproven_per_peer = 5, .trusted_max = 2});
  const auto terminal = s.connect("192.0.2.10");  // a store's terminal, handshaking
  s.admission.heard(terminal);
  std::vector<Admission::Id> flood;
  for (int i = 0; i < 50; ++i) {
    flood.push_back(s.connect("198.51.100.7"));
    s.admission.heard(flood.back());  // dripping bytes, not silent
  }
  CHECK(s.open(terminal));
  CHECK(s.admission.counts().heard == 6);  // the terminal and 5 of the flood
}

TEST_CASE("a full trusted pool gives up an idle connection, and says busy when none is idle",
          "[admission]") {
  Server s({.unproven_max = 10, .unproven_per_peer = 10, .trusted_max = 2});
  const auto a = s.connect("127.0.0.1");
  const auto b = s.connect("127.0.0.1");
  REQUIRE(s.admission.promote(a));
  REQUIRE(s.admission.promote(b));
  s.admission.set_busy(a, true);
  // b waits between requests (keep-alive): it makes room.
  const auto c = s.connect("127.0.0.1");
  REQUIRE(s.admission.promote(c));
  CHECK_FALSE(s.open(b));
  CHECK(s.open(a));
  // a and c both busy: the next one is told busy and nobody is closed.
  s.admission.set_busy(c, true);
  const auto e = s.connect("127.0.0.1");
  CHECK_FALSE(s.admission.promote(e));
  CHECK(s.open(a));
  CHECK(s.open(c));
  CHECK(s.admission.counts().refused == 1);
  // Once a request ends, its slot can go to a newcomer again.
  s.admission.set_busy(a, false);
  const auto f = s.connect("127.0.0.1");
  CHECK(s.admission.promote(f));
  CHECK_FALSE(s.open(a));
}

TEST_CASE("one certificate holds only its share of the trusted slots", "[admission]") {
  Server s(
      {.unproven_max = 50, .unproven_per_peer = 50, .trusted_max = 10, .trusted_per_identity = 2});
  // A stolen certificate opens connection after connection, each busy.
  std::vector<Admission::Id> stolen;
  for (int i = 0; i < 5; ++i) {
    const auto c = s.connect("203.0.113.9");
    if (s.admission.promote(c, "fingerprint-stolen")) {
      s.admission.set_busy(c, true);
      stolen.push_back(c);
    }
  }
  CHECK(stolen.size() == 2);
  // Real terminals still get slots.
  for (int i = 0; i < 5; ++i) {
    const auto c = s.connect("192.0.2." + std::to_string(i));
    CHECK(s.admission.promote(c, "fingerprint-" + std::to_string(i)));
  }
  // A terminal over its share gives up its own oldest idle connection, and
  // that connection learns it when its next request starts.
  const auto first = s.connect("192.0.2.99");
  const auto second = s.connect("192.0.2.99");
  const auto third = s.connect("192.0.2.99");
  REQUIRE(s.admission.promote(first, "fingerprint-99"));
  REQUIRE(s.admission.promote(second, "fingerprint-99"));
  CHECK(s.admission.promote(third, "fingerprint-99"));
  CHECK_FALSE(s.open(first));
  CHECK(s.open(second));
  CHECK_FALSE(s.admission.set_busy(first, true));
  CHECK(s.admission.set_busy(second, true));
}

TEST_CASE("a released connection frees its slot", "[admission]") {
  Server s({.unproven_max = 2, .unproven_per_peer = 2, .trusted_max = 1});
  const auto a = s.connect("127.0.0.1");
  const auto b = s.connect("127.0.0.1");
  s.admission.release(a);
  s.admission.release(b);
  const auto c = s.connect("127.0.0.1");
  const auto d = s.connect("127.0.0.1");
  CHECK(s.open(c));
  CHECK(s.open(d));
  CHECK(s.admission.counts().displaced == 0);
}
