#include "core/fixed.h"

#include <cassert>
#include <limits>

namespace loyalty::core {

const char* to_string(Rounding r) {
  switch (r) {
    case Rounding::kFloor: return "floor";
    case Rounding::kHalfUp: return "half_up";
    case Rounding::kCeil: return "ceil";
  }
  return "floor";
}

std::optional<Rounding> parse_rounding(std::string_view s) {
  if (s == "floor") return Rounding::kFloor;
  if (s == "half_up") return Rounding::kHalfUp;
  if (s == "ceil") return Rounding::kCeil;
  return std::nullopt;
}

i128 round_div(i128 num, i128 den, Rounding mode) {
  assert(den > 0);
  i128 q = num / den;
  i128 r = num % den;
  if (r == 0) return q;
  // C++ division truncates toward zero; first make q the floor.
  if (r < 0) {
    q -= 1;
    r += den;
  }
  switch (mode) {
    case Rounding::kFloor: return q;
    case Rounding::kCeil: return q + 1;
    case Rounding::kHalfUp: return (2 * r >= den) ? q + 1 : q;
  }
  return q;
}

std::optional<Decimal4> Decimal4::parse(std::string_view text, bool allow_negative) {
  if (text.empty() || text.size() > 24) return std::nullopt;
  bool negative = false;
  if (text.front() == '-') {
    if (!allow_negative) return std::nullopt;
    negative = true;
    text.remove_prefix(1);
  }
  std::int64_t whole = 0;
  std::int64_t frac = 0;
  int frac_digits = 0;
  bool seen_dot = false;
  bool seen_digit = false;
  for (char c : text) {
    if (c == '.') {
      if (seen_dot) return std::nullopt;
      seen_dot = true;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    seen_digit = true;
    if (seen_dot) {
      if (++frac_digits > 4) return std::nullopt;
      frac = frac * 10 + (c - '0');
    } else {
      if (whole > 100'000'000'000'000) return std::nullopt;
      whole = whole * 10 + (c - '0');
    }
  }
  if (!seen_digit || (seen_dot && frac_digits == 0)) return std::nullopt;
  for (int i = frac_digits; i < 4; ++i) frac *= 10;
  std::int64_t units = whole * kScale + frac;
  return Decimal4{negative ? -units : units};
}

std::string Decimal4::to_string() const {
  std::int64_t u = units < 0 ? -units : units;
  std::string s = (units < 0 ? "-" : "") + std::to_string(u / kScale);
  std::int64_t frac = u % kScale;
  if (frac != 0) {
    std::string f = std::to_string(frac);
    f.insert(0, 4 - f.size(), '0');
    while (!f.empty() && f.back() == '0') f.pop_back();
    s += "." + f;
  }
  return s;
}

std::int64_t narrow(i128 v) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  if (v > kMax) return kMax;
  if (v < kMin) return kMin;
  return static_cast<std::int64_t>(v);
}

}  // namespace loyalty::core
