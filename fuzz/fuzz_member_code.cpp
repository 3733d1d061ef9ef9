// libFuzzer target: member codes as scanned at the till (cards, static and
// dynamic QR codes). Any bytes must be accepted or refused with a problem
// type; a dynamic code is accepted only with HQ's real signature.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "terminal/member_codes.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto key = loyalty::platform::SigningKey::generate();
  const std::string_view code(reinterpret_cast<const char*>(data), size);
  auto r = loyalty::terminal::parse_member_code(code, &key, 1'795'300'000);
  if (!r && r.error().type.empty()) __builtin_trap();
  // Forging needs the key: a fuzzer never finds a valid dynamic code.
  if (r && r->kind == loyalty::terminal::CodeKind::kDynamicQr) __builtin_trap();
  return 0;
}
