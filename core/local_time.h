// Store-local time (DESIGN.md, truth 8). Rules about Wednesdays or
// 07:30-10:00 mean the store's wall clock in its IANA zone. The engine takes
// local time as an input; converting from an instant happens here, once, at
// the boundary, with the OS time-zone database (daylight saving included).
//
// Thread-safety: pure functions; date::locate_zone is thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <date/date.h>

#include "core/result.h"

namespace loyalty::core {

using LocalSeconds = date::local_seconds;
using LocalDays = date::local_days;

std::optional<LocalSeconds> parse_local_datetime(std::string_view text);  // 2026-11-23T08:15:00
std::optional<LocalDays> parse_local_date(std::string_view text);         // 2026-11-23
std::optional<int> parse_clock_minutes(std::string_view text);            // "07:30" -> 450

std::string format_local_datetime(LocalSeconds t);
std::string format_local_date(LocalDays d);

// Wall-clock time in `zone` at instant `utc`; an unknown zone is an error.
[[nodiscard]] Result<LocalSeconds> to_local(std::chrono::sys_seconds utc, std::string_view zone);
[[nodiscard]] Status check_zone(std::string_view zone);

inline LocalDays day_of(LocalSeconds t) {
  return date::floor<date::days>(t);
}
int minutes_of_day(LocalSeconds t);
int weekday_index(LocalDays d);  // 0 = Sunday .. 6 = Saturday

// Calendar periods a counter or limit is kept over.
enum class Period { kTransaction, kDay, kWeek, kMonth, kQuarter, kHalfYear, kYear, kLifetime };
const char* to_string(Period p);
std::optional<Period> parse_period(std::string_view s);

// Key naming the period containing `d`: "D2026-11-23", "W2026-11-23" (the
// Monday starting an ISO week), "M2026-11", "Q2026-4", "H2026-2", "Y2026", "L".
std::string period_key(Period p, LocalDays d);
LocalDays period_start(Period p, LocalDays d);
LocalDays period_end(Period p, LocalDays d);  // last day inside the period

// First day of the month `months` after the month of `d` (negative goes back).
LocalDays add_months(LocalDays d, int months);
LocalDays end_of_month(LocalDays d);

// The day in `year` that is the anniversary of `d`: the same month and day,
// except that 29 February falls on 28 February in a common year.
LocalDays anniversary_in(LocalDays d, int year);
// Whole years from `from` to `to`, counted at anniversaries (so 29 February
// 2024 to 28 February 2025 is one year); negative when `to` is earlier.
int full_years(LocalDays from, LocalDays to);

}  // namespace loyalty::core
