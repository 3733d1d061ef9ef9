// Starts the real loyaltyd binary on a free loopback port with its own
// SQLite file in a scratch directory, and talks to it over HTTP like a POS.
#pragma once

#include <sqlite3.h>

#include <sstream>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "core/json_reader.h"
#include "core/member_number.h"
#include "platform/http_client.h"
#include "tests/scratch.h"

namespace loyalty::test {

using core::Json;
namespace fs = std::filesystem;

inline std::string src_path(const std::string& rel) {
  return std::string(LOYALTY_SOURCE_DIR) + "/" + rel;
}

// What runs the binaries under test, from LOYALTY_EXEC_WRAPPER (words
// separated by spaces): "qemu-aarch64 -L /" when the
// arm64 build is tested on an amd64 machine (scripts/cross-arm64.sh).
inline const std::vector<std::string>& exec_wrapper() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> w;
    std::istringstream in(std::getenv("LOYALTY_EXEC_WRAPPER") ? std::getenv("LOYALTY_EXEC_WRAPPER")
                                                              : "");
    for (std::string s; in >> s;) w.push_back(s);
    return w;
  }();
  return words;
}

inline fs::path scratch_dir(const std::string& tag) {
  std::string tmpl = (fs::temp_directory_path() / ("loyaltyd-" + tag + "-XXXXXX")).string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  return remove_after_run(tmpl);
}

struct HttpResult {
  int status = 0;
  Json body;
  std::map<std::string, std::string> headers;
  std::string type() const {
    if (!body.is_object() || !body.contains("type")) return {};
    const auto t = body["type"].get<std::string>();
    return t.substr(t.rfind('/') + 1);
  }
};

class Daemon {
 public:
  explicit Daemon(fs::path dir, std::vector<std::string> extra = {})
      : dir_(std::move(dir)), extra_(std::move(extra)) {}
  ~Daemon() {
    if (pid_ > 0) kill(SIGKILL);
    fs::remove_all(dir_);
  }

  fs::path dir() const { return dir_; }
  // Environment for the next start(), "NAME=VALUE" (e.g. libfaketime's).
  void set_env(std::vector<std::string> env) { env_ = std::move(env); }
  fs::path db() const { return dir_ / "loyaltyd.db"; }

  // Starts and waits until the port file appears. False if it exited.
  bool start() {
    fs::remove(dir_ / "port");
    std::vector<std::string> args = {LOYALTYD,
                                     "--data.database",
                                     db().string(),
                                     "--api.token_file",
                                     (dir_ / "token").string(),
                                     "--api.port",
                                     "0",
                                     "--api.port_file",
                                     (dir_ / "port").string(),
                                     "--log.level",
                                     "info"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    args.insert(args.begin(), exec_wrapper().begin(), exec_wrapper().end());
    pid_ = ::fork();
    if (pid_ == 0) {
      const auto log = (dir_ / "loyaltyd.log").string();
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      for (auto& e : env_) ::putenv(e.data());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::_Exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = status;
        pid_ = -1;
        return false;
      }
      std::ifstream in(dir_ / "port");
      int port = 0;
      if (in >> port && port > 0) {
        port_ = static_cast<std::uint16_t>(port);
        std::ifstream t(dir_ / "token");
        std::getline(t, token_);
        client_ =
            std::make_unique<platform::HttpClient>("127.0.0.1", port_, std::chrono::seconds(10));
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Sends a signal and waits for the exit; returns the wait status.
  int kill(int sig) {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    client_.reset();
    exit_status_ = status;
    return status;
  }
  int stop() { return kill(SIGTERM); }

  std::string log() const {
    std::ifstream in(dir_ / "loyaltyd.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::uint16_t port() const { return port_; }
  const std::string& token() const { return token_; }

  HttpResult call(platform::http::verb verb, const std::string& target, const Json& body = nullptr,
                  const std::string& idem_key = {}, std::string token = "*") {
    std::map<std::string, std::string> h;
    if (token == "*") token = token_;
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    if (!idem_key.empty()) h["Idempotency-Key"] = idem_key;
    return raw(verb, target, body.is_null() ? std::string() : body.dump(), h);
  }
  HttpResult raw(platform::http::verb verb, const std::string& target, const std::string& body,
                 const std::map<std::string, std::string>& headers) {
    REQUIRE(client_);  // start() succeeded
    auto r = client_->request(verb, target, body, headers);
    REQUIRE(r);
    HttpResult out{r->status, Json::parse(r->body, nullptr, false), r->headers};
    return out;
  }
  HttpResult get(const std::string& t) { return call(platform::http::verb::get, t); }
  // A counter or gauge from GET /metrics (Prometheus text).
  std::int64_t metric(const std::string& name) {
    REQUIRE(client_);
    auto r = client_->request(platform::http::verb::get, "/metrics", "",
                              {{"Authorization", "Bearer " + token_}});
    REQUIRE(r);
    const auto at = r->body.find("\n" + name + " ");
    REQUIRE(at != std::string::npos);
    return std::stoll(r->body.substr(at + name.size() + 2));
  }
  HttpResult post(const std::string& t, const Json& b, const std::string& key = {}) {
    return call(platform::http::verb::post, t, b, key);
  }

 private:
  fs::path dir_;
  std::vector<std::string> env_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
  int exit_status_ = 0;
  std::uint16_t port_ = 0;
  std::string token_;
  std::unique_ptr<platform::HttpClient> client_;
};

struct CtlRun {
  int code;
  std::string out;
};

// Runs the real loyaltyctl with `args`, capturing stdout and stderr.
inline CtlRun run_ctl(const std::string& args) {
  std::string cmd;
  for (const auto& w : exec_wrapper()) cmd += w + " ";
  cmd += std::string(LOYALTYCTL) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  const int status = pclose(pipe);
  return {WEXITSTATUS(status), out};
}

inline std::string slurp_file(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// One integer from a query on a terminal's SQLite file.
inline std::int64_t sql_int(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  const auto v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(h);
  return v;
}

inline void write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

// A demo member with a points lot, ready to import with program.members.
inline Json seeded_member(const std::string& id, const std::string& card, const std::string& phone,
                          std::int64_t points) {
  return Json{{"card_number", card},
              {"phone", phone},
              {"name", "Seed " + id},
              {"state",
               {{"id", id},
                {"enrolled_on", "2026-01-05"},
                {"lots", Json::array({{{"id", id + "-L1"},
                                       {"earned_on", "2026-06-01"},
                                       {"expires_on", "2099-01-01"},
                                       {"points", points}}})}}}};
}

// For a daemon started with LD_PRELOAD: a sanitizer build would otherwise
// refuse to run with another library loaded before its runtime.
inline const std::string kAsanWithPreload =
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:verify_asan_link_order=0";

// The environment that loads the storage fault layer
// (tests/faults/faultfs.cpp) into a binary: faults on files whose path
// contains `match`, while the file `control` names a mode.
inline std::vector<std::string> faultfs_env(const fs::path& control, const std::string& match) {
  return {std::string("LD_PRELOAD=") + LOYALTY_FAULTFS, "LOYALTY_FAULT_CONTROL=" + control.string(),
          "LOYALTY_FAULT_MATCH=" + match, kAsanWithPreload};
}

inline std::string card(const std::string& first15) {
  return first15 + core::luhn_check_digit(first15);
}

inline const std::string kCardA = card("900000000000001");

// A standalone terminal with the coffee program and one seeded member.
inline std::vector<std::string> standalone_args(const fs::path& dir,
                                                std::vector<std::string> more = {}) {
  write_file(dir / "members.json",
             Json::array({seeded_member("M-A", kCardA, "13900000001", 5000)}).dump());
  std::vector<std::string> args = {"--program.file",
                                   src_path("examples/programs/coffee-chain.json"),
                                   "--program.members", (dir / "members.json").string()};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

inline Json basket(const std::string& member, std::int64_t qty = 2) {
  return Json{{"member_id", member},
              {"basket",
               {{"currency", "CNY"},
                {"lines", Json::array({{{"sku", "latte-m"},
                                        {"name", "Latte M"},
                                        {"categories", {"coffee"}},
                                        {"tags", {"basic-drink"}},
                                        {"quantity", qty},
                                        {"unit_price", 2800}},
                                       {{"sku", "croissant"},
                                        {"categories", {"bakery"}},
                                        {"quantity", 1},
                                        {"unit_price", 1200}}})}}}};
}

inline std::int64_t available(Daemon& d, const std::string& member) {
  auto r = d.get("/v1/members/" + member);
  REQUIRE(r.status == 200);
  return r.body["points"]["available"].get<std::int64_t>();
}

inline std::int64_t outbox_depth(Daemon& d) {
  auto r = d.get("/v1/status");
  REQUIRE(r.status == 200);
  return r.body["outbox"]["depth"].get<std::int64_t>();
}

}  // namespace loyalty::test
