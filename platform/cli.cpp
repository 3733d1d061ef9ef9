#include "platform/cli.h"

namespace loyalty::platform {

std::map<std::string, std::string> parse_cli_flags(const std::vector<std::string>& args,
                                                   std::vector<std::string>& positional) {
  std::map<std::string, std::string> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (!a.starts_with("--")) {
      positional.push_back(a);
    } else if (a == "--json" || a == "--csv" || a == "--help" || a == "--open") {
      flags[a] = "1";
    } else if (i + 1 < args.size()) {
      flags[a] = args[++i];
    } else {
      flags[a] = "";
    }
  }
  return flags;
}

}  // namespace loyalty::platform
