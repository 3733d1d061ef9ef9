#include "core/money.h"

#include <array>

namespace loyalty::core {

namespace {
struct Known {
  const char* code;
  int digits;
};
constexpr std::array<Known, 14> kKnown{{{"CNY", 2},
                                        {"USD", 2},
                                        {"EUR", 2},
                                        {"GBP", 2},
                                        {"HKD", 2},
                                        {"TWD", 2},
                                        {"SGD", 2},
                                        {"JPY", 0},
                                        {"KRW", 0},
                                        {"AUD", 2},
                                        {"CAD", 2},
                                        {"CHF", 2},
                                        {"MOP", 2},
                                        {"KWD", 3}}};
}  // namespace

std::int64_t Currency::minor_per_major() const {
  std::int64_t v = 1;
  for (int i = 0; i < minor_digits; ++i) v *= 10;
  return v;
}

std::optional<Currency> find_currency(std::string_view code) {
  for (const auto& k : kKnown) {
    if (code == k.code) return Currency{k.code, k.digits};
  }
  return std::nullopt;
}

std::string format_amount(std::int64_t minor, const Currency& currency) {
  const bool negative = minor < 0;
  const std::uint64_t abs =
      negative ? 0 - static_cast<std::uint64_t>(minor) : static_cast<std::uint64_t>(minor);
  const auto per = static_cast<std::uint64_t>(currency.minor_per_major());
  std::string s = (negative ? "-" : "") + std::to_string(abs / per);
  if (currency.minor_digits > 0) {
    std::string frac = std::to_string(abs % per);
    frac.insert(0, static_cast<std::size_t>(currency.minor_digits) - frac.size(), '0');
    s += "." + frac;
  }
  return s;
}

}  // namespace loyalty::core
