// loyaltyd's settings: command line and an INI-style config file
// (packaging/loyaltyd.conf documents every key). Command-line values win.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/result.h"
#include "terminal/checkout.h"

namespace loyalty::terminal {

struct DaemonConfig {
  TerminalSettings terminal;
  std::string listen = "127.0.0.1";
  std::uint16_t port = 8787;
  std::string database = "/var/lib/loyaltyd/loyaltyd.db";
  std::string token_file = "/var/lib/loyaltyd/api-token";
  std::size_t body_limit = 256 * 1024;
  std::size_t max_connections = 64;  // authenticated connections (token holders)
  // Connections that have not shown the token yet, and the time they have
  // to send a whole request head (docs/reliability.md).
  std::size_t max_unauthenticated = 256;
  int head_timeout_ms = 5000;
  std::size_t max_inflight = 32;
  std::size_t worker_threads = 8;
  int request_timeout_ms = 5000;
  int io_timeout_ms = 10000;
  std::string program_file;
  std::string members_file;
  std::string hq_url;
  std::string hq_bundle;  // provisioning bundle (loyaltyctl provision)
  std::string hq_public_key;
  int sync_interval_ms = 2000;  // between sync rounds while nothing is sold
  std::string log_level = "info";
  std::string port_file;  // written once listening (tests, scripts)
  // The counter page at /counter/ (docs/counter.md).
  bool counter_enabled = true;
  int counter_idle_timeout_s = 900;
  int counter_max_failures = 5;
  int counter_lockout_s = 600;
};

// Parses argv. Returns nullopt with `exit_code` set after --help, --version
// or an error (already printed).
std::optional<DaemonConfig> parse_daemon_config(int argc, char** argv, int& exit_code);

}  // namespace loyalty::terminal
