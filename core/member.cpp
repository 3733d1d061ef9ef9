#include "core/member.h"

#include <cstdio>

namespace loyalty::core {

namespace {
constexpr Period kStoredPeriods[] = {Period::kDay,     Period::kWeek,     Period::kMonth,
                                     Period::kQuarter, Period::kHalfYear, Period::kYear,
                                     Period::kLifetime};
}

namespace {
thread_local CounterReads* current_reads = nullptr;
}  // namespace

CounterReads::CounterReads() : outer_(current_reads) {
  current_reads = this;
}

CounterReads::~CounterReads() {
  current_reads = outer_;
}

void CounterReads::note(const std::string& key) {
  if (current_reads != nullptr) current_reads->keys_.insert(key);
}

MemberState with_counters(const MemberState& m, const std::set<std::string>& keys) {
  MemberState out = m;
  const auto keep = [&](Counters& c) {
    std::erase_if(c.raw(), [&](const auto& kv) { return !keys.contains(kv.first); });
  };
  keep(out.counters);
  if (out.referrer) keep(out.referrer->counters);
  return out;
}

std::int64_t Counters::get(const std::string& metric, Period p, LocalDays d) const {
  if (p == Period::kTransaction) return 0;
  const auto key = metric + "@" + period_key(p, d);
  CounterReads::note(key);
  auto it = values_.find(key);
  return it == values_.end() ? 0 : it->second;
}

std::int64_t Counters::rolling_months(const std::string& metric, int months, LocalDays d) const {
  std::int64_t sum = 0;
  for (int i = 0; i < months; ++i) sum += get(metric, Period::kMonth, add_months(d, -i));
  return sum;
}

void Counters::add(const std::string& metric, LocalDays d, std::int64_t delta) {
  if (delta == 0) return;
  for (Period p : kStoredPeriods) add_key(metric + "@" + period_key(p, d), delta);
}

void Counters::add_key(const std::string& key, std::int64_t delta) {
  auto& v = values_[key];
  v += delta;
  if (v == 0) values_.erase(key);
}

namespace {

// The first day of the period a key names ("D2026-11-23", "W2026-11-23",
// "M2026-11", "Q2026-4", "H2026-2", "Y2026"); nullopt for "L" and keys this
// version does not know, which prune() keeps.
std::optional<std::pair<Period, LocalDays>> key_start(std::string_view key) {
  const auto at = key.rfind('@');
  if (at == std::string_view::npos || at + 2 > key.size()) return std::nullopt;
  const char kind = key[at + 1];
  const std::string rest(key.substr(at + 2));
  int y = 0;
  unsigned n = 1;
  char tail = 0;
  const auto ymd = [&](Period p) -> std::optional<std::pair<Period, LocalDays>> {
    auto d = parse_local_date(rest);
    if (!d) return std::nullopt;
    return std::pair{p, *d};
  };
  const auto month_of = [&](Period p, unsigned months_per,
                            unsigned count) -> std::optional<std::pair<Period, LocalDays>> {
    if (std::sscanf(rest.c_str(), "%d-%u%c", &y, &n, &tail) != 2 || n < 1 || n > count || y < 1 ||
        y > 9999)
      return std::nullopt;
    return std::pair{p, LocalDays{date::year{y} / date::month{(n - 1) * months_per + 1} / 1}};
  };
  switch (kind) {
    case 'D': return ymd(Period::kDay);
    case 'W': return ymd(Period::kWeek);
    case 'M': return month_of(Period::kMonth, 1, 12);
    case 'Q': return month_of(Period::kQuarter, 3, 4);
    case 'H': return month_of(Period::kHalfYear, 6, 2);
    case 'Y':
      if (std::sscanf(rest.c_str(), "%d%c", &y, &tail) != 1 || y < 1 || y > 9999)
        return std::nullopt;
      return std::pair{Period::kYear, LocalDays{date::year{y} / 1 / 1}};
    default: return std::nullopt;
  }
}

}  // namespace

bool Counters::retained(std::string_view key, LocalDays newest) {
  const auto k = key_start(key);
  if (!k) return true;
  const auto [period, start] = *k;
  switch (period) {
    case Period::kDay: return start >= newest - date::days{1};
    case Period::kWeek: return start >= period_start(Period::kWeek, newest) - date::days{7};
    case Period::kMonth: return start >= add_months(newest, -kMonthsKept);
    case Period::kQuarter: return start >= add_months(period_start(period, newest), -3);
    case Period::kHalfYear: return start >= add_months(period_start(period, newest), -6);
    case Period::kYear: return start >= add_months(period_start(period, newest), -12);
    default: return true;
  }
}

std::optional<LocalDays> Counters::newest_day() const {
  std::optional<LocalDays> newest;
  for (const auto& [key, value] : values_) {
    const auto at = key.rfind("@D");
    if (at == std::string::npos) continue;
    auto d = parse_local_date(std::string_view(key).substr(at + 2));
    if (d && (!newest || *d > *newest)) newest = d;
  }
  return newest;
}

void Counters::prune() {
  const auto newest = newest_day();
  if (!newest) return;
  std::erase_if(values_, [&](const auto& kv) { return !retained(kv.first, *newest); });
}

std::int64_t MemberState::available(LocalDays d) const {
  std::int64_t sum = 0;
  for (const auto& lot : lots) {
    if (lot.live_on(d)) sum += lot.points;
  }
  return sum - debt;
}

std::string MemberState::tier_on(LocalDays d) const {
  if (!pending_tier.empty() && pending_tier_from && d >= *pending_tier_from) return pending_tier;
  return tier;
}

}  // namespace loyalty::core
