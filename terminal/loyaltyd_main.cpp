// loyaltyd: wiring of the store daemon. Opens the database, installs a
// standalone program, starts the local API, tells systemd it is ready, pings
// the watchdog, and on SIGTERM stops accepting, finishes in-flight commits and
// exits.
#include <sys/stat.h>
#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>

#include "platform/crypto.h"
#include "platform/log.h"
#include "platform/systemd.h"
#include "platform/watchdog.h"
#include "terminal/api.h"
#include "terminal/checkout.h"
#include "terminal/daemon_config.h"
#include "terminal/store.h"
#include "terminal/sync_agent.h"

using namespace loyalty;
using terminal::Json;

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

core::Result<std::string> load_or_create_token(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    // An existing token is never replaced: a POS configured with it would
    // be locked out. A file we cannot read is an error to fix, not a reason
    // to make a new one.
    auto existing = platform::read_text_file(path, 4096);
    if (!existing) return core::invalid(path, "the API token file exists but cannot be read");
    if ((st.st_mode & 077) != 0)
      platform::log_warn(path + " is readable by other users; chmod 600 it");
    std::string t = *existing;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    if (t.size() < 32) return core::invalid(path, "the API token is too short (32+ characters)");
    return t;
  }
  const auto token = platform::random_hex(32);
  if (auto s = platform::write_private_file(path, token + "\n"); !s)
    return std::unexpected(s.error());
  platform::log_info("created the API token in " + path);
  return token;
}

int fail(const std::string& what) {
  platform::log_error(what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int code = 0;
  // Everything this process creates (the SQLite database with its -wal and
  // -shm files, tokens, keys) is for its own user only, under systemd
  // (UMask=0077) or not.
  ::umask(0077);
  auto cfg = terminal::parse_daemon_config(argc, argv, code);
  if (!cfg) return code;
  platform::LogLevel level{};
  if (!platform::parse_log_level(cfg->log_level, level))
    return fail("log.level must be debug, info, warn or error");
  platform::set_log_level(level);
  if (auto z = core::check_zone(cfg->terminal.zone); !z)
    return fail("store.time_zone: " + z.error().message);

  auto store = terminal::Store::open(cfg->database);
  if (!store) return fail(cfg->database + ": " + store.error().message);
  std::optional<terminal::HqBundle> bundle;
  if (!cfg->hq_bundle.empty()) {
    auto b = terminal::load_bundle(cfg->hq_bundle);
    if (!b) return fail("hq.bundle: " + b.error().message);
    // The bundle names this terminal; HQ accepts nothing else from it.
    cfg->terminal.store_id = b->store_id;
    cfg->terminal.terminal_id = b->terminal_id;
    bundle = std::move(*b);
  }
  std::optional<platform::SigningKey> hq_key;
  if (bundle) {
    auto k = platform::SigningKey::from_pem(bundle->hq_public_key_pem);
    if (!k) return fail("hq.bundle: HQ's public key does not load");
    hq_key = std::move(*k);
  } else if (!cfg->hq_public_key.empty()) {
    auto k = platform::SigningKey::from_file(cfg->hq_public_key);
    if (!k) return fail("hq.public_key: " + k.error().message);
    hq_key = std::move(*k);
  }
  // Two idle rounds may pass (a round every sync_interval_ms) before HQ
  // counts as out of reach; at least 5 s.
  cfg->terminal.online_freshness_ms =
      std::max<std::int64_t>(5000, 2 * std::int64_t{cfg->sync_interval_ms} + 1000);
  terminal::Checkout checkout(**store, cfg->terminal, hq_key, unix_now);
  if (auto s = checkout.load_programs(); !s)
    return fail("installed program no longer loads: " + s.error().message);
  if (!cfg->program_file.empty()) {
    auto body = platform::read_text_file(cfg->program_file);
    if (!body) return fail(body.error().message);
    auto added = checkout.install_program(*body, 0);
    if (!added) {
      std::string all = cfg->program_file + " is not a valid program:";
      for (const auto& p : added.error().problems) all += "\n  " + p.to_string();
      if (added.error().problems.empty()) all += " " + added.error().message;
      return fail(all);
    }
    if (*added) platform::log_info("installed program from " + cfg->program_file);
  }
  if (!cfg->members_file.empty()) {
    auto text = platform::read_text_file(cfg->members_file, 64 << 20);
    if (!text) return fail(text.error().message);
    auto n = checkout.import_members(Json::parse(*text, nullptr, false));
    if (!n) return fail(cfg->members_file + ": " + n.error().message);
    if (*n > 0) platform::log_info("imported " + std::to_string(*n) + " members");
  }
  std::unique_ptr<terminal::SyncAgent> sync;
  if (bundle) {
    sync = std::make_unique<terminal::SyncAgent>(**store, checkout, *bundle, unix_now);
    sync->set_interval(std::chrono::milliseconds(cfg->sync_interval_ms));
    checkout.set_commit_listener([&sync] { sync->poke(); });
    const std::chrono::milliseconds live_timeout(cfg->terminal.live_check_timeout_ms);
    checkout.set_live_check([&sync, live_timeout](const std::string& member_id) {
      return sync->live_member(member_id, live_timeout);
    });
    checkout.set_member_lookup(
        [&sync, live_timeout](const std::string& by, const std::string& value) {
          return sync->lookup_member(by, value, live_timeout);
        });
  }
  auto token = load_or_create_token(cfg->token_file);
  if (!token) return fail(token.error().message);

  boost::asio::io_context io(1);
  terminal::LocalApi api(checkout, *token, cfg->token_file, cfg->max_inflight, cfg->worker_threads);
  if (sync) api.set_sync_now([&sync] { sync->sync_now(); });
  std::unique_ptr<terminal::CounterAuth> counter;
  if (cfg->counter_enabled) {
    terminal::CounterAuthOptions o;
    o.idle_timeout_s = cfg->counter_idle_timeout_s;
    o.max_failures = cfg->counter_max_failures;
    o.lockout_s = cfg->counter_lockout_s;
    counter = std::make_unique<terminal::CounterAuth>(**store, o, [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    });
    api.set_counter(counter.get(), false);
  }
  platform::HttpServerOptions opts;
  opts.address = cfg->listen;
  opts.port = cfg->port;
  opts.body_limit = cfg->body_limit;
  opts.admission.trusted_max = cfg->max_connections;
  // Every local client shares the loopback address: one pool, no per-peer cap.
  opts.admission.unproven_max = opts.admission.unproven_per_peer = cfg->max_unauthenticated;
  opts.head_timeout = std::chrono::milliseconds(cfg->head_timeout_ms);
  opts.authorize = [&api](const platform::HttpRequest& r) { return api.authorized(r); };
  opts.handler_timeout = std::chrono::milliseconds(cfg->request_timeout_ms);
  opts.read_timeout = opts.write_timeout = std::chrono::milliseconds(cfg->io_timeout_ms);
  opts.problem_base = terminal::kProblemBase;
  platform::HttpServer server(io, opts, [&api](platform::HttpRequest&& r, platform::Responder d) {
    api.handle(std::move(r), std::move(d));
  });
  if (auto s = server.start(); !s) return fail(s.error().message);
  if (!cfg->port_file.empty()) {
    std::ofstream(cfg->port_file + ".tmp") << server.port() << "\n";
    std::rename((cfg->port_file + ".tmp").c_str(), cfg->port_file.c_str());
  }
  const auto listening = "listening on " + cfg->listen + ":" + std::to_string(server.port());
  platform::log_info("loyaltyd " + cfg->terminal.store_id + "/" + cfg->terminal.terminal_id + " " +
                     listening + (cfg->terminal.standalone ? " (standalone)" : ""));
  if (counter)
    platform::log_info("counter page: http://" + cfg->listen + ":" + std::to_string(server.port()) +
                       "/counter/");
  platform::notify_ready(listening);
  if (sync) sync->start();

  platform::Watchdog watchdog(io);
  // SIGTERM: stop taking connections, let in-flight work answer, then stop.
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  boost::asio::steady_timer drain(io);
  std::function<void(int)> wait_drained = [&](int rounds) {
    if (api.inflight() == 0 || rounds <= 0) {
      watchdog.stop();
      io.stop();
      return;
    }
    drain.expires_after(std::chrono::milliseconds(20));
    drain.async_wait([&, rounds](auto) { wait_drained(rounds - 1); });
  };
  signals.async_wait([&](auto ec, int sig) {
    if (ec) return;
    platform::log_info("signal " + std::to_string(sig) + ": finishing in-flight requests");
    platform::notify_stopping();
    server.stop();
    wait_drained(500);
  });
  io.run();
  api.join();
  if (sync) sync->stop();
  platform::log_info("stopped cleanly");
  return 0;
}
