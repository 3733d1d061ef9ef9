// Command-line flags for loyaltyctl and loyalty-hq: "--key value" pairs and
// bare switches; other words are positional.
//
// Thread-safety: pure.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace loyalty::platform {

// Switches take no value: --json, --csv, --help, --open.
std::map<std::string, std::string> parse_cli_flags(const std::vector<std::string>& args,
                                                   std::vector<std::string>& positional);

}  // namespace loyalty::platform
