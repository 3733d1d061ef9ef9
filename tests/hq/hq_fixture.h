// HQ tests run against both backends: a fresh SQLite file, and a fresh
// database in the throwaway PostgreSQL cluster the test run starts
// (scripts/pg-cluster.sh; ctest passes its conninfo file in
// LOYALTY_PG_CONNINFO_FILE).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "core/engine.h"
#include "core/io_json.h"
#include "core/local_time.h"
#include "core/member_delta.h"
#include "core/program_loader.h"
#include "core/return_basis.h"
#include "hq/ledger.h"
#include "hq/schema.h"
#include "hq/sql.h"
#include "platform/crypto.h"
#include "tests/scratch.h"

namespace loyalty::test {

using core::Json;

inline std::string hq_source(const std::string& rel) {
  return std::string(LOYALTY_SOURCE_DIR) + "/" + rel;
}

inline std::string read_all(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A database target for an empty HQ on `backend` ("sqlite" or "postgres"):
// a new SQLite path, or a new database in the test cluster.
inline std::string fresh_hq_target(
    const std::string& backend,
    const std::filesystem::path& dir = std::filesystem::temp_directory_path()) {
  const auto name = "t_" + platform::random_hex(6);
  if (backend == "sqlite") return "sqlite:" + remove_after_run(dir / (name + ".db")).string();
  const char* file = std::getenv("LOYALTY_PG_CONNINFO_FILE");
  REQUIRE(file != nullptr);  // ctest starts the cluster and sets this
  std::string conninfo = read_all(file);
  while (!conninfo.empty() && conninfo.back() == '\n') conninfo.pop_back();
  auto admin = hq::open_sql("postgres:" + conninfo);
  REQUIRE(admin);
  (*admin)->exec("CREATE DATABASE " + name);
  return "postgres:" + conninfo.substr(0, conninfo.rfind("dbname=")) + "dbname=" + name;
}

// Opens the HQ database at `target`, migrated.
inline std::unique_ptr<hq::SqlConn> open_hq_db(const std::string& target) {
  auto db = hq::open_sql(target);
  if (!db) FAIL(db.error().message);
  REQUIRE(hq::migrate_hq(**db));
  return std::move(*db);
}

// Opens an empty, migrated HQ database on `backend`.
inline std::unique_ptr<hq::SqlConn> fresh_hq_db(const std::string& backend) {
  return open_hq_db(fresh_hq_target(backend));
}

// A terminal in a test: evaluates and commits with the real engine against
// its own view of members, and produces the records it would upload.
class FakeTerminal {
 public:
  FakeTerminal(std::string store, std::string terminal, const core::Program& program)
      : store_(std::move(store)), terminal_(std::move(terminal)), program_(program) {}

  void know(const core::MemberState& m) { members_[m.id] = m; }
  // Sells at `unix` seconds on (its store-local time by default), not on
  // 2026-11-23: for a real HQ process, whose clock is the machine's.
  void dated_from(std::int64_t unix) {
    base_ = unix;
    const auto at =
        core::to_local(std::chrono::sys_seconds(std::chrono::seconds(unix)), "Asia/Shanghai");
    REQUIRE(at);
    local_ = core::format_local_datetime(*at);
  }
  const core::MemberState& view(const std::string& id) { return members_.at(id); }

  sync::TxnRecord sell(const std::string& member, const Json& request,
                       const std::string& local = "") {
    auto& m = members_.at(member);
    core::Request req;
    REQUIRE(core::request_from_json(request, req));
    req.at = *core::parse_local_datetime(local.empty() ? local_ : local);
    req.zone = "Asia/Shanghai";
    ++seq_;
    req.txn_id = store_ + "-" + terminal_ + "-" + std::to_string(100000 + seq_);
    auto o = core::evaluate(program_, m, req);
    if (!o) FAIL(o.error().message);
    const auto before = m;
    auto c = core::commit(program_, m, *o);
    REQUIRE(c);
    auto r = sync::record_of_commit(program_, before, m, *o, *c, request, seq_, base_ + seq_);
    return r;
  }

  sync::Batch batch(std::vector<sync::TxnRecord> records) const {
    return sync::Batch{store_, terminal_, base_, std::move(records)};
  }
  const std::string& store() const { return store_; }
  const std::string& terminal() const { return terminal_; }

 private:
  std::string store_, terminal_;
  const core::Program& program_;
  std::map<std::string, core::MemberState> members_;
  std::int64_t seq_ = 0;
  std::int64_t base_ = 1'795'300'000;  // committed_at is base_ + its sequence
  std::string local_ = "2026-11-23T10:00:00";
};

// Two lattes and a croissant, in the coffee program's terms.
inline Json coffee_basket() {
  return Json::parse(R"({"currency": "CNY", "lines": [
  {"sku": "latte-m", "categories": ["coffee"], "tags": ["basic-drink"], "quantity": 2, "unit_price": 2800},
  {"sku": "croissant", "categories": ["bakery"], "quantity": 1, "unit_price": 1200}]})");
}

inline core::Program coffee_program() {
  auto p = core::load_program_text(read_all(hq_source("examples/programs/coffee-chain.json")));
  REQUIRE(p);
  return *p;
}

inline core::MemberState demo_member_state() {
  auto m =
      core::member_from_json(Json::parse(read_all(hq_source("examples/members/demo-member.json"))));
  REQUIRE(m);
  return *m;
}

}  // namespace loyalty::test
