// libFuzzer target: the program loader (core/program_loader.h). Any bytes
// must give a program or a list of problems, never a crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/program_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto p = loyalty::core::load_program_text(text);
  if (!p && p.error().message.empty()) __builtin_trap();  // a refusal must say why
  return 0;
}
