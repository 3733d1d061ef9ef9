// Loads and validates a program document (docs/programs.md). Every problem is
// reported with its JSON path; nothing partial is ever returned.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include "core/json_reader.h"
#include "core/program.h"
#include "core/result.h"

namespace loyalty::core {

// Parses JSON text and validates it; the error lists every problem found.
[[nodiscard]] Result<Program> load_program_text(std::string_view json_text);
[[nodiscard]] Result<Program> load_program(const Json& document);

// Reads a selector object at `key` of `r` (absent: matches everything).
Selector read_selector(ObjectReader& r, const std::string& key);
Selector read_selector_value(const Json& v, const std::string& path, Problems& problems);

// References from rules to other parts of the program, checked after the
// whole document is read.
struct References {
  struct Ref {
    std::string path;
    std::string kind;  // "tier", "voucher", "card", "calendar", "pass"
    std::string id;
  };
  std::vector<Ref> refs;
  void add(std::string path, std::string kind, std::string id) {
    refs.push_back({std::move(path), std::move(kind), std::move(id)});
  }
};

Condition read_condition(const Json& v, const std::string& path, Problems& problems,
                         References& refs, int depth = 0);
void read_rules(ObjectReader& top, std::vector<Rule>& rules, References& refs);

}  // namespace loyalty::core
