#include "platform/cli.h"

#include <termios.h>
#include <unistd.h>

#include <ctime>

#include <algorithm>
#include <charconv>

namespace loyalty::platform {

std::map<std::string, std::string> parse_cli_flags(const std::vector<std::string>& args,
                                                   std::vector<std::string>& positional) {
  std::map<std::string, std::string> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (!a.starts_with("--")) {
      positional.push_back(a);
    } else if (a == "--json" || a == "--csv" || a == "--help" || a == "--open" || a == "--settle" ||
               a == "--retry" || a == "--remove" || a == "--keep-pin") {
      flags[a] = "1";
    } else if (i + 1 < args.size()) {
      flags[a] = args[++i];
    } else {
      flags[a] = "";
    }
  }
  return flags;
}

std::optional<std::string> unknown_option(const std::map<std::string, std::string>& flags,
                                          const std::vector<std::string_view>& known) {
  for (const auto& [name, value] : flags)
    if (std::find(known.begin(), known.end(), name) == known.end()) return name;
  return std::nullopt;
}

std::optional<std::int64_t> whole_number(std::string_view text) {
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return n;
}

bool set_stdin_echo(bool on) {
  termios t{};
  if (::tcgetattr(STDIN_FILENO, &t) != 0) return false;
  const bool was = (t.c_lflag & ECHO) != 0;
  if (on)
    t.c_lflag |= ECHO;
  else
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  ::tcsetattr(STDIN_FILENO, TCSANOW, &t);
  return was;
}

std::string utc_text(std::int64_t unix_seconds) {
  const auto tt = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace loyalty::platform
