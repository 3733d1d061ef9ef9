// The width of text on a fixed-width display (a receipt printer, a
// terminal): East Asian wide and fullwidth characters (Chinese, Japanese,
// Korean, fullwidth forms) take two columns, combining marks none, others
// one. Enough for receipts; not a full Unicode width table.
//
// Thread-safety: pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace loyalty::core {

std::size_t display_width(std::string_view utf8);

// `left`, spaces, then `right`, together `width` columns wide (a receipt
// line with the amount at the right margin); one space between them when
// they do not fit.
std::string pad_columns(std::string left, const std::string& right, std::size_t width);

}  // namespace loyalty::core
