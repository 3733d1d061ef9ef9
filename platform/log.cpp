#include "platform/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

namespace loyalty::platform {

namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mutex;

const bool g_journal = std::getenv("JOURNAL_STREAM") != nullptr;

}  // namespace

bool parse_log_level(std::string_view text, LogLevel& out) {
  if (text == "debug")
    out = LogLevel::kDebug;
  else if (text == "info")
    out = LogLevel::kInfo;
  else if (text == "warn")
    out = LogLevel::kWarn;
  else if (text == "error")
    out = LogLevel::kError;
  else
    return false;
  return true;
}

void fail_stop(std::string_view what) {
  log(LogLevel::kError, std::string("data loss, stopping: ") + std::string(what));
  std::abort();
}

void set_log_level(LogLevel level) {
  g_level = static_cast<int>(level);
}

void log(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) < g_level) return;
  // sd-daemon(3) priorities: err=3, warning=4, info=6, debug=7.
  static constexpr int kPriority[] = {7, 6, 4, 3};
  static constexpr const char* kName[] = {"debug", "info", "warn", "error"};
  const auto i = static_cast<std::size_t>(level);
  std::string line;
  if (g_journal) {
    line = "<" + std::to_string(kPriority[i]) + ">";
  } else {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ %-5s ", static_cast<int>(ms.count()), kName[i]);
    line = buf;
  }
  line.append(message);
  line += '\n';
  std::lock_guard lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace loyalty::platform
