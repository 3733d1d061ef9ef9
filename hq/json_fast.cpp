#include "hq/json_fast.h"

#include <simdjson.h>

#include <optional>

namespace loyalty::hq {

namespace {

using core::Json;

Json convert(const simdjson::dom::element& e) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::OBJECT: {
      Json o = Json::object();
      for (const auto field : simdjson::dom::object(e)) {
        // A repeated key keeps its last value, as Json::parse does.
        o[std::string(field.key)] = convert(field.value);
      }
      return o;
    }
    case T::ARRAY: {
      Json a = Json::array();
      const auto arr = simdjson::dom::array(e);
      a.get_ref<Json::array_t&>().reserve(arr.size());
      for (const auto v : arr) a.push_back(convert(v));
      return a;
    }
    case T::INT64: {
      // Json::parse keeps a non-negative integer as unsigned.
      const auto n = std::int64_t(e);
      return n >= 0 ? Json(static_cast<std::uint64_t>(n)) : Json(n);
    }
    case T::UINT64: return Json(std::uint64_t(e));
    case T::DOUBLE: return Json(double(e));
    case T::STRING: return Json(std::string(std::string_view(e)));
    case T::BOOL: return Json(bool(e));
    case T::NULL_VALUE: return Json(nullptr);
  }
  return Json(nullptr);
}

}  // namespace

Json parse_json(std::string_view text) {
  // A parser keeps the buffers of the largest text it read. Each thread's
  // own serves the records it usually sees; a larger text (a body may be
  // up to 16 MiB) gets a parser of its own, freed when done.
  constexpr std::size_t kKeptCapacity = 64 * 1024;
  thread_local simdjson::dom::parser kept(kKeptCapacity);
  std::optional<simdjson::dom::parser> own;
  auto& parser = text.size() <= kKeptCapacity ? kept : own.emplace();
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size()).get(root) == simdjson::SUCCESS) return convert(root);
  return Json::parse(text, nullptr, false);
}

}  // namespace loyalty::hq
