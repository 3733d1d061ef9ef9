#include "core/member_number.h"

#include <algorithm>

namespace loyalty::core {

char luhn_check_digit(std::string_view digits) {
  int sum = 0;
  bool twice = true;  // the digit next to the check digit is doubled
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

bool valid_card_number(std::string_view card) {
  return card.size() == 16 &&
         std::all_of(card.begin(), card.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         luhn_check_digit(card.substr(0, 15)) == card[15];
}

}  // namespace loyalty::core
