// JSON forms of the engine's inputs and outputs (docs/programs.md, "Engine
// inputs"): members, baskets and events in; outcomes and entries out. Input
// is validated like a program: every problem with its path, unknown keys
// refused.
//
// Thread-safety: pure functions.
#pragma once

#include "core/engine.h"
#include "core/json_reader.h"
#include "core/ledger.h"

namespace loyalty::core {

[[nodiscard]] Result<MemberState> member_from_json(const Json& j);
Json member_to_json(const MemberState& m);

// A basket ({"currency", "lines", ...}) or an event ({"event": "review"}).
// Fills trigger, activity, top_up_amount and basket of `request`.
[[nodiscard]] Status request_from_json(const Json& j, Request& request);

Json outcome_to_json(const Outcome& o, const Program& program);
// The "totals" member of outcome_to_json: what HQ's replay compares.
Json outcome_totals_to_json(const Outcome& o);
Json entries_to_json(const std::vector<Entry>& entries);

}  // namespace loyalty::core
