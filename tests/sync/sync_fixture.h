// A small world for the sync tests: a loyalty-hq with the coffee program
// published, member M-A seeded for the terminals, and terminals provisioned
// from `loyalty-hq terminals add` bundles.
#pragma once

#include "core/member_number.h"
#include "tests/hq/hq_fixture.h"
#include "tests/hq/hq_process.h"

namespace loyalty::test {

template <typename F>
bool eventually(F&& f, int seconds = 20) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

inline Json latte_sale(const std::string& member, int qty) {
  return Json{{"member_id", member},
              {"basket",
               {{"currency", "CNY"},
                {"lines", Json::array({{{"sku", "latte-m"},
                                        {"categories", {"coffee"}},
                                        {"tags", {"basic-drink"}},
                                        {"quantity", qty},
                                        {"unit_price", 2800}}})}}}};
}

// A sale as a POS makes it: a 503 `busy` or `timeout` (a slow sanitizer
// build) is retried with the same Idempotency-Key, which is safe; the answer
// is the first that is not one of those.
inline HttpResult sell(Daemon& d, const Json& body, const std::string& key) {
  HttpResult r;
  for (int attempt = 0; attempt < 20; ++attempt) {
    r = d.post("/v1/transactions", body, key);
    if (r.status != 503 || r.type() == "storage-failure") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  INFO(r.body.dump());
  return r;
}

// The sale went through: 201, or 200 when a retry found the first attempt
// had completed after all (the key's replay).
inline bool sold(const HttpResult& r) {
  return r.status == 201 || r.status == 200;
}

struct SyncWorld {
  fs::path dir;
  std::string target;
  HqProcess hq;
  int port;

  explicit SyncWorld(const std::string& tag, const std::string& backend = "sqlite",
                     std::int64_t points = 1000)
      : dir(scratch_dir(tag)),
        target(fresh_hq_target(backend, dir)),
        hq(dir / "hq", target),
        port(free_port()) {
    fs::create_directories(dir / "hq");
    REQUIRE(hq.cli("init").code == 0);
    REQUIRE(hq.cli("publish " + hq_source("examples/programs/coffee-chain.json") +
                   " --effective-from 0")
                .code == 0);
    const std::string card15 = "900000000000001";
    write_file(dir / "members.json",
               Json::array({seeded_member("M-A", card15 + core::luhn_check_digit(card15),
                                          "13900000001", points)})
                   .dump());
  }

  // A provisioned loyaltyd for `store` reaching HQ at `hq_port` (HQ's own
  // port unless a proxy sits between), with the program and M-A seeded;
  // `extra` are more loyaltyd settings.
  std::unique_ptr<Daemon> terminal(const std::string& store, int hq_port = 0,
                                   const std::vector<std::string>& extra = {}) {
    const auto bundle = dir / (store + ".json");
    REQUIRE(hq.cli("terminals add " + store + " T01 --out " + bundle.string() +
                   " --url https://127.0.0.1:" + std::to_string(hq_port ? hq_port : port))
                .code == 0);
    fs::create_directories(dir / store);
    std::vector<std::string> args{
        "--hq.bundle",       bundle.string(),
        "--program.file",    hq_source("examples/programs/coffee-chain.json"),
        "--program.members", (dir / "members.json").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Daemon>(dir / store, args);
  }

  // Rows in an HQ table, read from its database while HQ runs.
  std::int64_t count(const std::string& table) {
    auto db = hq::open_sql(target);
    REQUIRE(db);
    return (*db)->query("SELECT COUNT(*) FROM " + table)[0].integer(0);
  }
};

// libfaketime from Debian's package (scripts/install-deps.sh installs it).
inline std::string libfaketime() {
  for (const auto& dir : fs::directory_iterator("/usr/lib"))
    if (fs::exists(dir.path() / "faketime" / "libfaketime.so.1"))
      return (dir.path() / "faketime" / "libfaketime.so.1").string();
  FAIL("libfaketime.so.1 not found; install Debian's libfaketime package");
  return {};
}

// A wall clock for a daemon that a test can move while it runs: libfaketime
// reading the offset ("+1d", "-2d") from a file each time; the monotonic
// clocks stay real, as when someone sets a machine's clock.
struct MovableClock {
  fs::path file;
  explicit MovableClock(fs::path f, const std::string& offset = "+0") : file(std::move(f)) {
    set(offset);
  }
  void set(const std::string& offset) {
    std::ofstream(file.string() + ".tmp") << offset << "\n";
    fs::rename(file.string() + ".tmp", file);
  }
  std::vector<std::string> env() const {
    return {"LD_PRELOAD=" + libfaketime(), "FAKETIME_TIMESTAMP_FILE=" + file.string(),
            "FAKETIME_NO_CACHE=1",         "FAKETIME_DONT_FAKE_MONOTONIC=1",
            "FAKETIME_DONT_RESET=1",       kAsanWithPreload};
  }
};

// The JSON a successful loyalty-hq command printed.
inline Json hq_json(const CtlRun& r) {
  INFO(r.out);
  REQUIRE(r.code == 0);
  return Json::parse(r.out.substr(r.out.find('{')));
}

}  // namespace loyalty::test
