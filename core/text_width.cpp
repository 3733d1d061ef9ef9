#include "core/text_width.h"

namespace loyalty::core {

namespace {

bool wide(char32_t c) {
  return (c >= 0x1100 && c <= 0x115F) ||                 // Hangul Jamo
         (c >= 0x2E80 && c <= 0xA4CF && c != 0x303F) ||  // CJK radicals .. Yi
         (c >= 0xAC00 && c <= 0xD7A3) ||                 // Hangul syllables
         (c >= 0xF900 && c <= 0xFAFF) ||                 // CJK compatibility ideographs
         (c >= 0xFE30 && c <= 0xFE4F) ||                 // CJK compatibility forms
         (c >= 0xFF00 && c <= 0xFF60) ||                 // fullwidth forms
         (c >= 0xFFE0 && c <= 0xFFE6) ||                 // fullwidth signs
         (c >= 0x1F300 && c <= 0x1F64F) ||               // pictographs, emoticons
         (c >= 0x20000 && c <= 0x3FFFD);                 // CJK extensions
}

bool zero_width(char32_t c) {
  return (c >= 0x0300 && c <= 0x036F) || (c >= 0x200B && c <= 0x200F) ||
         (c >= 0xFE00 && c <= 0xFE0F);
}

}  // namespace

std::size_t display_width(std::string_view s) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t n = b < 0x80         ? 1
                          : (b >> 5) == 6  ? 2
                          : (b >> 4) == 14 ? 3
                          : (b >> 3) == 30 ? 4
                                           : 1;
    char32_t c = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      ok = (cont >> 6) == 2;
      c = (c << 6) | (cont & 0x3F);
    }
    if (!ok) {  // not UTF-8: a byte, a column
      ++width;
      ++i;
      continue;
    }
    width += zero_width(c) ? 0u : wide(c) ? 2u : 1u;
    i += n;
  }
  return width;
}

std::string pad_columns(std::string left, const std::string& right, std::size_t width) {
  const auto used = display_width(left) + display_width(right);
  left.append(used + 1 < width ? width - used : 1, ' ');
  return left + right;
}

}  // namespace loyalty::core
