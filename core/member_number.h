// Member card numbers: 16 digits, the last a Luhn check digit, so a typo at
// the till or in an import file is caught.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

namespace loyalty::core {

// The Luhn check digit for `digits` (which do not include it).
char luhn_check_digit(std::string_view digits);
// 16 digits whose last is the Luhn check digit of the first 15.
bool valid_card_number(std::string_view card);

}  // namespace loyalty::core
