// systemd's watchdog, kept alive from an Asio event loop: when the unit sets
// WatchdogSec, WATCHDOG=1 is sent every half of it for as long as the loop
// runs, so a wedged loop gets the service restarted. Without it, nothing.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "platform/systemd.h"

namespace loyalty::platform {

class Watchdog {
 public:
  explicit Watchdog(boost::asio::io_context& io) : timer_(io) {
    if (auto every = watchdog_interval()) {
      every_ = *every;
      ping();
    }
  }
  void stop() { timer_.cancel(); }

 private:
  void ping() {
    notify_watchdog();
    timer_.expires_after(every_);
    timer_.async_wait([this](auto ec) {
      if (!ec) ping();
    });
  }

  boost::asio::steady_timer timer_;
  std::chrono::microseconds every_{};
};

}  // namespace loyalty::platform
