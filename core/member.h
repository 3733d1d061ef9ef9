// What the engine knows about a member: lots, debt, counters, stamps,
// vouchers, passes, stored value. The terminal keeps this in its SQLite cache
// (HQ's view at its cursor plus unacknowledged local entries); the engine only
// reads it, and ledger.h applies a committed outcome to it.
//
// Thread-safety: plain value; callers synchronise.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/local_time.h"

namespace loyalty::core {

// A batch of earned points with its own expiry. `points` is what remains.
struct Lot {
  std::string id;
  LocalDays earned_on{};
  std::optional<LocalDays> expires_on;  // dead from this day on; nullopt = never
  std::int64_t points = 0;
  bool live_on(LocalDays d) const { return points > 0 && (!expires_on || d < *expires_on); }
};

struct HeldVoucher {
  std::string code;
  std::string template_id;
  std::optional<LocalDays> expires_on;  // dead from this day on
};

struct HeldPass {
  std::string pass_id;
  LocalDays valid_from{};
  LocalDays valid_to{};  // inclusive
  std::string code;      // "<sale txn>/p<line>" for a pass sold at a till; may be empty
  bool operator==(const HeldPass&) const = default;
};

// Counters keyed "metric@period-key" for every period (see period_key()).
class Counters {
 public:
  std::int64_t get(const std::string& metric, Period p, LocalDays d) const;
  // Sum of the monthly values of the `months` calendar months ending with d's.
  std::int64_t rolling_months(const std::string& metric, int months, LocalDays d) const;
  // Adds to the day, week, month, quarter, half-year, year and lifetime keys.
  void add(const std::string& metric, LocalDays d, std::int64_t delta);
  void add_key(const std::string& key, std::int64_t delta);
  // Drops the keys no rule can read any more, so a member who shops every
  // day keeps a bounded state (and bounded sync records). The engine reads
  // the current day, week, quarter, half-year and year, the one before
  // each (tier windows end yesterday), up to kMonthsKept months back
  // (rolling tier windows) and the lifetime. Relative to the newest day
  // recorded, not a clock, so the terminal and HQ prune alike.
  void prune();
  // The newest day with a day key, if any.
  std::optional<LocalDays> newest_day() const;
  // Whether prune() keeps `key` when the newest recorded day is `newest`.
  static bool retained(std::string_view key, LocalDays newest);
  static constexpr int kMonthsKept = 61;  // the longest rolling window (60) and this month
  const std::map<std::string, std::int64_t>& raw() const { return values_; }
  std::map<std::string, std::int64_t>& raw() { return values_; }

 private:
  std::map<std::string, std::int64_t> values_;
};

// The counter keys Counters::get looks up on this thread while one is
// alive (nested ones each see their own). A terminal evaluates with one to
// upload the member with only the counters the engine read: the replay at
// HQ reads the same keys and finds the same values, so its outcome is the
// same, and the record is not every window of every metric.
class CounterReads {
 public:
  CounterReads();
  ~CounterReads();
  CounterReads(const CounterReads&) = delete;
  CounterReads& operator=(const CounterReads&) = delete;
  const std::set<std::string>& keys() const { return keys_; }
  // Called by Counters::get.
  static void note(const std::string& key);

 private:
  std::set<std::string> keys_;
  CounterReads* outer_;
};

struct ReferrerView {
  std::string id;
  std::string tier;
  Counters counters;
};

struct MemberState {
  std::string id;
  std::string tier;  // empty = the program's entry level
  std::string pending_tier;
  std::optional<LocalDays> pending_tier_from;  // next-day upgrades
  std::optional<LocalDays> tier_valid_until;   // accelerated upgrades
  std::optional<LocalDays> grace_until;
  std::optional<LocalDays> enrolled_on;
  std::optional<unsigned> birth_month;  // 1..12
  std::string referred_by;
  std::vector<Lot> lots;
  std::int64_t debt = 0;
  Counters counters;
  std::optional<LocalDays> first_purchase_on;
  std::optional<LocalDays> last_purchase_on;
  int streak_days = 0;
  std::int64_t sv_base = 0;
  std::int64_t sv_bonus = 0;
  std::vector<HeldVoucher> vouchers;
  std::vector<HeldPass> passes;
  // Verified attributes HQ set (a student card checked): name -> last day
  // it holds. Read by the `attribute` condition.
  std::map<std::string, LocalDays> attributes;
  std::optional<ReferrerView> referrer;

  // Points the member can spend on `d`: live lots minus debt (may be negative).
  std::int64_t available(LocalDays d) const;
  // Tier in force on `d` (a pending next-day upgrade counts from its day).
  std::string tier_on(LocalDays d) const;
};

// `m` with only the counters named in `keys`, its own and its referrer's.
MemberState with_counters(const MemberState& m, const std::set<std::string>& keys);

}  // namespace loyalty::core
