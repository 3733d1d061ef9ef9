// systemd service notifications (sd_notify): readiness for Type=notify units,
// the watchdog keep-alive, and stopping. Outside systemd they do nothing.
//
// Thread-safety: safe to call from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace loyalty::platform {

void notify_ready(std::string_view status);
void notify_stopping();
void notify_status(std::string_view status);
void notify_watchdog();
// Half the unit's WatchdogSec when the watchdog is on: how often to ping.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace loyalty::platform
