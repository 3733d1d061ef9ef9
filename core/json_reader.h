// ObjectReader: reads one JSON object field by field, recording every problem
// with its JSON path, and reports keys nobody asked for (an unknown key is an
// error, never silently ignored). Used by every loader of untrusted JSON.
//
// Thread-safety: one reader per thread; the Problems list is not shared.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fixed.h"
#include "core/local_time.h"
#include "core/result.h"

namespace loyalty::core {

using Json = nlohmann::json;
using Problems = std::vector<Problem>;

std::string join_path(const std::string& base, const std::string& key);
std::string index_path(const std::string& base, std::size_t i);

class ObjectReader {
 public:
  // Records a problem and reads nothing if `value` is not an object.
  ObjectReader(const Json& value, std::string path, Problems& problems);
  ObjectReader(const ObjectReader&) = delete;
  ObjectReader& operator=(const ObjectReader&) = delete;
  ~ObjectReader();  // reports unknown keys

  bool ok() const { return object_ != nullptr; }
  bool has(const std::string& key) const;
  const std::string& path() const { return path_; }
  std::string path(const std::string& key) const { return join_path(path_, key); }
  Problems& problems() { return problems_; }
  void problem(const std::string& key, std::string message);

  // Marks `key` as known and returns its value (nullptr when absent). A
  // required key that is absent is a problem.
  const Json* get(const std::string& key, bool required = false);

  std::optional<std::string> string(const std::string& key, bool required = false);
  std::optional<std::string> id(const std::string& key, bool required = false);
  std::optional<std::int64_t> integer(const std::string& key, bool required = false,
                                      std::int64_t min = 0,
                                      std::int64_t max = INT64_C(1'000'000'000'000'000));
  std::optional<bool> boolean(const std::string& key, bool required = false);
  // A decimal written as a string ("1.5") or an integer; at most four places.
  std::optional<Decimal4> decimal(const std::string& key, bool required, Decimal4 min, Decimal4 max,
                                  bool min_exclusive = false);
  std::optional<LocalDays> date(const std::string& key, bool required = false);
  std::vector<std::string> strings(const std::string& key, bool required = false);
  // Reads the key as one of `choices`.
  std::optional<std::string> choice(const std::string& key, const std::vector<std::string>& choices,
                                    bool required = false);

 private:
  const Json* object_ = nullptr;
  std::string path_;
  Problems& problems_;
  // The values of the keys asked for that the object has: one allocation
  // per reader, where a set of key strings cost one per key.
  std::vector<const Json*> seen_;
};

bool valid_id(const std::string& s);

}  // namespace loyalty::core
