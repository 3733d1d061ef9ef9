#include "terminal/daemon_config.h"

#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>

namespace loyalty::terminal {

namespace po = boost::program_options;

std::optional<DaemonConfig> parse_daemon_config(int argc, char** argv, int& exit_code) {
  DaemonConfig c;
  std::string config_file;
  po::options_description cli("Command line");
  cli.add_options()("help,h", "print the settings and exit")("version", "print the version")(
      "config,c", po::value(&config_file), "config file (INI: [section] key = value)");
  po::options_description s("Settings (config file keys; also --section.key on the command line)");
  auto& t = c.terminal;
  auto& a = t.default_allowance;
  s.add_options()("store.id", po::value(&t.store_id)->default_value(t.store_id),
                  "store code, part of every receipt id")(
      "store.terminal", po::value(&t.terminal_id)->default_value(t.terminal_id),
      "terminal code within the store")("store.time_zone",
                                        po::value(&t.zone)->default_value(t.zone),
                                        "IANA zone of the store's wall clock")(
      "api.listen", po::value(&c.listen)->default_value(c.listen),
      "address of the local API (keep it on loopback)")("api.port",
                                                        po::value(&c.port)->default_value(c.port),
                                                        "TCP port of the local API (0 picks one)")(
      "api.token_file", po::value(&c.token_file)->default_value(c.token_file),
      "bearer token file, created 0600 at first start")(
      "api.body_limit", po::value(&c.body_limit)->default_value(c.body_limit),
      "largest request body in bytes")(
      "api.max_connections", po::value(&c.max_connections)->default_value(c.max_connections),
      "connections of token holders before new ones get 503")(
      "api.max_unauthenticated",
      po::value(&c.max_unauthenticated)->default_value(c.max_unauthenticated),
      "connections that have not shown the token yet; past it the oldest is closed")(
      "api.head_timeout_ms", po::value(&c.head_timeout_ms)->default_value(c.head_timeout_ms),
      "deadline for a connection without the token to send its request head")(
      "api.max_inflight", po::value(&c.max_inflight)->default_value(c.max_inflight),
      "requests in progress before new ones get 503")(
      "api.worker_threads", po::value(&c.worker_threads)->default_value(c.worker_threads),
      "threads running writes (commits, returns, enrollments); reads run on the I/O thread")(
      "api.request_timeout_ms",
      po::value(&c.request_timeout_ms)->default_value(c.request_timeout_ms),
      "deadline for an answer")("api.io_timeout_ms",
                                po::value(&c.io_timeout_ms)->default_value(c.io_timeout_ms),
                                "deadline for reading a request or writing an answer")(
      "api.port_file", po::value(&c.port_file), "write the listening port here once ready")(
      "data.database", po::value(&c.database)->default_value(c.database), "the SQLite file")(
      "program.file", po::value(&c.program_file), "standalone: a program file installed at start")(
      "program.members", po::value(&c.members_file),
      "standalone: members to seed (JSON array) at start")(
      "hq.url", po::value(&c.hq_url), "HQ address; empty runs standalone (no offline limits)")(
      "hq.bundle", po::value(&c.hq_bundle),
      "provisioning bundle (loyaltyctl provision): HQ's address and CA, this terminal's "
      "certificate; turns sync on")("hq.public_key", po::value(&c.hq_public_key),
                                    "HQ's Ed25519 public key (PEM) for app codes")(
      "hq.sync_interval_ms", po::value(&c.sync_interval_ms)->default_value(c.sync_interval_ms),
      "time between sync rounds while nothing is sold (a sale starts one at once)")(
      "hq.live_check_points", po::value(&t.live_check_points)->default_value(t.live_check_points),
      "a redemption of this many points or more asks HQ first (0: never)")(
      "hq.live_check_timeout_ms",
      po::value(&t.live_check_timeout_ms)->default_value(t.live_check_timeout_ms),
      "how long a live check waits for HQ before the offline allowances decide")(
      "offline.max_points_per_member_per_day",
      po::value(&a.max_points_per_member_per_day)->default_value(a.max_points_per_member_per_day),
      "used when the program sets none")("offline.max_points_per_terminal_per_day",
                                         po::value(&a.max_points_per_terminal_per_day)
                                             ->default_value(a.max_points_per_terminal_per_day),
                                         "used when the program sets none")(
      "offline.max_hours_since_sync",
      po::value(&a.max_hours_since_sync)->default_value(a.max_hours_since_sync),
      "used when the program sets none")(
      "counter.enabled", po::value(&c.counter_enabled)->default_value(c.counter_enabled),
      "serve the counter page at /counter/ (staff sign in with HQ's accounts)")(
      "counter.idle_timeout_s",
      po::value(&c.counter_idle_timeout_s)->default_value(c.counter_idle_timeout_s),
      "a signed-in counter session unused this long ends")(
      "counter.max_failures",
      po::value(&c.counter_max_failures)->default_value(c.counter_max_failures),
      "wrong PINs in a row before a staff account is locked here")(
      "counter.lockout_s", po::value(&c.counter_lockout_s)->default_value(c.counter_lockout_s),
      "how long that lock holds")("log.level", po::value(&c.log_level)->default_value(c.log_level),
                                  "debug, info, warn or error");
  po::options_description all;
  all.add(cli).add(s);
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, all), vm);
    if (vm.count("config")) {
      std::ifstream in(vm["config"].as<std::string>());
      if (!in) {
        std::cerr << "loyaltyd: cannot read config file " << vm["config"].as<std::string>() << "\n";
        exit_code = 2;
        return std::nullopt;
      }
      po::store(po::parse_config_file(in, s), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "loyaltyd: " << e.what() << "\n";
    exit_code = 2;
    return std::nullopt;
  }
  if (vm.count("help")) {
    std::cout << "loyaltyd: the store terminal's loyalty daemon\n\n" << all << "\n";
    exit_code = 0;
    return std::nullopt;
  }
  if (vm.count("version")) {
    std::cout << "loyaltyd 0.1.0\n";
    exit_code = 0;
    return std::nullopt;
  }
  t.standalone = c.hq_url.empty() && c.hq_bundle.empty();
  if (c.sync_interval_ms < 100 || c.sync_interval_ms > 3'600'000) {
    std::cerr << "loyaltyd: hq.sync_interval_ms must be between 100 and 3600000\n";
    exit_code = 2;
    return std::nullopt;
  }
  if (t.live_check_points < 0 || t.live_check_timeout_ms < 100 ||
      t.live_check_timeout_ms > 10'000) {
    std::cerr << "loyaltyd: hq.live_check_points must be 0 or more and "
                 "hq.live_check_timeout_ms between 100 and 10000\n";
    exit_code = 2;
    return std::nullopt;
  }
  if (c.counter_idle_timeout_s < 10 || c.counter_max_failures < 1 || c.counter_lockout_s < 1) {
    std::cerr << "loyaltyd: counter.idle_timeout_s must be 10 or more, counter.max_failures and "
                 "counter.lockout_s 1 or more\n";
    exit_code = 2;
    return std::nullopt;
  }
  return c;
}

}  // namespace loyalty::terminal
