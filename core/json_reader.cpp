#include "core/json_reader.h"

#include <algorithm>

namespace loyalty::core {

std::string join_path(const std::string& base, const std::string& key) {
  return base.empty() ? key : key.empty() ? base : base + "." + key;
}

std::string index_path(const std::string& base, std::size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                    c == '.' || (c >= 'A' && c <= 'Z');
    if (!ok) return false;
  }
  return true;
}

ObjectReader::ObjectReader(const Json& value, std::string path, Problems& problems)
    : path_(std::move(path)), problems_(problems) {
  if (value.is_object()) {
    object_ = &value;
    seen_.reserve(value.size());
  } else {
    problems_.push_back({path_, "must be an object"});
  }
}

ObjectReader::~ObjectReader() {
  if (object_ == nullptr) return;
  std::sort(seen_.begin(), seen_.end());
  seen_.erase(std::unique(seen_.begin(), seen_.end()), seen_.end());
  if (seen_.size() == object_->size()) return;  // every key was asked for
  for (auto it = object_->begin(); it != object_->end(); ++it) {
    if (!std::binary_search(seen_.begin(), seen_.end(), &*it))
      problems_.push_back({path(it.key()), "unknown key"});
  }
}

bool ObjectReader::has(const std::string& key) const {
  return object_ != nullptr && object_->contains(key);
}

void ObjectReader::problem(const std::string& key, std::string message) {
  problems_.push_back({key.empty() ? path_ : path(key), std::move(message)});
}

const Json* ObjectReader::get(const std::string& key, bool required) {
  if (object_ == nullptr) return nullptr;
  auto it = object_->find(key);
  if (it != object_->end()) seen_.push_back(&*it);
  if (it == object_->end() || it->is_null()) {
    if (required) problem(key, "is required");
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> ObjectReader::string(const std::string& key, bool required) {
  const Json* v = get(key, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    problem(key, "must be a string");
    return std::nullopt;
  }
  auto s = v->get<std::string>();
  if (s.size() > 4096) {
    problem(key, "must be at most 4096 characters");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> ObjectReader::id(const std::string& key, bool required) {
  auto s = string(key, required);
  if (s && !valid_id(*s)) {
    problem(key, "must be an identifier of 1-64 letters, digits, '-', '_' or '.'");
    return std::nullopt;
  }
  return s;
}

std::optional<std::int64_t> ObjectReader::integer(const std::string& key, bool required,
                                                  std::int64_t min, std::int64_t max) {
  const Json* v = get(key, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) {
    const auto text = v->dump();
    problem(key, "must be a whole number, not " +
                     (text.size() > 40 ? text.substr(0, 40) + "..." : text));
    return std::nullopt;
  }
  std::int64_t n = 0;
  if (v->is_number_unsigned()) {
    const auto u = v->get<std::uint64_t>();
    n = u > static_cast<std::uint64_t>(max) ? max + (max < INT64_MAX ? 1 : 0)
                                            : static_cast<std::int64_t>(u);
    if (u > static_cast<std::uint64_t>(INT64_MAX)) {
      problem(key, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return std::nullopt;
    }
  } else {
    n = v->get<std::int64_t>();
  }
  if (n < min || n > max) {
    problem(key, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return n;
}

std::optional<bool> ObjectReader::boolean(const std::string& key, bool required) {
  const Json* v = get(key, required);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    problem(key, "must be true or false");
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<Decimal4> ObjectReader::decimal(const std::string& key, bool required, Decimal4 min,
                                              Decimal4 max, bool min_exclusive) {
  const Json* v = get(key, required);
  if (v == nullptr) return std::nullopt;
  const std::string range = std::string(min_exclusive ? "greater than " : "from ") +
                            min.to_string() + (min_exclusive ? " and at most " : " to ") +
                            max.to_string();
  const std::string expect = "must be a decimal " + range + " with at most 4 places";
  std::optional<Decimal4> d;
  if (v->is_string()) {
    d = Decimal4::parse(v->get<std::string>());
  } else if (v->is_number_integer() && !v->is_number_unsigned()) {
    const auto n = v->get<std::int64_t>();
    if (n >= -1'000'000'000 && n <= 1'000'000'000) d = Decimal4::from_int(n);
  } else if (v->is_number_unsigned()) {
    const auto n = v->get<std::uint64_t>();
    if (n <= 1'000'000'000) d = Decimal4::from_int(static_cast<std::int64_t>(n));
  } else if (v->is_number_float()) {
    problem(key, expect + ", written as a string such as \"1.5\" (no binary floats in rules)");
    return std::nullopt;
  }
  if (!d || (min_exclusive ? *d <= min : *d < min) || *d > max) {
    problem(key, expect);
    return std::nullopt;
  }
  return d;
}

std::optional<LocalDays> ObjectReader::date(const std::string& key, bool required) {
  auto s = string(key, required);
  if (!s) return std::nullopt;
  auto d = parse_local_date(*s);
  if (!d) problem(key, "must be a date YYYY-MM-DD");
  return d;
}

std::vector<std::string> ObjectReader::strings(const std::string& key, bool required) {
  std::vector<std::string> out;
  const Json* v = get(key, required);
  if (v == nullptr) return out;
  if (!v->is_array()) {
    problem(key, "must be an array of strings");
    return out;
  }
  for (std::size_t i = 0; i < v->size(); ++i) {
    const auto& e = (*v)[i];
    if (!e.is_string() || e.get<std::string>().size() > 4096) {
      problems_.push_back({index_path(path(key), i), "must be a string"});
      continue;
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::optional<std::string> ObjectReader::choice(const std::string& key,
                                                const std::vector<std::string>& choices,
                                                bool required) {
  auto s = string(key, required);
  if (!s) return std::nullopt;
  for (const auto& c : choices) {
    if (*s == c) return s;
  }
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  problem(key, "must be one of: " + list);
  return std::nullopt;
}

}  // namespace loyalty::core
