// Logging to stderr with levels. Under systemd (JOURNAL_STREAM set) each line
// starts with the sd-daemon priority prefix ("<3>") so journald records the
// level; otherwise lines carry a UTC timestamp and the level name.
//
// Thread-safety: safe; lines from different threads never interleave.
#pragma once

#include <string_view>

namespace loyalty::platform {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Parses "debug", "info", "warn" or "error".
bool parse_log_level(std::string_view text, LogLevel& out);
void set_log_level(LogLevel level);
void log(LogLevel level, std::string_view message);

inline void log_debug(std::string_view m) {
  log(LogLevel::kDebug, m);
}
inline void log_info(std::string_view m) {
  log(LogLevel::kInfo, m);
}
inline void log_warn(std::string_view m) {
  log(LogLevel::kWarn, m);
}
inline void log_error(std::string_view m) {
  log(LogLevel::kError, m);
}

// For data loss (core::ErrorCode::kDataLoss, core::DataLoss): logs what broke
// and aborts. A daemon that read a corrupt member state or found a ledger
// invariant broken must not answer with wrong balances; systemd restarts it
// (Restart=on-failure) and the journal says why (DESIGN.md, reliability).
[[noreturn]] void fail_stop(std::string_view what);

}  // namespace loyalty::platform
