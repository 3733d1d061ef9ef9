// loyaltyctl's daemon commands: they talk to a running loyaltyd over its
// local API (status, scan, member, enroll, quote, commit, redeem, return,
// void, outbox, sync, rewards, stock, receipt). Tables by default, --json for scripts.
//
// Exit codes: 0 ok, 2 usage, 3 invalid input, 4 refused by loyaltyd,
// 5 loyaltyd unreachable, 6 wrong or missing token.
//
// Thread-safety: single-threaded command-line use.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace loyalty::terminal {

inline constexpr int kExitUnreachable = 5;
inline constexpr int kExitUnauthorized = 6;

// True when `command` is one of the daemon commands.
bool is_daemon_command(const std::string& command);
int run_daemon_command(const std::string& command, const std::vector<std::string>& args,
                       std::ostream& out, std::ostream& err);

}  // namespace loyalty::terminal
