#include "platform/uptime.h"

#include <time.h>

#include <fstream>

#include "platform/crypto.h"

namespace loyalty::platform {

namespace {

std::string read_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (std::getline(in, id) && !id.empty()) return id;
  // Unknown: readings compare only within this process, so a restart counts
  // as a reboot (the safe side: offline until HQ is reached).
  return "process-" + random_hex(16);
}

}  // namespace

Uptime uptime_now() {
  static const std::string boot_id = read_boot_id();
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return {boot_id, static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000};
}

}  // namespace loyalty::platform
