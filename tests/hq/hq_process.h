// The real loyalty-hq process for end-to-end tests: its CLI, and `serve`
// on chosen or free ports.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "tests/terminal/daemon_fixture.h"

namespace loyalty::test {

class HqProcess {
 public:
  HqProcess(fs::path dir, std::string db) : dir_(std::move(dir)), db_(std::move(db)) {}
  ~HqProcess() { stop(); }
  CtlRun cli(const std::string& args) {
    return run_cmd(std::string(LOYALTY_HQ) + " " + args + " --dir " + dir_.string() + " --db '" +
                   db_ + "'");
  }
  // Extra environment ("NAME=value") for the next start().
  void set_env(std::vector<std::string> env) { env_ = std::move(env); }
  // More `serve` options for the next start().
  void set_serve_args(std::vector<std::string> args) { serve_args_ = std::move(args); }
  // Starts `serve`; `port` 0 picks a free one.
  void start(int port = 0) {
    fs::remove(dir_ / "ports");
    sync_port = 0;
    const std::string p = std::to_string(port);
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen((dir_ / "hq.log").c_str(), "a", stderr);
      for (auto& e : env_) ::putenv(e.data());
      const std::string d = dir_.string(), pf = (dir_ / "ports").string();
      std::vector<std::string> args{LOYALTY_HQ, "serve", "--dir",        d,   "--db",        db_,
                                    "--port",   p,       "--admin-port", "0", "--port-file", pf};
      args.insert(args.end(), serve_args_.begin(), serve_args_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(LOYALTY_HQ, argv.data());
      std::_Exit(127);
    }
    for (int i = 0; i < 500 && sync_port == 0; ++i) {
      std::ifstream in(dir_ / "ports");
      if (!(in >> sync_port >> admin_port)) {
        sync_port = 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    REQUIRE(sync_port != 0);
  }
  // SIGTERM by default; SIGKILL for a crash.
  pid_t pid() const { return pid_; }
  void stop(int sig = SIGTERM) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  static CtlRun run_cmd(const std::string& cmd) {
    FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    while (fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
    const int st = pclose(pipe);
    return {WEXITSTATUS(st), out};
  }
  int sync_port = 0, admin_port = 0;

 private:
  fs::path dir_;
  std::string db_;
  std::vector<std::string> env_;
  std::vector<std::string> serve_args_;
  pid_t pid_ = -1;
};

// A TCP port nobody is listening on right now.
inline int free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace loyalty::test
