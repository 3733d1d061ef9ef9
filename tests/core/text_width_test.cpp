// Receipt columns on a fixed-width printer: a Chinese character takes two
// columns, so a line with a Chinese name still ends at the right margin.
#include <catch2/catch.hpp>

#include "core/text_width.h"

using loyalty::core::display_width;
using loyalty::core::pad_columns;

TEST_CASE("Chinese characters take two columns, ASCII one, broken UTF-8 a byte each",
          "[core][receipt]") {
  CHECK(display_width("Latte M x2") == 10);
  CHECK(display_width("拿铁 x2") == 7);
  CHECK(display_width("咖啡烘焙会员计划") == 16);
  CHECK(display_width("ＡＢ") == 4);     // fullwidth letters
  CHECK(display_width("é") == 1);        // two bytes, one column
  CHECK(display_width("e\u0301") == 1);  // a combining accent takes none
  CHECK(display_width("\xff\xfe") == 2);
  CHECK(display_width("") == 0);
}

TEST_CASE("a receipt line puts the amount at column 40 whatever the script of the name",
          "[core][receipt]") {
  const auto english = pad_columns("Latte M x2", "56.00", 40);
  const auto chinese = pad_columns("拿铁（中杯） x2", "56.00", 40);
  CHECK(display_width(english) == 40);
  CHECK(display_width(chinese) == 40);
  CHECK(chinese.ends_with(" 56.00"));
  // Too long for the line: one space, never a cut name.
  const auto long_name = pad_columns(std::string(36, 'x'), "56.00", 40);
  CHECK(long_name == std::string(36, 'x') + " 56.00");
}
