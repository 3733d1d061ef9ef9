// Command-line flags for loyaltyctl and loyalty-hq: "--key value" pairs and
// bare switches; other words are positional.
//
// Thread-safety: pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loyalty::platform {

// Switches take no value: --json, --csv, --help, --open, --settle, --retry,
// --remove, --keep-pin.
std::map<std::string, std::string> parse_cli_flags(const std::vector<std::string>& args,
                                                   std::vector<std::string>& positional);

// The first option in `flags` that is not one of `known`; nullopt when
// every one is. A misspelt option must not be ignored, nor eat the next
// argument unnoticed.
std::optional<std::string> unknown_option(const std::map<std::string, std::string>& flags,
                                          const std::vector<std::string_view>& known);

// `text` as a whole number when all of it is one (no sign but '-', no
// spaces, no trailing characters); nullopt otherwise.
std::optional<std::int64_t> whole_number(std::string_view text);

// Turns the echo of a terminal on standard input on or off (a PIN typed
// at a prompt); returns whether it was on. Does nothing for a pipe.
bool set_stdin_echo(bool on);

// A Unix time as a person reads it: "2026-12-07 05:28:18 UTC".
std::string utc_text(std::int64_t unix_seconds);

}  // namespace loyalty::platform
