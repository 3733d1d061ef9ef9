#include <catch2/catch.hpp>

#include "core/fixed.h"
#include "core/money.h"

using namespace loyalty::core;

TEST_CASE("rounding is explicit and correct for negative values too", "[core][fixed]") {
  CHECK(round_div(7, 2, Rounding::kFloor) == 3);
  CHECK(round_div(7, 2, Rounding::kHalfUp) == 4);
  CHECK(round_div(7, 2, Rounding::kCeil) == 4);
  CHECK(round_div(-7, 2, Rounding::kFloor) == -4);
  CHECK(round_div(-7, 2, Rounding::kCeil) == -3);
  CHECK(round_div(5, 10, Rounding::kHalfUp) == 1);
  CHECK(round_div(4, 10, Rounding::kHalfUp) == 0);
  CHECK(round_div(6, 3, Rounding::kCeil) == 2);
}

TEST_CASE("decimals keep four places and refuse anything else", "[core][fixed]") {
  CHECK(Decimal4::parse("1.2")->units == 12000);
  CHECK(Decimal4::parse("2")->units == 20000);
  CHECK(Decimal4::parse("0.0125")->units == 125);
  CHECK_FALSE(Decimal4::parse("0.00001"));
  CHECK_FALSE(Decimal4::parse("1e3"));
  CHECK_FALSE(Decimal4::parse("-1"));
  CHECK_FALSE(Decimal4::parse("1."));
  CHECK_FALSE(Decimal4::parse(""));
  CHECK(Decimal4::parse("-1.5", true)->units == -15000);
  CHECK(Decimal4{12500}.to_string() == "1.25");
}

TEST_CASE("amounts print in major units of their currency", "[core][money]") {
  CHECK(format_amount(1234, *find_currency("CNY")) == "12.34");
  CHECK(format_amount(-5, *find_currency("USD")) == "-0.05");
  CHECK(format_amount(500, *find_currency("JPY")) == "500");
  CHECK_FALSE(find_currency("XXX"));
}
