#include <catch2/catch.hpp>

#include "core/local_time.h"

using namespace loyalty::core;
using namespace std::chrono;

TEST_CASE("store-local time follows the zone's daylight saving", "[core][time]") {
  // 2026-03-08 is the US spring-forward day: 07:30 UTC is 02:30 EST before
  // the change would be... the change happens at 02:00 local, so 07:30 UTC is
  // 03:30 EDT.
  const auto utc = date::sys_days{date::year{2026} / 3 / 8} + hours{7} + minutes{30};
  auto ny = to_local(utc, "America/New_York");
  REQUIRE(ny);
  CHECK(format_local_datetime(*ny) == "2026-03-08T03:30:00");
  // The same instant in Shanghai (no DST, UTC+8).
  CHECK(format_local_datetime(*to_local(utc, "Asia/Shanghai")) == "2026-03-08T15:30:00");
  // A winter instant in New York is UTC-5.
  const auto winter = date::sys_days{date::year{2026} / 1 / 7} + hours{12};
  CHECK(format_local_datetime(*to_local(winter, "America/New_York")) == "2026-01-07T07:00:00");
}

TEST_CASE("an unknown zone is refused with its name", "[core][time]") {
  auto r = to_local(std::chrono::sys_seconds{}, "Mars/Olympus");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("Mars/Olympus") != std::string::npos);
}

TEST_CASE("period keys name the calendar period containing a day", "[core][time]") {
  const auto d = *parse_local_date("2026-11-22");  // a Sunday
  CHECK(weekday_index(d) == 0);
  CHECK(period_key(Period::kDay, d) == "D2026-11-22");
  CHECK(period_key(Period::kWeek, d) == "W2026-11-16");
  CHECK(period_key(Period::kMonth, d) == "M2026-11");
  CHECK(period_key(Period::kQuarter, d) == "Q2026-4");
  CHECK(period_key(Period::kHalfYear, d) == "H2026-2");
  CHECK(period_key(Period::kYear, d) == "Y2026");
  CHECK(format_local_date(period_end(Period::kQuarter, d)) == "2026-12-31");
  CHECK(format_local_date(add_months(d, -11)) == "2025-12-01");
}

TEST_CASE("malformed local times are refused", "[core][time]") {
  CHECK_FALSE(parse_local_datetime("2026-02-30T10:00:00"));
  CHECK_FALSE(parse_local_datetime("2026-11-22 25:00:00"));
  CHECK_FALSE(parse_local_datetime("2026-11-22T10:00"));
  CHECK(parse_local_datetime("2026-11-22 10:00:00"));
  CHECK_FALSE(parse_clock_minutes("7:30"));
  CHECK(*parse_clock_minutes("17:30") == 1050);
}

TEST_CASE("anniversaries fall on the same day, 29 February on the 28th in common years",
          "[core][time]") {
  const auto d = [](const char* s) { return *parse_local_date(s); };
  CHECK(anniversary_in(d("2023-11-22"), 2026) == d("2026-11-22"));
  CHECK(anniversary_in(d("2024-02-29"), 2025) == d("2025-02-28"));
  CHECK(anniversary_in(d("2024-02-29"), 2028) == d("2028-02-29"));
  // Three years a member: not on the 1,095th day across a leap day, but on
  // the anniversary.
  CHECK(full_years(d("2023-11-22"), d("2026-11-21")) == 2);
  CHECK(full_years(d("2023-11-22"), d("2026-11-22")) == 3);
  CHECK(full_years(d("2024-02-29"), d("2025-02-27")) == 0);
  CHECK(full_years(d("2024-02-29"), d("2025-02-28")) == 1);
  CHECK(full_years(d("2024-02-29"), d("2028-02-28")) == 3);
  CHECK(full_years(d("2024-02-29"), d("2028-02-29")) == 4);
  CHECK(full_years(d("2026-05-01"), d("2026-04-30")) == -1);
}
