#include "core/local_time.h"

#include <array>
#include <charconv>
#include <cstdio>

#include <date/tz.h>

namespace loyalty::core {

namespace {

bool read_int(std::string_view s, std::size_t pos, std::size_t len, int& out) {
  if (pos + len > s.size()) return false;
  for (std::size_t i = pos; i < pos + len; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  auto [p, ec] = std::from_chars(s.data() + pos, s.data() + pos + len, out);
  return ec == std::errc{} && p == s.data() + pos + len;
}

std::optional<LocalDays> make_day(int y, int m, int d) {
  date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(m)},
                           date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return LocalDays{ymd};
}

}  // namespace

std::optional<LocalDays> parse_local_date(std::string_view s) {
  int y = 0, m = 0, d = 0;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  if (!read_int(s, 0, 4, y) || !read_int(s, 5, 2, m) || !read_int(s, 8, 2, d)) return std::nullopt;
  return make_day(y, m, d);
}

std::optional<int> parse_clock_minutes(std::string_view s) {
  int h = 0, m = 0;
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  if (!read_int(s, 0, 2, h) || !read_int(s, 3, 2, m)) return std::nullopt;
  if (h > 24 || m > 59 || (h == 24 && m != 0)) return std::nullopt;
  return h * 60 + m;
}

std::optional<LocalSeconds> parse_local_datetime(std::string_view s) {
  if (s.size() != 19 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  auto day = parse_local_date(s.substr(0, 10));
  int h = 0, m = 0, sec = 0;
  if (!day || !read_int(s, 11, 2, h) || !read_int(s, 14, 2, m) || !read_int(s, 17, 2, sec))
    return std::nullopt;
  if (h > 23 || m > 59 || sec > 59) return std::nullopt;
  return LocalSeconds{*day} + std::chrono::hours{h} + std::chrono::minutes{m} +
         std::chrono::seconds{sec};
}

std::string format_local_date(LocalDays d) {
  date::year_month_day ymd{d};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

std::string format_local_datetime(LocalSeconds t) {
  const auto day = day_of(t);
  const auto secs = (t - LocalSeconds{day}).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "T%02lld:%02lld:%02lld", static_cast<long long>(secs / 3600),
                static_cast<long long>(secs / 60 % 60), static_cast<long long>(secs % 60));
  return format_local_date(day) + buf;
}

Status check_zone(std::string_view zone) {
  try {
    (void)date::locate_zone(zone);
    return {};
  } catch (const std::exception&) {
    return invalid("tz", "unknown IANA time zone '" + std::string(zone) +
                             "', expected a name such as Asia/Shanghai");
  }
}

Result<LocalSeconds> to_local(std::chrono::sys_seconds utc, std::string_view zone) {
  if (auto ok = check_zone(zone); !ok) return std::unexpected(ok.error());
  const auto* tz = date::locate_zone(zone);
  return date::floor<std::chrono::seconds>(tz->to_local(utc));
}

int minutes_of_day(LocalSeconds t) {
  return static_cast<int>((t - LocalSeconds{day_of(t)}).count() / 60);
}

int weekday_index(LocalDays d) {
  return static_cast<int>(date::weekday{d}.c_encoding());
}

const char* to_string(Period p) {
  switch (p) {
    case Period::kTransaction: return "transaction";
    case Period::kDay: return "day";
    case Period::kWeek: return "week";
    case Period::kMonth: return "month";
    case Period::kQuarter: return "quarter";
    case Period::kHalfYear: return "half_year";
    case Period::kYear: return "year";
    case Period::kLifetime: return "lifetime";
  }
  return "lifetime";
}

std::optional<Period> parse_period(std::string_view s) {
  for (auto p : {Period::kTransaction, Period::kDay, Period::kWeek, Period::kMonth,
                 Period::kQuarter, Period::kHalfYear, Period::kYear, Period::kLifetime}) {
    if (s == to_string(p)) return p;
  }
  return std::nullopt;
}

LocalDays add_months(LocalDays d, int months) {
  date::year_month_day ymd{d};
  date::year_month ym{ymd.year(), ymd.month()};
  ym += date::months{months};
  return LocalDays{ym / date::day{1}};
}

LocalDays end_of_month(LocalDays d) {
  date::year_month_day ymd{d};
  return LocalDays{date::year_month_day_last{ymd.year(), date::month_day_last{ymd.month()}}};
}

LocalDays period_start(Period p, LocalDays d) {
  date::year_month_day ymd{d};
  const int month0 = static_cast<int>(static_cast<unsigned>(ymd.month())) - 1;
  switch (p) {
    case Period::kTransaction:
    case Period::kDay: return d;
    case Period::kWeek: return d - date::days{(weekday_index(d) + 6) % 7};
    case Period::kMonth: return add_months(d, 0);
    case Period::kQuarter: return add_months(d, -(month0 % 3));
    case Period::kHalfYear: return add_months(d, -(month0 % 6));
    case Period::kYear: return add_months(d, -month0);
    case Period::kLifetime: return LocalDays{date::year{1970} / 1 / 1};
  }
  return d;
}

LocalDays period_end(Period p, LocalDays d) {
  switch (p) {
    case Period::kTransaction:
    case Period::kDay: return d;
    case Period::kWeek: return period_start(p, d) + date::days{6};
    case Period::kMonth: return end_of_month(d);
    case Period::kQuarter: return end_of_month(add_months(period_start(p, d), 2));
    case Period::kHalfYear: return end_of_month(add_months(period_start(p, d), 5));
    case Period::kYear: return end_of_month(add_months(period_start(p, d), 11));
    case Period::kLifetime: return LocalDays{date::year{9999} / 12 / 31};
  }
  return d;
}

namespace {

std::string make_period_key(Period p, LocalDays d) {
  date::year_month_day ymd{d};
  const int y = static_cast<int>(ymd.year());
  const unsigned m = static_cast<unsigned>(ymd.month());
  char buf[48];
  switch (p) {
    case Period::kTransaction:
    case Period::kDay: return "D" + format_local_date(d);
    case Period::kWeek: return "W" + format_local_date(period_start(p, d));
    case Period::kMonth: std::snprintf(buf, sizeof buf, "M%04d-%02u", y, m); return buf;
    case Period::kQuarter: std::snprintf(buf, sizeof buf, "Q%04d-%u", y, (m + 2) / 3); return buf;
    case Period::kHalfYear: std::snprintf(buf, sizeof buf, "H%04d-%u", y, (m + 5) / 6); return buf;
    case Period::kYear: std::snprintf(buf, sizeof buf, "Y%04d", y); return buf;
    case Period::kLifetime: return "L";
  }
  return "L";
}

}  // namespace

std::string period_key(Period p, LocalDays d) {
  // Counters name a period's key for each metric read and written, and a
  // till or an upload works on one day at a time: each period's last key is
  // kept, with its day (per thread; still a pure function).
  constexpr std::size_t kPeriods = static_cast<std::size_t>(Period::kLifetime) + 1;
  thread_local std::array<std::optional<LocalDays>, kPeriods> days;
  thread_local std::array<std::string, kPeriods> keys;
  const auto i = static_cast<std::size_t>(p);
  if (days[i] != d) {
    keys[i] = make_period_key(p, d);
    days[i] = d;
  }
  return keys[i];
}

LocalDays anniversary_in(LocalDays d, int year) {
  const date::year_month_day ymd{d};
  date::year_month_day on{date::year{year}, ymd.month(), ymd.day()};
  if (!on.ok()) on = date::year{year} / date::February / date::day{28};
  return LocalDays{date::sys_days{on}.time_since_epoch()};
}

int full_years(LocalDays from, LocalDays to) {
  const int to_year = static_cast<int>(date::year_month_day{to}.year());
  int years = to_year - static_cast<int>(date::year_month_day{from}.year());
  if (to < anniversary_in(from, to_year)) --years;
  return years;
}

}  // namespace loyalty::core
