// loyalty-hq ingest throughput: several terminals upload batches of 500
// transactions concurrently over loopback HTTPS with mutual TLS to a real
// loyalty-hq process. Prints ledger entries per second for each backend and
// the ratio to two baselines measured in the same run on that backend: a
// bare insert of ledger-entry rows, 500 per transaction, and a bare write of
// every row ingest must write for an entry (its ceiling on this machine).
//
// usage: bench_hq_ingest [TERMINALS] [BATCHES_PER_TERMINAL] [postgres]
//   with "postgres", a throwaway cluster is started by scripts/pg-cluster.sh.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/engine.h"
#include "core/io_json.h"
#include "core/member_delta.h"
#include "core/program_loader.h"
#include "hq/schema.h"
#include "hq/sql.h"
#include "platform/crypto.h"
#include "platform/http_client.h"
#include "platform/tls.h"
#include "sync/protocol.h"

using namespace loyalty;
using core::Json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr int kBatch = 500;
constexpr int kMembers = 200;  // per terminal

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int sh(const std::string& cmd) {
  return std::system(cmd.c_str());
}

// A terminal's uploads: real engine output for members of its own, which
// HQ has (imported before), so each record carries the member as loyaltyd
// sends it then: with only the counters the engine read.
std::vector<std::string> make_batches(const core::Program& p, const std::string& store, int batches,
                                      std::int64_t& entries) {
  std::map<std::string, core::MemberState> members;
  std::vector<std::string> out;
  std::int64_t seq = 0;
  const Json basket = Json::parse(R"({"currency": "CNY", "lines": [
    {"sku": "latte-m", "categories": ["coffee"], "tags": ["basic-drink"], "quantity": 2, "unit_price": 2800},
    {"sku": "croissant", "categories": ["bakery"], "quantity": 1, "unit_price": 1200}]})");
  for (int b = 0; b < batches; ++b) {
    sync::Batch batch{store, "T01", 0, {}};
    for (int i = 0; i < kBatch; ++i) {
      ++seq;
      const auto id = store + "-M" + std::to_string(seq % kMembers);
      auto& m = members[id];
      m.id = id;
      core::Request req;
      (void)core::request_from_json(basket, req);
      req.at = *core::parse_local_datetime("2026-11-23T10:00:00");
      req.zone = "Asia/Shanghai";
      req.txn_id = store + "-T01-" + std::to_string(seq);
      const core::CounterReads reads;
      auto o = core::evaluate(p, m, req);
      const auto before = m;
      auto c = core::commit(p, m, *o);
      auto r = sync::record_of_commit(p, before, m, *o, *c, basket, seq, 1'795'300'000);
      r.member_before = core::member_to_json(core::with_counters(before, reads.keys()));
      entries += static_cast<std::int64_t>(r.entries.size());
      batch.records.push_back(std::move(r));
    }
    out.push_back(sync::batch_to_json(batch).dump());
  }
  return out;
}

double bare_inserts_per_s(const std::string& target, std::int64_t rows) {
  auto db = hq::open_sql(target);
  (*db)->exec(
      "CREATE TABLE bare(id TEXT PRIMARY KEY, txn_id TEXT NOT NULL, debit TEXT NOT NULL, "
      "credit TEXT NOT NULL, amount BIGINT NOT NULL, unit TEXT NOT NULL, lot TEXT NOT NULL, "
      "memo TEXT NOT NULL)");
  const auto t0 = Clock::now();
  for (std::int64_t i = 0; i < rows;) {
    (*db)->begin();
    for (int k = 0; k < kBatch && i < rows; ++k, ++i) {
      const auto id = "S-T-" + std::to_string(i);
      (*db)->defer(  // pipelined on PostgreSQL, as ingest's own inserts
          "INSERT INTO bare VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
          {id + "/1", id, std::string("program:p:issued"), "member:M" + std::to_string(i % 200),
           std::int64_t{81}, std::string("pts"), id + "/lot", std::string("earned")});
    }
    (*db)->commit();
  }
  return static_cast<double>(rows) / std::chrono::duration<double>(Clock::now() - t0).count();
}

// What ingest cannot avoid writing, in HQ's own schema: for each entry its
// transaction row with the record as it arrived, the entry and the receipt
// a return elsewhere reads; per batch each member it touched (state and
// change row). Nothing is parsed, replayed or decided: the ceiling SQL
// sets for ingest on this machine. `sample` is one uploaded batch.
double bare_ledger_rows_per_s(const std::string& target, const std::string& sample,
                              std::int64_t rows) {
  auto db = hq::open_sql(target);
  if (!db || !hq::migrate_hq(**db)) return 0;
  const auto batch = Json::parse(sample);
  const auto& first = batch["transactions"][0];
  const auto record = first.dump();
  const auto receipt =
      Json{{"txn_id", "x"}, {"member_id", "x"}, {"return_basis", first["return_basis"]}}.dump();
  const auto state = first["member_before"].dump();
  for (int m = 0; m < kMembers; ++m)
    (*db)->exec("INSERT INTO members(id, state, version) VALUES (?1, ?2, 1)",
                {"M" + std::to_string(m), state});
  const auto t0 = Clock::now();
  std::int64_t version = 1;
  for (std::int64_t i = 0; i < rows;) {
    (*db)->begin();
    ++version;
    for (int k = 0; k < kBatch && i < rows; ++k, ++i) {
      const auto id = "S-T-" + std::to_string(i);
      const auto member = "M" + std::to_string(i % kMembers);
      (*db)->defer(
          "INSERT INTO transactions(txn_id, store_id, terminal_id, seq, member_id, kind, "
          "committed_at, business_day, program_id, program_version, points_earned, "
          "points_redeemed, record_hash, record, received_at) VALUES (?1, 'S', 'T', ?2, ?3, "
          "'purchase', 1, '2026-11-23', 'p', 1, 81, 0, ?4, ?5, 1)",
          {id, i + 1, member, platform::sha256_hex(record), record});
      (*db)->defer(
          "INSERT INTO entries(id, txn_id, debit, credit, amount, unit, lot, memo) "
          "VALUES (?1, ?2, 'program:p:issued', ?3, 81, 'pts', ?4, 'earned')",
          {id + "/1", id, "member:" + member, id + "/lot"});
      (*db)->defer(
          "INSERT INTO changes(kind, key, payload, created_at) VALUES ('receipt', ?1, ?2, 1)",
          {id, receipt});
    }
    for (int m = 0; m < kMembers; ++m) {
      const auto member = "M" + std::to_string(m);
      (*db)->defer("UPDATE members SET state = ?2, version = ?3 WHERE id = ?1",
                   {member, state, version});
      (*db)->defer(
          "INSERT INTO changes(kind, key, payload, created_at) VALUES ('member', ?1, ?2, 1)",
          {member, state});
    }
    (*db)->commit();
  }
  return static_cast<double>(rows) / std::chrono::duration<double>(Clock::now() - t0).count();
}

void run(const std::string& backend, const std::string& target, int terminals, int batches,
         const core::Program& program) {
  char tmpl[] = "/tmp/bench-hq-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  const std::string hq = LOYALTY_HQ;
  const std::string common = " --dir " + dir.string() + " --db '" + target + "' >/dev/null";
  sh(hq + " init" + common);
  sh(hq + " publish " + LOYALTY_SOURCE_DIR +
     "/examples/programs/coffee-chain.json --effective-from 0" + common);
  std::vector<std::vector<std::string>> work(static_cast<std::size_t>(terminals));
  std::int64_t entries = 0;
  for (int t = 0; t < terminals; ++t) {
    const auto store = "S" + std::to_string(100 + t);
    sh(hq + " terminals add " + store + " T01 --out " + (dir / (store + ".json")).string() +
       common);
    const auto csv = dir / (store + "-members.csv");
    {
      std::ofstream out(csv);
      out << "member_id,phone,card_number,name,birthday,tier,points,points_expire_on\n";
      for (int n = 0; n < kMembers; ++n)
        out << store << "-M" << n << ",139" << 10000 * (100 + t) + n << ",,Member,,,0,\n";
    }
    sh(hq + " import-members " + csv.string() + common + " 2>/dev/null");
    work[static_cast<std::size_t>(t)] = make_batches(program, store, batches, entries);
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen((dir / "hq.log").c_str(), "w", stderr);
    const auto d = dir.string(), pf = (dir / "ports").string();
    ::execl(LOYALTY_HQ, LOYALTY_HQ, "serve", "--dir", d.c_str(), "--db", target.c_str(), "--port",
            "0", "--admin-port", "0", "--port-file", pf.c_str(), nullptr);
    std::_Exit(127);
  }
  int port = 0, admin = 0;
  for (int i = 0; i < 500 && port == 0; ++i) {
    std::ifstream in(dir / "ports");
    if (!(in >> port >> admin)) {
      port = 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::size_t bytes = 0;
  for (const auto& w : work)
    for (const auto& b : w) bytes += b.size();
  std::printf("%-9s upload size: %.0f bytes per transaction\n", backend.c_str(),
              static_cast<double>(bytes) / (terminals * batches * kBatch));
  std::atomic<int> failures{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < terminals; ++t)
    threads.emplace_back([&, t] {
      const auto b = Json::parse(slurp(dir / ("S" + std::to_string(100 + t) + ".json")));
      auto tls = platform::client_tls(b["ca_pem"], b["cert_pem"], b["key_pem"]);
      platform::HttpClient c("127.0.0.1", static_cast<std::uint16_t>(port), *tls, "localhost",
                             std::chrono::seconds(120));
      for (const auto& body : work[static_cast<std::size_t>(t)]) {
        auto r = c.request(platform::http::verb::post, "/v1/sync/batches", body);
        if (!r || r->status != 200) {
          ++failures;
          std::fprintf(stderr, "batch failed: %s\n",
                       r ? r->body.substr(0, 300).c_str() : r.error().message.c_str());
        }
      }
    });
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  ::kill(pid, SIGTERM);
  // HQ's own CPU time: on a shared, noisy machine the steadier measure of
  // what a change saved (wall-clock rates move with the neighbours' load).
  rusage usage{};
  ::wait4(pid, nullptr, 0, &usage);
  const auto cpu_s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  const double hq_cpu = cpu_s(usage.ru_utime) + cpu_s(usage.ru_stime);
  if (failures > 0) std::fprintf(stderr, "%s", slurp(dir / "hq.log").c_str());
  const double rate = static_cast<double>(entries) / secs;
  const auto bare_target = backend == "sqlite" ? "sqlite:" + (dir / "bare.db").string() : target;
  const double bare = bare_inserts_per_s(bare_target, entries);
  auto ledger_target = "sqlite:" + (dir / "bare-ledger.db").string();
  if (backend != "sqlite") {  // a database of its own in the same cluster
    auto db = hq::open_sql(target);
    if (db) (*db)->exec("CREATE DATABASE bench_bare_ledger");
    ledger_target = target + " dbname=bench_bare_ledger";
  }
  const double ceiling = bare_ledger_rows_per_s(ledger_target, work[0][0], entries);
  std::printf(
      "%-9s %d terminals x %d batches x %d txns: %lld entries in %.2f s = %8.0f entries/s"
      " (%d failed)\n",
      backend.c_str(), terminals, batches, kBatch, static_cast<long long>(entries), secs, rate,
      failures.load());
  std::printf("%-9s loyalty-hq CPU: %.1f us per entry (%.2f cores busy on average)\n",
              backend.c_str(), hq_cpu * 1e6 / static_cast<double>(entries), hq_cpu / secs);
  std::printf("%-9s bare insert of the same rows, %d per transaction: %8.0f rows/s; ratio %.2f\n",
              backend.c_str(), kBatch, bare, rate / bare);
  std::printf(
      "%-9s bare write of what ingest must write per entry (transaction with its record, entry, "
      "receipt; touched members per batch): %8.0f entries/s; ratio %.2f\n",
      backend.c_str(), ceiling, rate / ceiling);
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  const int terminals = argc > 1 ? std::atoi(argv[1]) : 4;
  const int batches = argc > 2 ? std::atoi(argv[2]) : 10;
  const bool pg = argc > 3 && std::string(argv[3]) == "postgres";
  auto program = core::load_program_text(
      slurp(std::string(LOYALTY_SOURCE_DIR) + "/examples/programs/coffee-chain.json"));
  std::printf("loyalty-hq ingest over loopback HTTPS (mutual TLS)\n");
  char tmpl[] = "/tmp/bench-hq-db-XXXXXX";
  const fs::path dbdir = ::mkdtemp(tmpl);
  // The cluster runs as the postgres user, which must reach its directory.
  fs::permissions(dbdir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  run("sqlite", "sqlite:" + (dbdir / "hq.db").string(), terminals, batches, *program);
  if (pg) {
    const auto cluster = (dbdir / "pg").string();
    if (sh("bash " + std::string(LOYALTY_SOURCE_DIR) + "/scripts/pg-cluster.sh start " + cluster +
           " >/dev/null") == 0) {
      std::string conninfo = slurp(cluster + "/conninfo");
      conninfo.pop_back();
      run("postgres", "postgres:" + conninfo, terminals, batches, *program);
      sh("bash " + std::string(LOYALTY_SOURCE_DIR) + "/scripts/pg-cluster.sh stop " + cluster);
    }
  }
  fs::remove_all(dbdir);
  return 0;
}
