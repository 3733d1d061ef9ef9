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

// Switches take no value: --json, --csv, --help, --open.
std::map<std::string, std::string> parse_cli_flags(const std::vector<std::string>& args,
                                                   std::vector<std::string>& positional);

// `text` as a whole number when all of it is one (no sign but '-', no
// spaces, no trailing characters); nullopt otherwise.
std::optional<std::int64_t> whole_number(std::string_view text);

}  // namespace loyalty::platform
