// Money: an amount in minor units of an ISO 4217 currency.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loyalty::core {

struct Currency {
  std::string code;  // "CNY", "USD"
  int minor_digits = 2;
  std::int64_t minor_per_major() const;
};

// Known currencies with their minor-unit exponent; nullopt if unknown.
std::optional<Currency> find_currency(std::string_view code);

// "12.34" style rendering of a minor-unit amount: 1234 CNY -> "12.34".
std::string format_amount(std::int64_t minor, const Currency& currency);

}  // namespace loyalty::core
