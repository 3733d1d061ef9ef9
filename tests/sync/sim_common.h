// What the two simulators share (tests/sync/sim_test.cpp, HQ's apply logic
// under many seeds; tests/sync/sim_terminal_test.cpp, loyaltyd's own code):
// the seeded dice, the trace that proves a seed replays the same, HQ's disk
// faults, the books check, and where a seed's files live.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <random>

#include "hq/ledger.h"
#include "platform/crypto.h"
#include "tests/faults/fault_vfs.h"
#include "tests/hq/hq_fixture.h"

namespace loyalty::test {

class SimDice {
 public:
  explicit SimDice(std::uint64_t seed) : rng_(seed) {}

  // Faults happen only while `faults_on` (off once the network heals).
  bool chance(double p) { return faults_on ? std::bernoulli_distribution(p)(rng_) : false; }
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  // Folds an event into the trace (FNV-1a style).
  void trace(std::int64_t v) {
    trace_ = (trace_ ^ static_cast<std::uint64_t>(v)) * 1099511628211ULL;
  }
  std::uint64_t trace_hash() const { return trace_; }

  // HQ's disk during a bad spell: a fifth of the writes and syncs fail with
  // a full disk or an I/O error, drawn from the seed.
  int disk_fault(IoCall call) {
    if (!std::bernoulli_distribution(0.2)(rng_)) return SQLITE_OK;
    if (call == IoCall::kSync) return SQLITE_IOERR_FSYNC;
    return pick(0, 1) == 0 ? SQLITE_FULL : SQLITE_IOERR_WRITE;
  }

  bool faults_on = true;

 private:
  std::mt19937_64 rng_;
  std::uint64_t trace_ = 1469598103934665603ULL;
};

// HQ's books must balance after every step that reached it.
inline void require_balanced_books(hq::HqLedger& ledger) {
  auto v = ledger.verify();
  INFO((v ? std::string() : v.error().message));
  REQUIRE(v);
  INFO(v->dump(2));
  REQUIRE((*v)["ok"] == true);
}

inline std::uint64_t sim_env(const char* name, std::uint64_t dflt) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::stoull(v) : dflt;
}

// A seed's files, on tmpfs when there is one: the simulations are about
// ordering and faults, not the disk, and many seeds must fit in CI.
inline std::filesystem::path sim_dir(const std::string& prefix) {
  namespace fs = std::filesystem;
  const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  auto dir = base / (prefix + platform::random_hex(6));
  fs::create_directories(dir);
  return dir;
}

// What one seed did, for the run's summary line.
struct SeedRun {
  std::uint64_t trace = 0;
  std::int64_t transactions = 0, faults = 0;
  std::int64_t disk_faults = 0, refused = 0;               // HQ's disk
  std::int64_t offline_redeemed = 0, refused_offline = 0;  // the offline allowances
  std::int64_t reused = 0, refused_backs = 0;  // restored tills: sales and take-backs HQ refused
  std::string summary;
};

// One seed: `steps` steps of trading with faults, then the network heals,
// then the end state is checked. `S` provides step(), drain(), check_end()
// and figures().
template <typename S>
SeedRun run_sim_seed(std::uint64_t seed, const std::string& prefix, int steps) {
  const auto dir = sim_dir(prefix);
  SeedRun out;
  {
    S sim(seed, dir);
    for (int i = 0; i < steps; ++i) sim.step();
    sim.drain();
    sim.check_end();
    out = sim.figures();
  }
  std::filesystem::remove_all(dir);
  return out;
}

}  // namespace loyalty::test
