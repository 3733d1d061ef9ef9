// loyaltyd over loopback HTTP: quotes and commits per second with p50/p99,
// end to end through the real daemon (JSON, token check, SQLite commit with
// synchronous=FULL). The baseline, measured in the same run on the same
// disk, is a bare SQLite loop inserting one row per transaction with the
// same durability settings; the report gives commits as a ratio of it.
//
// usage: bench_terminal [COMMITS] [QUOTES] [CLIENTS]
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/json_reader.h"
#include "platform/http_client.h"

using namespace loyalty;
using core::Json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct Lat {
  std::vector<double> us;
  double pct(double p) {
    std::sort(us.begin(), us.end());
    return us.empty() ? 0 : us[static_cast<std::size_t>(p * static_cast<double>(us.size() - 1))];
  }
};

double bare_sqlite_inserts_per_s(const fs::path& dir, int n) {
  const auto path = (dir / "baseline.db").string();
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
               "CREATE TABLE t(id TEXT PRIMARY KEY, body TEXT NOT NULL)",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t(id, body) VALUES (?1, ?2)", -1, &s, nullptr);
  const std::string body(600, 'x');  // about the size of a transaction row
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    const auto id = "txn-" + std::to_string(i);
    sqlite3_bind_text(s, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, body.c_str(), -1, SQLITE_STATIC);
    sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n / secs;
}

Json sale(int lines, int member = 0) {
  Json b{{"currency", "CNY"}, {"lines", Json::array()}};
  for (int i = 0; i < lines; ++i)
    b["lines"].push_back({{"sku", "SKU-" + std::to_string(i)},
                          {"categories", {i % 2 ? "coffee" : "bakery"}},
                          {"tags", {"basic-drink"}},
                          {"quantity", 1 + i % 3},
                          {"unit_price", 900 + 137 * i}});
  return Json{{"member_id", "M-" + std::to_string(member % 500)}, {"basket", b}};
}

}  // namespace

int main(int argc, char** argv) {
  const int commits = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int quotes = argc > 2 ? std::atoi(argv[2]) : 3000;
  const int clients = argc > 3 ? std::atoi(argv[3]) : 4;
  char tmpl[] = "/tmp/bench-loyaltyd-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  // Members shop a few times a day, so commits rotate over a member base
  // rather than piling thousands of lots onto one member.
  constexpr int kMembers = 500;
  {
    Json members = Json::array();
    for (int i = 0; i < kMembers; ++i)
      members.push_back({{"state", {{"id", "M-" + std::to_string(i)}, {"lots", Json::array()}}}});
    std::ofstream(dir / "members.json") << members.dump();
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string db = (dir / "t.db").string(), tok = (dir / "token").string(),
                      port = (dir / "port").string(), members = (dir / "members.json").string();
    const std::string program =
        std::string(LOYALTY_SOURCE_DIR) + "/examples/programs/coffee-chain.json";
    ::execl(LOYALTYD, LOYALTYD, "--data.database", db.c_str(), "--api.token_file", tok.c_str(),
            "--api.port", "0", "--api.port_file", port.c_str(), "--program.file", program.c_str(),
            "--program.members", members.c_str(), "--log.level", "warn", nullptr);
    std::_Exit(127);
  }
  int port = 0;
  for (int i = 0; i < 500 && port == 0; ++i) {
    std::ifstream in(dir / "port");
    if (!(in >> port)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string token;
  std::getline(std::ifstream(dir / "token") >> std::ws, token);
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + token}};
  platform::HttpClient c("127.0.0.1", static_cast<std::uint16_t>(port));

  Lat health;
  for (int i = 0; i < 1000; ++i) {
    const auto s = Clock::now();
    (void)c.request(platform::http::verb::get, "/v1/health");
    health.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
  }
  const auto quote_body = sale(10).dump();
  for (int i = 0; i < 200; ++i)
    (void)c.request(platform::http::verb::post, "/v1/quote", quote_body, auth);
  Lat q;
  auto t0 = Clock::now();
  for (int i = 0; i < quotes; ++i) {
    const auto s = Clock::now();
    auto r = c.request(platform::http::verb::post, "/v1/quote", quote_body, auth);
    if (!r || r->status != 200) {
      std::fprintf(stderr, "quote failed\n");
      return 1;
    }
    q.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
  }
  const double quote_qps = quotes / std::chrono::duration<double>(Clock::now() - t0).count();

  Lat cm;
  t0 = Clock::now();
  for (int i = 0; i < commits; ++i) {
    auto h = auth;
    h["Idempotency-Key"] = "bench-" + std::to_string(i);
    const auto s = Clock::now();
    auto r = c.request(platform::http::verb::post, "/v1/transactions", sale(3, i).dump(), h);
    if (!r || r->status != 201) {
      std::fprintf(stderr, "commit failed: %s\n", r ? r->body.c_str() : r.error().message.c_str());
      return 1;
    }
    cm.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
  }
  const double commit_ps = commits / std::chrono::duration<double>(Clock::now() - t0).count();

  // Several POS clients at once (a store with several lanes on one daemon).
  std::atomic<int> next{0};
  t0 = Clock::now();
  std::vector<std::thread> lanes;
  for (int k = 0; k < clients; ++k)
    lanes.emplace_back([&] {
      platform::HttpClient lc("127.0.0.1", static_cast<std::uint16_t>(port));
      for (int i; (i = next++) < commits;) {
        auto h = auth;
        h["Idempotency-Key"] = "lane-" + std::to_string(i);
        (void)lc.request(platform::http::verb::post, "/v1/transactions", sale(3, i).dump(), h);
      }
    });
  for (auto& t : lanes) t.join();
  const double parallel_ps = commits / std::chrono::duration<double>(Clock::now() - t0).count();
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);

  const double baseline = bare_sqlite_inserts_per_s(dir, commits);
  std::printf("loyaltyd over loopback HTTP (coffee-chain program)\n");
  std::printf("  health (no work):  p50 %7.1f us  p99 %7.1f us\n", health.pct(0.5),
              health.pct(0.99));
  std::printf("  quote  (10 lines): p50 %7.1f us  p99 %7.1f us  %8.0f/s  (%d)\n", q.pct(0.5),
              q.pct(0.99), quote_qps, quotes);
  std::printf("  commit (3 lines):  p50 %7.1f us  p99 %7.1f us  %8.0f/s  (%d, one client)\n",
              cm.pct(0.5), cm.pct(0.99), commit_ps, commits);
  std::printf("  commit, %d clients:                              %8.0f/s\n", clients, parallel_ps);
  std::printf("  baseline: bare SQLite insert, WAL + synchronous=FULL, one row per txn: %8.0f/s\n",
              baseline);
  std::printf("  ratio commit/baseline: %.2f (one client), %.2f (%d clients); goal >= 0.5\n",
              commit_ps / baseline, parallel_ps / baseline, clients);
  fs::remove_all(dir);
  return 0;
}
