// Time a terminal can trust while its wall clock may be wrong: how long the
// machine has been up (CLOCK_BOOTTIME: setting the clock, by hand, by NTP or
// by an attacker, does not move it; a suspend does not stop it) and which
// boot that is, so a reading is compared only with one of the same boot.
//
// Thread-safety: safe from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace loyalty::platform {

struct Uptime {
  std::string boot_id;  // the kernel's id of this boot; random per process if unreadable
  std::int64_t ms = 0;  // milliseconds since boot
};

Uptime uptime_now();

}  // namespace loyalty::platform
