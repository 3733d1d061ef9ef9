// Integer arithmetic for money, points and multipliers: no floating point
// anywhere near a balance (DESIGN.md, truth 1).
//
// Decimal4 is a non-negative-or-signed decimal with exactly four places kept
// as an integer count of 1/10000 (so 1.2x is 12000 and 15% is 150000 when a
// percent is read as a decimal of 15). Rounding is always explicit.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loyalty::core {

using i128 = __int128;

enum class Rounding { kFloor, kHalfUp, kCeil };

const char* to_string(Rounding r);
std::optional<Rounding> parse_rounding(std::string_view s);

// num/den rounded as asked; den must be positive. Works for negative num.
i128 round_div(i128 num, i128 den, Rounding mode);

struct Decimal4 {
  static constexpr std::int64_t kScale = 10000;
  std::int64_t units = 0;  // value * 10000

  static constexpr Decimal4 from_int(std::int64_t v) { return Decimal4{v * kScale}; }
  // Parses "2", "1.5", "0.0125"; at most four places, no exponent, no sign
  // unless allow_negative.
  static std::optional<Decimal4> parse(std::string_view text, bool allow_negative = false);
  std::string to_string() const;
  friend constexpr bool operator==(Decimal4, Decimal4) = default;
  friend constexpr auto operator<=>(Decimal4, Decimal4) = default;
};

// Scale for exact intermediate points: awards are computed in units of
// 1/kPointScale of a point and rounded once, where the program says.
inline constexpr i128 kPointScale = 1'000'000'000'000;  // 1e12

// Saturating narrow from i128 for results known to fit.
std::int64_t narrow(i128 v);

}  // namespace loyalty::core
