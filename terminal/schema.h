// The terminal's SQLite schema, as numbered migrations applied at start
// (platform::Db::migrate). Never edit a released migration; add one.
#pragma once

#include <span>

#include "platform/sqlite.h"

namespace loyalty::terminal {

std::span<const platform::Migration> terminal_migrations();

}  // namespace loyalty::terminal
