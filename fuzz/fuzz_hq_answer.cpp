// libFuzzer target: HQ's answers as the terminal reads them (a change-feed
// page, the answer to a batch, a live check), and the member states a feed
// carries. A
// broken or compromised HQ must not crash a store.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/io_json.h"
#include "sync/feed.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (auto page = loyalty::sync::parse_feed_page(body, 0))
    for (const auto& c : page->changes)
      if (const auto* m = std::get_if<loyalty::sync::MemberChange>(&c.data))
        (void)loyalty::core::member_from_json(m->state);
  (void)loyalty::sync::parse_batch_answer(body);
  (void)loyalty::sync::parse_live_check(body, "M1001");
  return 0;
}
