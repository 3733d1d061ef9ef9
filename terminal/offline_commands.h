// loyaltyctl's offline commands: they need no daemon. `check-program`
// validates a program file; `quote` evaluates a basket against a program and
// a member file and prints the receipt (or JSON).
//
// Thread-safety: single-threaded command-line use.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "platform/cli.h"

namespace loyalty::terminal {

// Exit codes shared by loyaltyctl commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInvalidInput = 3;
inline constexpr int kExitRefused = 4;

using platform::parse_cli_flags;

int run_check_program(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// Installs a provisioning bundle from `loyalty-hq terminals add`.
int run_provision(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_quote(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace loyalty::terminal
