// Sync numbers, end to end with real processes over loopback HTTPS (mutual
// TLS): a terminal queues COMMITS transactions while HQ is down, then HQ
// comes back and the outbox drains; the drain rate is compared with HQ's own
// ingest rate for the same records posted straight to a fresh HQ in the same
// run. Then, online, the time from a commit's acknowledgement at the till to
// the transaction being in HQ's database (p50, p99; goal under 2 s).
//
// usage: bench_sync_drain [COMMITS] [LATENCY_SAMPLES]
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/json_reader.h"
#include "hq/sql.h"
#include "platform/http_client.h"
#include "platform/tls.h"

using namespace loyalty;
using core::Json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr int kMembers = 5000;

int sh(const std::string& cmd) {
  return std::system(cmd.c_str());
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen(log.c_str(), "a", stderr);
    std::vector<char*> argv;
    for (auto a : args) argv.push_back(::strdup(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  return pid;
}

void stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
}

std::string wait_for_file(const fs::path& p) {
  for (int i = 0; i < 1000; ++i) {
    std::ifstream in(p);
    std::string s;
    if (std::getline(in, s) && !s.empty()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {};
}

// A fresh HQ in `dir` with the coffee program and terminal S001/T01.
std::string make_hq(const fs::path& dir, int port) {
  const std::string hq = LOYALTY_HQ;
  const std::string db = "sqlite:" + (dir / "hq.db").string();
  const std::string common = " --dir " + dir.string() + " --db " + db + " >/dev/null";
  sh(hq + " init" + common);
  sh(hq + " publish " + LOYALTY_SOURCE_DIR +
     "/examples/programs/coffee-chain.json --effective-from 0" + common);
  sh(hq + " terminals add S001 T01 --out " + (dir / "bundle.json").string() +
     " --url https://127.0.0.1:" + std::to_string(port) + common);
  return db;
}

pid_t serve_hq(const fs::path& dir, const std::string& db, int port) {
  return spawn({LOYALTY_HQ, "serve", "--dir", dir.string(), "--db", db, "--port",
                std::to_string(port), "--admin-port", "0", "--port-file", (dir / "ports").string()},
               dir / "hq.log");
}

std::int64_t scalar(const std::string& db, const std::string& sql) {
  auto c = hq::open_sql(db);
  if (!c) return -1;
  auto rows = (*c)->query(sql);
  return rows.empty() || rows[0].is_null(0) ? 0 : rows[0].integer(0);
}

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

Json sale(int i) {
  return Json{{"member_id", "M-" + std::to_string(i % kMembers)},
              {"basket",
               {{"currency", "CNY"},
                {"lines", Json::array({{{"sku", "latte-m"},
                                        {"categories", {"coffee"}},
                                        {"tags", {"basic-drink"}},
                                        {"quantity", 1 + i % 3},
                                        {"unit_price", 2800}}})}}}};
}

}  // namespace

int main(int argc, char** argv) {
  const int commits = argc > 1 ? std::atoi(argv[1]) : 100'000;
  const int samples = argc > 2 ? std::atoi(argv[2]) : 200;
  char tmpl[] = "/tmp/bench-drain-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  fs::create_directories(dir / "hq");
  fs::create_directories(dir / "hq2");
  fs::create_directories(dir / "t");
  const int port = free_port();
  const auto hq_db = make_hq(dir / "hq", port);
  {
    Json members = Json::array();
    // A store's member base: 100,000 sales are 20 visits each, not hundreds.
    for (int i = 0; i < kMembers; ++i)
      members.push_back({{"state", {{"id", "M-" + std::to_string(i)}, {"lots", Json::array()}}}});
    std::ofstream(dir / "members.json") << members.dump();
  }
  const pid_t terminal = spawn(
      {LOYALTYD, "--data.database", (dir / "t" / "t.db").string(), "--api.token_file",
       (dir / "t" / "token").string(), "--api.port", "0", "--api.port_file",
       (dir / "t" / "port").string(), "--hq.bundle", (dir / "hq" / "bundle.json").string(),
       "--program.file", std::string(LOYALTY_SOURCE_DIR) + "/examples/programs/coffee-chain.json",
       "--program.members", (dir / "members.json").string(), "--log.level", "warn"},
      dir / "t" / "loyaltyd.log");
  const auto tport = static_cast<std::uint16_t>(std::stoi(wait_for_file(dir / "t" / "port")));
  const std::map<std::string, std::string> auth{
      {"Authorization", "Bearer " + wait_for_file(dir / "t" / "token")}};
  platform::HttpClient status_client("127.0.0.1", tport);
  auto depth = [&] {
    auto r = status_client.request(platform::http::verb::get, "/v1/status", "", auth);
    return r ? Json::parse(r->body)["outbox"]["depth"].get<std::int64_t>() : -1;
  };

  // HQ is down: the outbox fills, from four lanes at once.
  std::atomic<int> next{0}, failed{0};
  auto t0 = Clock::now();
  std::vector<std::thread> lanes;
  for (int k = 0; k < 4; ++k)
    lanes.emplace_back([&] {
      platform::HttpClient c("127.0.0.1", tport);
      for (int i; (i = next++) < commits;) {
        auto h = auth;
        h["Idempotency-Key"] = "q-" + std::to_string(i);
        auto r = c.request(platform::http::verb::post, "/v1/transactions", sale(i).dump(), h);
        if (!r || r->status != 201) ++failed;
      }
    });
  for (auto& t : lanes) t.join();
  const double queue_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("sync drain over loopback HTTPS (mutual TLS), HQ on SQLite\n");
  std::printf("  queued %d transactions offline in %.1f s (%d failed); outbox depth %lld\n",
              commits, queue_s, failed.load(), static_cast<long long>(depth()));

  // HQ comes back: time until the outbox is empty.
  t0 = Clock::now();
  pid_t hq = serve_hq(dir / "hq", hq_db, port);
  wait_for_file(dir / "hq" / "ports");
  // What an operator does once HQ is back: sync now, not after the backoff.
  (void)status_client.request(platform::http::verb::post, "/v1/sync", "{}", auth);
  while (depth() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double drain_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto entries = scalar(hq_db, "SELECT COUNT(*) FROM entries WHERE txn_id NOT LIKE 'OPEN-%'");
  const auto txns = scalar(hq_db, "SELECT COUNT(*) FROM transactions");
  const double drain_rate = static_cast<double>(entries) / drain_s;
  std::printf("  drained %lld transactions (%lld entries) in %.2f s = %.0f entries/s\n",
              static_cast<long long>(txns), static_cast<long long>(entries), drain_s, drain_rate);

  // Online: commit to visible at HQ.
  std::vector<double> lat_ms;
  {
    platform::HttpClient c("127.0.0.1", tport);
    const auto base = scalar(hq_db, "SELECT MAX(seq) FROM transactions");
    std::vector<Clock::time_point> acked(static_cast<std::size_t>(samples));
    std::atomic<int> done{0};
    std::thread poller([&] {
      auto db = hq::open_sql(hq_db);
      std::int64_t seen = base;
      while (seen < base + samples) {
        auto rows = (*db)->query("SELECT MAX(seq) FROM transactions");
        const auto now_seen = rows[0].integer(0);
        const auto at = Clock::now();
        for (auto s = seen + 1; s <= now_seen; ++s) {
          const auto k = static_cast<std::size_t>(s - base - 1);
          while (static_cast<std::size_t>(done.load()) <= k) std::this_thread::yield();
          lat_ms.push_back(std::chrono::duration<double, std::milli>(at - acked[k]).count());
        }
        seen = now_seen;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    for (int i = 0; i < samples; ++i) {
      auto h = auth;
      h["Idempotency-Key"] = "live-" + std::to_string(i);
      auto r = c.request(platform::http::verb::post, "/v1/transactions", sale(i).dump(), h);
      acked[static_cast<std::size_t>(i)] = Clock::now();
      done = i + 1;
      if (!r || r->status != 201) std::fprintf(stderr, "live commit failed\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a busy lane
    }
    poller.join();
  }
  std::printf(
      "  online, commit acknowledged -> in HQ's database: p50 %.0f ms, p99 %.0f ms"
      " (%d commits, 20/s); goal p99 < 2000 ms\n",
      pct(lat_ms, 0.5), pct(lat_ms, 0.99), samples);
  stop(terminal);
  stop(hq);

  // HQ's own ingest rate for the same records: posted as the terminal's
  // batches of 500 straight to a fresh HQ, one connection.
  const int port2 = free_port();
  const auto hq2_db = make_hq(dir / "hq2", port2);
  std::vector<std::string> bodies;
  {
    auto db = hq::open_sql(hq_db);
    auto rows =
        (*db)->query("SELECT record FROM transactions ORDER BY seq LIMIT ?1", {std::int64_t{txns}});
    for (std::size_t i = 0; i < rows.size(); i += 500) {
      std::string body = R"({"store_id":"S001","terminal_id":"T01","sent_at":0,"transactions":[)";
      for (std::size_t k = i; k < std::min(rows.size(), i + 500); ++k) {
        if (k > i) body += ",";
        body += rows[k].text(0);
      }
      bodies.push_back(body + "]}");
    }
  }
  hq = serve_hq(dir / "hq2", hq2_db, port2);
  wait_for_file(dir / "hq2" / "ports");
  const auto bundle = Json::parse(std::ifstream(dir / "hq2" / "bundle.json"));
  auto tls = platform::client_tls(bundle["ca_pem"], bundle["cert_pem"], bundle["key_pem"]);
  platform::HttpClient up("127.0.0.1", static_cast<std::uint16_t>(port2), *tls, "localhost",
                          std::chrono::seconds(120));
  t0 = Clock::now();
  for (const auto& b : bodies) {
    auto r = up.request(platform::http::verb::post, "/v1/sync/batches", b);
    if (!r || r->status != 200) std::fprintf(stderr, "direct batch failed\n");
  }
  const double ingest_s = std::chrono::duration<double>(Clock::now() - t0).count();
  stop(hq);
  const auto entries2 =
      scalar(hq2_db, "SELECT COUNT(*) FROM entries WHERE txn_id NOT LIKE 'OPEN-%'");
  const double ingest_rate = static_cast<double>(entries2) / ingest_s;
  std::printf(
      "  HQ's own ingest of the same %lld entries, batches of 500: %.2f s = %.0f entries/s\n",
      static_cast<long long>(entries2), ingest_s, ingest_rate);
  std::printf("  ratio drain/ingest: %.2f\n", drain_rate / ingest_rate);
  fs::remove_all(dir);
  return 0;
}
