// libFuzzer target: what the local API reads from a POS request body and
// what HQ reads from a terminal's batch: a basket or event, a member state,
// a member delta and a whole upload batch. Any bytes must be read or refused
// with a problem, never crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/io_json.h"
#include "core/member_delta.h"
#include "hq/json_fast.h"
#include "sync/protocol.h"

using loyalty::core::Json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // HQ reads an upload from its text first: whatever it makes of the bytes
  // must agree with the parsed document.
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto from_text = loyalty::sync::batch_from_text(text);
  const Json j = Json::parse(data, data + size, nullptr, false);
  if (from_text && j.is_discarded()) __builtin_trap();  // read what is not JSON
  if (from_text && from_text->has_value() != loyalty::sync::batch_from_json(j).has_value())
    __builtin_trap();
  // HQ's fast reader must build exactly the document Json::parse does (the
  // text of each number and string included), or refuse what it refuses.
  const Json fast = loyalty::hq::parse_json(text);
  if (fast.is_discarded() != j.is_discarded()) __builtin_trap();
  if (!j.is_discarded() && fast.dump() != j.dump()) __builtin_trap();
  // And the upload read with it gets the same verdict.
  const auto with_fast = loyalty::sync::batch_from_text(text, loyalty::hq::parse_json);
  if (with_fast.has_value() != from_text.has_value() ||
      (with_fast && with_fast->has_value() != from_text->has_value()))
    __builtin_trap();
  if (j.is_discarded()) return 0;
  loyalty::core::Request req;
  (void)loyalty::core::request_from_json(j, req);
  if (j.is_object() && j.contains("basket"))
    (void)loyalty::core::request_from_json(j["basket"], req);
  if (auto m = loyalty::core::member_from_json(j)) (void)loyalty::core::member_to_json(*m);
  if (auto d = loyalty::core::delta_from_json(j)) (void)loyalty::core::delta_to_json(*d);
  if (auto b = loyalty::sync::batch_from_json(j))
    for (const auto& r : b->records) (void)loyalty::sync::record_to_json(r);
  return 0;
}
